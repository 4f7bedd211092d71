//! Coverage that proves itself (organization mode): every spoke (account × region) sends a
//! heartbeat (`<function>-heartbeat`, a scheduled rule whose Scheduled Event keeps the spoke's
//! `account` and `region`) to the hub. The hub keeps one coverage message per channel, pinned
//! and updated in place, whose metadata is the record of who was last heard when. A spoke silent
//! for two intervals — or an account of the organization never heard at all — gets one alert;
//! its return gets one "back" line in that alert's thread.
//!
//! The channel is the only store: the coverage message is found again with `pins.list`, and
//! before an alert or a back line is posted the channel is searched for it (one invocation at a
//! time, as for notices; an unconfirmed write is found by the next sweep instead of repeated).
//!
//! Heartbeats fire together: the spokes of one StackSet operation are created within minutes of
//! each other, so 200 spokes are 200 heartbeats in the same minute. The execution environment
//! therefore holds each channel's coverage message ([`Held`]): it is found once (not with
//! `pins.list`, Tier 2, per heartbeat), a heartbeat changes the copy held, and the message is
//! written only when a reader must see it at once (a spoke heard for the first time, a spoke
//! back from silence), at most once a minute otherwise ([`FLUSH_EVERY`]), and by every sweep.
//! Each write reads the message first and keeps the latest of both (another execution
//! environment may have written meanwhile). 200 heartbeats in a minute are then a handful of
//! Slack calls, not 600 (`tests/org.rs`, `two_hundred_heartbeats_together_cost_a_few_slack_calls`).

use crate::app::{App, Session};
use crate::channel::find_reply;
use crate::config::is_account_id;
pub use crate::event::Signal;
use crate::message::coverage::{render_back, render_coverage, render_silence, SpokeLine};
pub use crate::message::coverage::{Silence, Silent};
use crate::message::metadata::payload_of;
use crate::message::mrkdwn::plain_text;
use crate::message::wording::Heard;
use crate::slack::{FoundMessage, SlackError, Ts};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;

pub const COVERAGE_EVENT_TYPE: &str = "privwatch_coverage";
pub const SILENCE_EVENT_TYPE: &str = "privwatch_silence";
pub const BACK_EVENT_TYPE: &str = "privwatch_back";
/// How far back the channel is searched for an unpinned coverage message or an alert.
const SEARCH_BACK_SECS: i64 = 7 * 24 * 3600;
const MAX_SEARCH_PAGES: u32 = 50;
/// How long heartbeats that change nothing a reader must see wait to be written together.
pub const FLUSH_EVERY: Duration = Duration::from_secs(60);

/// The coverage messages this execution environment holds, by channel.
#[derive(Default)]
pub struct Held(tokio::sync::Mutex<std::collections::HashMap<String, HeldCoverage>>);

struct HeldCoverage {
    message: Option<FoundMessage>,
    payload: CoveragePayload,
    /// When this environment last wrote it (`None`: not yet).
    written: Option<Instant>,
}

/// The coverage message's metadata (compact keys: up to a few hundred spokes per channel).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoveragePayload {
    /// When the hub began listening in this channel (Unix seconds).
    pub started: i64,
    /// When it began expecting canaries (0: not yet): a coverage message older than the canary
    /// gives every spoke two intervals from then, not from `started`.
    #[serde(rename = "cs")]
    pub canaries_since: i64,
    pub spokes: Vec<Spoke>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Spoke {
    #[serde(rename = "a")]
    pub account: String,
    #[serde(rename = "r")]
    pub region: String,
    /// The last scheduled heartbeat (Unix seconds; 0: never heard).
    #[serde(rename = "t")]
    pub last: i64,
    /// The last canary's CloudTrail record (Unix seconds; 0: never heard).
    #[serde(rename = "c")]
    pub trail: i64,
    /// Alerted as silent since then (0: not alerted).
    #[serde(rename = "s")]
    pub silent_since: i64,
    /// The alert's `ts` (its thread gets the back line).
    #[serde(rename = "x")]
    pub alert_ts: String,
}

