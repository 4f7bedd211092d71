//! Property tests (proptest, stable Rust) over the parser and the renderer: for any input, no
//! panic, and the escaping invariant holds. Each property reports how many inputs it ran.

use crate::support::{texts_in, unexpected_markup};
use privwatch::event::{self, Classified};
use privwatch::message::mrkdwn::escape;
use privwatch::message::render::{render_notice, render_reply, Mention};
use privwatch::message::wording::{Lang, Wording};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};

/// Inputs per property in `make test`; `make unit` (the inner loop) sets fewer with
/// `PRIVWATCH_PROPERTY_CASES`.
const CASES: u32 = 3_000;

fn cases() -> u32 {
    std::env::var("PRIVWATCH_PROPERTY_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES)
}

/// Strings rich in what matters to Slack: markup characters, entities, mentions, controls.
fn nasty_string() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("<".to_string()),
        Just(">".to_string()),
        Just("&".to_string()),
        Just("&lt;".to_string()),
        Just("<!channel>".to_string()),
        Just("<!here>".to_string()),
        Just("<@U01ALICE>".to_string()),
        Just("<https://evil.example|x>".to_string()),
        Just("@here".to_string()),
        Just("@".to_string()),
        Just("|".to_string()),
        Just("\u{202e}".to_string()),
        Just("\n".to_string()),
        Just("a@b.co".to_string()),
        "\\PC{0,8}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(pieces, 0..24).prop_map(|v| v.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        nasty_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((nasty_string(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// A CloudTrail detail with the fields privwatch reads set to arbitrary values.
fn detail() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just(json!("Root")), Just(json!("SAMLUser")), Just(json!("AssumedRole")), json_value()],
        prop_oneof![Just(json!("AssumeRoleWithSAML")), Just(json!("AssumeRole")), Just(json!("ConsoleLogin")), json_value()],
        json_value(),
        json_value(),
        json_value(),
        json_value(),
        json_value(),
        json_value(),
    )
        .prop_map(|(kind, name, agent, user, session, role, error, event_id)| {
            json!({
                "userIdentity": {"type": kind, "userName": user, "principalId": session.clone(), "arn": role.clone()},
                "eventSource": "sts.amazonaws.com",
                "eventName": name,
                "userAgent": agent,
                "sourceIPAddress": error.clone(),
                "errorMessage": error,
                "errorCode": user,
                "requestParameters": {"roleArn": role, "roleSessionName": session},
                "responseElements": {"ConsoleLogin": "Failure"},
                "additionalEventData": {"MFAUsed": "Yes"},
                "eventID": event_id,
                "eventTime": "2026-11-01T10:00:00Z",
                "awsRegion": "us-east-1",
            })
        })
}

fn run<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let cases = cases();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, test)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    println!("{name}: {cases} inputs ran, no failure");
}

#[test]
fn escaped_text_holds_no_markup() {
    run("escape", nasty_string(), |s| {
        let out = escape(&s);
        prop_assert!(!out.contains('<') && !out.contains('>'));
        prop_assert!(!out.chars().any(char::is_control));
        for (i, _) in out.match_indices('&') {
            let rest = &out[i..];
            prop_assert!(
                rest.starts_with("&amp;") || rest.starts_with("&lt;") || rest.starts_with("&gt;")
            );
        }
        prop_assert!(
            !out.contains("@here") && !out.contains("@channel") && !out.contains("@everyone")
        );
        Ok(())
    });
}

#[test]
fn any_event_parses_or_fails_cleanly_and_renders_without_live_markup() {
    let detail_types = prop_oneof![
        Just(event::SIGN_IN_DETAIL_TYPE.to_string()),
        Just(event::API_CALL_DETAIL_TYPE.to_string()),
        nasty_string(),
    ];
    run(
        "parse+classify+render",
        (detail_types, detail(), any::<bool>()),
        |(detail_type, detail, ja)| {
            let payload = json!({"version": "0", "id": "eb", "detail-type": detail_type, "source": "aws.sts",
                             "account": "111122223333", "region": "us-east-1", "time": "2026-11-01T10:00:00Z",
                             "resources": [], "detail": detail});
            let event = match event::parse(&payload) {
                Ok(e) => e,
                Err(_) => return Ok(()),
            };
            let Classified::Use(u) = event::classify(&event, &event::Deployment::default()) else {
                return Ok(());
            };
            let wording = Wording {
                lang: if ja { Lang::Ja } else { Lang::En },
                account_name: Some("<!here>".into()),
                critical_mention: Some("<!subteam^S1>".into()),
                account_names: vec![("111122223333".into(), "<!channel>".into())],
                justify_button: ja,
            };
            let notice = render_notice(&u, &wording);
            let mut texts = vec![notice.text.clone()];
            texts_in(notice.blocks.as_ref().unwrap(), &mut texts);
            for text in &texts {
                let live = unexpected_markup(text, &[]);
                prop_assert!(live.is_empty(), "live markup {:?} in {}", live, text);
            }
            let reply = render_reply(&u, &Mention::User("U01ALICE".into()), &wording);
            prop_assert!(unexpected_markup(&reply.text, &["<@U01ALICE>"]).is_empty());
            Ok(())
        },
    );
}
