//! The justification loop against the Slack sandbox: coalescing repeats into one thread,
//! chasing unanswered threads, and exporting the audit trail.

use crate::support::*;
use privwatch::message::metadata::{
    payload_of, LinePayload, NoticePayload, LINE_EVENT_TYPE, NOTICE_EVENT_TYPE,
};
use privwatch::{handle, Outcome};
use serde_json::{json, Value};
use slack_sandbox::{Sandbox, DEMO_CHANNEL};

fn notice_payloads(sandbox: &Sandbox) -> Vec<(String, NoticePayload)> {
    sandbox
        .top_level(DEMO_CHANNEL)
        .into_iter()
        .map(|m| {
            let raw = json!({"metadata": m.metadata});
            (
                m.ts.clone(),
                payload_of::<NoticePayload>(&raw, NOTICE_EVENT_TYPE).expect("notice metadata"),
            )
        })
        .collect()
}

fn line_ids(sandbox: &Sandbox, ts: &str) -> Vec<String> {
    replies(sandbox, ts)
        .into_iter()
        .filter_map(|m| {
            payload_of::<LinePayload>(&json!({"metadata": m.metadata}), LINE_EVENT_TYPE)
        })
        .map(|l| l.event_id)
        .collect()
}

/// Runs `privwatch audit --since 1d --format FORMAT` against the sandbox.
async fn audit(sandbox: &Sandbox, format: &str) -> std::process::Output {
    audit_cli(sandbox, &["--since", "1d", "--format", format]).await
}

fn sweep_event() -> Value {
    fixture("schedule/sweep.json")
}

#[tokio::test]
async fn a_burst_by_one_person_is_one_notice_with_every_event_in_its_thread() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    let ids: Vec<String> = (0..5).map(|i| format!("burst-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        handle(
            &app,
            &use_at("saml-google-workspace-admin.json", id, 2 + i as u32 * 3),
            deadline(10),
        )
        .await
        .unwrap();
    }
    // Redelivery of a coalesced event adds nothing.
    handle(
        &app,
        &use_at("saml-google-workspace-admin.json", &ids[3], 11),
        deadline(10),
    )
    .await
    .unwrap();

    let notices = notice_payloads(&sandbox);
    assert_eq!(notices.len(), 1, "one notice for one person");
    let (ts, payload) = &notices[0];
    assert_eq!(payload.count, 5);
    assert_eq!(payload.event_ids, ids);
    assert_eq!(payload.last_time - payload.event_time, 12 * 60);
    let mut in_thread = line_ids(&sandbox, ts);
    in_thread.sort();
    assert_eq!(in_thread, ids, "every event ID exactly once in the thread");
    let thread = replies(&sandbox, ts);
    assert!(
        thread[0].text.starts_with("<@U01ALICE> "),
        "the first line asks the person"
    );
    assert!(
        thread[1..].iter().all(|m| !m.text.contains("<@")),
        "repeat lines mention nobody"
    );
    let notice = &sandbox.top_level(DEMO_CHANNEL)[0];
    assert!(
        notice.edited && notice.text.ends_with("[×5]"),
        "{}",
        notice.text
    );
    assert!(all_texts(notice)
        .iter()
        .any(|t| t.contains("Used *5* times")));
}

#[tokio::test]
async fn other_people_accounts_and_times_get_their_own_notice() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    handle(
        &app,
        &use_at("saml-google-workspace-admin.json", "alice-1", 0),
        deadline(10),
    )
    .await
    .unwrap();
    handle(
        &app,
        &use_at("saml-identity-center-admin.json", "bob-1", 1),
        deadline(10),
    )
    .await
    .unwrap();
    let mut other_account = use_at("saml-google-workspace-admin.json", "alice-other-account", 2);
    other_account["account"] = json!("444455556666");
    handle(&app, &other_account, deadline(10)).await.unwrap();
    handle(
        &app,
        &use_at("saml-google-workspace-admin.json", "alice-later", 40),
        deadline(10),
    )
    .await
    .unwrap();
    assert_eq!(notice_payloads(&sandbox).len(), 4);
    for (ts, payload) in notice_payloads(&sandbox) {
        assert_eq!(payload.count, 1, "{}", payload.event_id);
        assert_eq!(line_ids(&sandbox, &ts), vec![payload.event_id.clone()]);
    }
}