impl CoveragePayload {
    pub fn to_metadata(&self) -> Value {
        json!({"event_type": COVERAGE_EVENT_TYPE, "event_payload": self})
    }

    fn spoke_mut(&mut self, account: &str, region: &str) -> &mut Spoke {
        let at = match self
            .spokes
            .iter()
            .position(|s| s.account == account && s.region == region)
        {
            Some(at) => at,
            None => {
                self.spokes.push(Spoke {
                    account: account.to_string(),
                    region: region.to_string(),
                    ..Spoke::default()
                });
                self.spokes
                    .sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
                self.spokes
                    .iter()
                    .position(|s| s.account == account && s.region == region)
                    .expect("just inserted")
            }
        };
        &mut self.spokes[at]
    }

    /// A sign of life: the spoke is heard at `time` by `signal`. Returns the alert it had been
    /// silent under (`since`, alert `ts`) once both its schedule and its trail are heard again
    /// since: its thread gets the back line.
    pub fn heard(
        &mut self,
        account: &str,
        region: &str,
        signal: Signal,
        time: i64,
    ) -> Option<(i64, String)> {
        // Listening began with the first heartbeat heard (the organization's spokes were there).
        if time > 0 && time < self.started {
            self.started = time;
        }
        let spoke = self.spoke_mut(account, region);
        match signal {
            Signal::Schedule => spoke.last = spoke.last.max(time),
            Signal::Trail => spoke.trail = spoke.trail.max(time),
        }
        let back = spoke.last > spoke.silent_since && spoke.trail > spoke.silent_since;
        if spoke.silent_since == 0 || !back {
            return None;
        }
        let alert = (spoke.silent_since, std::mem::take(&mut spoke.alert_ts));
        spoke.silent_since = 0;
        Some(alert)
    }

    /// Spokes whose schedule or trail has been silent for two intervals and that are not yet
    /// alerted, with the time their silence began: the last signal, or — never heard — when
    /// listening (for the trail: expecting canaries) began. `expected` adds the spokes the
    /// organization says should exist.
    pub fn newly_silent(
        &mut self,
        expected: &[(String, String)],
        now: i64,
        interval: Duration,
    ) -> Vec<Silent> {
        for (account, region) in expected {
            self.spoke_mut(account, region);
        }
        if self.canaries_since == 0 {
            self.canaries_since = now;
        }
        let limit = 2 * interval.as_secs() as i64;
        let (started, canaries_since) = (self.started, self.canaries_since.max(self.started));
        self.spokes
            .iter()
            .filter(|s| s.silent_since == 0)
            .filter_map(|s| {
                let schedule = if s.last > 0 { s.last } else { started };
                let trail = if s.trail > 0 { s.trail } else { canaries_since };
                let what = match (now - schedule >= limit, now - trail >= limit) {
                    (false, false) => return None,
                    (true, true) => Silence::Everything,
                    (false, true) => Silence::Trail,
                    (true, false) => Silence::Schedule,
                };
                let since = match what {
                    Silence::Everything => schedule.min(trail),
                    Silence::Trail => trail,
                    Silence::Schedule => schedule,
                };
                Some(Silent {
                    account: s.account.clone(),
                    region: s.region.clone(),
                    since,
                    never_heard: s.last == 0 && s.trail == 0,
                    what,
                })
            })
            .collect()
    }

    /// Whether this spoke has been heard or expected before.
    pub fn knows(&self, account: &str, region: &str) -> bool {
        self.spokes
            .iter()
            .any(|s| s.account == account && s.region == region)
    }

