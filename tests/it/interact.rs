//! Justify with one click, through the Function URL as Slack calls it: a signed request opens
//! the modal for the person asked (and for the justifiers' user group), anyone else gets an
//! ephemeral note; a bad signature, a stale timestamp and a replay get 401 and change nothing;
//! the submission is checked inline, posted into the thread under the person's name, counted by
//! the sweep and exported. The signature code is also held against `slack_sdk`'s.

use crate::support::*;
use hmac::{Hmac, Mac};
use privwatch::aws::handoff::Handoff;
use privwatch::config::TokenSetting;
use privwatch::token::TokenSource;
use privwatch::{handle, App, Outcome};
use serde_json::{json, Value};
use slack_sandbox::{Sandbox, DEMO_CHANNEL, DEMO_TOKEN};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

fn sign(ts: i64, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn form(payload: &Value) -> String {
    let mut out = String::from("payload=");
    for b in payload.to_string().bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A Function URL request (payload format 2.0) as Lambda hands it to the function: the fields of
/// the documented example ("Invoking Lambda function URLs", request payload), a form body.
fn request(body: &str, ts: i64, signature: &str) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": "application/x-www-form-urlencoded",
                    "x-slack-request-timestamp": ts.to_string(), "x-slack-signature": signature,
                    "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)"},
        "requestContext": {
            "accountId": "anonymous", "apiId": "abcdefghijklmnopqrstuvwxyz0123",
            "domainName": "abcdefghijklmnopqrstuvwxyz0123.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghijklmnopqrstuvwxyz0123", "requestId": "c2a6a9a8-0f5e-4a5e-9e4f-1f2b3c4d5e6f",
            "routeKey": "$default", "stage": "$default", "time": "03/Dec/2026:16:30:00 +0000",
            "timeEpoch": ts * 1000,
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1",
                     "userAgent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        },
        "body": body, "isBase64Encoded": false
    })
}

fn signed(payload: &Value) -> Value {
    signed_at(payload, chrono::Utc::now().timestamp())
}

/// Signed as Slack would send it at `ts` (a second press of the same kind is another request).
fn signed_at(payload: &Value, ts: i64) -> Value {
    let body = form(payload);
    request(&body, ts, &sign(ts, &body))
}

async fn call(app: &App, req: &Value) -> (u16, Value) {
    match handle(app, req, deadline(10)).await.unwrap() {
        Outcome::Http(response) => {
            let body = response.body.as_deref().unwrap_or_default();
            (
                u16::try_from(response.status_code).unwrap(),
                serde_json::from_str(body).unwrap_or(Value::Null),
            )
        }
        other => panic!("{other:?}"),
    }
}

fn app(sandbox: &Sandbox, extra: &[(&str, &str)]) -> App {
    let token = TokenSetting::Env(DEMO_TOKEN.to_string());
    let mut vars = vec![
        ("JUSTIFY_BUTTON", "true"),
        ("JUSTIFY_USERGROUP", "S0SECURITY"),
    ];
    vars.extend_from_slice(extra);
    let mut app = app_from(
        config_with(sandbox, token.clone(), &vars),
        token.clone(),
        None,
    );
    app.tokens = TokenSource::new(token, None).with_signing_secret(Some(SECRET.to_string()));
    app
}

fn press(sandbox: &Sandbox, user: &str, ts: &str) -> Value {
    json!({"type": "block_actions", "user": {"id": user}, "trigger_id": sandbox.trigger(),
           "channel": {"id": DEMO_CHANNEL}, "container": {"type": "message", "message_ts": ts, "channel_id": DEMO_CHANNEL},
           "actions": [{"action_id": "privwatch_justify", "type": "button", "value": "justify"}]})
}

fn submit(user: &str, view: &Value, purpose: &str, ticket: &str) -> Value {
    json!({"type": "view_submission", "user": {"id": user},
           "view": {"callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
                    "state": {"values": {"purpose": {"purpose": {"type": "plain_text_input", "value": purpose}},
                                         "ticket": {"ticket": {"type": "url_text_input", "value": ticket}}}}}})
}

