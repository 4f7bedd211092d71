//! What a privileged session did, beside why: an admin session's write calls become one
//! **activity line** in the thread of the session's notice, kept current in place (the calls by
//! action with counts, the resources they named, the calls refused, first and last time), and
//! the notice says how many calls the session has made.
//!
//! A call finds its session's notice by the session (`event::session`: the assumed-role ARN and
//! its creation time, which the start's record and every call's carry), listed in the notice's
//! metadata. A call whose session privwatch never saw start (it began before privwatch listened,
//! or its record was lost) is delivered as a use of its own — "an admin session seen without its
//! start", asking the person the session is named after — and its later calls join that notice.
//!
//! Exactly once per call, on the conditions notices rest on (one invocation at a time; a write
//! looked for before it is repeated): without the archive the activity line's metadata is the
//! ledger (its latest event IDs; the line is rewritten whole, so an update that landed already
//! holds the call a retry brings again). With the archive (`ARCHIVE_BUCKET`) each call is first
//! archived (`activity/<event id>.json`, a conditional create), the session's state
//! (`sessions/<key>.json`, rewritten only if unchanged since read) counts it, and the line is
//! written at most once per [`flush_gap`] — a `terraform apply` of 500 calls a minute costs
//! about fifty `chat.update`s, not a thousand (`make bench`) — and the scheduled catch-up
//! (`behind/session-<key>`) brings a line left behind up to its state within a minute.

use crate::app::{App, Session};
use crate::aws::archive::{Archive, CallRecord};
use crate::channel::{find_reply, our_notice, our_notices, post_in_thread};
use crate::error::Error;
use crate::event::session::{self, Call, SessionRef};
use crate::event::PrivilegedUse;
use crate::message::metadata::{payload_of, ActivityPayload, ACTIVITY_EVENT_TYPE, ACTIVITY_IDS};
use crate::message::render;
use crate::notify::deliver;
use crate::notify::series::flush_gap;
use crate::slack::{SlackError, Ts};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use tokio::time::Instant;

/// Event IDs a session's state in the archive keeps (all of a long session's: a redelivery a day
/// later is still recognised).
const STATE_IDS: usize = 20_000;
/// How far before a session's creation its notice is looked for (a start recorded a little
/// before the session's own clock), beyond the coalescing window.
const SEARCH_BEFORE_SECS: i64 = 300;
/// History pages searched for a session's notice.
const MAX_SEARCH_PAGES: u32 = 250;
/// Time the scheduled catch-up leaves before its deadline.
const CATCH_UP_MARGIN: std::time::Duration = std::time::Duration::from_secs(3);

/// What one call led to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counted {
    pub notice_ts: Ts,
    /// The call was counted now (`false`: an earlier delivery counted it).
    pub counted: bool,
    /// The session had no notice: this call opened one ("seen without its start").
    pub opened: bool,
    /// The session's write calls so far.
    pub total: u32,
    /// The activity line was written now (with the archive it may wait for the catch-up).
    pub written: bool,
}

/// A session's state in the archive: its activity and where it is shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionState {
    pub activity: ActivityPayload,
    pub channel: String,
    pub notice_ts: String,
    pub line_ts: String,
    /// Calls the line shows (`activity.total` when it is current).
    pub shown: u32,
    /// Unix seconds of the line's last write.
    pub written_at: i64,
}

/// Where a session's notice and line are: channel, notice, line.
type Seen = (String, Ts, Option<Ts>);

/// Where this execution environment saw each session's notice and line.
#[derive(Default)]
pub struct Local(std::sync::Mutex<HashMap<String, Seen>>);

impl Local {
    fn get(&self, session: &SessionRef, channel: &str) -> Option<(Ts, Option<Ts>)> {
        let held = self.0.lock().expect("not poisoned");
        held.get(&session.key())
            .filter(|(c, _, _)| c == channel)
            .map(|(_, notice, line)| (notice.clone(), line.clone()))
    }

    fn set(&self, session: &SessionRef, channel: &str, notice: &Ts, line: Option<&Ts>) {
        let mut held = self.0.lock().expect("not poisoned");
        if held.len() > 1_000 {
            held.clear();
        }
        held.insert(
            session.key(),
            (channel.to_string(), notice.clone(), line.cloned()),
        );
    }