    /// Takes in what another writer wrote: each spoke's latest heartbeat, and an alert raised
    /// after the last heartbeat this copy knows of.
    pub fn merge(&mut self, theirs: &CoveragePayload) {
        if theirs.started > 0 && (self.started == 0 || theirs.started < self.started) {
            self.started = theirs.started;
        }
        if theirs.canaries_since > 0
            && (self.canaries_since == 0 || theirs.canaries_since < self.canaries_since)
        {
            self.canaries_since = theirs.canaries_since;
        }
        for t in &theirs.spokes {
            let s = self.spoke_mut(&t.account, &t.region);
            let we_heard_it_back = s.last > t.silent_since && s.trail > t.silent_since;
            if s.silent_since == 0 && t.silent_since > 0 && !we_heard_it_back {
                // Their alert stands unless we heard both the schedule and the trail after it
                // (that is the spoke's return, whose back line this copy posted).
                s.silent_since = t.silent_since;
                s.alert_ts = t.alert_ts.clone();
            } else if s.silent_since > 0
                && t.silent_since == 0
                && t.last > s.silent_since
                && t.trail > s.silent_since
            {
                // They heard it after our alert (and posted its back line).
                s.silent_since = 0;
                s.alert_ts.clear();
            }
            s.last = s.last.max(t.last);
            s.trail = s.trail.max(t.trail);
        }
    }

    pub fn alerted(&mut self, account: &str, region: &str, since: i64, alert_ts: &Ts) {
        let spoke = self.spoke_mut(account, region);
        spoke.silent_since = since;
        spoke.alert_ts = alert_ts.to_string();
    }
}

/// What a heartbeat or a coverage check did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CoverageReport {
    pub heard: usize,
    pub alerted: usize,
    pub back: usize,
}

/// A sign of life from `account` in `region` at `time`: its scheduled heartbeat or its canary's
/// CloudTrail record.
pub async fn heartbeat(
    app: &App,
    account: &str,
    region: &str,
    signal: Signal,
    time: i64,
    deadline: Instant,
) -> Result<CoverageReport, crate::error::Error> {
    let ous = app.org_units_of(account).await;
    let channel = app.config.channel_for(account, &ous);
    let held = app.memory.of::<Held>();
    let mut held = held.0.lock().await;
    app.with_session(channel, deadline, async |cx| {
        let heard = heard_held(cx, &mut held, account, region, signal, time).await;
        if heard.is_err() {
            // The copy may be ahead of Slack (a back line not posted, a message not pinned): the
            // next attempt — this session's after a token refresh, or Lambda's retry — starts
            // again from what Slack holds.
            held.remove(channel);
        }
        Ok(heard?)
    })
    .await
}

async fn heard_held(
    cx: &Session<'_>,
    held: &mut std::collections::HashMap<String, HeldCoverage>,
    account: &str,
    region: &str,
    signal: Signal,
    time: i64,
) -> Result<CoverageReport, SlackError> {
    let entry = held_entry(cx, held).await?;
    let mut report = CoverageReport {
        heard: 1,
        ..CoverageReport::default()
    };
    let first_time = !entry.payload.knows(account, region);
    if let Some((since, alert_ts)) = entry.payload.heard(account, region, signal, time) {
        if let Some(alert_ts) = Ts::new(&alert_ts) {
            back_line(cx, account, region, since, &alert_ts).await?;
            report.back = 1;
        }
    }
    let due = entry.written.is_none_or(|w| w.elapsed() >= FLUSH_EVERY);
    if first_time || report.back > 0 || due {
        write_held(cx, entry).await?;
    }
    Ok(report)
}

/// The channel's coverage message as this environment holds it, found in Slack the first time.
async fn held_entry<'h>(
    cx: &Session<'_>,
    held: &'h mut std::collections::HashMap<String, HeldCoverage>,
) -> Result<&'h mut HeldCoverage, SlackError> {
    if !held.contains_key(cx.channel) {
        let (message, payload) = coverage_message(cx).await?;
        held.insert(
            cx.channel.to_string(),
            HeldCoverage {
                message,
                payload,
                written: None,
            },
        );
    }
    Ok(held.get_mut(cx.channel).expect("just inserted"))
}

/// Takes in what the message holds in Slack now (another environment may have written); a
/// message deleted meanwhile is looked for again (another one pinned or posted) or left to be
/// posted anew.
async fn refresh_held(cx: &Session<'_>, entry: &mut HeldCoverage) -> Result<(), SlackError> {
    let Some(message) = &entry.message else {
        return Ok(());
    };
    let slack = &cx.app.slack;
    match slack
        .message(cx.token.expose(), cx.channel, &message.ts, cx.deadline)
        .await?
    {
        Some(current) => {
            if let Some(theirs) = payload_of::<CoveragePayload>(&current.raw, COVERAGE_EVENT_TYPE) {
                entry.payload.merge(&theirs);
            }
            entry.message = Some(current);
        }
        None => {
            let (found, theirs) = coverage_message(cx).await?;
            if found.is_some() {
                entry.payload.merge(&theirs);
            }
            entry.message = found;
        }
    }
    Ok(())
}