#[tokio::test]
async fn the_button_opens_the_modal_for_the_person_asked_and_nobody_else() {
    let sandbox = sandbox().await;
    let app = app(&sandbox, &[]);
    handle(
        &app,
        &fixture("saml-google-workspace-admin.json"),
        deadline(10),
    )
    .await
    .unwrap();
    let notice = &sandbox.top_level(DEMO_CHANNEL)[0];
    let blocks = notice.blocks.as_ref().unwrap().as_array().unwrap();
    let button = &blocks.last().unwrap()["elements"][0];
    assert_eq!(
        button["action_id"], "privwatch_justify",
        "the notice has the button"
    );

    // Alice was asked: the modal opens.
    let (status, _) = call(&app, &signed(&press(&sandbox, "U01ALICE", &notice.ts))).await;
    assert_eq!(status, 200);
    let views = sandbox.views();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0]["callback_id"], "privwatch_justify");
    // Bob was not: an ephemeral note only he sees, no modal.
    let (status, _) = call(&app, &signed(&press(&sandbox, "U02BOB", &notice.ts))).await;
    assert_eq!(status, 200);
    assert_eq!(sandbox.views().len(), 1);
    let ephemeral = sandbox.ephemeral();
    assert_eq!(ephemeral.len(), 1);
    assert_eq!(ephemeral[0].1, "U02BOB");
    assert!(
        ephemeral[0]
            .2
            .starts_with("Only <@U01ALICE> or members of <!subteam^S0SECURITY>"),
        "{}",
        ephemeral[0].2
    );
    // Carol is in the justifiers' group.
    call(&app, &signed(&press(&sandbox, "U03CAROL", &notice.ts))).await;
    assert_eq!(sandbox.views().len(), 2);
}

