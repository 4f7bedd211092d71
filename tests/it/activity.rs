//! What a privileged session did: an admin session's write calls (real record shapes, moved into
//! the sessions the fixtures start) become one activity line in its notice's thread, kept
//! current; redeliveries, read-only calls and other sessions' calls stay out; a session whose
//! start privwatch never saw opens exactly one notice; with the archive, a burst is counted in
//! S3 and the line catches up at Slack's pace.

use crate::support::*;
use privwatch::aws::archive::Archive;
use privwatch::{handle, Outcome};
use serde_json::Value;
use slack_sandbox::{Sandbox, DEMO_CHANNEL};

const ACTIVITY: &str = "privileged_use_activity";

fn activity_lines(sandbox: &Sandbox, notice_ts: &str) -> Vec<slack_sandbox::Message> {
    replies(sandbox, notice_ts)
        .into_iter()
        .filter(|m| {
            m.metadata
                .as_ref()
                .is_some_and(|md| md["event_type"] == ACTIVITY)
        })
        .collect()
}

fn payload(m: &slack_sandbox::Message) -> &Value {
    &m.metadata.as_ref().unwrap()["event_payload"]
}

fn counted(outcome: Outcome) -> privwatch::notify::activity::Counted {
    match outcome {
        Outcome::Counted(c) => c,
        other => panic!("{other:?}"),
    }
}

/// The scheduled catch-up (every minute in AWS), once Slack's pace allows another write.
async fn catch_up(app: &privwatch::App) {
    let event = serde_json::json!({
        "version": "0", "id": "cu", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "111122223333", "time": "2026-11-01T10:40:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:111122223333:rule/privwatch-catchup"], "detail": {}
    });
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    handle(app, &event, deadline(30)).await.unwrap();
}

/// A call of `fixture_name`'s session with another event ID and time.
fn again_in(fixture_name: &str, event_id: &str, second: u32) -> Value {
    let mut e = fixture(fixture_name);
    e["detail"]["eventID"] = Value::from(event_id);
    e["detail"]["eventTime"] = Value::from(format!(
        "2026-11-01T10:3{}:{:02}Z",
        second / 60,
        second % 60
    ));
    e
}

#[tokio::test]
async fn a_saml_session_and_its_calls_are_one_notice_with_one_current_activity_line() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    let start = handle(
        &app,
        &fixture("saml-google-workspace-admin.json"),
        deadline(10),
    )
    .await
    .unwrap();
    assert!(matches!(start, Outcome::Delivered(_)), "{start:?}");
    // Each call delivered twice (EventBridge delivers at least once).
    for name in [
        "session-saml-create-user.json",
        "session-saml-run-instances-refused.json",
    ] {
        for delivery in 0..2 {
            let c = counted(handle(&app, &fixture(name), deadline(10)).await.unwrap());
            assert!(!c.opened, "{name}: joins the session's notice");
            assert_eq!(c.counted, delivery == 0, "{name}: counted once");
        }
    }
    // A read-only call of the same session, and another (non-admin) role's call: not counted.
    let mut read = fixture("session-saml-create-user.json");
    read["detail"]["eventName"] = Value::from("GetUser");
    read["detail"]["readOnly"] = Value::Bool(true);
    read["detail"]["eventID"] = Value::from("read-only-1");
    assert!(matches!(
        handle(&app, &read, deadline(10)).await.unwrap(),
        Outcome::Ignored(_)
    ));

    let notices = sandbox.top_level(DEMO_CHANNEL);
    assert_eq!(notices.len(), 1, "the session's one notice");
    let lines = activity_lines(&sandbox, &notices[0].ts);
    assert_eq!(lines.len(), 1, "one activity line, updated in place");
    let a = payload(&lines[0]);
    assert_eq!(a["total"], 2);
    assert_eq!(a["refused"], 1, "RunInstances was refused");
    let actions: Vec<(String, u64)> = a["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["action"].as_str().unwrap().to_string(),
                x["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("ec2:RunInstances".to_string(), 1),
            ("iam:CreateUser".to_string(), 1)
        ]
    );
    assert!(
        lines[0].text.contains("`iam:CreateUser` ×1"),
        "{}",
        lines[0].text
    );
    assert!(
        lines[0].text.contains("`test-no-permission`"),
        "the user it made: {}",
        lines[0].text
    );
    assert!(lines[0].text.contains("refused ×1"), "{}", lines[0].text);
    // The notice says how many calls so far; the ask is still the thread's first reply.
    let notice_text = all_texts(&notices[0]).join("\n");
    assert!(
        notice_text.contains("2 write calls in this session so far"),
        "{notice_text}"
    );
    let thread = replies(&sandbox, &notices[0].ts);
    assert!(
        thread[0].text.starts_with("<@U01ALICE> "),
        "{}",
        thread[0].text
    );
    assert_eq!(thread.len(), 2, "the ask and the activity line");
}

