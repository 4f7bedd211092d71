//! The orchestration of one privileged use: find an existing notice (dedupe) ∥ look up the
//! person → post the notice → post the thread reply. The only module that decides order and
//! concurrency, and the only one that talks to Slack for an event.
//!
//! Exactly once per CloudTrail event ID: every write is preceded by a look for what an earlier
//! attempt (or an earlier invocation) already posted, and a write whose fate is unknown
//! (timeout, dropped connection, 5xx) is followed by another look instead of a blind repeat.

use crate::detect::PrivilegedUse;
use crate::notice::{self, Mention, NOTICE_EVENT_TYPE, REPLY_EVENT_TYPE};
use crate::slack::{FoundMessage, SlackError};
use crate::token::BotToken;
use crate::App;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// How many times a write whose fate was unknown is checked and tried again in one invocation.
const MAX_WRITE_ROUNDS: u32 = 3;
/// History pages (of 200 messages) searched for an existing notice.
const MAX_HISTORY_PAGES: u32 = 10;

/// What one event led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub notice_ts: String,
    /// A notice for this event ID was already in the channel (an earlier attempt posted it).
    pub notice_existed: bool,
    /// The thread reply was already there too: nothing was posted.
    pub reply_existed: bool,
    /// `user` when the person was found in Slack, else `fallback`.
    pub mention: &'static str,
}

/// Delivers `u`, re-fetching the token once if Slack refuses it (the secret may have rotated).
pub async fn deliver(
    app: &App,
    u: &PrivilegedUse,
    deadline: Instant,
) -> Result<Delivery, crate::HandleError> {
    let token = app.tokens.get().await?;
    match deliver_with(app, &token, u, deadline).await {
        Err(e) if e.is_auth() => {
            tracing::warn!(event_id = %u.event_id, "Slack refused the bot token; fetching it again once");
            let fresh = app.tokens.refresh().await?;
            Ok(deliver_with(app, &fresh, u, deadline).await?)
        }
        other => Ok(other?),
    }
}

async fn deliver_with(
    app: &App,
    token: &BotToken,
    u: &PrivilegedUse,
    deadline: Instant,
) -> Result<Delivery, SlackError> {
    let (existing, mention) = tokio::join!(
        find_notice(app, token, u, deadline),
        mention_for(app, token, u, deadline)
    );
    let existing = existing?;
    let (mention, mention_kind) = mention?;

    let (notice_ts, notice_existed, reply_count) = match existing {
        Some(found) => (found.ts, true, found.reply_count),
        None => {
            let body = notice::render_notice(u, &app.config.wording)
                .to_post_body(&app.config.channel_id, None);
            let ts = write_once(
                || app.slack.post_message(token.expose(), &body, deadline),
                || async { Ok(find_notice(app, token, u, deadline).await?.map(|m| m.ts)) },
            )
            .await?;
            (ts, false, 0)
        }
    };

    if notice_existed
        && reply_count > 0
        && find_reply(app, token, &notice_ts, &u.event_id, deadline)
            .await?
            .is_some()
    {
        return Ok(Delivery {
            notice_ts,
            notice_existed,
            reply_existed: true,
            mention: mention_kind,
        });
    }

    let reply = notice::render_reply(u, &mention, &app.config.wording)
        .to_post_body(&app.config.channel_id, Some(&notice_ts));
    write_once(
        || app.slack.post_message(token.expose(), &reply, deadline),
        || async { find_reply(app, token, &notice_ts, &u.event_id, deadline).await },
    )
    .await?;
    Ok(Delivery {
        notice_ts,
        notice_existed,
        reply_existed: false,
        mention: mention_kind,
    })
}