/// Writes the held copy: refreshed from Slack first, then updated in place — or posted and
/// pinned the first time.
async fn write_held(cx: &Session<'_>, entry: &mut HeldCoverage) -> Result<(), SlackError> {
    refresh_held(cx, entry).await?;
    let posted = save(cx, &entry.message, &entry.payload).await?;
    if let Some(ts) = posted {
        entry.message = cx
            .app
            .slack
            .message(cx.token.expose(), cx.channel, &ts, cx.deadline)
            .await?;
    }
    entry.written = Some(Instant::now());
    Ok(())
}

/// The hub's sweep: in each channel, alert the spokes that fell silent.
pub async fn check(app: &App, deadline: Instant) -> Result<CoverageReport, crate::error::Error> {
    let expected_accounts = expected_accounts(app).await;
    let mut expected_by_channel = Vec::new();
    for channel in app.config.channels() {
        let mut expected = Vec::new();
        for account in &expected_accounts {
            let ous = app.org_units_of(account).await;
            if app.config.channel_for(account, &ous) == channel {
                for region in &app.config.spoke_regions {
                    expected.push((account.clone(), region.clone()));
                }
            }
        }
        expected_by_channel.push((channel, expected));
    }
    check_channels(app, expected_by_channel, None, deadline).await
}

/// A per-account deployment's sweep (`TRAIL_CANARY`): its own account and region are the one
/// spoke. The sweep running is its schedule heard (the way from EventBridge to privwatch works);
/// its canary's CloudTrail record is the trail heard.
pub async fn check_account(
    app: &App,
    account: &str,
    region: &str,
    deadline: Instant,
) -> Result<CoverageReport, crate::error::Error> {
    let own = (account.to_string(), region.to_string());
    let channel = app.config.channel_for(account, &[]);
    check_channels(app, vec![(channel, vec![own.clone()])], Some(own), deadline).await
}

async fn check_channels(
    app: &App,
    expected_by_channel: Vec<(&str, Vec<(String, String)>)>,
    schedule_heard: Option<(String, String)>,
    deadline: Instant,
) -> Result<CoverageReport, crate::error::Error> {
    let now = chrono::Utc::now().timestamp();
    let mut report = CoverageReport::default();
    let held = app.memory.of::<Held>();
    let mut held = held.0.lock().await;
    for (channel, expected) in expected_by_channel {
        report.alerted += app
            .with_session(channel, deadline, async |cx| {
                let checked = check_held(cx, &mut held, &expected, &schedule_heard, now).await;
                if checked.is_err() {
                    // The copy may be ahead of Slack: the next attempt starts from what Slack
                    // holds.
                    held.remove(channel);
                }
                Ok(checked?)
            })
            .await?;
    }
    Ok(report)
}

/// One channel's check: what other environments wrote merged in (a spoke they heard is not
/// silent), new silences alerted, the table written.
async fn check_held(
    cx: &Session<'_>,
    held: &mut std::collections::HashMap<String, HeldCoverage>,
    expected: &[(String, String)],
    schedule_heard: &Option<(String, String)>,
    now: i64,
) -> Result<usize, SlackError> {
    let entry = held_entry(cx, held).await?;
    if expected.is_empty() && entry.message.is_none() && entry.payload.spokes.is_empty() {
        return Ok(0);
    }
    refresh_held(cx, entry).await?;
    if let Some((account, region)) = schedule_heard {
        if let Some((since, alert_ts)) = entry.payload.heard(account, region, Signal::Schedule, now)
        {
            if let Some(alert_ts) = Ts::new(&alert_ts) {
                back_line(cx, account, region, since, &alert_ts).await?;
            }
        }
    }
    let silent = entry
        .payload
        .newly_silent(expected, now, cx.app.config.heartbeat);
    for spoke in &silent {
        let alert_ts = silence_alert(cx, spoke).await?;
        entry
            .payload
            .alerted(&spoke.account, &spoke.region, spoke.since, &alert_ts);
    }
    write_held(cx, entry).await?;
    Ok(silent.len())
}

