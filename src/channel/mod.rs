//! I/O. The Slack channel as privwatch's store, written once so every job finds and writes the
//! same way.
//!
//! Two rules hold everywhere, and live only here:
//! - **Only privwatch's bot user makes a message privwatch's** ([`FoundMessage::posted_by`]):
//!   another app's message carrying the same metadata neither blocks a post nor counts as one,
//!   and a person's reply is never read as a flag.
//! - **Look before you write again** ([`write_once`]): a write whose answer was lost may still
//!   land, so it is looked for until it can no longer land, and sent again only then.

use crate::app::Session;
use crate::message::metadata::{payload_of, NoticePayload, NOTICE_EVENT_TYPE};
use crate::message::render::{self, Message};
use crate::slack::{FoundMessage, Pages, SlackError, Ts};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;
use tokio::time::Instant;

/// How many pages of a thread a look reads at most.
pub const MAX_THREAD_PAGES: u32 = 100;
/// A write's fate is looked for at most this many rounds of sending.
const MAX_WRITE_ROUNDS: u32 = 2;
/// Kept back from the deadline: a look must end before the invocation does.
const LOOK_MARGIN: Duration = Duration::from_millis(300);

/// privwatch's own notices in the channel, newest first, a page at a time. A message that is not
/// the bot's, or carries no notice metadata, is not one; a page Slack hands twice adds nothing.
pub struct OurNotices<'a> {
    pages: Pages<'a>,
    cx: &'a Session<'a>,
    seen: HashSet<Ts>,
}

impl<'a> OurNotices<'a> {
    /// The next page's notices (`None` at the end of the walk).
    pub async fn next(&mut self) -> Result<Option<Vec<(FoundMessage, NoticePayload)>>, SlackError> {
        let Some(messages) = self.pages.next(self.cx.deadline).await? else {
            return Ok(None);
        };
        let mut notices = Vec::new();
        for message in messages {
            if !message.posted_by(self.cx.bot) || !self.seen.insert(message.ts.clone()) {
                continue;
            }
            if let Some(payload) = payload_of::<NoticePayload>(&message.raw, NOTICE_EVENT_TYPE) {
                notices.push((message, payload));
            }
        }
        Ok(Some(notices))
    }

    /// Why the walk ended before the end of its range, if it did.
    pub fn stopped_early(&self) -> Option<&str> {
        self.pages.stopped_early()
    }

    /// The walk reached the end of its range (so a notice it did not find is not there).
    pub fn require_complete(&self) -> Result<(), SlackError> {
        self.pages.require_complete()
    }
}

/// Walks privwatch's notices posted since `oldest` (all of the history without it).
pub fn our_notices<'a>(cx: &'a Session<'a>, oldest: Option<&Ts>, max_pages: u32) -> OurNotices<'a> {
    OurNotices {
        pages: cx
            .app
            .slack
            .history(cx.token.expose(), cx.channel, oldest, None, max_pages),
        cx,
        seen: HashSet::new(),
    }
}

/// One notice of privwatch's, read again now (`None`: gone, or not privwatch's).
pub async fn our_notice(
    cx: &Session<'_>,
    ts: &Ts,
) -> Result<Option<(FoundMessage, NoticePayload)>, SlackError> {
    let found = cx
        .app
        .slack
        .message(cx.token.expose(), cx.channel, ts, cx.deadline)
        .await?;
    Ok(found.filter(|m| m.posted_by(cx.bot)).and_then(|m| {
        let payload = payload_of::<NoticePayload>(&m.raw, NOTICE_EVENT_TYPE)?;
        Some((m, payload))
    }))
}

/// privwatch's first reply of `event_type` in a thread for which `matches` holds.
pub async fn find_reply(
    cx: &Session<'_>,
    thread_ts: &Ts,
    event_type: &str,
    matches: impl Fn(&FoundMessage) -> bool,
) -> Result<Option<FoundMessage>, SlackError> {
    cx.app
        .slack
        .replies(cx.token.expose(), cx.channel, thread_ts, MAX_THREAD_PAGES)
        .find(cx.deadline, |m| {
            m.posted_by(cx.bot) && m.raw["metadata"]["event_type"] == event_type && matches(m)
        })
        .await
}

/// A thread as read: its messages, and why the read stopped before the end, if it did.
pub struct Thread {
    pub messages: Vec<Value>,
    pub incomplete: Option<SlackError>,
}

/// The whole thread of a notice, up to `max_pages` pages (as far as Slack lets it be read: see
/// [`Thread::incomplete`]).
pub async fn whole_thread(
    cx: &Session<'_>,
    thread_ts: &Ts,
    max_pages: u32,
) -> Result<Thread, SlackError> {
    let mut pages = cx
        .app
        .slack
        .replies(cx.token.expose(), cx.channel, thread_ts, max_pages);
    let mut messages = Vec::new();
    while let Some(page) = pages.next(cx.deadline).await? {
        messages.extend(page.into_iter().map(|m| m.raw));
    }
    Ok(Thread {
        messages,
        incomplete: pages.require_complete().err(),
    })
}

