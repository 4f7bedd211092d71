//! Floods: with the S3 archive (`ARCHIVE_BUCKET`) as the exactly-once ledger, a long series of
//! uses by one person costs Slack one notice, a few thread lines and one rolling summary line,
//! however long it runs — instead of one line per use at Slack's one post per second.
//!
//! An event's way: its conditional create in the ledger (`uses/<event id>.json`) → the state of
//! its person's series (`threads/<key>.json`, rewritten only if unchanged since read: S3's
//! `If-Match`) counts it → done, in two S3 writes and no Slack call. The first use of a series
//! takes the path without an archive (`deliver`: the notice at once, the ask in its thread), so
//! a new person's notice is never queued behind another person's series. A series' first few
//! uses get their own lines while the channel has room for them. The notice's count and the
//! summary line catch up with the state at most once per [`flush_gap`] (two `chat.update` calls,
//! Tier 3), in whichever invocation comes next or in the scheduled catch-up
//! (`<function>-catchup`, every minute), which finds a series left behind through the
//! `behind/<key>` marker.
//!
//! What a crash can and cannot do: the ledger write comes first, so an event recorded nowhere
//! else is retried by Lambda and found there ("already there"); the state then says whether it
//! was counted. A thread line is announced in the state before it is posted and looked for
//! before it is posted again. A summary line likewise. A notice behind its state is caught up by
//! the next flush. So every event is counted once: in the ledger (which `privwatch audit` reads)
//! and in its series' count in Slack.

use crate::app::{App, Session};
use crate::aws::archive::{Archive, Created};
use crate::error::Error;
use crate::event::PrivilegedUse;
use crate::message::metadata::{
    event_key, payload_of, NoticePayload, MAX_EVENT_IDS, NOTICE_EVENT_TYPE, SUMMARY_EVENT_TYPE,
};
use crate::message::render;
use crate::message::wording::{Series, Shown};
use crate::notify::deliver::{self, Delivery};
use crate::slack::{FoundMessage, SlackError, Ts};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::time::Instant;

/// Lines a series gets one by one (the ask with the mention among them) before its rolling
/// summary line takes over.
pub const LINES: u32 = 4;
/// Series of one person kept at once.
const MAX_SERIES: usize = 4;
/// Uses one series holds (every event ID listed); the next use starts a new series.
const MAX_IDS: usize = 2_000;
/// Distinct values a tally keeps (kinds, source IPs, user agents); the rest count as "others".
const TALLY: usize = 6;
/// Longest value a tally keeps.
const TALLY_VALUE_CHARS: usize = 80;
/// Slack's `chat.postMessage` limit: about one per second per channel.
const POST_GAP: Duration = Duration::from_secs(1);
/// Time the scheduled catch-up leaves before its deadline, and at most spends (events wait
/// behind it: the function runs one invocation at a time).
const CATCH_UP_MARGIN: Duration = Duration::from_secs(3);
const CATCH_UP_BUDGET: Duration = Duration::from_secs(45);

/// The state of one series of uses by one person (one notice and its thread).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeriesState {
    pub channel: String,
    pub notice_ts: String,
    /// Unix seconds of the first and last use.
    pub first_time: i64,
    pub last_time: i64,
    /// Uses counted in this series.
    pub count: u32,
    /// Their event IDs (up to [`MAX_IDS`]).
    pub event_ids: Vec<String>,
    /// The admin sessions its uses opened (the notice's metadata lists them: activity lines
    /// find their notice by them).
    pub sessions: Vec<crate::event::session::SessionRef>,
    /// Uses with a line of their own in the thread.
    pub lines: u32,
    /// The first use's ask (with the mention) is known to be in the thread. A series that began
    /// by joining a notice whose first invocation failed halfway is not: that use's retry
    /// completes it.
    pub asked: bool,
    /// Lines announced but not yet known to be posted (looked for before posting again).
    pub lines_owed: Vec<String>,
    /// The count the notice and the summary line showed when last written.
    pub shown: u32,
    pub summary_ts: String,
    /// A summary line was sent; until `summary_ts` is known it is looked for, not sent again.
    pub summary_sent: bool,
    /// When it was sent (Unix seconds).
    pub summary_sent_at: i64,
    /// The notice was deleted in Slack: the series takes no more uses (its uses stay in the
    /// archive), and the person's next use starts a new one.
    pub gone: bool,
    pub kinds: BTreeMap<String, u32>,
    pub source_ips: BTreeMap<String, u32>,
    pub user_agents: BTreeMap<String, u32>,
}