    fn forget(&self, session: &SessionRef) {
        self.0.lock().expect("not poisoned").remove(&session.key());
    }
}

/// Counts one call of an admin session (`u`, of kind `admin_session`; `detail` its record).
pub async fn record(
    app: &App,
    u: &PrivilegedUse,
    detail: &Value,
    deadline: Instant,
) -> Result<Counted, Error> {
    let Some(session) = u.session.clone() else {
        // The rule delivers assumed roles' calls only: a record without its session's ARN cannot
        // be joined, and is reported as a use of its own.
        let delivery = deliver::deliver(app, u, deadline).await?;
        return Ok(Counted {
            notice_ts: delivery.notice_ts,
            counted: false,
            opened: true,
            total: 0,
            written: false,
        });
    };
    let call = session::call(detail, &u.event_id);
    let ous = app.org_units_of(&u.account_id).await;
    let channel = app.config.channel_for(&u.account_id, &ous).to_string();
    match &app.archive {
        Some(archive) => {
            archive.put_call(&call_record(u, &session, &call)).await?;
            let place = Place {
                channel: &channel,
                detail,
                deadline,
            };
            with_archive(app, archive, u, &session, &call, place).await
        }
        None => {
            app.with_session(&channel, deadline, async |cx| {
                let counted = in_slack(cx, u, detail, &session, &call).await;
                if counted.is_err() {
                    app.memory.of::<Local>().forget(&session);
                }
                counted
            })
            .await
        }
    }
}