/// Runs a write; when its fate is unknown, looks whether it landed before trying again.
async fn write_once<W, WF, C, CF>(write: W, check: C) -> Result<String, SlackError>
where
    W: Fn() -> WF,
    WF: std::future::Future<Output = Result<String, SlackError>>,
    C: Fn() -> CF,
    CF: std::future::Future<Output = Result<Option<String>, SlackError>>,
{
    let mut round = 1;
    loop {
        match write().await {
            Err(SlackError::Unconfirmed { method, detail }) => {
                tracing::warn!(method, reason = %detail, round, "Slack did not confirm a write; checking whether it landed");
                if let Some(ts) = check().await? {
                    return Ok(ts);
                }
                if round >= MAX_WRITE_ROUNDS {
                    return Err(SlackError::Unavailable {
                        method,
                        detail,
                        attempts: round,
                    });
                }
                round += 1;
            }
            other => return other,
        }
    }
}

/// The person's Slack mention, or the configured fallback. A failed lookup does not hold the
/// notice back: it falls back (and says so in the log), except when the token itself is refused.
async fn mention_for(
    app: &App,
    token: &BotToken,
    u: &PrivilegedUse,
    deadline: Instant,
) -> Result<(Mention, &'static str), SlackError> {
    let fallback = || {
        (
            Mention::Fallback(app.config.fallback_mention.clone()),
            "fallback",
        )
    };
    let Some(email) = u.identity.email() else {
        return Ok(fallback());
    };
    match app
        .slack
        .lookup_user_by_email(token.expose(), email, deadline)
        .await
    {
        Ok(Some(user_id)) => Ok((Mention::User(user_id), "user")),
        Ok(None) => Ok(fallback()),
        Err(e) if e.is_auth() => Err(e),
        Err(e) => {
            tracing::warn!(event_id = %u.event_id, error = %e, "could not look the person up in Slack; mentioning the fallback");
            Ok(fallback())
        }
    }
}

/// The notice already posted for this event ID, if any.
async fn find_notice(
    app: &App,
    token: &BotToken,
    u: &PrivilegedUse,
    deadline: Instant,
) -> Result<Option<FoundMessage>, SlackError> {
    let oldest = oldest_for(u, app.config.dedupe_lookback);
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_HISTORY_PAGES {
        let (messages, next) = app
            .slack
            .history_page(
                token.expose(),
                &app.config.channel_id,
                oldest.as_deref(),
                cursor.as_deref(),
                deadline,
            )
            .await?;
        if let Some(found) = messages
            .into_iter()
            .find(|m| is_marked(&m.raw, NOTICE_EVENT_TYPE, &u.event_id))
        {
            return Ok(Some(found));
        }
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// The `ts` of privwatch's reply for this event ID in the notice's thread, if any.
async fn find_reply(
    app: &App,
    token: &BotToken,
    thread_ts: &str,
    event_id: &str,
    deadline: Instant,
) -> Result<Option<String>, SlackError> {
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_HISTORY_PAGES {
        let (messages, next) = app
            .slack
            .replies_page(
                token.expose(),
                &app.config.channel_id,
                thread_ts,
                cursor.as_deref(),
                deadline,
            )
            .await?;
        if let Some(found) = messages
            .into_iter()
            .find(|m| is_marked(&m.raw, REPLY_EVENT_TYPE, event_id))
        {
            return Ok(Some(found.ts));
        }
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// Whether a message carries privwatch's metadata of `event_type` for `event_id`.
pub fn is_marked(message: &Value, event_type: &str, event_id: &str) -> bool {
    let metadata = &message["metadata"];
    metadata["event_type"] == event_type
        && metadata["event_payload"]["event_id"].as_str() == Some(&notice::clip(event_id, 256))
}

/// Search history from a little before the event (all of it, within the page bound, if the
/// record has no time).
fn oldest_for(u: &PrivilegedUse, lookback: Duration) -> Option<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    let event_time = u.time?.timestamp().min(now);
    let oldest = event_time - lookback.as_secs() as i64;
    (oldest > 0).then(|| format!("{oldest}.000000"))
}