#[tokio::test]
async fn a_switch_role_session_is_joined_by_its_session_arn() {
    let s = Scenario::new().await;
    s.deliver_fixture("switch-role-admin.json").await.unwrap();
    let c = counted(
        s.deliver_fixture("session-switch-role-create-user.json")
            .await
            .unwrap(),
    );
    assert!(!c.opened && c.counted, "{c:?}");
    let notices = s.notices();
    assert_eq!(notices.len(), 1);
    assert_eq!(activity_lines(&s.sandbox, &notices[0].ts).len(), 1);
}

#[tokio::test]
async fn a_session_seen_without_its_start_opens_exactly_one_notice() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    let name = "session-unseen-start-create-user.json";
    let first = counted(handle(&app, &fixture(name), deadline(10)).await.unwrap());
    assert!(first.opened && first.counted);
    // Redelivered, then a later call of the same session, from another execution environment
    // (nothing remembered: the channel is searched).
    counted(handle(&app, &fixture(name), deadline(10)).await.unwrap());
    let other_environment = app_for(&sandbox);
    let mut later = fixture(name);
    later["detail"]["eventID"] = Value::from("later-call-1");
    later["detail"]["eventName"] = Value::from("AttachUserPolicy");
    let c = counted(
        handle(&other_environment, &later, deadline(10))
            .await
            .unwrap(),
    );
    assert!(!c.opened && c.counted && c.total == 2, "{c:?}");

    let notices = sandbox.top_level(DEMO_CHANNEL);
    assert_eq!(notices.len(), 1, "one notice for the session");
    let text = all_texts(&notices[0]).join("\n");
    assert!(text.contains("without its start"), "{text}");
    let thread = replies(&sandbox, &notices[0].ts);
    assert!(
        thread[0].text.starts_with("<@U05ERIN> "),
        "the session's person: {}",
        thread[0].text
    );
    let lines = activity_lines(&sandbox, &notices[0].ts);
    assert_eq!(lines.len(), 1);
    assert_eq!(payload(&lines[0])["total"], 2);
}

#[tokio::test]
async fn in_japanese_the_activity_line_is_japanese() {
    let sandbox = sandbox().await;
    let token = privwatch::config::TokenSetting::Env(slack_sandbox::DEMO_TOKEN.to_string());
    let app = app_from(
        config_with(&sandbox, token.clone(), &[("MESSAGE_LANGUAGE", "ja")]),
        token,
        None,
    );
    handle(
        &app,
        &fixture("saml-google-workspace-admin.json"),
        deadline(10),
    )
    .await
    .unwrap();
    handle(
        &app,
        &fixture("session-saml-run-instances-refused.json"),
        deadline(10),
    )
    .await
    .unwrap();
    let notices = sandbox.top_level(DEMO_CHANNEL);
    let line = &activity_lines(&sandbox, &notices[0].ts)[0];
    assert!(
        line.text.contains("このセッションの操作") && line.text.contains("拒否 ×1"),
        "{}",
        line.text
    );
}

/// A `terraform apply` through an admin role: a burst of write calls costs the channel no post —
/// the archive counts them (each call archived once), the line is written at Slack's Tier 3
/// pace, and the scheduled catch-up brings it up to the last call. (Smaller than the 500 calls
/// `make bench` measures.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_calls_is_counted_in_the_archive_and_the_line_catches_up() {
    let Some(url) = moto_url("an admin session's burst") else {
        return;
    };
    const CALLS: u32 = 60;
    let client = s3(&url);
    let name = bucket(&client, "privwatch-activity").await;
    let sandbox = sandbox().await;
    let mut app = app_for(&sandbox);
    app.archive = Some(Archive::new(client.clone(), &name));
    handle(
        &app,
        &fixture("saml-google-workspace-admin.json"),
        deadline(10),
    )
    .await
    .unwrap();
    let before = sandbox.calls().len();
    for i in 0..CALLS {
        let event = again_in("session-saml-create-user.json", &format!("burst-{i:03}"), i);
        counted(handle(&app, &event, deadline(10)).await.unwrap());
        if i % 10 == 0 {
            // Some delivered twice.
            assert!(!counted(handle(&app, &event, deadline(10)).await.unwrap()).counted);
        }
    }
    catch_up(&app).await;

    let notices = sandbox.top_level(DEMO_CHANNEL);
    assert_eq!(notices.len(), 1, "no post per call");
    let lines = activity_lines(&sandbox, &notices[0].ts);
    assert_eq!(lines.len(), 1);
    assert_eq!(
        payload(&lines[0])["total"],
        CALLS,
        "the line is current after the catch-up"
    );
    let calls = &sandbox.calls()[before..];
    let posts = calls
        .iter()
        .filter(|c| c.method == "chat.postMessage")
        .count();
    let updates = calls.iter().filter(|c| c.method == "chat.update").count();
    assert_eq!(posts, 1, "one post: the activity line");
    assert!(
        updates <= 12,
        "{updates} updates for {CALLS} calls: paced, not one per call"
    );
    let archived = client
        .list_objects_v2()
        .bucket(&name)
        .prefix("activity/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        archived.key_count(),
        Some(CALLS as i32),
        "each call archived once"
    );
}