fn call_record(u: &PrivilegedUse, session: &SessionRef, call: &Call) -> CallRecord {
    CallRecord {
        event_id: call.event_id.clone(),
        session: session.arn.clone(),
        session_created: session.created,
        account: u.account_id.clone(),
        action: call.action.clone(),
        resources: call.resources.clone(),
        error: call.error.clone(),
        time: chrono::DateTime::from_timestamp(call.time, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
        archived_at: chrono::Utc::now().timestamp(),
    }
}

/// The session's notice: remembered, found by its session (or by this very event, a notice
/// this call opened on an earlier attempt), or opened now. `bool`: opened now.
async fn notice_of(
    cx: &Session<'_>,
    u: &PrivilegedUse,
    detail: &Value,
    session: &SessionRef,
) -> Result<(Ts, bool), Error> {
    let since = match session.created {
        0 => u.time.map_or(0, |t| t.timestamp()),
        created => created,
    } - SEARCH_BEFORE_SECS
        // A start may have joined an older notice of the same person (coalescing).
        - cx.app.config.coalesce_window.as_secs() as i64;
    let oldest = Ts::from_seconds(since.max(0));
    let mut notices = our_notices(cx, Some(&oldest), MAX_SEARCH_PAGES);
    while let Some(page) = notices.next().await? {
        if let Some((found, _)) = page
            .into_iter()
            .find(|(_, p)| p.has_session(session) || p.holds(&u.event_id))
        {
            return Ok((found.ts, false));
        }
    }
    notices.require_complete()?;
    // A notice of its own: a use like any other, so the archive's ledger holds it first.
    if let Some(archive) = &cx.app.archive {
        archive.put_use(&super::use_record(u, detail)).await?;
    }
    let delivery = deliver::deliver_in(cx, u).await?;
    Ok((delivery.notice_ts, !delivery.notice_existed))
}

/// The session's activity line in its notice's thread, if it has one.
async fn line_of(
    cx: &Session<'_>,
    notice_ts: &Ts,
    session: &SessionRef,
) -> Result<Option<(Ts, ActivityPayload)>, SlackError> {
    let found = find_reply(cx, notice_ts, ACTIVITY_EVENT_TYPE, |m| {
        payload_of::<ActivityPayload>(&m.raw, ACTIVITY_EVENT_TYPE)
            .is_some_and(|a| a.session.is(session))
    })
    .await?;
    Ok(found.and_then(|m| {
        let payload = payload_of::<ActivityPayload>(&m.raw, ACTIVITY_EVENT_TYPE)?;
        Some((m.ts, payload))
    }))
}

/// Writes the line as `activity` says (posted once, or updated in place) and the notice's count.
async fn write_line(
    cx: &Session<'_>,
    notice_ts: &Ts,
    line_ts: Option<&Ts>,
    activity: &ActivityPayload,
) -> Result<Ts, SlackError> {
    let (slack, token) = (&cx.app.slack, cx.token.expose());
    let wording = &*cx.app.wording().await;
    let line_ts = match line_ts {
        Some(ts) => {
            let body = render::render_activity_update(cx.channel, ts, activity, wording);
            slack.update_message(token, &body, cx.deadline).await?;
            ts.clone()
        }
        None => {
            let message = render::render_activity_line(activity, wording);
            post_in_thread(cx, notice_ts, &message, || async {
                Ok(line_of(cx, notice_ts, &activity.session)
                    .await?
                    .map(|(ts, _)| ts))
            })
            .await?
        }
    };
    if let Some((notice, _)) = our_notice(cx, notice_ts).await? {
        let body = render::render_notice_activity(cx.channel, &notice.raw, activity.total, wording);
        slack.update_message(token, &body, cx.deadline).await?;
    }
    Ok(line_ts)
}

/// Without the archive: the line's metadata is the ledger.
async fn in_slack(
    cx: &Session<'_>,
    u: &PrivilegedUse,
    detail: &Value,
    session: &SessionRef,
    call: &Call,
) -> Result<Counted, Error> {
    let local = cx.app.memory.of::<Local>();
    let (notice_ts, opened) = match local.get(session, cx.channel) {
        Some((notice, _)) => (notice, false),
        None => notice_of(cx, u, detail, session).await?,
    };
    let line = line_of(cx, &notice_ts, session).await?;
    let (line_ts, mut activity) = match line {
        Some((ts, activity)) => (Some(ts), activity),
        None => (None, ActivityPayload::new(session.clone())),
    };
    let counted = activity.add(call, ACTIVITY_IDS);
    let line_ts = match (counted, line_ts) {
        (false, Some(ts)) => ts,
        (_, ts) => write_line(cx, &notice_ts, ts.as_ref(), &activity).await?,
    };
    local.set(session, cx.channel, &notice_ts, Some(&line_ts));
    Ok(Counted {
        notice_ts,
        counted,
        opened,
        total: activity.total,
        written: counted,
    })
}

/// Where a call is shown, and by when.
struct Place<'a> {
    channel: &'a str,
    detail: &'a Value,
    deadline: Instant,
}

/// With the archive: the session's state in S3 counts the call; the line follows at Slack's
/// pace.
async fn with_archive(
    app: &App,
    archive: &Archive,
    u: &PrivilegedUse,
    session: &SessionRef,
    call: &Call,
    Place {
        channel,
        detail,
        deadline,
    }: Place<'_>,
) -> Result<Counted, Error> {
    let key = session.key();
    let (mut state, mut etag) = match archive.get_session::<SessionState>(&key).await? {
        Some((state, etag)) => (state, Some(etag)),
        None => (
            SessionState {
                activity: ActivityPayload::new(session.clone()),
                channel: channel.to_string(),
                ..SessionState::default()
            },
            None,
        ),
    };
    let counted = state.activity.add(call, STATE_IDS);
    let mut opened = false;
    if Ts::new(&state.notice_ts).is_none() {
        let (notice_ts, now_opened) = app
            .with_session(channel, deadline, async |cx| {
                notice_of(cx, u, detail, session).await
            })
            .await?;
        state.notice_ts = notice_ts.to_string();
        opened = now_opened;
    }
    if counted || etag.is_none() {
        etag = Some(save(archive, &key, &state, etag.as_deref()).await?);
    }
    let gap_ms = flush_gap(app).as_millis() as i64;
    let due = chrono::Utc::now().timestamp_millis() - state.written_at * 1000 >= gap_ms;
    let behind = state.shown < state.activity.total;
    let written = if behind {
        // Marked first: if Slack refuses the write through every retry, the catch-up still finds
        // the session (it clears the mark once the line is current).
        let marker = format!("session-{key}");
        archive.mark_behind(&marker).await?;
        if due || state.line_ts.is_empty() {
            flush_state(app, archive, &key, &mut state, etag, deadline).await?;
            archive.clear_behind(&marker).await?;
            true
        } else {
            false
        }
    } else {
        false
    };
    Ok(Counted {
        notice_ts: Ts::new(&state.notice_ts).expect("set above"),
        counted,
        opened,
        total: state.activity.total,
        written,
    })
}

