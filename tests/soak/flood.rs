//! Floods, with the S3 archive (real `aws-sdk-s3` against moto) and a sandbox that enforces
//! Slack's limits (one post per second per channel; Tier 3 scaled to 600 a minute here so the
//! test is quick — `make bench` runs the published 50): a burst by one person is one notice, a
//! few lines and one rolling summary line; a flood of many people shows each person's notice at
//! once; every event is counted exactly once, under redelivery too.

use crate::support::*;
use privwatch::aws::archive::Archive;
use privwatch::message::metadata::{
    payload_of, LinePayload, NoticePayload, SummaryPayload, LINE_EVENT_TYPE, NOTICE_EVENT_TYPE,
    SUMMARY_EVENT_TYPE,
};
use privwatch::notify::series::{PersonSeries, SeriesState, LINES};
use privwatch::{handle, App, Outcome};
use slack_sandbox::{Sandbox, SandboxConfig, BOT_USER_ID, DEMO_CHANNEL};
use std::collections::{BTreeMap, BTreeSet};

const TIER3: u32 = 600;

async fn limited_sandbox() -> Sandbox {
    Sandbox::start(
        SandboxConfig {
            post_rate_per_channel: 1,
            tier3_per_minute: TIER3,
            ..SandboxConfig::default()
        },
        0,
    )
    .await
    .unwrap()
}

async fn archived_app(
    sandbox: &Sandbox,
    url: &str,
    name: &str,
) -> (App, aws_sdk_s3::Client, String) {
    let client = s3(url);
    let bucket = bucket(&client, name).await;
    let config = config_with(
        sandbox,
        privwatch::config::TokenSetting::Env(slack_sandbox::DEMO_TOKEN.to_string()),
        &[("SLACK_TIER3_PER_MINUTE", &TIER3.to_string())],
    );
    let mut app = app_from(
        config,
        privwatch::config::TokenSetting::Env(slack_sandbox::DEMO_TOKEN.to_string()),
        None,
    );
    app.archive = Some(Archive::new(client.clone(), &bucket));
    (app, client, bucket)
}

/// Runs the scheduled catch-up until nothing is left behind.
async fn catch_up(app: &App) {
    for _ in 0..20 {
        match handle(app, &catch_up_event(), deadline(60)).await.unwrap() {
            Outcome::CaughtUp(report) if report.left == 0 => return,
            Outcome::CaughtUp(_) => continue,
            other => panic!("not a catch-up: {other:?}"),
        }
    }
    panic!("the catch-up never finished");
}

/// What the channel and the archive say about a run.
#[derive(Debug, Default)]
struct Accounting {
    /// Per notice (ts): its metadata.
    notices: BTreeMap<String, NoticePayload>,
    /// Per notice: the event IDs of its own lines, and its summary lines' payloads.
    lines: BTreeMap<String, Vec<String>>,
    summaries: BTreeMap<String, Vec<SummaryPayload>>,
    /// Event IDs in the ledger (`uses/`), and per series state, its event IDs.
    ledger: BTreeSet<String>,
    states: Vec<SeriesState>,
}

async fn account(sandbox: &Sandbox, client: &aws_sdk_s3::Client, bucket: &str) -> Accounting {
    let mut a = Accounting::default();
    for m in sandbox
        .messages(DEMO_CHANNEL)
        .iter()
        .filter(|m| m.user == BOT_USER_ID)
    {
        let raw = serde_json::json!({"metadata": m.metadata});
        if let Some(notice) = payload_of::<NoticePayload>(&raw, NOTICE_EVENT_TYPE) {
            assert!(m.thread_ts.is_none());
            a.notices.insert(m.ts.clone(), notice);
        }
        let parent = m.thread_ts.clone().unwrap_or_default();
        if let Some(line) = payload_of::<LinePayload>(&raw, LINE_EVENT_TYPE) {
            a.lines
                .entry(parent.clone())
                .or_default()
                .push(line.event_id);
        }
        if let Some(summary) = payload_of::<SummaryPayload>(&raw, SUMMARY_EVENT_TYPE) {
            a.summaries.entry(parent).or_default().push(summary);
        }
    }
    for prefix in ["uses/", "threads/"] {
        let mut pages = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for listed in page.unwrap().contents() {
                let key = listed.key().unwrap();
                if prefix == "uses/" {
                    a.ledger
                        .insert(key["uses/".len()..key.len() - ".json".len()].to_string());
                } else {
                    let (json, _) = object(client, bucket, key).await.unwrap();
                    let threads: PersonSeries = serde_json::from_value(json).unwrap();
                    a.states.extend(threads.series);
                }
            }
        }
    }
    a
}