/// The accounts that should be heard: the organization's active accounts when it can be read,
/// else those `ACCOUNT_NAMES` lists.
async fn expected_accounts(app: &App) -> Vec<String> {
    if let Some(org) = &app.org {
        if let Some(snapshot) = org.snapshot().await {
            return snapshot.active().map(|a| a.id.clone()).collect();
        }
    }
    app.config
        .wording
        .account_names
        .iter()
        .map(|(id, _)| id.clone())
        .filter(|id| is_account_id(id))
        .collect()
}

/// The channel's coverage message (pinned), created and pinned when there is none.
async fn coverage_message(
    cx: &Session<'_>,
) -> Result<(Option<FoundMessage>, CoveragePayload), SlackError> {
    let slack = &cx.app.slack;
    let token = cx.token.expose();
    for pinned in slack.pinned(token, cx.channel, cx.deadline).await? {
        if !pinned.posted_by(cx.bot) {
            continue;
        }
        if let Some(message) = slack
            .message(token, cx.channel, &pinned.ts, cx.deadline)
            .await?
        {
            if let Some(payload) = payload_of::<CoveragePayload>(&message.raw, COVERAGE_EVENT_TYPE)
            {
                return Ok((Some(message), payload));
            }
        }
    }
    // Posted by an earlier attempt that could not pin it?
    let oldest = Ts::from_seconds(chrono::Utc::now().timestamp() - SEARCH_BACK_SECS);
    let earlier = slack
        .history(token, cx.channel, Some(&oldest), None, MAX_SEARCH_PAGES)
        .find(cx.deadline, |m| {
            m.posted_by(cx.bot)
                && payload_of::<CoveragePayload>(&m.raw, COVERAGE_EVENT_TYPE).is_some()
        })
        .await?;
    if let Some(message) = earlier {
        slack
            .pin(token, cx.channel, &message.ts, cx.deadline)
            .await?;
        let payload = payload_of(&message.raw, COVERAGE_EVENT_TYPE).unwrap_or_default();
        return Ok((Some(message), payload));
    }
    Ok((
        None,
        CoveragePayload {
            started: chrono::Utc::now().timestamp(),
            canaries_since: chrono::Utc::now().timestamp(),
            spokes: Vec::new(),
        },
    ))
}

/// Writes the coverage message: an update in place, or the first post (then pinned; its `ts`).
async fn save(
    cx: &Session<'_>,
    message: &Option<FoundMessage>,
    payload: &CoveragePayload,
) -> Result<Option<Ts>, SlackError> {
    let wording = cx.app.wording().await;
    let lines: Vec<SpokeLine<'_>> = payload
        .spokes
        .iter()
        .map(|s| SpokeLine {
            account: &s.account,
            region: &s.region,
            heard: if s.silent_since > 0 {
                Heard::Silent
            } else if s.last == 0 || s.trail == 0 {
                Heard::NotYet
            } else {
                Heard::Yes
            },
            last: s.last,
            trail: s.trail,
        })
        .collect();
    let body = render_coverage(
        cx.channel,
        message.as_ref().map(|m| &m.raw),
        &lines,
        payload.to_metadata(),
        &wording,
        cx.app.config.heartbeat,
    );
    let slack = &cx.app.slack;
    let token = cx.token.expose();
    match message {
        Some(_) => match slack.update_message(token, &body, cx.deadline).await {
            // The next heartbeat or sweep writes the table again.
            Ok(()) | Err(SlackError::Unconfirmed { .. }) => Ok(None),
            Err(e) => Err(e),
        },
        None => {
            let ts = slack.post_message(token, &body, cx.deadline).await?;
            slack.pin(token, cx.channel, &ts, cx.deadline).await?;
            Ok(Some(ts))
        }
    }
}