async fn save(
    archive: &Archive,
    key: &str,
    state: &SessionState,
    etag: Option<&str>,
) -> Result<String, Error> {
    archive
        .put_session(key, state, etag)
        .await?
        .ok_or_else(|| Error::Conflict(format!("sessions/{key}")))
}

/// Brings a session's line and notice up to its state, and records that it did.
async fn flush_state(
    app: &App,
    archive: &Archive,
    key: &str,
    state: &mut SessionState,
    etag: Option<String>,
    deadline: Instant,
) -> Result<(), Error> {
    let (Some(notice_ts), channel) = (Ts::new(&state.notice_ts), state.channel.clone()) else {
        return Ok(());
    };
    let written = app
        .with_session(&channel, deadline, async |cx| {
            let line = match Ts::new(&state.line_ts) {
                Some(ts) => Some(ts),
                None => line_of(cx, &notice_ts, &state.activity.session)
                    .await?
                    .map(|(ts, _)| ts),
            };
            Ok(write_line(cx, &notice_ts, line.as_ref(), &state.activity).await?)
        })
        .await;
    let line_ts = match written {
        Ok(ts) => ts.to_string(),
        // The notice or its line deleted, the channel archived: Slack refuses for good. The
        // session's calls stay in the archive; its line ends there (logged) instead of failing
        // every call and every catch-up after it.
        Err(Error::Slack(e)) if !e.is_transient() && !e.is_auth() => {
            tracing::error!(session = %key, error = %e, "Slack refuses an admin session's activity line for good; its calls stay in the archive");
            String::new()
        }
        Err(e) => return Err(e),
    };
    state.line_ts = line_ts;
    state.shown = state.activity.total;
    state.written_at = chrono::Utc::now().timestamp();
    save(archive, key, state, etag.as_deref()).await?;
    Ok(())
}

/// What the scheduled catch-up did for sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CaughtUp {
    pub flushed: usize,
    pub left: usize,
}

/// The scheduled catch-up: every session whose line is behind its state is brought up to it,
/// paced to Slack's Tier 3 (one session per [`flush_gap`]).
pub async fn catch_up(app: &App, deadline: Instant) -> Result<CaughtUp, Error> {
    let Some(archive) = &app.archive else {
        return Ok(CaughtUp::default());
    };
    let mut keys: Vec<String> = archive
        .behind()
        .await?
        .into_iter()
        .filter_map(|k| k.strip_prefix("session-").map(str::to_string))
        .collect();
    keys.sort();
    keys.dedup();
    let mut report = CaughtUp::default();
    let mut failure = None;
    for (i, key) in keys.iter().enumerate() {
        if Instant::now() + flush_gap(app) + CATCH_UP_MARGIN >= deadline {
            report.left = keys.len() - i;
            break;
        }
        let flushed = async {
            if let Some((mut state, etag)) = archive.get_session::<SessionState>(key).await? {
                if state.shown < state.activity.total {
                    flush_state(app, archive, key, &mut state, Some(etag), deadline).await?;
                    return Ok::<bool, Error>(true);
                }
            }
            Ok(false)
        }
        .await;
        match flushed {
            Ok(true) => {
                report.flushed += 1;
                archive.clear_behind(&format!("session-{key}")).await?;
                if i + 1 < keys.len() {
                    tokio::time::sleep(flush_gap(app)).await;
                }
            }
            Ok(false) => archive.clear_behind(&format!("session-{key}")).await?,
            // One session's failure does not hold up the others; the invocation fails at the end
            // (its mark stays: the next catch-up tries again).
            Err(e) => {
                tracing::error!(session = %key, error = %e, "an admin session's line could not catch up");
                failure = Some(e);
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(report)
}