impl SeriesState {
    /// A series starting from the notice `deliver` landed on.
    fn from_notice(
        channel: &str,
        notice_ts: &Ts,
        notice: &NoticePayload,
        u: &PrivilegedUse,
    ) -> Self {
        let mut state = SeriesState {
            channel: channel.to_string(),
            notice_ts: notice_ts.to_string(),
            first_time: notice.event_time,
            last_time: notice.last_time.max(notice.event_time),
            count: notice.count.max(1),
            event_ids: notice.event_ids.clone(),
            sessions: notice.sessions.clone(),
            // Without the archive every use of a notice has its line.
            lines: notice.count.max(1),
            shown: notice.count.max(1),
            ..Default::default()
        };
        if state.event_ids.is_empty() {
            state.event_ids.push(notice.event_id.clone());
        }
        state.asked = notice.event_id == event_key(&u.event_id);
        state.tally(u);
        state
    }

    /// `time` (0: unknown) may join this series in `channel`.
    fn takes(&self, channel: &str, time: i64, window: i64) -> bool {
        window > 0
            && !self.gone
            && self.event_ids.len() < MAX_IDS
            && self.channel == channel
            && Ts::new(&self.notice_ts).is_some()
            && (time == 0 || (self.last_time >= time - window && self.first_time <= time + window))
    }

    fn holds(&self, event_id: &str) -> bool {
        self.event_ids.iter().any(|id| id == event_id)
    }

    fn add(&mut self, u: &PrivilegedUse) {
        let time = u.time.map_or(self.last_time, |t| t.timestamp());
        self.first_time = if self.first_time == 0 {
            time
        } else {
            self.first_time.min(time)
        };
        self.last_time = self.last_time.max(time);
        self.count += 1;
        if self.event_ids.len() < MAX_IDS {
            self.event_ids.push(event_key(&u.event_id));
        }
        if let Some(session) = &u.session {
            if !self.sessions.iter().any(|s| s.is(session)) {
                self.sessions.push(session.clone());
                if self.sessions.len() > crate::message::metadata::MAX_SESSIONS {
                    self.sessions.remove(0);
                }
            }
        }
        self.tally(u);
    }

    fn tally(&mut self, u: &PrivilegedUse) {
        let kind = u.event_name.as_deref().unwrap_or(u.kind.as_str());
        count_in(&mut self.kinds, kind);
        count_in(&mut self.source_ips, u.source_ip.as_deref().unwrap_or("?"));
        count_in(
            &mut self.user_agents,
            u.user_agent.as_deref().unwrap_or("?"),
        );
    }

    /// The event IDs the notice's metadata keeps: the first, then the latest.
    fn notice_ids(&self) -> Vec<String> {
        match self.event_ids.len() <= MAX_EVENT_IDS {
            true => self.event_ids.clone(),
            false => std::iter::once(self.event_ids[0].clone())
                .chain(
                    self.event_ids[self.event_ids.len() - (MAX_EVENT_IDS - 1)..]
                        .iter()
                        .cloned(),
                )
                .collect(),
        }
    }

    fn behind(&self) -> bool {
        !self.gone && (self.shown < self.count || !self.lines_owed.is_empty())
    }
}

/// The latest series of one person (`threads/<key>.json`): usually one; more when uses come
/// out of order (a delayed retry of this morning's series while this afternoon's runs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersonSeries {
    pub series: Vec<SeriesState>,
}

impl PersonSeries {
    /// No room for another series without letting the oldest go.
    fn full(&self) -> bool {
        self.series.len() >= MAX_SERIES && self.series.iter().all(SeriesState::behind)
    }