/// The export carries what each session did: the `actions` column from S3 and from Slack alike,
/// and with `--format json` from the archive every call (event ID, time, action, resources,
/// error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_export_carries_the_actions_from_s3_and_from_slack_alike() {
    let Some(url) = moto_url("the audit of a session's actions") else {
        return;
    };
    let client = s3(&url);
    let name = bucket(&client, "privwatch-audit-actions").await;
    let sandbox = sandbox().await;
    let mut app = app_for(&sandbox);
    app.archive = Some(Archive::new(client.clone(), &name));
    for f in [
        "saml-google-workspace-admin.json",
        "session-saml-create-user.json",
        "session-saml-run-instances-refused.json",
        "session-unseen-start-create-user.json",
    ] {
        handle(&app, &fixture(f), deadline(10)).await.unwrap();
    }
    // The second call came within Slack's pace of the first: the line waits for the catch-up.
    catch_up(&app).await;
    let s3_env = [
        ("ARCHIVE_BUCKET", name.as_str()),
        ("AWS_ENDPOINT_URL", url.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ];
    let read = |out: std::process::Output| -> Vec<Value> {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let from_s3 = read(
        audit_cli_with(
            &sandbox,
            &["--since", "1d", "--format", "json", "--from", "s3"],
            &s3_env,
        )
        .await,
    );
    let from_slack = read(
        audit_cli_with(
            &sandbox,
            &["--since", "1d", "--format", "json", "--from", "slack"],
            &[],
        )
        .await,
    );
    let actions = |rows: &[Value]| -> Vec<(String, String)> {
        let mut a: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r["event_id"].as_str().unwrap().to_string(),
                    r["actions"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        a.sort();
        a
    };
    assert_eq!(
        actions(&from_s3),
        actions(&from_slack),
        "S3 and Slack agree"
    );
    let saml = from_s3
        .iter()
        .find(|r| r["kind"] == "admin_role_via_saml")
        .expect("the SAML start's row");
    assert_eq!(saml["actions"], "ec2:RunInstances×1; iam:CreateUser×1");
    let calls = saml["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    let refused = calls
        .iter()
        .find(|c| c["action"] == "ec2:RunInstances")
        .unwrap();
    assert_eq!(refused["error"], "Client.UnauthorizedOperation");
    assert_eq!(refused["event_id"], "1a4debbb-12e9-4bde-b8c7-ea29002bb2a7");
    let unseen = from_s3
        .iter()
        .find(|r| r["kind"] == "admin_session")
        .expect("the unseen session's row");
    assert_eq!(unseen["actions"], "iam:CreateUser×1");
    // The CSV has the column.
    let csv = audit_cli_with(&sandbox, &["--since", "1d", "--from", "slack"], &[]).await;
    let text = String::from_utf8_lossy(&csv.stdout);
    assert!(text.lines().next().unwrap().ends_with(",actions"), "{text}");
    assert!(
        text.contains("ec2:RunInstances×1; iam:CreateUser×1"),
        "{text}"
    );
}

/// An admin session's other writes come by the activity rule: one that another kind's rule
/// would decide by a deployment fact (an assignment of a permission set that is not an admin
/// one) is the session's activity, not that kind — the function checks the permission set
/// against `ADMIN_PERMISSION_SET_ARNS` as the deployed rule does.
#[tokio::test]
async fn an_admin_sessions_assignment_of_another_permission_set_is_only_activity() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    let mut call = fixture("ignored-identity-center-other-assignment.json");
    call["detail"]["userIdentity"] =
        fixture("session-unseen-start-create-user.json")["detail"]["userIdentity"].clone();
    let c = counted(handle(&app, &call, deadline(10)).await.unwrap());
    assert!(c.opened && c.counted, "{c:?}");
    let notices = sandbox.top_level(DEMO_CHANNEL);
    assert_eq!(payload(&notices[0])["kind"], "admin_session");
    // The admin set assigned in the same session is the grant it is.
    let mut admin = fixture("identity-center-admin-assignment.json");
    admin["detail"]["userIdentity"] = call["detail"]["userIdentity"].clone();
    let outcome = handle(&app, &admin, deadline(10)).await.unwrap();
    assert!(matches!(outcome, Outcome::Delivered(_)), "{outcome:?}");
}

/// A session whose line Slack refuses for good (deleted, the channel archived) ends there: the
/// catch-up and the session's later calls go on (its calls stay in the archive), and a refusal
/// that outlasts every retry leaves the session marked for the catch-up instead of behind for
/// ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_slack_refuses_for_good_does_not_hold_up_the_catch_up() {
    use slack_sandbox::Fault;
    let Some(url) = moto_url("an activity line refused for good") else {
        return;
    };
    let client = s3(&url);
    let name = bucket(&client, "privwatch-activity-gone").await;
    let sandbox = sandbox().await;
    let mut app = app_for(&sandbox);
    app.archive = Some(Archive::new(client.clone(), &name));
    handle(
        &app,
        &fixture("saml-google-workspace-admin.json"),
        deadline(10),
    )
    .await
    .unwrap();
    handle(
        &app,
        &fixture("session-saml-create-user.json"),
        deadline(10),
    )
    .await
    .unwrap();
    // The next call comes within Slack's pace: counted in S3, marked for the catch-up.
    handle(
        &app,
        &fixture("session-saml-run-instances-refused.json"),
        deadline(10),
    )
    .await
    .unwrap();
    let markers = |client: aws_sdk_s3::Client, name: String| async move {
        client
            .list_objects_v2()
            .bucket(&name)
            .prefix("behind/session-")
            .send()
            .await
            .unwrap()
            .key_count()
            .unwrap_or(0)
    };
    assert_eq!(markers(client.clone(), name.clone()).await, 1);
    script(
        &sandbox,
        "chat.update",
        None,
        Fault::SlackError {
            code: "message_not_found".into(),
        },
        20,
    );
    catch_up(&app).await;
    assert_eq!(
        markers(client.clone(), name.clone()).await,
        0,
        "the catch-up moved on"
    );
    // The session's later calls are counted (archive) and do not fail.
    let mut later = fixture("session-saml-create-user.json");
    later["detail"]["eventID"] = Value::from("after-the-line-went");
    assert!(handle(&app, &later, deadline(10)).await.is_ok());
}

/// The root user's console session: its calls join the root sign-in's thread in its activity
/// line, instead of a line each; a root access key's call (no session) is a use as before.
#[tokio::test]
async fn root_console_calls_join_the_root_sign_in_as_its_activity_line() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    let sign_in = handle(&app, &fixture("root-signin-success-mfa.json"), deadline(10))
        .await
        .unwrap();
    assert!(matches!(sign_in, Outcome::Delivered(_)), "{sign_in:?}");
    for delivery in 0..2 {
        let c = counted(
            handle(
                &app,
                &fixture("session-root-create-user.json"),
                deadline(10),
            )
            .await
            .unwrap(),
        );
        assert!(!c.opened && c.counted == (delivery == 0), "{c:?}");
    }
    let notices = sandbox.top_level(DEMO_CHANNEL);
    assert_eq!(notices.len(), 1);
    let lines = activity_lines(&sandbox, &notices[0].ts);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].text.contains("`iam:CreateUser` ×1"),
        "{}",
        lines[0].text
    );
    assert_eq!(
        replies(&sandbox, &notices[0].ts).len(),
        2,
        "the ask and the activity line"
    );
    // A root access key's call has no session: a use of its own kind, as before.
    let mut key_call = fixture("session-root-create-user.json");
    key_call["detail"]["eventID"] = Value::from("root-key-call");
    key_call["detail"]["userIdentity"] = serde_json::json!({"type": "Root",
        "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333",
        "accessKeyId": "AKIAEXAMPLEROOTKEY1"});
    let outcome = handle(&app, &key_call, deadline(10)).await.unwrap();
    assert!(matches!(outcome, Outcome::Delivered(_)), "{outcome:?}");
}