/// The one alert for a spoke silent since `since` (found again if an earlier sweep posted it).
async fn silence_alert(cx: &Session<'_>, spoke: &Silent) -> Result<Ts, SlackError> {
    let (account, region, since) = (&spoke.account, &spoke.region, spoke.since);
    let is_it = |m: &FoundMessage| {
        m.posted_by(cx.bot)
            && m.raw["metadata"]["event_type"] == SILENCE_EVENT_TYPE
            && m.raw["metadata"]["event_payload"]
                == json!({"account": account, "region": region, "since": since})
    };
    let slack = &cx.app.slack;
    let token = cx.token.expose();
    let oldest = Ts::from_seconds(since);
    if let Some(found) = slack
        .history(token, cx.channel, Some(&oldest), None, MAX_SEARCH_PAGES)
        .find(cx.deadline, is_it)
        .await?
    {
        return Ok(found.ts);
    }
    let wording = cx.app.wording().await;
    let body = render_silence(
        cx.channel,
        &cx.app.config.escalation_mention,
        spoke,
        json!({"event_type": SILENCE_EVENT_TYPE,
               "event_payload": {"account": account, "region": region, "since": since}}),
        &wording,
    );
    slack.post_message(token, &body, cx.deadline).await
}

/// The one "back" line in the alert's thread.
async fn back_line(
    cx: &Session<'_>,
    account: &str,
    region: &str,
    since: i64,
    alert_ts: &Ts,
) -> Result<(), SlackError> {
    let slack = &cx.app.slack;
    let token = cx.token.expose();
    let key = json!({"account": account, "region": region, "since": since});
    let already = find_reply(cx, alert_ts, BACK_EVENT_TYPE, |m| {
        m.raw["metadata"]["event_payload"] == key
    })
    .await?;
    if already.is_some() {
        return Ok(());
    }
    let wording = cx.app.wording().await;
    let body = render_back(
        cx.channel,
        alert_ts.as_str(),
        account,
        region,
        json!({"event_type": BACK_EVENT_TYPE, "event_payload": key}),
        &wording,
    );
    slack
        .post_message(token, &body, cx.deadline)
        .await
        .map(|_| ())
}

