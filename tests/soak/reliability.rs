//! Reliability under faults: many privileged events against a Slack that fails at random, each
//! failed invocation replayed the way Lambda's async retries do. Nothing lost, nothing doubled.

use crate::support::*;
use privwatch::message::metadata::{
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

/// Slack failing ≈30% of calls in every way the sandbox can fail.
fn random_faults(seed: u64) -> FaultPlan {
    FaultPlan::random(
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
        seed,
    )
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
    sandbox.set_faults(random_faults(20261129));

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

/// The soak with the S3 archive (moto) and a flood in the mix: three people's series of 40
/// uses each interleaved with the varied events, faults as above, and failed invocations
/// retried the way Lambda does — later, with other events handled in between. Every event ends
/// in the ledger and in exactly one series, Slack's counts add up, no line, ask or summary twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_with_a_flood_and_the_archive_lose_nothing_and_double_nothing() {
    use privwatch::aws::archive::Archive;
    use privwatch::message::metadata::{SummaryPayload, SUMMARY_EVENT_TYPE};
    use privwatch::notify::series::{PersonSeries, SeriesState};
    use std::collections::{BTreeSet, VecDeque};

    let Some(url) = moto_url("the soak with the archive") else {
        return;
    };
    let sandbox = sandbox().await;
    let mut app = app_for(&sandbox);
    let client = s3(&url);
    let bucket = bucket(&client, "privwatch-soak").await;
    app.archive = Some(Archive::new(client.clone(), &bucket));
    app.config.tier3_per_minute = 6000;
    sandbox.set_faults(random_faults(20261130));
    let mut events = many_events();
    let flood: Vec<Value> = (0..120)
        .map(|i| {
            let person = ["frank", "grace", "heidi"][i % 3];
            person_use(
                "111122223333",
                person,
                &format!("soak-flood-{i:04}"),
                i as u32,
            )
        })
        .collect();
    for (i, event) in flood.into_iter().enumerate() {
        events.insert((i * 3 / 2).min(events.len()), event);
    }
    let ids: BTreeSet<String> = events
        .iter()
        .map(|e| e["detail"]["eventID"].as_str().unwrap().to_string())
        .collect();

    // Lambda's queue: a failed invocation comes back after the settle time, behind others.
    let mut queue: VecDeque<(usize, usize, tokio::time::Instant)> = (0..events.len())
        .map(|i| (i, 0, tokio::time::Instant::now()))
        .collect();
    let (mut invocations, mut dead_lettered) = (0, BTreeSet::new());
    while let Some((i, attempt, not_before)) = queue.pop_front() {
        tokio::time::sleep_until(not_before).await;
        invocations += 1;
        let deadline = tokio::time::Instant::now() + 2 * app.slack.write_settle();
        if handle(&app, &events[i], deadline).await.is_err() {
            if attempt + 1 < ATTEMPTS {
                let later = tokio::time::Instant::now() + app.slack.write_settle();
                queue.insert(queue.len().min(3), (i, attempt + 1, later));
            } else {
                dead_lettered.insert(events[i]["detail"]["eventID"].as_str().unwrap().to_string());
            }
        }
    }
    // The scheduled catch-up, every "minute" until it has nothing left (it fails when Slack
    // does, and runs again).
    sandbox.set_faults(FaultPlan::default());
    tokio::time::sleep(app.slack.write_settle()).await;
    let catch_up = catch_up_event();
    let mut caught_up = false;
    for _ in 0..10 {
        if let Ok(Outcome::CaughtUp(r)) = handle(&app, &catch_up, deadline(60)).await {
            if r.left == 0 {
                caught_up = true;
                break;
            }
        }
    }
    assert!(caught_up, "the catch-up finished");

    // The ledger, the series, and the channel.
    let mut ledger = BTreeSet::new();
    let mut states: Vec<SeriesState> = Vec::new();
    for prefix in ["uses/", "threads/"] {
        let listed = client
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        for listed in listed.contents() {
            let key = listed.key().unwrap();
            if prefix == "uses/" {
                ledger.insert(key[5..key.len() - 5].to_string());
                continue;
            }
            let (json, _) = object(&client, &bucket, key).await.unwrap();
            let threads: PersonSeries = serde_json::from_value(json).unwrap();
            states.extend(threads.series);
        }
    }
    let mine: Vec<slack_sandbox::Message> = sandbox
        .messages(DEMO_CHANNEL)
        .into_iter()
        .filter(|m| m.user == slack_sandbox::BOT_USER_ID)
        .collect();
    let meta = |m: &slack_sandbox::Message| serde_json::json!({"metadata": m.metadata});
    // Every series here is shorter than a notice's list of event IDs: each event is named by
    // exactly one notice, whose count covers it.
    let notices: Vec<(String, NoticePayload)> = mine
        .iter()
        .filter_map(|m| {
            Some((
                m.ts.clone(),
                payload_of::<NoticePayload>(&meta(m), NOTICE_EVENT_TYPE)?,
            ))
        })
        .collect();
    let mut holders: HashMap<String, usize> = HashMap::new();
    let mut duplicated = 0;
    let mut asks_missing = 0;
    for (ts, notice) in &notices {
        for id in &notice.event_ids {
            *holders.entry(id.clone()).or_default() += 1;
        }
        let thread: Vec<&slack_sandbox::Message> = mine
            .iter()
            .filter(|m| m.thread_ts.as_deref() == Some(ts.as_str()))
            .collect();
        let summaries: Vec<SummaryPayload> = thread
            .iter()
            .filter_map(|m| payload_of::<SummaryPayload>(&meta(m), SUMMARY_EVENT_TYPE))
            .collect();
        if summaries.len() > 1 {
            duplicated += 1;
        }
        if let Some(summary) = summaries.first() {
            assert_eq!(summary.count, notice.count, "the summary caught up");
        }
        let mut lined = BTreeSet::new();
        let mut asked = false;
        for line in thread
            .iter()
            .filter_map(|m| payload_of::<LinePayload>(&meta(m), LINE_EVENT_TYPE))
        {
            asked |= line.event_id == notice.event_id && !line.repeat;
            if !lined.insert(line.event_id.clone()) {
                duplicated += 1;
            }
        }
        if !asked && !dead_lettered.contains(&notice.event_id) {
            println!("the notice of {} has no ask", notice.principal);
            asks_missing += 1;
        }
    }
    for state in &states {
        let notice = &notices
            .iter()
            .find(|(ts, _)| *ts == state.notice_ts)
            .expect("the series' notice")
            .1;
        assert_eq!(
            notice.count, state.count,
            "the notice caught up with its series"
        );
    }
    let mut lost = 0;
    for id in &ids {
        let held = holders.get(id).copied().unwrap_or(0);
        if held > 1 {
            duplicated += 1;
        }
        if !dead_lettered.contains(id) && (held == 0 || !ledger.contains(id)) {
            lost += 1;
        }
    }
    let total: u32 = notices.iter().map(|(_, n)| n.count).sum();
    let faults = sandbox.calls().iter().filter(|c| c.fault.is_some()).count();
    println!(
        "fault soak with a flood and the archive: {} events in {} series, {} Slack calls, {faults} faults injected, {invocations} invocations, {lost} lost, {duplicated} duplicated, {} to the on-failure destination",
        ids.len(),
        states.len(),
        sandbox.calls().len(),
        dead_lettered.len()
    );
    assert_eq!(lost, 0, "no event lost");
    assert_eq!(duplicated, 0, "nothing counted or posted twice");
    assert_eq!(asks_missing, 0, "every series has its ask");
    assert_eq!(
        total as usize,
        holders.len(),
        "Slack's counts add up to the events its notices name"
    );
    assert!(faults >= 10, "faults were injected ({faults})");
}