    /// Adds a series; beyond [`MAX_SERIES`], the least recent that has caught up (or ended)
    /// retires (returned, for `threads/<key>/<notice ts>.json`: a late retry of one of its
    /// uses is found there).
    fn push(&mut self, state: SeriesState) -> Vec<SeriesState> {
        self.series.push(state);
        let mut retired = Vec::new();
        while self.series.len() > MAX_SERIES {
            let oldest = self
                .series
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.behind())
                .min_by_key(|(_, s)| s.last_time)
                .map(|(i, _)| i);
            match oldest {
                Some(i) => retired.push(self.series.remove(i)),
                None => break,
            }
        }
        retired
    }

    fn behind(&self) -> bool {
        self.series.iter().any(SeriesState::behind)
    }
}

fn count_in(tally: &mut BTreeMap<String, u32>, value: &str) {
    let value = crate::message::mrkdwn::clip(value, TALLY_VALUE_CHARS);
    if let Some(n) = tally.get_mut(&value) {
        *n += 1;
    } else if tally.keys().filter(|k| !k.is_empty()).count() < TALLY {
        tally.insert(value, 1);
    } else {
        *tally.entry(String::new()).or_default() += 1;
    }
}

/// Most frequent first, "others" last.
fn ranked(tally: &BTreeMap<String, u32>) -> Vec<(String, u32)> {
    let mut list: Vec<(String, u32)> = tally.iter().map(|(k, n)| (k.clone(), *n)).collect();
    list.sort_by(|a, b| {
        a.0.is_empty()
            .cmp(&b.0.is_empty())
            .then(b.1.cmp(&a.1))
            .then(a.0.cmp(&b.0))
    });
    list
}

/// What this execution environment remembers between invocations: the states it wrote last
/// (so a warm invocation reads nothing; S3's `If-Match` catches a stale one), the series whose
/// notice is behind, and when Slack has room again.
#[derive(Default)]
pub struct Local {
    inner: std::sync::Mutex<LocalInner>,
}

#[derive(Default)]
struct LocalInner {
    states: HashMap<String, (PersonSeries, String)>,
    behind: BTreeMap<String, Instant>,
    next_flush: Option<Instant>,
    last_post: HashMap<String, Instant>,
    /// Series whose last flush failed: not flushed again before its writes have settled (a
    /// `chat.update` that lands late must not overwrite a newer one).
    held: HashMap<String, Instant>,
}

