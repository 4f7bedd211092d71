//! PURE. Every word privwatch posts (in `en` and `ja`, [`wording`]) and every Block Kit shape
//! ([`render`]), the metadata that makes a message privwatch's ([`metadata`]), escaping
//! ([`mrkdwn`]), what a thread must hold to count as justified ([`justification`]), the Justify
//! modal ([`justify`]) and the hub's coverage messages ([`coverage`]).
//! Nothing here touches the network.

pub mod coverage;
pub mod justification;
pub mod justify;
pub mod metadata;
pub mod mrkdwn;
pub mod render;
pub mod wording;

/// Every message and modal privwatch can post, rendered in `ja`: no English sentence is left.
#[cfg(test)]
mod japanese {
    use crate::event::kind::Kind;
    use crate::event::{Identity, PrivilegedUse};
    use crate::message::coverage::{
        render_back, render_coverage, render_silence, Silence, Silent, SpokeLine,
    };
    use crate::message::justification::Missing;
    use crate::message::justify::{render_justification, render_modal};
    use crate::message::render::*;
    use crate::message::wording::{Heard, Lang, Series, Shown, Wording};
    use serde_json::{json, Value};

    fn a_use(kind: Kind, failed: bool) -> PrivilegedUse {
        PrivilegedUse {
            kind,
            event_id: "e-1".into(),
            account_id: "111122223333".into(),
            identity: Identity::Person {
                email: "taro@example.jp".into(),
            },
            role_arn: Some("arn:aws:iam::111122223333:role/Admin".into()),
            permission_set: Some("AdministratorAccess".into()),
            event_name: Some("StopLogging".into()),
            source_ip: Some("192.0.2.1".into()),
            user_agent: Some("aws-cli/2.15.0".into()),
            mfa_used: Some(false),
            region: Some("ap-northeast-1".into()),
            time: chrono::DateTime::from_timestamp(1_764_000_000, 0),
            failure: failed.then(|| "AccessDenied".into()),
            target: Some("main-trail".into()),
            target_account: Some("222222222222".into()),
            task: Some("S3UnlockBucketPolicy".into()),
            provider: Some("token.actions.githubusercontent.com".into()),
            switched_from: Some("arn:aws:iam::444455556666:user/taro".into()),
            other_account: Some("444455556666".into()),
            shared_event_id: None,
            centralized_root: false,
            session_key: Some("ASIAEXAMPLE".into()),
            session: None,
        }
    }