/// `privwatch coverage`: each channel's table, as text.
pub async fn table(app: &App) -> Result<String, crate::error::Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let wording = app.wording().await;
    let mut out = String::new();
    for channel in app.config.channels() {
        let (message, payload) = app
            .with_session(
                channel,
                deadline,
                async |cx| Ok(coverage_message(cx).await?),
            )
            .await?;
        out.push_str(&format!("channel {channel}"));
        if message.is_none() {
            out.push_str(": no coverage message yet (no heartbeat arrived)\n");
            continue;
        }
        out.push('\n');
        out.push_str(&format!(
            "{:<32} {:<16} {:<22} {:<22} state\n",
            "account", "region", "last heartbeat", "trail heard"
        ));
        let when = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .filter(|_| t > 0)
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_else(|| "never".into())
        };
        for s in &payload.spokes {
            // A terminal shows plain text: the mrkdwn escaping undone.
            let name = plain_text(&wording.account(&s.account)).replace('\u{2060}', "");
            let state = if s.silent_since > 0 {
                "SILENT (alerted)"
            } else if s.last == 0 || s.trail == 0 {
                "not heard yet"
            } else {
                "ok"
            };
            out.push_str(&format!(
                "{name:<32} {:<16} {:<22} {:<22} {state}\n",
                s.region,
                when(s.last),
                when(s.trail)
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    const A: &str = "111122223333";
    const R: &str = "us-east-1";

    fn both(p: &mut CoveragePayload, time: i64) -> Option<(i64, String)> {
        p.heard(A, R, Signal::Schedule, time);
        p.heard(A, R, Signal::Trail, time)
    }

    #[test]
    fn a_spoke_is_alerted_once_after_two_silent_intervals_and_back_once() {
        let mut p = CoveragePayload::default();
        assert_eq!(both(&mut p, 1_000), None);
        assert!(
            p.newly_silent(&[], 1_000 + 7_199, HOUR).is_empty(),
            "not yet two intervals"
        );
        let silent = p.newly_silent(&[], 1_000 + 7_200, HOUR);
        assert_eq!(
            silent,
            vec![Silent {
                account: A.into(),
                region: R.into(),
                since: 1_000,
                never_heard: false,
                what: Silence::Everything,
            }]
        );
        p.alerted(A, R, 1_000, &Ts::new("5.000001").unwrap());
        assert!(
            p.newly_silent(&[], 99_999, HOUR).is_empty(),
            "one alert, not one per sweep"
        );
        assert_eq!(
            p.heard(A, R, Signal::Schedule, 100_000),
            None,
            "not back while the trail is silent"
        );
        assert_eq!(
            p.heard(A, R, Signal::Trail, 100_030),
            Some((1_000, "5.000001".to_string()))
        );
        assert_eq!(both(&mut p, 100_060), None, "one back line");
    }

    #[test]
    fn a_silent_trail_behind_a_live_heartbeat_is_alerted_as_the_trail() {
        let mut p = CoveragePayload::default();
        assert_eq!(both(&mut p, 1_000), None);
        // The schedule keeps beating; the canary's records stop (a trail stopped or narrowed).
        for hour in 1..=2 {
            p.heard(A, R, Signal::Schedule, 1_000 + hour * 3_600);
        }
        let silent = p.newly_silent(&[], 1_000 + 7_200, HOUR);
        assert_eq!(silent.len(), 1);
        assert_eq!((silent[0].what, silent[0].since), (Silence::Trail, 1_000));
        // And the other way round: the heartbeat rule gone, the trail still heard.
        let mut q = CoveragePayload::default();
        both(&mut q, 1_000);
        q.heard(A, R, Signal::Trail, 8_000);
        assert_eq!(q.newly_silent(&[], 8_200, HOUR)[0].what, Silence::Schedule);
    }

    #[test]
    fn a_coverage_message_older_than_the_canary_gives_its_spokes_two_intervals_from_then() {
        // Written before canaries existed: heartbeats only, listening long since begun.
        let mut p = CoveragePayload {
            started: 1_000,
            ..CoveragePayload::default()
        };
        p.heard(A, R, Signal::Schedule, 50_000);
        assert!(p.newly_silent(&[], 50_100, HOUR).is_empty(), "not at once");
        p.heard(A, R, Signal::Schedule, 53_600);
        let silent = p.newly_silent(&[], 50_100 + 7_200, HOUR);
        assert_eq!(silent.len(), 1, "two intervals after the first check");
        assert_eq!((silent[0].what, silent[0].since), (Silence::Trail, 50_100));
    }

    #[test]
    fn an_expected_spoke_never_heard_is_alerted_from_when_listening_began() {
        let mut p = CoveragePayload {
            started: 10_000,
            canaries_since: 10_000,
            spokes: vec![],
        };
        let expected = vec![("444455556666".to_string(), "eu-west-1".to_string())];
        assert!(p.newly_silent(&expected, 10_000 + 3_600, HOUR).is_empty());
        assert_eq!(
            p.newly_silent(&expected, 10_000 + 7_200, HOUR),
            vec![Silent {
                account: "444455556666".into(),
                region: "eu-west-1".into(),
                since: 10_000,
                never_heard: true,
                what: Silence::Everything,
            }]
        );
        assert_eq!(p.spokes.len(), 1, "listed once");
    }

    #[test]
    fn another_writers_alert_stands_until_both_signals_are_heard_after_it() {
        let mut ours = CoveragePayload::default();
        both(&mut ours, 1_000);
        ours.heard(A, R, Signal::Schedule, 9_000);
        let mut theirs = ours.clone();
        theirs.alerted(A, R, 1_000, &Ts::new("7.000001").unwrap());
        ours.merge(&theirs);
        assert_eq!(
            ours.spokes[0].silent_since, 1_000,
            "the trail is still silent"
        );
        let mut back = theirs.clone();
        back.merge(&CoveragePayload {
            spokes: vec![Spoke {
                account: A.into(),
                region: R.into(),
                last: 9_000,
                trail: 9_100,
                ..Spoke::default()
            }],
            ..CoveragePayload::default()
        });
        assert_eq!(back.spokes[0].silent_since, 0, "both heard after the alert");
    }
}