#[tokio::test]
async fn bad_stale_and_replayed_requests_get_401_and_change_nothing() {
    let sandbox = sandbox().await;
    let app = app(&sandbox, &[]);
    let ts = alices_notice(&sandbox, &app).await;
    let body = form(&press(&sandbox, "U01ALICE", &ts));
    let now = chrono::Utc::now().timestamp();
    let calls_before = sandbox.calls().len();

    let forged = request(&body, now, &sign(now, &body.replace("U01ALICE", "U02BOB")));
    assert_eq!(
        call(&app, &forged).await.0,
        401,
        "a signature over another body"
    );
    let unsigned = request(&body, now, "");
    assert_eq!(call(&app, &unsigned).await.0, 401, "no signature");
    let stale = request(&body, now - 301, &sign(now - 301, &body));
    assert_eq!(call(&app, &stale).await.0, 401, "older than five minutes");
    assert_eq!(sandbox.calls().len(), calls_before, "nothing reached Slack");
    assert!(sandbox.views().is_empty());

    let good = request(&body, now, &sign(now, &body));
    assert_eq!(call(&app, &good).await.0, 200);
    assert_eq!(
        call(&app, &good).await.0,
        401,
        "the same request again is a replay"
    );
    assert_eq!(sandbox.views().len(), 1, "the replay opened nothing");

    // Not parsed before the check: a body that is not even a form gets 401, not 400.
    let junk = request("%%%not a form", now, "v0=00");
    assert_eq!(call(&app, &junk).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_is_checked_posted_counted_and_exported() {
    let sandbox = sandbox().await;
    let pattern = r"https://[a-z0-9-]+\.atlassian\.net/browse/[A-Z]+-[0-9]+";
    let app = app(&sandbox, &[("TICKET_URL_PATTERN", pattern)]);
    let ts = alices_notice(&sandbox, &app).await;
    call(&app, &signed(&press(&sandbox, "U01ALICE", &ts))).await;
    let view = sandbox.views()[0].clone();

    // Slack shows the errors inline; nothing is posted.
    let (status, answer) = call(
        &app,
        &signed(&submit("U01ALICE", &view, "", "https://evil.example/x")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["response_action"], "errors");
    assert!(answer["errors"]["ticket"].is_string() && answer["errors"]["purpose"].is_string());
    // Someone else cannot submit it either.
    let (_, answer) = call(
        &app,
        &signed(&submit(
            "U02BOB",
            &view,
            "mine",
            "https://acme.atlassian.net/browse/SEC-1",
        )),
    )
    .await;
    assert_eq!(answer["response_action"], "errors");
    assert_eq!(replies(&sandbox, &ts).len(), 1, "only the ask");

    let purpose = "Rotating the KMS key <!channel>";
    let (status, answer) = call(
        &app,
        &signed(&submit(
            "U01ALICE",
            &view,
            purpose,
            "https://acme.atlassian.net/browse/SEC-42",
        )),
    )
    .await;
    assert_eq!((status, answer), (200, Value::Null), "the modal closes");
    let thread = replies(&sandbox, &ts);
    let posted = thread.last().unwrap();
    assert!(
        posted
            .text
            .contains("Rotating the KMS key &lt;!channel&gt;"),
        "{}",
        posted.text
    );
    assert!(posted.text.contains("<@U01ALICE>"), "{}", posted.text);
    assert!(
        unexpected_markup(&posted.text, &["<@U01ALICE>"]).is_empty(),
        "{}",
        posted.text
    );

    let notice = &sandbox.top_level(DEMO_CHANNEL)[0];
    assert_eq!(
        notice.reactions,
        vec!["white_check_mark".to_string()],
        "justified at once: {:?}",
        sandbox
            .calls()
            .iter()
            .map(|c| (&c.method, &c.error))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        notice.metadata.as_ref().unwrap()["event_payload"]["justified"],
        true
    );
    sandbox.age_messages(31 * 60);
    let Outcome::Swept(report) = handle(&app, &fixture("schedule/sweep.json"), deadline(10))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(report.escalated, 0, "a justified notice is not chased");
    let out = audit_cli_with(
        &sandbox,
        &["--since", "1d", "--format", "json"],
        &[("TICKET_URL_PATTERN", pattern)],
    )
    .await;
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["justified"], true);
    assert_eq!(rows[0]["justification"], purpose);
    assert_eq!(
        rows[0]["ticket_url"],
        "https://acme.atlassian.net/browse/SEC-42"
    );
    assert_eq!(rows[0]["replied_by"], "U01ALICE");
}

/// Alice's admin session delivered by `notifier`: the `ts` of its notice (the thread asks her).
async fn alices_notice(sandbox: &Sandbox, notifier: &App) -> String {
    handle(
        notifier,
        &fixture("saml-google-workspace-admin.json"),
        deadline(10),
    )
    .await
    .unwrap();
    sandbox.top_level(DEMO_CHANNEL)[0].ts.clone()
}

/// The Justify function (handing submissions to the notifier, as `NOTIFIER_FUNCTION` does).
fn front(sandbox: &Sandbox) -> App {
    let mut front = app(sandbox, &[]);
    front.handoff = Handoff::Queue(Default::default());
    front
}

fn justifications(sandbox: &Sandbox, ts: &str) -> usize {
    replies(sandbox, ts)
        .iter()
        .filter(|m| m.text.contains("justified this with the *Justify* button"))
        .count()
}

/// Slack's three seconds, with a realistic round trip to Slack (120 ms a call) and the notifier
/// busy with a stream of uses at the same time: the click opens the modal with a trigger still
/// valid and the submission is answered in time, because the Justify function only checks and
/// hands over. The notifier completes the submission from Lambda's queue, once: its retry and a
/// second submission of the same justification post nothing new.
#[tokio::test]
async fn clicks_are_answered_in_three_seconds_while_the_notifier_is_busy_and_post_once() {
    let sandbox = Sandbox::start(
        slack_sandbox::SandboxConfig {
            latency: std::time::Duration::from_millis(120),
            ..Default::default()
        },
        0,
    )
    .await
    .unwrap();
    let notifier = app(&sandbox, &[]);
    let front = front(&sandbox);
    let ts = alices_notice(&sandbox, &notifier).await;

    let busy = async {
        for i in 0..25 {
            let event = use_at("root-signin-failure.json", &format!("busy-{i}"), i);
            handle(&notifier, &event, deadline(30)).await.unwrap();
        }
    };
    let clicks = async {
        let (pressed, in_time) = sandbox
            .interact(call(&front, &signed(&press(&sandbox, "U01ALICE", &ts))))
            .await;
        assert!(in_time && pressed.0 == 200, "the click is answered in time");
        let view = sandbox.views()[0].clone();
        let submission = submit(
            "U01ALICE",
            &view,
            "Restore for INC-9",
            "https://tickets.example/INC-9",
        );
        let (answered, in_time) = sandbox.interact(call(&front, &signed(&submission))).await;
        assert!(in_time, "the submission is answered in time");
        assert_eq!(answered, (200, Value::Null), "the modal closes");
        submission
    };
    let ((), submission) = tokio::join!(busy, clicks);
    assert_eq!(sandbox.late_acknowledgements(), 0);
    assert_eq!(
        justifications(&sandbox, &ts),
        0,
        "handed over, not yet posted"
    );

    let handed = front.handoff.take();
    assert_eq!(handed.len(), 1);
    let complete = |payload: Value| {
        let notifier = &notifier;
        async move {
            match handle(notifier, &payload, deadline(10)).await.unwrap() {
                Outcome::Justified(done) => done,
                other => panic!("{other:?}"),
            }
        }
    };
    let done = complete(handed[0].clone()).await;
    assert!(done.posted && done.marked, "{done:?}");
    // Lambda's retry of the same event, and the person submitting the same again.
    let again = complete(handed[0].clone()).await;
    assert!(!again.posted && !again.marked, "{again:?}");
    let (status, _) = call(
        &front,
        &signed_at(&submission, chrono::Utc::now().timestamp() + 1),
    )
    .await;
    assert_eq!(status, 200);
    let second = front.handoff.take();
    assert_eq!(second.len(), 1);
    assert!(!complete(second[0].clone()).await.posted);
    assert_eq!(justifications(&sandbox, &ts), 1, "one justification");
    let notice = &sandbox.top_level(DEMO_CHANNEL)[0];
    assert_eq!(notice.reactions, vec!["white_check_mark".to_string()]);
}

/// A Slack that answers `views.open` with "retry after 5 s" does not hold the answer past
/// Slack's three seconds (the trigger would have expired anyway): the click fails fast.
#[tokio::test]
async fn a_retry_after_never_holds_a_click_past_three_seconds() {
    use slack_sandbox::Fault;
    let sandbox = sandbox().await;
    let notifier = app(&sandbox, &[]);
    let front = front(&sandbox);
    let ts = alices_notice(&sandbox, &notifier).await;
    script(
        &sandbox,
        "views.open",
        None,
        Fault::RateLimited {
            retry_after_secs: 5,
        },
        1,
    );
    let request = signed(&press(&sandbox, "U01ALICE", &ts));
    let (result, in_time) = sandbox
        .interact(handle(&front, &request, deadline(30)))
        .await;
    assert!(in_time, "answered within three seconds");
    assert!(result.is_err(), "{result:?}");
}

/// A trigger is good for three seconds, and only one Slack handed out (the sandbox holds the
/// rule: a late `views.open` is `expired_trigger_id`).
#[tokio::test]
async fn an_expired_trigger_opens_nothing() {
    let sandbox = sandbox().await;
    let notifier = app(&sandbox, &[]);
    let ts = alices_notice(&sandbox, &notifier).await;
    let request = signed(&press(&sandbox, "U01ALICE", &ts));
    tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
    let result = handle(&notifier, &request, deadline(10)).await;
    assert!(
        result
            .as_ref()
            .is_err_and(|e| e.to_string().contains("expired_trigger_id")),
        "{result:?}"
    );
    assert!(sandbox.views().is_empty());
}

/// The signature as Slack's own SDK computes and checks it (`slack_sdk`'s `SignatureVerifier`,
/// in the test venv): ours accepts what it signs, and it accepts what ours signs.
#[test]
fn signatures_agree_with_slack_sdk() {
    let script = r#"
import json, sys, time
from slack_sdk.signature import SignatureVerifier
secret, cases = sys.argv[1], json.loads(sys.argv[2])
v = SignatureVerifier(secret)
out = []
for ts, body, ours in cases:
    out.append({"theirs": v.generate_signature(timestamp=str(ts), body=body),
                "accepts_ours": v.is_valid(body=body, timestamp=str(ts), signature=ours)})
print(json.dumps(out))
"#;
    let now = chrono::Utc::now().timestamp();
    let bodies = [
        "payload=%7B%22type%22%3A%22block_actions%22%7D".to_string(),
        "token=x&team_id=T1&text=%E6%97%A5%E6%9C%AC%E8%AA%9E+%3C%21here%3E".to_string(),
        String::new(),
        "a".repeat(5000),
    ];
    let cases: Vec<Value> = bodies
        .iter()
        .map(|b| json!([now, b, sign(now, b)]))
        .collect();
    let out = match std::process::Command::new("python3")
        .args(["-c", script, SECRET, &Value::Array(cases).to_string()])
        .output()
    {
        Ok(out) if out.status.success() => out,
        other => {
            assert!(
                std::env::var("PRIVWATCH_REQUIRE_MOTO").is_err(),
                "slack_sdk is not available in this run's python3 (make test installs it): {other:?}"
            );
            eprintln!("SKIPPED: no python3 with slack_sdk; run `make test`");
            return;
        }
    };
    let answers: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let secret = privwatch::token::SigningSecret::new(SECRET);
    for (body, answer) in bodies.iter().zip(&answers) {
        assert_eq!(
            answer["accepts_ours"], true,
            "slack_sdk accepts our signature"
        );
        let theirs = answer["theirs"].as_str().unwrap();
        assert_eq!(
            privwatch::slack::signature::verify(
                &secret,
                &now.to_string(),
                body.as_bytes(),
                theirs,
                now
            ),
            Ok(()),
            "we accept slack_sdk's"
        );
        assert!(privwatch::slack::signature::verify(
            &secret,
            &now.to_string(),
            b"tampered",
            theirs,
            now
        )
        .is_err());
    }
}

/// A justification whose archive write fails is archived by the retry: the notice is marked in
/// the sweep's order (archive, reaction, flag), so a failed write leaves it unflagged, the
/// invocation fails, and Lambda's retry archives it — without a second post.
#[tokio::test]
async fn a_justification_whose_archive_write_fails_is_archived_by_the_retry() {
    use privwatch::aws::archive::Archive;
    let Some(url) = moto_url("the archive of a justification") else {
        return;
    };
    let client = s3(&url);
    let sandbox = sandbox().await;
    let mut notifier = app(&sandbox, &[]);
    let front = front(&sandbox);
    let (ts, handed) =
        handed_over(&sandbox, &notifier, &front, "https://tickets.example/INC-3").await;

    notifier.archive = Some(Archive::new(
        client.clone(),
        &format!("privwatch-missing-{}", std::process::id()),
    ));
    let error = handle(&notifier, &handed, deadline(10)).await.unwrap_err();
    assert_eq!(
        error.error_type(),
        "privwatch.ArchiveUnavailable",
        "{error}"
    );
    let notice = sandbox.top_level(DEMO_CHANNEL)[0].clone();
    assert!(
        notice.reactions.is_empty(),
        "not marked before it is archived"
    );
    assert_eq!(
        notice.metadata.unwrap()["event_payload"]["justified"],
        false
    );

    let name = bucket(&client, "privwatch-justified").await;
    notifier.archive = Some(Archive::new(client.clone(), &name));
    let Outcome::Justified(done) = handle(&notifier, &handed, deadline(10)).await.unwrap() else {
        panic!()
    };
    assert!(!done.posted && done.marked, "{done:?}");
    assert_eq!(justifications(&sandbox, &ts), 1);
    let (_, justifications_archived) = Archive::new(client, &name).read_all().await.unwrap();
    assert_eq!(justifications_archived.len(), 1);
    assert_eq!(
        justifications_archived[0].ticket_url,
        "https://tickets.example/INC-3"
    );
}

/// Alice's notice, justified with the button: the submission the Justify function handed over
/// (not yet completed by the notifier), and the notice's `ts`.
async fn handed_over(
    sandbox: &Sandbox,
    notifier: &App,
    front: &App,
    ticket: &str,
) -> (String, Value) {
    let ts = alices_notice(sandbox, notifier).await;
    call(front, &signed(&press(sandbox, "U01ALICE", &ts))).await;
    let view = sandbox.views()[0].clone();
    let submission = submit("U01ALICE", &view, "Key rotation", ticket);
    call(front, &signed(&submission)).await;
    (ts, front.handoff.take().remove(0))
}

/// The button has no next time: a flag update whose answer is lost fails the notifier's
/// invocation, and Lambda's retry sets the flag. Left unset, the notice — justified by the bot's
/// post, which the sweep does not read as a person's reply — would be escalated.
#[tokio::test]
async fn a_justified_flag_whose_update_is_unconfirmed_is_set_by_the_retry() {
    use slack_sandbox::{Fault, FaultPlan, ScriptedFault};
    let sandbox = sandbox().await;
    let notifier = app(&sandbox, &[]);
    let front = front(&sandbox);
    let (ts, handed) =
        handed_over(&sandbox, &notifier, &front, "https://tickets.example/INC-4").await;

    // A 503 on the flag's chat.update: Slack did not carry it out, and the client cannot know.
    sandbox.set_faults(FaultPlan::scripted(vec![ScriptedFault {
        method: "chat.update".into(),
        thread_reply: None,
        fault: Fault::ServerError { status: 503 },
        times: 1,
    }]));
    let error = handle(&notifier, &handed, deadline(10)).await.unwrap_err();
    assert_eq!(error.error_type(), "privwatch.SlackUnavailable", "{error}");
    let justified = |sandbox: &Sandbox| {
        sandbox.top_level(DEMO_CHANNEL)[0].metadata.clone().unwrap()["event_payload"]["justified"]
            == true
    };
    assert!(!justified(&sandbox));

    let Outcome::Justified(done) = handle(&notifier, &handed, deadline(10)).await.unwrap() else {
        panic!()
    };
    assert!(!done.posted && done.marked, "{done:?}");
    assert!(justified(&sandbox), "the retry set the flag");
    assert_eq!(justifications(&sandbox, &ts), 1);
}
