//! Hostile and malformed records: whatever an attacker puts in the fields privwatch shows, no
//! panic, no live mention or link except the one privwatch chose, and messages Slack accepts.

use crate::support::*;
use privwatch::{handle, Outcome};
use serde_json::{json, Value};
use slack_sandbox::DEMO_CHANNEL;

fn hostile_values() -> Vec<Value> {
    let deep = (0..200).fold(json!("bottom"), |inner, _| json!({ "x": [inner] }));
    vec![
        json!("<!channel>"),
        json!("<!here> and <!everyone>"),
        json!("<@U01ALICE> <@W0123|someone>"),
        json!("<!subteam^S0SECURITY|@security>"),
        json!("<https://evil.example/login|Sign in again>"),
        json!("<mailto:x@evil.example|mail>"),
        json!("<#C0PRIVWATCH|general>"),
        json!("&lt;!channel&gt; &amp;lt;"),
        json!("@here @channel @everyone"),
        json!("a\u{0000}b\u{0007}c\u{001b}[31mred\r\nnext"),
        json!("\u{202e}txt.exe\u{2066}\u{200f}"),
        json!("\\xff\\xfe\\u0000 %00 %3C!channel%3E"),
        json!("\u{FFFD}\u{FEFF}日本語<!here>"),
        json!("*bold* _it_ ~strike~ `code` ```block```"),
        json!("x".repeat(100_000)),
        json!("<".repeat(50_000)),
        json!(12345),
        json!(true),
        json!(null),
        json!(["<!channel>"]),
        json!({"nested": "<!channel>"}),
        deep,
    ]
}

/// Places `value` into every field privwatch shows, in a copy of `base`.
fn with_hostile(base: &Value, value: &Value) -> Value {
    let mut event = base.clone();
    let detail = &mut event["detail"];
    detail["userAgent"] = value.clone();
    detail["sourceIPAddress"] = value.clone();
    detail["errorMessage"] = value.clone();
    detail["userIdentity"]["userName"] = value.clone();
    detail["userIdentity"]["principalId"] = value.clone();
    if detail["requestParameters"].is_object() {
        detail["requestParameters"]["roleSessionName"] = value.clone();
        // Only an admin role's ARN reaches privwatch (the rules match it): the hostile text rides
        // on one. A role ARN that is not a string matches no rule.
        if let Some(text) = value.as_str() {
            detail["requestParameters"]["roleArn"] = json!(format!(
                "arn:aws:iam::111122223333:role/AWSReservedSSO_AdministratorAccess_{text}"
            ));
        }
    }
    detail["awsRegion"] = value.clone();
    detail["additionalEventData"] = json!({"MFAUsed": value.clone()});
    event
}

#[tokio::test]
async fn hostile_fields_never_become_live_markup() {
    let bases = [
        "saml-google-workspace-admin.json",
        "root-signin-failure.json",
        "assume-role-admin.json",
    ];
    let mut cases = 0;
    for base_name in bases {
        let base = fixture(base_name);
        for (i, value) in hostile_values().iter().enumerate() {
            let sandbox = sandbox().await;
            let app = app_for(&sandbox);
            let mut event = with_hostile(&base, value);
            event["detail"]["eventID"] = json!(format!("hostile-{i}"));
            let outcome = handle(&app, &event, deadline(10))
                .await
                .unwrap_or_else(|e| panic!("{base_name} #{i}: {e}"));
            assert!(
                matches!(outcome, Outcome::Delivered(_)),
                "{base_name} #{i}: {outcome:?}"
            );

            let notices = sandbox.top_level(DEMO_CHANNEL);
            assert_eq!(notices.len(), 1, "{base_name} #{i}");
            let replies = replies(&sandbox, &notices[0].ts);
            assert_eq!(replies.len(), 1, "{base_name} #{i}");
            for text in all_texts(&notices[0]) {
                let live = unexpected_markup(&text, &[]);
                assert!(live.is_empty(), "{base_name} #{i}: live {live:?}");
                assert!(
                    !text.contains('\u{0000}') && !text.contains('\u{202e}'),
                    "{base_name} #{i}"
                );
            }
            assert!(
                notices[0].text.chars().count() <= 4_000,
                "{base_name} #{i}: fallback text too long"
            );
            let reply = &replies[0].text;
            let chosen = reply.split(' ').next().unwrap();
            assert!(
                chosen == "<!here>" || chosen.starts_with("<@U0"),
                "{base_name} #{i}: {chosen}"
            );
            assert!(
                unexpected_markup(reply, &[chosen]).is_empty(),
                "{base_name} #{i}: {reply}"
            );
            cases += 1;
        }
    }
    println!("hostile table: {cases} records, no live markup");
}