impl Accounting {
    /// Every event counted exactly once: in the ledger, in exactly one series, and in Slack's
    /// counts; no line or summary line twice; every notice's count and time range current.
    fn assert_exactly_once(&self, ids: &BTreeSet<String>) {
        assert_eq!(&self.ledger, ids, "the ledger holds every event, once each");
        let mut in_states = BTreeSet::new();
        for state in &self.states {
            for id in &state.event_ids {
                assert!(in_states.insert(id.clone()), "{id} counted in two series");
            }
            let notice = &self.notices[&state.notice_ts];
            assert_eq!(
                notice.count, state.count,
                "the notice shows its series' count"
            );
            assert_eq!(state.count as usize, state.event_ids.len());
            assert_eq!(
                (notice.event_time, notice.last_time),
                (state.first_time, state.last_time),
                "the notice shows its time range"
            );
            let summaries = self
                .summaries
                .get(&state.notice_ts)
                .cloned()
                .unwrap_or_default();
            match state.count > state.lines {
                true => {
                    assert_eq!(summaries.len(), 1, "one summary line per long series");
                    assert_eq!(summaries[0].count, state.count, "the summary is current");
                }
                false => assert!(summaries.is_empty()),
            }
            let lines = self
                .lines
                .get(&state.notice_ts)
                .cloned()
                .unwrap_or_default();
            assert!(
                lines.len() as u32 <= LINES,
                "a few lines, not {}",
                lines.len()
            );
            assert_eq!(lines.len() as u32, state.lines);
            let distinct: BTreeSet<_> = lines.iter().collect();
            assert_eq!(distinct.len(), lines.len(), "no line twice");
        }
        assert_eq!(&in_states, ids, "every event in a series");
        let total: u32 = self.notices.values().map(|n| n.count).sum();
        assert_eq!(
            total as usize,
            ids.len(),
            "Slack's counts add up to the events"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_by_one_person_is_one_notice_a_few_lines_and_one_rolling_summary() {
    let Some(url) = moto_url("the flood tests") else {
        return;
    };
    let sandbox = limited_sandbox().await;
    let (app, client, bucket) = archived_app(&sandbox, &url, "privwatch-burst").await;
    const N: u32 = 120;
    let mut ids = BTreeSet::new();
    for i in 0..N {
        let id = format!("burst-{i:04}");
        // Two a second, as a `terraform apply` makes them.
        let event = person_use("111122223333", "erin", &id, i / 2);
        if (1..3).contains(&i) {
            // A slow start (a person's first few calls): the channel has room for their lines.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
        handle(&app, &event, deadline(30)).await.unwrap();
        ids.insert(id);
        // EventBridge delivers at least once: every tenth event comes twice.
        if i % 10 == 3 {
            handle(&app, &event, deadline(30)).await.unwrap();
        }
    }
    catch_up(&app).await;
    let a = account(&sandbox, &client, &bucket).await;
    assert_eq!(a.notices.len(), 1, "one notice for the burst");
    let notice = a.notices.values().next().unwrap();
    assert_eq!(notice.count, N);
    assert_eq!(notice.last_time - notice.event_time, (N as i64 - 1) / 2);
    a.assert_exactly_once(&ids);
    let state = &a.states[0];
    // The slow start has its lines; the burst after it goes to the summary.
    assert_eq!(state.lines, 3, "the ask and two more lines");
    // The summary line says what the series was.
    let summary = sandbox
        .messages(DEMO_CHANNEL)
        .into_iter()
        .find(|m| {
            m.metadata
                .as_ref()
                .is_some_and(|md| md["event_type"] == SUMMARY_EVENT_TYPE)
        })
        .unwrap();
    for part in [
        "120 uses in all",
        "`AssumeRole` ×120",
        "203.0.113.200 ×120",
        "aws-cli/2.22.0",
    ] {
        assert!(summary.text.contains(part), "{part:?} in {}", summary.text);
    }
    let rate_limited = sandbox.calls().iter().filter(|c| c.status == 429).count();
    println!(
        "burst: {N} events (+{} redelivered) → 1 notice, {} lines, 1 summary line; {} Slack calls, {rate_limited} × 429",
        N / 10,
        state.lines,
        sandbox.calls().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_shows_each_person_at_once_and_counts_every_event_once() {
    let Some(url) = moto_url("the flood tests") else {
        return;
    };
    let sandbox = limited_sandbox().await;
    let (app, client, bucket) = archived_app(&sandbox, &url, "privwatch-flood").await;
    const PEOPLE: usize = 12;
    const EACH: usize = 40;
    let accounts = ["111122223333", "222233334444", "333344445555"];
    // Person p starts at about event p × 20, then takes turns with those already started.
    let mut schedule: Vec<(usize, usize)> = Vec::new();
    let mut next = [0usize; PEOPLE];
    let mut turn = 0usize;
    while schedule.len() < PEOPLE * EACH {
        let started = (schedule.len() / 20 + 1).min(PEOPLE);
        let p = turn % started;
        turn += 1;
        if next[p] < EACH {
            schedule.push((p, next[p]));
            next[p] += 1;
        } else if next[..started].iter().all(|n| *n == EACH) {
            // Everyone started has finished: the next person starts now.
            let p = started.min(PEOPLE - 1);
            schedule.push((p, next[p]));
            next[p] += 1;
        }
    }
    let mut ids = BTreeSet::new();
    for (i, (p, k)) in schedule.iter().enumerate() {
        let id = format!("flood-p{p:02}-{k:03}");
        let event = person_use(
            accounts[p % accounts.len()],
            &format!("person{p:02}"),
            &id,
            i as u32 / 4,
        );
        let before = sandbox.top_level(DEMO_CHANNEL).len();
        handle(&app, &event, deadline(30)).await.unwrap();
        if *k == 0 {
            // A new person's notice is posted by their first event's own invocation.
            assert_eq!(
                sandbox.top_level(DEMO_CHANNEL).len(),
                before + 1,
                "person {p}'s notice at once"
            );
        }
        ids.insert(id);
        if i % 17 == 5 {
            handle(&app, &event, deadline(30)).await.unwrap();
        }
    }
    catch_up(&app).await;
    let a = account(&sandbox, &client, &bucket).await;
    assert_eq!(a.notices.len(), PEOPLE, "one notice per person");
    for notice in a.notices.values() {
        assert_eq!(notice.count as usize, EACH, "{}", notice.principal);
    }
    a.assert_exactly_once(&ids);
    let rate_limited = sandbox.calls().iter().filter(|c| c.status == 429).count();
    println!(
        "flood: {} events of {PEOPLE} people in {} accounts → {} notices; {} Slack calls, {rate_limited} × 429",
        ids.len(),
        accounts.len(),
        a.notices.len(),
        sandbox.calls().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_series_of_one_person_delivered_out_of_order_each_keep_their_count() {
    let Some(url) = moto_url("the flood tests") else {
        return;
    };
    let sandbox = limited_sandbox().await;
    let (app, client, bucket) = archived_app(&sandbox, &url, "privwatch-interleaved").await;
    // This morning's series and this afternoon's, interleaved (a delayed redelivery of the
    // morning while the afternoon runs): two notices, each with its own count and summary.
    let mut ids = BTreeSet::new();
    for i in 0..30u32 {
        let (label, at) = match i % 2 {
            0 => ("morning", i),
            _ => ("afternoon", 4 * 3600 + i),
        };
        let id = format!("{label}-{i:03}");
        handle(
            &app,
            &person_use("111122223333", "ivan", &id, at),
            deadline(30),
        )
        .await
        .unwrap();
        ids.insert(id);
    }
    catch_up(&app).await;
    let a = account(&sandbox, &client, &bucket).await;
    assert_eq!(a.notices.len(), 2, "one notice per series");
    assert!(a.notices.values().all(|n| n.count == 15));
    a.assert_exactly_once(&ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_deleted_in_slack_mid_series_is_followed_by_a_new_one() {
    let Some(url) = moto_url("the flood tests") else {
        return;
    };
    let sandbox = limited_sandbox().await;
    let (app, client, bucket) = archived_app(&sandbox, &url, "privwatch-deleted").await;
    let mut ids = BTreeSet::new();
    for i in 0..20u32 {
        if i == 10 {
            // Someone deletes the notice (and so its thread) in Slack.
            sandbox.reset();
        }
        let id = format!("deleted-{i:03}");
        handle(
            &app,
            &person_use("111122223333", "judy", &id, i),
            deadline(30),
        )
        .await
        .expect("no invocation fails for a deleted notice");
        ids.insert(id);
        if i == 10 {
            // The next catch-up finds the notice gone (use 10 is in the archive only).
            catch_up(&app).await;
        }
    }
    catch_up(&app).await;
    let a = account(&sandbox, &client, &bucket).await;
    assert_eq!(a.ledger, ids, "the archive keeps every use");
    assert_eq!(a.notices.len(), 1, "a new notice after the deletion");
    let count = a.notices.values().next().unwrap().count;
    assert_eq!(
        count, 9,
        "the uses after the catch-up found the notice gone"
    );
}
