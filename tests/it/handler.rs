//! The real handler against the Slack sandbox: what gets posted for each fixture, and nothing
//! else.

use crate::support::*;
use privwatch::{handle, Error, Outcome};
use slack_sandbox::{Fault, FaultPlan, ScriptedFault, DEMO_CHANNEL};

#[tokio::test]
async fn each_privileged_fixture_gives_one_notice_and_one_threaded_mention() {
    for expected in privileged() {
        let sandbox = sandbox().await;
        let app = app_for(&sandbox);
        let outcome = handle(&app, &fixture(&expected.file), deadline(10))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", expected.file));
        assert!(
            matches!(outcome, Outcome::Delivered(_)),
            "{}: {outcome:?}",
            expected.file
        );

        let notices = sandbox.top_level(DEMO_CHANNEL);
        assert_eq!(notices.len(), 1, "{}: one notice", expected.file);
        let notice = &notices[0];
        let metadata = notice.metadata.as_ref().expect("notice metadata");
        assert_eq!(metadata["event_type"], "privileged_use");
        assert_eq!(
            metadata["event_payload"]["kind"],
            expected.kind.clone().unwrap(),
            "{}",
            expected.file
        );
        assert!(
            notice.blocks.is_some(),
            "{}: Block Kit notice",
            expected.file
        );

        let thread = replies(&sandbox, &notice.ts);
        assert_eq!(
            thread.len(),
            1,
            "{}: one reply in the notice's thread",
            expected.file
        );
        let mention = expected.mention.clone().unwrap();
        assert!(
            thread[0].text.starts_with(&format!("{mention} ")),
            "{}: reply should mention {mention}: {}",
            expected.file,
            thread[0].text
        );
        assert!(thread[0].text.contains("ticket URL"), "{}", thread[0].text);

        for text in all_texts(notice) {
            let bad = unexpected_markup(&text, &[]);
            assert!(
                bad.is_empty(),
                "{}: live markup {bad:?} in notice text {text}",
                expected.file
            );
        }
        // A critical kind also mentions the escalation contact at once.
        let chosen: Vec<&str> = mention.split(' ').collect();
        let bad = unexpected_markup(&thread[0].text, &chosen);
        assert!(
            bad.is_empty(),
            "{}: live markup {bad:?} in reply",
            expected.file
        );
    }
}

#[tokio::test]
async fn ignored_fixtures_make_no_slack_call() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    let mut ignored = 0;
    for expected in expectations()
        .into_iter()
        .filter(Expected::ignored_by_function)
    {
        let outcome = handle(&app, &fixture(&expected.file), deadline(10))
            .await
            .unwrap();
        assert!(
            matches!(outcome, Outcome::Ignored(_)),
            "{}: {outcome:?}",
            expected.file
        );
        ignored += 1;
    }
    assert!(ignored >= 3);
    assert_eq!(sandbox.calls(), vec![], "no Slack call for ignored events");
}

#[tokio::test]
async fn malformed_events_fail_clearly_and_post_nothing() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    for (name, bytes) in malformed() {
        // Not JSON at all never reaches the handler: the runtime rejects it (see bootstrap.rs).
        let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let error = handle(&app, &payload, deadline(10)).await.expect_err(&name);
        assert!(matches!(error, Error::Parse(_)), "{name}: {error}");
        assert!(error.to_string().contains("EventBridge"), "{name}: {error}");
    }
    assert_eq!(sandbox.calls(), vec![]);
    // The same App goes on to handle the next event.
    let outcome = handle(&app, &fixture("root-signin-success-mfa.json"), deadline(10))
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Delivered(_)));
}

#[tokio::test]
async fn redelivery_of_the_same_event_posts_nothing_new() {
    let s = Scenario::new().await;
    for _ in 0..3 {
        s.deliver_fixture("saml-google-workspace-admin.json")
            .await
            .unwrap();
    }
    assert_eq!(s.notices().len(), 1);
    assert_eq!(s.lines(&s.notices()[0].ts).len(), 1);
    assert_eq!(s.posts(), 2, "one notice and one reply in all");
}

#[tokio::test]
async fn a_failed_reply_is_completed_on_retry_without_a_second_notice() {
    let s = Scenario::new().await;
    s.sandbox
        .set_faults(FaultPlan::scripted(vec![ScriptedFault {
            method: "chat.postMessage".into(),
            thread_reply: Some(true),
            fault: Fault::SlackError {
                code: "channel_not_found".into(),
            },
            times: 1,
        }]));
    let error = s
        .deliver_fixture("root-signin-failure.json")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("channel_not_found"), "{error}");
    assert_eq!(s.notices().len(), 1);

    let outcome = s.deliver_fixture("root-signin-failure.json").await.unwrap();
    let Outcome::Delivered(d) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(d.notice_existed && !d.reply_existed);
    assert_eq!(s.notices().len(), 1, "no second notice");
    assert_eq!(s.lines(&s.notices()[0].ts).len(), 1, "the reply was added");
    assert_eq!(s.posts(), 2, "the notice once, the reply once");
}