    /// Every text a person reads in a Block Kit value (or a message body).
    fn texts(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| texts(v, out)),
            Value::Object(map) => {
                for (key, v) in map {
                    // Identifiers and metadata are not read by people.
                    let read = !matches!(
                        key.as_str(),
                        "metadata"
                            | "private_metadata"
                            | "block_id"
                            | "action_id"
                            | "callback_id"
                            | "type"
                            | "channel"
                            | "ts"
                            | "thread_ts"
                            | "value"
                            | "style"
                    );
                    if read {
                        texts(v, out);
                    }
                }
            }
            _ => {}
        }
    }

    /// English words left in `text`, once what is not prose is taken out: markup (`<…>`,
    /// `` `…` ``, `:emoji:`), identifiers and values (any token with `/ . : @ = - _` or a digit),
    /// and the names of things that are the same in both languages.
    fn english_words(text: &str) -> Vec<String> {
        const NAMES: &[&str] = &[
            "privwatch",
            "AWS",
            "MFA",
            "ID",
            "IP",
            "URL",
            "OIDC",
            "SAML",
            "IAM",
            "Slack",
            "root",
            "Admin",
        ];
        // Product names are the same in both languages.
        const PRODUCTS: &[&str] = &["AWS Config", "Security Hub", "IAM Identity Center"];
        let code = regex::Regex::new(r"`[^`]*`|<[^>]*>|(^|\s):[a-z0-9_+-]+:").expect("a regex");
        let mut prose = code.replace_all(text, " ").into_owned();
        for product in PRODUCTS {
            prose = prose.replace(product, " ");
        }
        prose
            .split(|c: char| c.is_whitespace() || "()[]（）「」、。,*>—·×|".contains(c))
            .filter(|t| !t.is_empty())
            .filter(|t| !t.contains(|c: char| "/.:@=-_".contains(c) || c.is_ascii_digit()))
            // CamelCase is an identifier (an error code, a policy name), not prose.
            .filter(|t| !t.chars().skip(1).any(|c| c.is_ascii_uppercase()))
            .flat_map(|t| t.split(|c: char| !c.is_ascii_alphabetic()))
            .filter(|w| w.len() >= 2 && !NAMES.contains(w))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_message_and_the_modal_are_japanese_in_ja() {
        let wording = Wording {
            lang: Lang::Ja,
            account_name: Some("本番".into()),
            justify_button: true,
            critical_mention: Some("<!subteam^S0SEC>".into()),
            ..Wording::default()
        };
        let mut rendered: Vec<(String, Value)> = Vec::new();
        for kind in Kind::ALL {
            for failed in [false, true] {
                let u = a_use(kind, failed);
                let name = format!("{}{}", kind.as_str(), if failed { " failed" } else { "" });
                let notice = render_notice(&u, &wording);
                rendered.push((format!("notice {name}"), notice.to_post_body("C1", None)));
                let mention = Mention::User("U1".into());
                let reply = render_reply(&u, &mention, &wording).to_post_body("C1", None);
                rendered.push((format!("ask {name}"), reply));
                let line = render_repeat_line(&u, &wording).to_post_body("C1", None);
                rendered.push((format!("line {name}"), line));
                let payload = notice_payload(&u);
                let existing = notice.to_post_body("C1", None);
                for shown in [Shown::EveryLine, Shown::Summed] {
                    let update = render_count_update("C1", &existing, &payload, shown, &wording);
                    rendered.push((format!("count {name}"), update));
                }
                let twin = render_twin_update("C1", &existing, &payload, &u, &wording);
                rendered.push((format!("twin {name}"), twin));
                let escalation = render_escalation(&payload, "<!here>", 30, &wording);
                rendered.push(("escalation".into(), escalation.to_post_body("C1", None)));
            }
        }
        let mention = Mention::User("U1".into());
        for missing in [Missing::TicketUrl, Missing::Purpose] {
            let ask = render_ticket_ask(&mention, missing, &wording);
            rendered.push(("ticket ask".into(), ask.to_post_body("C1", None)));
        }
        rendered.push((
            "late ask".into(),
            render_late_ask(&mention, &wording).to_post_body("C1", None),
        ));
        let tally = [("root_sign_in".to_string(), 3)];
        let series = Series {
            count: 40,
            lines: 3,
            first: 1_764_000_000,
            last: 1_764_003_600,
            kinds: &tally,
            source_ips: &[("192.0.2.1".to_string(), 40)],
            user_agents: &[("aws-cli/2.15.0".to_string(), 40)],
        };
        rendered.push((
            "series summary".into(),
            render_rolling(&series, &wording).to_post_body("C1", None),
        ));
        rendered.push(("smoke".into(), json!(wording.smoke("111122223333"))));
        let spokes = [Heard::Yes, Heard::NotYet, Heard::Silent].map(|heard| SpokeLine {
            account: "111122223333",
            region: "ap-northeast-1",
            heard,
            last: 1_764_000_000,
            trail: 1_764_000_060,
        });
        let interval = std::time::Duration::from_secs(600);
        rendered.push((
            "coverage".into(),
            render_coverage("C1", None, &spokes, json!({}), &wording, interval),
        ));
        for (never_heard, what) in [
            (false, Silence::Everything),
            (true, Silence::Everything),
            (false, Silence::Trail),
            (false, Silence::Schedule),
        ] {
            let spoke = Silent {
                account: "111122223333".into(),
                region: "ap-northeast-1".into(),
                since: 1_764_000_000,
                never_heard,
                what,
            };
            let alert = render_silence("C1", "<!here>", &spoke, json!({}), &wording);
            rendered.push(("silence".into(), alert));
        }
        let back = render_back(
            "C1",
            "1.2",
            "111122223333",
            "ap-northeast-1",
            json!({}),
            &wording,
        );
        rendered.push(("back".into(), back));
        let mut activity = crate::message::metadata::ActivityPayload::default();
        for (i, (action, error)) in [
            ("iam:CreateUser", None),
            (
                "ec2:TerminateInstances",
                Some("Client.UnauthorizedOperation"),
            ),
            ("s3:PutBucketPolicy", Some("NoSuchBucket")),
        ]
        .into_iter()
        .enumerate()
        {
            activity.add(
                &crate::event::session::Call {
                    event_id: format!("e{i}"),
                    action: action.into(),
                    resources: vec!["arn:aws:iam::111122223333:user/mallory".into()],
                    error: error.map(str::to_string),
                    time: 1_764_000_000 + i as i64,
                },
                10,
            );
        }
        rendered.push((
            "activity".into(),
            json!(crate::message::render::render_activity_line(&activity, &wording).text),
        ));
        rendered.push(("activity count".into(), json!(wording.activity_count(3))));
        for tracker in [false, true] {
            rendered.push(("modal".into(), render_modal("C1", "1.2", &wording, tracker)));
            let words = wording.modal(tracker);
            let errors = json!([words.purpose_missing, words.ticket_invalid]);
            rendered.push(("modal errors".into(), errors));
        }
        for (asked, group) in [
            (Some("U1"), Some("S1")),
            (Some("U1"), None),
            (None, Some("S1")),
            (None, None),
        ] {
            let only = wording.only_they_justify(asked, group);
            rendered.push(("only they justify".into(), json!(only)));
        }
        let justified =
            render_justification("C1", "1.2", "U1", "障害対応", "https://t/1", &wording);
        rendered.push(("justification".into(), justified));

        let mut english = Vec::new();
        for (name, value) in &rendered {
            let mut all = Vec::new();
            texts(value, &mut all);
            for text in all {
                let words = english_words(&text);
                if !words.is_empty() {
                    english.push(format!("{name}: {words:?} in {text:?}"));
                }
            }
        }
        english.dedup();
        assert!(english.is_empty(), "English in ja:\n{}", english.join("\n"));
        assert!(rendered.len() > 60, "{} messages rendered", rendered.len());
    }
}