impl Local {
    fn with<R>(&self, f: impl FnOnce(&mut LocalInner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn posted(&self, channel: &str) {
        self.with(|l| l.last_post.insert(channel.to_string(), Instant::now()));
    }

    fn post_room(&self, channel: &str) -> bool {
        self.with(|l| {
            l.last_post
                .get(channel)
                .is_none_or(|t| t.elapsed() >= POST_GAP)
        })
    }
}

/// This environment's memory of its series (held in [`App::memory`]).
fn local(app: &App) -> std::sync::Arc<Local> {
    app.memory.of::<Local>()
}

/// Time between two flushes (each up to two `chat.update` calls) that keeps within
/// `SLACK_TIER3_PER_MINUTE`.
pub fn flush_gap(app: &App) -> Duration {
    Duration::from_secs_f64(2.0 * 60.0 / app.config.tier3_per_minute.max(1) as f64)
}

/// The key of a person's series: a digest of (account, principal, outcome, group of kinds).
fn series_key(payload: &NoticePayload) -> String {
    use sha2::Digest;
    let (account, principal, failed, group) = payload.coalesce_key();
    let digest = sha2::Sha256::digest(format!("{account}\n{principal}\n{failed}\n{group}"));
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The person's series and the ETag they were read at; `fresh` reads S3 even when this
/// environment remembers them (the third value says whether the memory was used).
async fn load(
    app: &App,
    archive: &Archive,
    key: &str,
    fresh: bool,
) -> Result<(PersonSeries, Option<String>, bool), Error> {
    if !fresh {
        if let Some((person, etag)) = local(app).with(|l| l.states.get(key).cloned()) {
            return Ok((person, Some(etag), true));
        }
    }
    Ok(match archive.get_series::<PersonSeries>(key).await? {
        Some((person, etag)) => {
            local(app).with(|l| {
                l.states
                    .insert(key.to_string(), (person.clone(), etag.clone()))
            });
            (person, Some(etag), false)
        }
        None => {
            local(app).with(|l| l.states.remove(key));
            (PersonSeries::default(), None, false)
        }
    })
}

/// Writes `threads` if it is still the version read; `false`: it was not (the memory is
/// dropped, and the caller starts over from a fresh read). A write whose outcome is unknown
/// drops the memory too.
async fn save(
    app: &App,
    archive: &Archive,
    key: &str,
    person: &PersonSeries,
    etag: &mut Option<String>,
) -> Result<bool, Error> {
    match archive.put_series(key, person, etag.as_deref()).await {
        Ok(Some(new)) => {
            *etag = Some(new.clone());
            local(app).with(|l| l.states.insert(key.to_string(), (person.clone(), new)));
            Ok(true)
        }
        Ok(None) => {
            local(app).with(|l| l.states.remove(key));
            Ok(false)
        }
        Err(e) => {
            local(app).with(|l| l.states.remove(key));
            Err(e.into())
        }
    }
}

/// Notes that the person's notices are behind their state. `became` (the state was caught up
/// before this change) writes the S3 marker the scheduled catch-up lists, whatever this
/// environment remembers: another one's catch-up may have cleared it.
async fn mark_behind(app: &App, archive: &Archive, key: &str, became: bool) -> Result<(), Error> {
    let known = local(app).with(|l| l.behind.contains_key(key));
    if became || !known {
        archive.mark_behind(key).await?;
    }
    local(app).with(|l| *l.behind.entry(key.to_string()).or_insert_with(Instant::now));
    Ok(())
}

/// Records `u` (already written to the ledger, `created` says whether just now) and brings
/// Slack up to date as far as its limits allow.
pub async fn record(
    app: &App,
    archive: &Archive,
    u: &PrivilegedUse,
    created: Created,
    deadline: Instant,
) -> Result<Delivery, Error> {
    let ours = render::notice_payload(u);
    let key = series_key(&ours);
    let ous = app.org_units_of(&u.account_id).await;
    let channel = app.config.channel_for(&u.account_id, &ous);
    let window = app.config.coalesce_window.as_secs() as i64;
    let id = event_key(&u.event_id);
    let mut attempts = 0;
    let mut made_room = false;
    let delivery = loop {
        attempts += 1;
        if attempts > 3 {
            return Err(Error::Conflict(key));
        }
        let (mut person, mut etag, remembered) = load(app, archive, &key, attempts > 1).await?;
        // Counted already, in whichever series (one that takes no more uses included)?
        if let Some(j) = person.series.iter().position(|s| s.holds(&id)) {
            break complete_retry(app, archive, &key, (person, j, etag), u, deadline).await?;
        }
        if created == Created::AlreadyThere {
            if let Some(notice_ts) = archive
                .retired_holder::<SeriesState>(&key, |s| s.holds(&id))
                .await?
                .and_then(|s| Ts::new(&s.notice_ts))
            {
                break counted(notice_ts, true);
            }
        }
        let found = person
            .series
            .iter()
            .position(|s| s.takes(channel, ours.event_time, window));
        let Some(i) = found else {
            if remembered {
                // A notice is about to be posted: decide on what S3 holds, not on memory.
                continue;
            }
            if person.full() && !made_room {
                // The series that makes room catches up first: its notice is not left behind.
                made_room = true;
                match flush_held(app, archive, &key, deadline).await {
                    Ok(()) => continue,
                    Err(e) => {
                        tracing::warn!(series = %key, error = %e, "an older series could not catch up; keeping it beside the new one")
                    }
                }
            }
            // A new series: the notice at once, as without the archive (which also finds the
            // notice of an earlier attempt, or a notice to join).
            let delivery = deliver::deliver(app, u, deadline).await?;
            local(app).posted(channel);
            if let Some(notice) = &delivery.notice {
                let known = person
                    .series
                    .iter()
                    .any(|s| s.notice_ts == delivery.notice_ts.as_str());
                if !known {
                    let state = SeriesState::from_notice(channel, &delivery.notice_ts, notice, u);
                    for retired in person.push(state) {
                        archive
                            .put_retired(&key, &retired.notice_ts, &retired)
                            .await?;
                    }
                    if !save(app, archive, &key, &person, &mut etag).await? {
                        continue;
                    }
                }
            }
            break delivery;
        };
        let state = &mut person.series[i];
        let notice_ts = Ts::new(&state.notice_ts).expect("takes() checked it");
        let was_behind = state.behind();
        state.add(u);
        // Lines one by one only before the summary line: the thread reads in order.
        let own_line = state.lines < LINES
            && !state.summary_sent
            && state.summary_ts.is_empty()
            && local(app).post_room(channel);
        if own_line {
            state.lines_owed.push(id.clone());
        }
        if !save(app, archive, &key, &person, &mut etag).await? {
            continue;
        }
        if own_line {
            post_owed_line(app, archive, &key, (person, i, etag), u, false, deadline).await?;
        }
        mark_behind(app, archive, &key, !was_behind).await?;
        break counted(notice_ts, false);
    };
    flush_if_due(app, archive, deadline).await;
    Ok(delivery)
}

/// A retry of an event already counted in series `j`: only its ask (if it began the series)
/// or a line it was promised may be missing.
async fn complete_retry(
    app: &App,
    archive: &Archive,
    key: &str,
    (mut person, j, mut etag): (PersonSeries, usize, Option<String>),
    u: &PrivilegedUse,
    deadline: Instant,
) -> Result<Delivery, Error> {
    let id = event_key(&u.event_id);
    let state = &mut person.series[j];
    let notice_ts = Ts::new(&state.notice_ts).unwrap_or_else(|| Ts::from_seconds(0));
    if state.gone {
        return Ok(counted(notice_ts, true));
    }
    if !state.asked && state.event_ids.first() == Some(&id) {
        deliver::deliver(app, u, deadline).await?;
        state.asked = true;
        save(app, archive, key, &person, &mut etag).await?;
    } else if state.lines_owed.contains(&id) {
        post_owed_line(app, archive, key, (person, j, etag), u, true, deadline).await?;
    }
    Ok(counted(notice_ts, true))
}

fn counted(notice_ts: Ts, already: bool) -> Delivery {
    Delivery {
        notice_ts,
        notice_existed: already,
        reply_existed: already,
        coalesced: true,
        mention: "none",
        notice: None,
    }
}

/// Posts `u`'s promised line into series `i` (on a retry, looking first whether the earlier
/// attempt posted it). A notice deleted in Slack ends the series instead: the use stays counted
/// there and in the archive.
async fn post_owed_line(
    app: &App,
    archive: &Archive,
    key: &str,
    (mut person, i, mut etag): (PersonSeries, usize, Option<String>),
    u: &PrivilegedUse,
    retry: bool,
    deadline: Instant,
) -> Result<(), Error> {
    let channel = person.series[i].channel.clone();
    let notice_ts = Ts::new(&person.series[i].notice_ts).expect("a series has a notice");
    let posted = app
        .with_session(&channel, deadline, async |cx| {
            let already = match retry {
                true => deliver::find_line(cx, &notice_ts, &u.event_id).await?,
                false => None,
            };
            if already.is_none() {
                let wording = &*app.wording().await;
                let line = render::render_repeat_line(u, wording);
                deliver::post_line(cx, &notice_ts, &u.event_id, &line).await?;
                local(app).posted(&channel);
            }
            Ok(())
        })
        .await;
    let id = event_key(&u.event_id);
    let state = &mut person.series[i];
    match posted {
        Ok(()) => state.lines += 1,
        Err(e) if e.is_gone() => {
            tracing::error!(series = %key, error = %e, "the notice of a series was deleted in Slack; its uses stay in the archive, and the person's next use starts a new notice");
            state.gone = true;
        }
        Err(e) => return Err(e),
    }
    state.lines_owed.retain(|owed| *owed != id);
    save(app, archive, key, &person, &mut etag).await?;
    Ok(())
}

/// One flush, if Slack has room for it and a person is behind: the one behind longest. A
/// failure is logged and left for the next flush (this invocation's own event is recorded).
async fn flush_if_due(app: &App, archive: &Archive, deadline: Instant) {
    let now = Instant::now();
    let next = local(app).with(|l| {
        if l.next_flush.is_some_and(|t| t > now) {
            return None;
        }
        l.behind
            .iter()
            .filter(|(k, _)| l.held.get(*k).is_none_or(|t| *t <= now))
            .min_by_key(|(_, since)| **since)
            .map(|(k, _)| k.clone())
    });
    let Some(key) = next else { return };
    local(app).with(|l| l.next_flush = Some(now + flush_gap(app)));
    if let Err(error) = flush_held(app, archive, &key, deadline).await {
        tracing::warn!(series = %key, %error, "a series' notice could not catch up yet; the next flush tries again");
    }
}

/// [`flush`], holding the person back for the settle time when it fails.
async fn flush_held(
    app: &App,
    archive: &Archive,
    key: &str,
    deadline: Instant,
) -> Result<(), Error> {
    let result = flush(app, archive, key, deadline).await;
    if result.is_err() {
        let until = Instant::now() + app.slack.write_settle();
        local(app).with(|l| l.held.insert(key.to_string(), until));
    }
    result
}

/// What the scheduled catch-up did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CatchUpReport {
    pub flushed: usize,
    pub left: usize,
}

/// The scheduled catch-up: every person marked behind (in S3, whichever environment marked
/// it) is flushed, paced to `SLACK_TIER3_PER_MINUTE`, within a bounded time. What is left waits
/// for the next minute; a flush that fails fails the invocation (after the others had their
/// turn).
pub async fn catch_up(app: &App, deadline: Instant) -> Result<CatchUpReport, Error> {
    let Some(archive) = &app.archive else {
        return Ok(CatchUpReport::default());
    };
    // `session-…` markers are admin sessions' activity lines (`notify::activity`).
    let mut keys: Vec<String> = archive
        .behind()
        .await?
        .into_iter()
        .filter(|k| !k.starts_with("session-"))
        .collect();
    let started = Instant::now();
    let mut report = CatchUpReport::default();
    let mut failure = None;
    keys.sort();
    keys.dedup();
    for (i, key) in keys.iter().enumerate() {
        let wait = local(app).with(|l| {
            let next = l.next_flush.unwrap_or(started);
            l.held.get(key).map_or(next, |held| next.max(*held))
        });
        if wait + CATCH_UP_MARGIN >= deadline || wait >= started + CATCH_UP_BUDGET {
            report.left = keys.len() - i;
            break;
        }
        tokio::time::sleep_until(wait).await;
        local(app).with(|l| l.next_flush = Some(Instant::now() + flush_gap(app)));
        match flush_held(app, archive, key, deadline).await {
            Ok(()) => report.flushed += 1,
            Err(e) => {
                tracing::error!(series = %key, error = %e, "a series' notice could not catch up");
                failure = Some(e);
            }
        }
    }
    tracing::info!(
        flushed = report.flushed,
        left = report.left,
        outcome = "caught_up",
        "scheduled catch-up"
    );
    match failure {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Brings every series of one person that is behind (its notice's count and time range, its
/// summary line) up to its state, read fresh from S3. A series Slack refuses for good (the
/// notice deleted, the channel archived) ends there, logged, instead of failing every flush.
async fn flush(app: &App, archive: &Archive, key: &str, deadline: Instant) -> Result<(), Error> {
    let (mut person, mut etag, _) = load(app, archive, key, true).await?;
    if etag.is_none() || !person.behind() {
        return clear_behind(app, archive, key).await;
    }
    let wording = &*app.wording().await;
    for i in 0..person.series.len() {
        if !person.series[i].behind() {
            continue;
        }
        let shown = person.series[i].count;
        let channel = person.series[i].channel.clone();
        let flushed = app
            .with_session(&channel, deadline, async |cx| {
                flush_series(cx, archive, key, (&mut person, i, &mut etag), wording).await
            })
            .await;
        match flushed {
            Ok(()) => {}
            Err(Error::Slack(e)) if !e.is_transient() && !e.is_auth() => {
                tracing::error!(series = %key, error = %e, "Slack refuses a series' notice for good; the series ends there (its uses stay in the archive)");
                person.series[i].gone = true;
            }
            Err(e) => return Err(e),
        }
        let state = &mut person.series[i];
        state.shown = shown;
        // Lines promised by attempts that never came back are not owed any more: their uses
        // are in the count and the summary.
        state.lines_owed.clear();
        if !save(app, archive, key, &person, &mut etag).await? {
            return Err(Error::Conflict(key.to_string()));
        }
    }
    if !person.behind() {
        clear_behind(app, archive, key).await?;
    }
    Ok(())
}

/// One series' notice and summary line, brought up to its state.
async fn flush_series(
    cx: &Session<'_>,
    archive: &Archive,
    key: &str,
    (person, i, etag): (&mut PersonSeries, usize, &mut Option<String>),
    wording: &crate::message::wording::Wording,
) -> Result<(), Error> {
    let state = &person.series[i];
    let Some(notice_ts) = Ts::new(&state.notice_ts) else {
        return Ok(());
    };
    let notice = read_thread_head(cx, &notice_ts).await?;
    let Some((notice, mut payload)) = notice.and_then(|n| {
        let payload = payload_of::<NoticePayload>(&n.raw, NOTICE_EVENT_TYPE)?;
        Some((n, payload))
    }) else {
        tracing::error!(series = %key, notice_ts = %notice_ts, "the notice of a series was deleted in Slack (or its metadata is unreadable); its uses stay in the archive, and the person's next use starts a new notice");
        person.series[i].gone = true;
        return Ok(());
    };
    payload.count = state.count;
    payload.event_time = match payload.event_time {
        0 => state.first_time,
        t => t.min(state.first_time),
    };
    payload.last_time = payload.last_time.max(state.last_time);
    payload.event_ids = state.notice_ids();
    for session in &state.sessions {
        payload.add_session(Some(session));
    }
    let update =
        render::render_count_update(cx.channel, &notice.raw, &payload, Shown::Summed, wording);
    cx.app
        .slack
        .update_message(cx.token.expose(), &update, cx.deadline)
        .await?;
    if state.count > state.lines {
        write_summary(cx, archive, (key, i, &notice_ts), person, etag, wording).await?;
    }
    Ok(())
}

async fn clear_behind(app: &App, archive: &Archive, key: &str) -> Result<(), Error> {
    archive.clear_behind(key).await?;
    local(app).with(|l| l.behind.remove(key));
    Ok(())
}

/// Posts series `i`'s summary line once, or rewrites it.
async fn write_summary(
    cx: &Session<'_>,
    archive: &Archive,
    (key, i, notice_ts): (&str, usize, &Ts),
    person: &mut PersonSeries,
    etag: &mut Option<String>,
    wording: &crate::message::wording::Wording,
) -> Result<(), Error> {
    let state = &person.series[i];
    let (kinds, source_ips, user_agents) = (
        ranked(&state.kinds),
        ranked(&state.source_ips),
        ranked(&state.user_agents),
    );
    let series = Series {
        count: state.count,
        lines: state.lines,
        first: state.first_time,
        last: state.last_time,
        kinds: &kinds,
        source_ips: &source_ips,
        user_agents: &user_agents,
    };
    let line = render::render_rolling(&series, wording);
    let now = chrono::Utc::now().timestamp();
    if state.summary_ts.is_empty() && state.summary_sent {
        match find_summary(cx, notice_ts).await? {
            Some(found) => person.series[i].summary_ts = found.to_string(),
            // Sent, not seen yet: not sent again before Slack can no longer carry it out.
            None if now < state.summary_sent_at + cx.app.slack.write_settle().as_secs() as i64 => {
                return Err(Error::Slack(SlackError::Unconfirmed {
                    method: "chat.postMessage",
                    detail: "a summary line sent earlier may still land".into(),
                }));
            }
            None => {}
        }
    }
    if let Some(ts) = Ts::new(&person.series[i].summary_ts) {
        let body = line.to_update_body(cx.channel, &ts);
        match cx
            .app
            .slack
            .update_message(cx.token.expose(), &body, cx.deadline)
            .await
        {
            Ok(()) => return Ok(()),
            // Someone deleted the summary line: a new one follows.
            Err(e) if e.is_gone() => person.series[i].summary_ts.clear(),
            Err(e) => return Err(e.into()),
        }
    }
    // Announced before it is sent: a crash after the post finds it instead of posting twice.
    person.series[i].summary_sent = true;
    person.series[i].summary_sent_at = now;
    if !save(cx.app, archive, key, person, etag).await? {
        return Err(Error::Conflict(key.to_string()));
    }
    let ts = crate::channel::post_in_thread(cx, notice_ts, &line, || find_summary(cx, notice_ts))
        .await?;
    local(cx.app).posted(cx.channel);
    person.series[i].summary_ts = ts.to_string();
    Ok(())
}

/// The notice itself, read with `conversations.replies` (the thread's first message): another
/// Tier 3 budget than the history searches new notices need.
async fn read_thread_head(
    cx: &Session<'_>,
    notice_ts: &Ts,
) -> Result<Option<FoundMessage>, SlackError> {
    let mut pages = cx
        .app
        .slack
        .replies(cx.token.expose(), cx.channel, notice_ts, 1);
    let first = match pages.next(cx.deadline).await {
        Err(e) if e.is_gone() => return Ok(None),
        other => other?.unwrap_or_default(),
    };
    Ok(first
        .into_iter()
        .find(|m| m.ts == *notice_ts && m.posted_by(cx.bot)))
}

async fn find_summary(cx: &Session<'_>, notice_ts: &Ts) -> Result<Option<Ts>, SlackError> {
    let found = crate::channel::find_reply(cx, notice_ts, SUMMARY_EVENT_TYPE, |_| true).await?;
    Ok(found.map(|m| m.ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_stay_bounded_and_rank_others_last() {
        let mut tally = BTreeMap::new();
        for (value, n) in [
            ("a", 3),
            ("b", 5),
            ("c", 1),
            ("d", 1),
            ("e", 1),
            ("f", 1),
            ("g", 2),
            ("h", 1),
        ] {
            for _ in 0..n {
                count_in(&mut tally, value);
            }
        }
        assert_eq!(tally.len(), TALLY + 1);
        let list = ranked(&tally);
        assert_eq!(list[0], ("b".to_string(), 5));
        assert_eq!(list.last().unwrap(), &(String::new(), 3));
        assert_eq!(list.iter().map(|(_, n)| n).sum::<u32>(), 15);
    }

    fn series(ts: &str, last_time: i64, count: u32, shown: u32) -> SeriesState {
        SeriesState {
            channel: "C1".into(),
            notice_ts: ts.into(),
            first_time: last_time - 10,
            last_time,
            count,
            shown,
            event_ids: (0..count).map(|i| format!("{ts}-{i}")).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_least_recent_caught_up_series_retires_and_a_behind_one_stays() {
        let mut person = PersonSeries::default();
        for (i, t) in [500, 100, 300, 400].iter().enumerate() {
            let behind = i == 1; // the least recent is behind: it stays
            let s = series(&format!("{i}.000001"), *t, 3, if behind { 2 } else { 3 });
            assert!(person.push(s).is_empty());
        }
        let retired = person.push(series("9.000001", 900, 1, 1));
        assert_eq!(retired.len(), 1);
        assert_eq!(retired[0].last_time, 300, "the least recent caught-up one");
        assert_eq!(person.series.len(), MAX_SERIES);
        assert!(person.series.iter().any(|s| s.last_time == 100));
    }

    #[test]
    fn a_series_takes_no_use_once_ended_or_full() {
        let mut s = series("1.000001", 1000, 3, 3);
        assert!(s.takes("C1", 1005, 900));
        assert!(!s.takes("C2", 1005, 900), "another channel");
        assert!(!s.takes("C1", 3000, 900), "outside the window");
        s.gone = true;
        assert!(!s.takes("C1", 1005, 900), "its notice was deleted");
        let full = series("2.000001", 1000, MAX_IDS as u32, MAX_IDS as u32);
        assert!(
            !full.takes("C1", 1005, 900),
            "every ID listed: a new series"
        );
    }

    #[test]
    fn the_notice_keeps_the_first_and_the_latest_ids() {
        let state = SeriesState {
            event_ids: (0..500).map(|i| format!("e{i}")).collect(),
            ..Default::default()
        };
        let ids = state.notice_ids();
        assert_eq!(ids.len(), MAX_EVENT_IDS);
        assert_eq!(ids[0], "e0");
        assert_eq!(ids[1], "e301");
        assert_eq!(ids.last().unwrap(), "e499");
    }
}
