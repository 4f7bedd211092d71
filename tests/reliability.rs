//! Reliability under faults: many privileged events against a Slack that fails at random, each
//! failed invocation replayed the way Lambda's async retries do. Nothing lost, nothing doubled.

mod common;

use common::*;
use privwatch::metadata::{
    payload_of, LinePayload, NoticePayload, LINE_EVENT_TYPE, NOTICE_EVENT_TYPE,
};
use privwatch::{handle, Outcome};
use serde_json::Value;
use slack_sandbox::{Fault, FaultPlan, DEMO_CHANNEL};
use std::collections::HashMap;
use std::time::Duration;

/// Lambda's asynchronous invocation: the first attempt and up to 2 retries.
const ATTEMPTS: usize = 3;
const EVENTS: usize = 60;

/// `EVENTS` distinct privileged events, made from the privileged fixtures with new event IDs.
fn many_events() -> Vec<Value> {
    let bases: Vec<Value> = privileged().iter().map(|e| fixture(&e.file)).collect();
    (0..EVENTS)
        .map(|i| {
            let mut event = bases[i % bases.len()].clone();
            event["detail"]["eventID"] =
                Value::String(format!("soak-{i:04}-0000-4000-8000-000000000000"));
            if event["detail"].get("sharedEventID").is_some() {
                // One call's two records share one; copies of a record are separate calls.
                event["detail"]["sharedEventID"] = Value::String(format!("soak-shared-{i:04}"));
            }
            event
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_lose_nothing_and_double_nothing() {
    soak(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_lose_nothing_and_double_nothing_without_coalescing() {
    soak(false).await;
}

async fn soak(coalescing: bool) {
    let sandbox = sandbox().await;
    let mut app = app_for(&sandbox);
    if !coalescing {
        app.config.coalesce_window = Duration::ZERO;
    }
    sandbox.set_faults(FaultPlan::random(
        0.3,
        vec![
            Fault::ServerError { status: 503 },
            Fault::ServerError { status: 500 },
            Fault::RateLimited {
                retry_after_secs: 1,
            },
            Fault::DropBefore,
            Fault::DropAfter,
            // Answers that come after the client gave up (1.5 s request timeout here).
            Fault::SlowAfter { millis: 1_700 },
            Fault::SlackError {
                code: "internal_error".into(),
            },
            // Writes carried out only after the client gave up (they land 1.8 s after sending;
            // the test's settle time is 2.5 s).
            Fault::LandLate { millis: 1_800 },
        ],
        20261129,
    ));

    let events = many_events();
    let mut dead_lettered = Vec::new();
    let mut attempts_used = 0;
    for (i, event) in events.iter().enumerate() {
        // Another Slack app in the channel claims every fifth event with privwatch's metadata.
        if i % 5 == 0 {
            let id = event["detail"]["eventID"].clone();
            sandbox.post_as_app(
                DEMO_CHANNEL,
                "U0OTHERAPP",
                "not privwatch",
                Some(serde_json::json!({"event_type": "privileged_use",
                    "event_payload": {"event_id": id, "event_ids": [{"id": id}], "count": 1}})),
                None,
            );
        }
        let mut delivered = false;
        let mut last_error = None;
        for attempt in 0..ATTEMPTS {
            attempts_used += 1;
            if attempt > 0 {
                // Lambda retries a failed async invocation a minute or more later: after any
                // write of the failed attempt has settled (scaled down here).
                tokio::time::sleep(app.slack.write_settle()).await;
            }
            // A short deadline, so slow answers also run into it: twice the settle time, as in
            // production (60 s function timeout, 30 s settle), scaled down.
            let deadline = tokio::time::Instant::now() + 2 * app.slack.write_settle();
            match handle(&app, event, deadline).await {
                Ok(Outcome::Delivered(_)) => {
                    delivered = true;
                    break;
                }
                Ok(other) => panic!("unexpected outcome {other:?}"),
                Err(e) => last_error = Some(e.to_string()),
            }
        }
        if !delivered {
            let id = event["detail"]["eventID"].as_str().unwrap().to_string();
            println!("to the on-failure destination: {id}: {last_error:?}");
            dead_lettered.push(id);
        }
    }
    // Let late writes land before counting.
    tokio::time::sleep(app.slack.write_settle()).await;

    // Per event ID: held by exactly one notice, and exactly one line in that notice's thread
    // (same-person events within the coalescing window share a notice: that is by design).
    let messages = sandbox.messages(DEMO_CHANNEL);
    let mut holders: HashMap<String, Vec<String>> = HashMap::new();
    let mut lines: HashMap<String, usize> = HashMap::new();
    // privwatch's own messages only: the other app's claims count for nothing.
    for m in messages
        .iter()
        .filter(|m| m.user == slack_sandbox::BOT_USER_ID)
    {
        let raw = serde_json::json!({"metadata": m.metadata});
        if let Some(notice) = payload_of::<NoticePayload>(&raw, NOTICE_EVENT_TYPE) {
            for id in &notice.event_ids {
                holders.entry(id.clone()).or_default().push(m.ts.clone());
            }
        }
        if let Some(line) = payload_of::<LinePayload>(&raw, LINE_EVENT_TYPE) {
            *lines.entry(line.event_id).or_default() += 1;
        }
    }
    let mut lost = 0;
    let mut duplicated = 0;
    for event in &events {
        let id = event["detail"]["eventID"].as_str().unwrap();
        let is_dead_lettered = dead_lettered.iter().any(|d| d == id);
        let held = holders.get(id).map_or(0, Vec::len);
        let lined = lines.get(id).copied().unwrap_or(0);
        if held > 1 || lined > 1 {
            duplicated += 1;
        }
        if (held == 0 || lined == 0) && !is_dead_lettered {
            lost += 1;
        }
    }
    let notices = messages
        .iter()
        .filter(|m| m.thread_ts.is_none() && m.user == slack_sandbox::BOT_USER_ID)
        .count();
    let faults = sandbox.calls().iter().filter(|c| c.fault.is_some()).count();
    let calls = sandbox.calls().len();
    println!(
        "fault soak (coalescing {}): {} events ({} notices), {} Slack calls, {} faults injected, {} invocations, {} lost, {} duplicated, {} to the on-failure destination",
        if coalescing { "on" } else { "off" },
        events.len(),
        notices,
        calls,
        faults,
        attempts_used,
        lost,
        duplicated,
        dead_lettered.len()
    );
    assert!(
        faults as f64 >= 0.2 * calls as f64,
        "faults were injected ({faults} of {calls})"
    );
    assert_eq!(lost, 0, "no event lost");
    assert_eq!(duplicated, 0, "no notice or reply duplicated");
    assert!(
        dead_lettered.len() <= events.len() / 10,
        "most events get through: {dead_lettered:?}"
    );
}