/// Posts `message` into the thread of `notice_ts` exactly once; `find` looks for it.
pub async fn post_in_thread<C, CF>(
    cx: &Session<'_>,
    notice_ts: &Ts,
    message: &Message,
    find: C,
) -> Result<Ts, SlackError>
where
    C: Fn() -> CF,
    CF: std::future::Future<Output = Result<Option<Ts>, SlackError>>,
{
    let body = message.to_post_body(cx.channel, Some(notice_ts));
    write_once(
        cx.app.slack.write_settle(),
        cx.deadline,
        || {
            cx.app
                .slack
                .post_message(cx.token.expose(), &body, cx.deadline)
        },
        find,
    )
    .await
}

/// One reply of `event_type` in a notice's thread, unless `thread` (as just read) holds one:
/// `Some(true)` posted now, `Some(false)` there already, `None` not known to have landed (the next
/// sweep reads the thread again and looks).
pub async fn reply_once(
    cx: &Session<'_>,
    notice_ts: &Ts,
    thread: &[Value],
    event_type: &str,
    message: impl FnOnce() -> Message,
) -> Result<Option<bool>, SlackError> {
    let there = thread.iter().any(|m| {
        m["user"].as_str() == Some(cx.bot.0.as_str()) && m["metadata"]["event_type"] == event_type
    });
    if there {
        return Ok(Some(false));
    }
    let body = message().to_post_body(cx.channel, Some(notice_ts));
    match cx
        .app
        .slack
        .post_message(cx.token.expose(), &body, cx.deadline)
        .await
    {
        Ok(_) => Ok(Some(true)),
        Err(SlackError::Unconfirmed { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a flag write must be confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// An unconfirmed update counts as done: the next sweep sets the flag again if it did not
    /// land.
    Lenient,
    /// An unconfirmed update fails, so that Lambda's retry sets it (nothing else would).
    Required,
}

/// Sets a flag in a notice's metadata. The notice is read again first, so an event ID a
/// coalescing update added since it was last read is kept (a notice that is gone is left alone).
/// Setting a flag twice is harmless.
pub async fn save_flags(
    cx: &Session<'_>,
    notice_ts: &Ts,
    confirm: Confirm,
    set: impl FnOnce(&mut NoticePayload),
) -> Result<(), SlackError> {
    let Some((current, mut payload)) = our_notice(cx, notice_ts).await? else {
        return Ok(());
    };
    set(&mut payload);
    let body = render::render_metadata_update(cx.channel, &current.raw, &payload);
    match cx
        .app
        .slack
        .update_message(cx.token.expose(), &body, cx.deadline)
        .await
    {
        Err(SlackError::Unconfirmed { .. }) if confirm == Confirm::Lenient => Ok(()),
        other => other,
    }
}

/// Runs a write exactly once. When its fate is unknown (timeout, dropped connection, 5xx), it
/// looks for the write until Slack can no longer carry it out (`settle` after sending) and sends
/// it again only then. If the deadline comes first, the invocation fails without a second copy:
/// Lambda's retry comes later than `settle` and looks first.
pub async fn write_once<W, WF, C, CF>(
    settle: Duration,
    deadline: Instant,
    write: W,
    check: C,
) -> Result<Ts, SlackError>
where
    W: Fn() -> WF,
    WF: std::future::Future<Output = Result<Ts, SlackError>>,
    C: Fn() -> CF,
    CF: std::future::Future<Output = Result<Option<Ts>, SlackError>>,
{
    let mut round = 1;
    loop {
        let (method, detail) = match write().await {
            Err(SlackError::Unconfirmed { method, detail }) => (method, detail),
            other => return other,
        };
        tracing::warn!(method, reason = %detail, round, "Slack did not confirm a write; looking whether it landed");
        // Counted from now, not from the first send: the client may have re-sent the write
        // (after a 429) moments before it went unanswered.
        let settled = Instant::now() + settle;
        let mut pause = Duration::from_millis(250);
        loop {
            // Only a look that started after the settle time proves the write will not land.
            let started = Instant::now();
            if let Some(ts) = check().await? {
                return Ok(ts);
            }
            if started >= settled {
                break;
            }
            let next = (Instant::now() + pause).min(settled);
            if next + LOOK_MARGIN >= deadline {
                tracing::warn!(method, "a write's fate is still unknown at the deadline; failing so that Lambda's retry looks first");
                return Err(SlackError::Unconfirmed {
                    method,
                    detail: format!("{detail}; not seen within the time left, and not sent twice"),
                });
            }
            tokio::time::sleep_until(next).await;
            pause = (pause * 2).min(Duration::from_secs(4));
        }
        if round >= MAX_WRITE_ROUNDS {
            return Err(SlackError::Unavailable {
                method,
                detail,
                attempts: round,
            });
        }
        tracing::warn!(
            method,
            "the write did not land within its settle time; sending it again"
        );
        round += 1;
    }
}