#[tokio::test]
async fn root_activity_joins_the_root_sign_in_thread() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    handle(
        &app,
        &use_at("root-signin-success-mfa.json", "root-signin", 0),
        deadline(10),
    )
    .await
    .unwrap();
    let outcome = handle(
        &app,
        &use_at("root-create-access-key.json", "root-key", 2),
        deadline(10),
    )
    .await
    .unwrap();
    let Outcome::Delivered(d) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(d.coalesced);
    let notices = notice_payloads(&sandbox);
    assert_eq!(notices.len(), 1);
    assert_eq!(
        line_ids(&sandbox, &notices[0].0),
        vec!["root-signin", "root-key"]
    );
    let repeat = &replies(&sandbox, &notices[0].0)[1];
    assert!(repeat.text.contains("`CreateAccessKey`"), "{}", repeat.text);
}

#[tokio::test]
async fn an_unanswered_thread_is_escalated_exactly_once() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    handle(
        &app,
        &use_at("saml-identity-center-admin.json", "late-1", 0),
        deadline(10),
    )
    .await
    .unwrap();
    // Before the window: nothing to do.
    let Outcome::Swept(report) = handle(&app, &sweep_event(), deadline(10)).await.unwrap() else {
        panic!()
    };
    assert_eq!((report.escalated, report.justified), (0, 0));
    sandbox.age_messages(31 * 60);
    for _ in 0..2 {
        handle(&app, &sweep_event(), deadline(10)).await.unwrap();
    }
    let notice = &sandbox.top_level(DEMO_CHANNEL)[0];
    let escalations: Vec<_> = replies(&sandbox, &notice.ts)
        .into_iter()
        .filter(|m| {
            m.metadata
                .as_ref()
                .is_some_and(|md| md["event_type"] == "privileged_use_escalation")
        })
        .collect();
    assert_eq!(escalations.len(), 1, "one escalation after two sweeps");
    assert!(
        escalations[0].text.starts_with("<!here> "),
        "{}",
        escalations[0].text
    );
    let (_, payload) = &notice_payloads(&sandbox)[0];
    assert!(payload.escalated && !payload.justified);
}