#[tokio::test]
async fn a_reply_whose_answer_was_lost_is_not_posted_twice() {
    let s = Scenario::new().await;
    // Slack carries the reply out, but the answer never arrives.
    s.sandbox
        .set_faults(FaultPlan::scripted(vec![ScriptedFault {
            method: "chat.postMessage".into(),
            thread_reply: Some(true),
            fault: Fault::DropAfter,
            times: 1,
        }]));
    s.deliver_fixture("assume-role-admin.json").await.unwrap();
    assert_eq!(s.notices().len(), 1);
    assert_eq!(s.lines(&s.notices()[0].ts).len(), 1);
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_honouring_retry_after() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    sandbox.set_faults(FaultPlan::scripted(vec![
        ScriptedFault {
            method: "conversations.history".into(),
            thread_reply: None,
            fault: Fault::ServerError { status: 503 },
            times: 1,
        },
        ScriptedFault {
            method: "chat.postMessage".into(),
            thread_reply: Some(false),
            fault: Fault::RateLimited {
                retry_after_secs: 1,
            },
            times: 1,
        },
    ]));
    let started = std::time::Instant::now();
    handle(&app, &fixture("root-create-access-key.json"), deadline(10))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "waited for Retry-After"
    );
    assert_eq!(sandbox.top_level(DEMO_CHANNEL).len(), 1);
    let calls = sandbox.calls();
    assert!(calls.iter().any(|c| c.status == 429));
    assert!(calls.iter().any(|c| c.status == 503));
}

/// A history read Slack keeps rate-limiting fails the invocation (Lambda retries it) with what
/// it most likely is: a distributed app under Slack's 2025 limit of one history read a minute.
#[tokio::test]
async fn a_sustained_rate_limit_on_history_says_install_as_an_internal_app() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    script(
        &sandbox,
        "conversations.history",
        None,
        Fault::RateLimited {
            retry_after_secs: 0,
        },
        100,
    );
    let error = handle(&app, &fixture("root-create-access-key.json"), deadline(10))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("internal app"), "{message}");
    assert_eq!(
        sandbox.top_level(DEMO_CHANNEL).len(),
        0,
        "nothing posted on a guess"
    );
}

#[tokio::test]
async fn permanent_refusals_fail_fast_with_what_to_do() {
    for (code, advice) in [
        ("channel_not_found", "SLACK_CHANNEL_ID"),
        ("not_in_channel", "/invite @privwatch"),
        ("missing_scope", "OAuth"),
    ] {
        let sandbox = sandbox().await;
        let app = app_for(&sandbox);
        sandbox.set_faults(FaultPlan::scripted(vec![ScriptedFault {
            method: "conversations.history".into(),
            thread_reply: None,
            fault: Fault::SlackError { code: code.into() },
            times: 100,
        }]));
        let started = std::time::Instant::now();
        let error = handle(&app, &fixture("root-signin-success-mfa.json"), deadline(30))
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(code) && message.contains(advice),
            "{message}"
        );
        assert_eq!(error.error_type(), "privwatch.SlackRefused");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "no retry storm"
        );
        let history_calls = sandbox
            .calls()
            .iter()
            .filter(|c| c.method == "conversations.history")
            .count();
        assert_eq!(history_calls, 1, "a permanent error is not retried");
        assert!(sandbox.top_level(DEMO_CHANNEL).is_empty());
    }
}

#[tokio::test]
async fn unreachable_slack_gives_up_within_the_deadline() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    sandbox.set_faults(FaultPlan::random(
        1.0,
        vec![Fault::ServerError { status: 500 }],
        3,
    ));
    let started = std::time::Instant::now();
    let error = handle(&app, &fixture("root-signin-success-mfa.json"), deadline(3))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "privwatch.SlackUnavailable", "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert!(sandbox.top_level(DEMO_CHANNEL).is_empty());
}

#[tokio::test]
async fn a_person_not_in_slack_gets_the_fallback_mention() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    handle(
        &app,
        &fixture("saml-unknown-person-admin.json"),
        deadline(10),
    )
    .await
    .unwrap();
    let notice = &sandbox.top_level(DEMO_CHANNEL)[0];
    assert!(replies(&sandbox, &notice.ts)[0]
        .text
        .starts_with("<!here> "));
    let lookups: Vec<_> = sandbox
        .calls()
        .into_iter()
        .filter(|c| c.method == "users.lookupByEmail")
        .collect();
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].error.as_deref(), Some("users_not_found"));
}

/// `make smoke`'s test event: one test notice that says so, asks no one, is posted once (a retry
/// finds it by its nonce), is never chased and never exported.
#[tokio::test]
async fn the_smoke_test_event_posts_one_test_notice_that_nobody_is_asked_about() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    let event = serde_json::json!({
        "version": "0", "id": "smoke-1", "detail-type": "privwatch smoke test",
        "source": "privwatch.smoke", "account": "111122223333", "time": "2026-12-03T10:00:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {"nonce": "n-123", "channel": DEMO_CHANNEL}
    });
    let Outcome::Smoke(ts) = handle(&app, &event, deadline(10)).await.unwrap() else {
        panic!()
    };
    let Outcome::Smoke(again) = handle(&app, &event, deadline(10)).await.unwrap() else {
        panic!()
    };
    assert_eq!(ts, again, "a retry finds the notice");
    let messages = sandbox.top_level(DEMO_CHANNEL);
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].text.contains("smoke test"),
        "{}",
        messages[0].text
    );
    assert!(
        sandbox.thread(DEMO_CHANNEL, &messages[0].ts).is_empty(),
        "no one is asked"
    );
    sandbox.age_messages(3 * 3600);
    let Outcome::Swept(report) = handle(&app, &fixture("schedule/sweep.json"), deadline(10))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!((report.looked_at, report.escalated), (0, 0), "never chased");
    let out = audit_cli(&sandbox, &["--since", "1d", "--format", "json"]).await;
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 0, "never exported");
    // Not ours to post: a nonce that is not one, a channel that is not ours.
    let mut bad = event.clone();
    bad["detail"]["nonce"] = serde_json::json!("<!channel>");
    assert!(!matches!(
        handle(&app, &bad, deadline(10)).await,
        Ok(Outcome::Smoke(_))
    ));
}