#[tokio::test]
async fn an_answered_thread_is_marked_justified_and_not_escalated() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    handle(
        &app,
        &use_at("saml-google-workspace-admin.json", "answered-1", 0),
        deadline(10),
    )
    .await
    .unwrap();
    let ts = sandbox.top_level(DEMO_CHANNEL)[0].ts.clone();
    sandbox.post_as_user(
        DEMO_CHANNEL,
        "U01ALICE",
        "Rotating the KMS key, <https://tickets.example/SEC-42>",
        Some(&ts),
    );
    sandbox.age_messages(31 * 60);
    let Outcome::Swept(report) = handle(&app, &sweep_event(), deadline(10)).await.unwrap() else {
        panic!()
    };
    assert_eq!((report.justified, report.escalated), (1, 0));
    handle(&app, &sweep_event(), deadline(10)).await.unwrap();
    let notice = &sandbox.top_level(DEMO_CHANNEL)[0];
    assert_eq!(notice.reactions, vec!["white_check_mark".to_string()]);
    let (_, payload) = &notice_payloads(&sandbox)[0];
    assert!(payload.justified && !payload.escalated);
    assert!(replies(&sandbox, &notice.ts).iter().all(|m| m
        .metadata
        .as_ref()
        .is_none_or(|md| md["event_type"] != "privileged_use_escalation")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_gives_one_row_per_use_with_the_justification() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    handle(
        &app,
        &use_at("saml-google-workspace-admin.json", "exp-alice-1", 0),
        deadline(10),
    )
    .await
    .unwrap();
    handle(
        &app,
        &use_at("saml-google-workspace-admin.json", "exp-alice-2", 5),
        deadline(10),
    )
    .await
    .unwrap();
    handle(
        &app,
        &use_at("root-signin-failure.json", "exp-root", 20),
        deadline(10),
    )
    .await
    .unwrap();
    let alice_ts = sandbox.top_level(DEMO_CHANNEL)[0].ts.clone();
    sandbox.post_as_user(
        DEMO_CHANNEL,
        "U01ALICE",
        "Incident INC-7 \"fix\", see <https://tickets.example/INC-7|INC-7>",
        Some(&alice_ts),
    );

    // The same binary, outside Lambda: `privwatch audit --since 1d --format csv`.
    let output = audit(&sandbox, "csv").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("threads read: 2/2"),
        "progress on stderr: {stderr}"
    );
    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        privwatch::audit::COLUMNS.to_vec()
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3, "one row per privileged use");
    let get = |row: &csv::StringRecord, column: &str| {
        row[headers.iter().position(|h| h == column).unwrap()].to_string()
    };
    let ids: Vec<String> = rows.iter().map(|r| get(r, "event_id")).collect();
    assert_eq!(ids, vec!["exp-alice-1", "exp-alice-2", "exp-root"]);
    for row in &rows[..2] {
        assert_eq!(get(row, "principal"), "alice@example.com");
        assert_eq!(get(row, "justified"), "yes");
        assert_eq!(get(row, "justification"), "Incident INC-7 \"fix\", see");
        assert_eq!(get(row, "ticket_url"), "https://tickets.example/INC-7");
        assert_eq!(get(row, "replied_by"), "U01ALICE");
        assert!(get(row, "permalink").contains("/archives/C0PRIVWATCH/p"));
    }
    assert_eq!(get(&rows[0], "time"), "2026-11-01T10:00:00Z");
    assert_eq!(get(&rows[2], "kind"), "root_console_sign_in");
    assert_eq!(get(&rows[2], "justified"), "no");

    // JSON too.
    let json_out = audit(&sandbox, "json").await;
    let parsed: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_lost_escalation_is_posted_by_the_next_sweep_and_a_landed_one_is_not_repeated() {
    use slack_sandbox::{Fault, FaultPlan, ScriptedFault};
    for (fault, sweeps_until_posted) in [(Fault::DropBefore, 2), (Fault::DropAfter, 1)] {
        let sandbox = sandbox().await;
        let app = app_for(&sandbox);
        handle(
            &app,
            &use_at("saml-identity-center-admin.json", "lost-1", 0),
            deadline(10),
        )
        .await
        .unwrap();
        sandbox.age_messages(31 * 60);
        // The escalation reply's answer never arrives; with DropBefore it was not posted either.
        sandbox.set_faults(FaultPlan::scripted(vec![ScriptedFault {
            method: "chat.postMessage".into(),
            thread_reply: Some(true),
            fault: fault.clone(),
            times: 1,
        }]));
        let ts = sandbox.top_level(DEMO_CHANNEL)[0].ts.clone();
        let escalations = || {
            replies(&sandbox, &ts)
                .into_iter()
                .filter(|m| {
                    m.metadata
                        .as_ref()
                        .is_some_and(|md| md["event_type"] == "privileged_use_escalation")
                })
                .count()
        };
        handle(&app, &sweep_event(), deadline(10)).await.unwrap();
        let after_first = escalations();
        handle(&app, &sweep_event(), deadline(10)).await.unwrap();
        handle(&app, &sweep_event(), deadline(10)).await.unwrap();
        assert_eq!(
            escalations(),
            1,
            "{fault:?}: exactly one escalation in the end"
        );
        assert_eq!(
            after_first,
            usize::from(sweeps_until_posted == 1),
            "{fault:?}"
        );
        assert!(notice_payloads(&sandbox)[0].1.escalated, "{fault:?}");
    }
}

/// With `TICKET_URL_PATTERN`, "ok" or a link elsewhere is not a justification: the person is
/// asked once for the ticket URL, the chase goes on, and a reply with a ticket that matches
/// justifies the thread; the export carries the purpose and the ticket apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_justification_needs_a_ticket_url_of_the_pattern() {
    let sandbox = sandbox().await;
    let pattern = r"https://[a-z0-9-]+\.atlassian\.net/browse/[A-Z]+-[0-9]+";
    let token = privwatch::config::TokenSetting::Env(slack_sandbox::DEMO_TOKEN.to_string());
    let config = config_with(&sandbox, token.clone(), &[("TICKET_URL_PATTERN", pattern)]);
    let app = app_from(config, token, None);
    handle(
        &app,
        &use_at("saml-google-workspace-admin.json", "ticket-1", 0),
        deadline(10),
    )
    .await
    .unwrap();
    let ts = sandbox.top_level(DEMO_CHANNEL)[0].ts.clone();
    sandbox.post_as_user(DEMO_CHANNEL, "U01ALICE", "ok", Some(&ts));
    sandbox.post_as_user(
        DEMO_CHANNEL,
        "U01ALICE",
        "see <https://evil.example/browse/SEC-1>",
        Some(&ts),
    );
    sandbox.age_messages(31 * 60);
    for _ in 0..2 {
        let Outcome::Swept(report) = handle(&app, &sweep_event(), deadline(10)).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(report.justified, 0);
    }
    // (Aging moved every timestamp.)
    let ts = sandbox.top_level(DEMO_CHANNEL)[0].ts.clone();
    let asks: Vec<_> = replies(&sandbox, &ts)
        .into_iter()
        .filter(|m| {
            m.metadata
                .as_ref()
                .is_some_and(|md| md["event_type"] == "privileged_use_ticket_ask")
        })
        .collect();
    assert_eq!(asks.len(), 1, "asked once, not once per sweep");
    assert!(asks[0].text.starts_with("<@U01ALICE> "), "{}", asks[0].text);
    assert!(
        asks[0].text.contains("Please add the ticket URL"),
        "{}",
        asks[0].text
    );
    let (_, payload) = &notice_payloads(&sandbox)[0];
    assert!(payload.escalated, "the chase goes on");
    assert!(!payload.justified);

    sandbox.post_as_user(
        DEMO_CHANNEL,
        "U01ALICE",
        "Rotating the KMS key for SEC-42 <https://acme.atlassian.net/browse/SEC-42>",
        Some(&ts),
    );
    let Outcome::Swept(report) = handle(&app, &sweep_event(), deadline(10)).await.unwrap() else {
        panic!()
    };
    assert_eq!(report.justified, 1);
    let out = audit_cli_with(
        &sandbox,
        &["--since", "1d", "--format", "json"],
        &[("TICKET_URL_PATTERN", pattern)],
    )
    .await;
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["justified"], true);
    assert_eq!(
        rows[0]["ticket_url"],
        "https://acme.atlassian.net/browse/SEC-42"
    );
    assert_eq!(
        rows[0]["justification"],
        "ok / see / Rotating the KMS key for SEC-42"
    );
}

/// Slack could not say who the person is when the notice was posted (a 503 on
/// `users.lookupByEmail`, not "no such user"): the ask goes to the fallback at once, and the next
/// sweep asks the person, once. (Without the flag the person is never asked.)
#[tokio::test]
async fn a_person_slack_could_not_find_at_first_is_asked_by_the_sweep_once() {
    use slack_sandbox::{Fault, FaultPlan};
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    script(
        &sandbox,
        "users.lookupByEmail",
        None,
        Fault::ServerError { status: 503 },
        100,
    );
    let Outcome::Delivered(delivery) = handle(
        &app,
        &fixture("saml-google-workspace-admin.json"),
        deadline(10),
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert_eq!(delivery.mention, "unreached");
    sandbox.set_faults(FaultPlan::default());
    let ts = sandbox.top_level(DEMO_CHANNEL)[0].ts.clone();
    let first = &replies(&sandbox, &ts)[0];
    assert!(first.text.starts_with("<!here>"), "{}", first.text);

    let late_asks = || {
        replies(&sandbox, &ts)
            .iter()
            .filter(|m| m.text.starts_with("<@U01ALICE>") && m.text.contains("could not find you"))
            .count()
    };
    for round in 0..2 {
        let Outcome::Swept(report) = handle(&app, &fixture("schedule/sweep.json"), deadline(10))
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(report.asked_later, usize::from(round == 0), "round {round}");
        assert_eq!(late_asks(), 1, "round {round}");
    }
    let notice = &sandbox.top_level(DEMO_CHANNEL)[0];
    assert_eq!(
        notice.metadata.as_ref().unwrap()["event_payload"]["person_unasked"],
        false
    );
}

/// A person who is not in Slack at all gets the fallback, and nobody is asked again later.
#[tokio::test]
async fn a_person_not_in_slack_is_not_asked_again() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    let Outcome::Delivered(delivery) = handle(
        &app,
        &fixture("saml-unknown-person-admin.json"),
        deadline(10),
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert_eq!(delivery.mention, "fallback");
    let notice = &sandbox.top_level(DEMO_CHANNEL)[0];
    assert_eq!(
        notice.metadata.as_ref().unwrap()["event_payload"]["person_unasked"],
        false
    );
}
