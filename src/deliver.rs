//! The orchestration of one privileged use: find where it belongs (its own notice if one exists,
//! else a recent notice of the same person to coalesce into) ∥ look up the person → post or
//! update the notice → post the thread line. The only module that decides order and
//! concurrency, and the only one that talks to Slack for an event.
//!
//! Exactly once per CloudTrail event ID: every write is preceded by a look for what an earlier
//! attempt (or an earlier invocation) already posted, and a write whose fate is unknown
//! (timeout, dropped connection, 5xx) is followed by another look instead of a blind repeat.

use crate::detect::PrivilegedUse;
use crate::metadata::{
    event_key, payload_of, LinePayload, NoticePayload, LINE_EVENT_TYPE, MAX_EVENT_IDS,
    NOTICE_EVENT_TYPE,
};
use crate::notice::{self, Mention};
use crate::slack::{FoundMessage, SlackError};
use crate::token::BotToken;
use crate::App;
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
    /// A notice holding this event ID was already in the channel (an earlier attempt posted it).
    pub notice_existed: bool,
    /// The thread line was already there too: nothing was posted.
    pub reply_existed: bool,
    /// The event joined another notice's thread (same person, within `COALESCE_MINUTES`).
    pub coalesced: bool,
    /// `user` when the person was found in Slack, `fallback` otherwise, `none` for a repeat line.
    pub mention: &'static str,
}

/// Where the search of the channel put this event.
enum Place {
    /// A notice that already holds this event ID.
    Own(FoundMessage, NoticePayload),
    /// A recent notice of the same principal to coalesce into.
    Join(FoundMessage, NoticePayload),
    New,
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
    let (place, mention) = tokio::join!(
        find_place(app, token, u, deadline),
        mention_for(app, token, u, deadline)
    );
    let wording = &app.config.wording;
    let channel = &app.config.channel_id;

    match place? {
        Place::Own(found, payload) => {
            // An earlier attempt posted (or counted) this event: add only what is missing.
            let is_first = payload.event_id == event_key(&u.event_id);
            if found.reply_count > 0
                && find_line(app, token, &found.ts, &u.event_id, deadline)
                    .await?
                    .is_some()
            {
                return Ok(Delivery {
                    notice_ts: found.ts,
                    notice_existed: true,
                    reply_existed: true,
                    coalesced: !is_first,
                    mention: "none",
                });
            }
            let (line, mention_kind) = if is_first {
                let (mention, kind) = mention?;
                (notice::render_reply(u, &mention, wording), kind)
            } else {
                (notice::render_repeat_line(u, wording), "none")
            };
            post_line(app, token, &found.ts, &u.event_id, &line, deadline).await?;
            Ok(Delivery {
                notice_ts: found.ts,
                notice_existed: true,
                reply_existed: false,
                coalesced: !is_first,
                mention: mention_kind,
            })
        }
        Place::Join(found, mut payload) => {
            // Count the event in the notice first (its metadata then holds the event ID, so a
            // retry finds it as `Own`), then add its line to the thread.
            payload.count += 1;
            let time = u.time.map(|t| t.timestamp()).unwrap_or(payload.last_time);
            payload.event_time = payload.event_time.min(time);
            payload.last_time = payload.last_time.max(time);
            payload.event_ids.push(event_key(&u.event_id));
            if payload.event_ids.len() > MAX_EVENT_IDS {
                payload.event_ids.remove(1);
            }
            let update = notice::render_count_update(channel, &found.raw, &payload, wording);
            write_once(
                || async {
                    app.slack
                        .update_message(token.expose(), &update, deadline)
                        .await?;
                    Ok(found.ts.clone())
                },
                || async {
                    Ok(match find_place(app, token, u, deadline).await? {
                        Place::Own(m, _) => Some(m.ts),
                        _ => None,
                    })
                },
            )
            .await?;
            let line = notice::render_repeat_line(u, wording);
            post_line(app, token, &found.ts, &u.event_id, &line, deadline).await?;
            Ok(Delivery {
                notice_ts: found.ts,
                notice_existed: false,
                reply_existed: false,
                coalesced: true,
                mention: "none",
            })
        }
        Place::New => {
            let (mention, mention_kind) = mention?;
            let body = notice::render_notice(u, wording).to_post_body(channel, None);
            let ts = write_once(
                || app.slack.post_message(token.expose(), &body, deadline),
                || async {
                    Ok(match find_place(app, token, u, deadline).await? {
                        Place::Own(m, _) => Some(m.ts),
                        _ => None,
                    })
                },
            )
            .await?;
            let reply = notice::render_reply(u, &mention, wording);
            post_line(app, token, &ts, &u.event_id, &reply, deadline).await?;
            Ok(Delivery {
                notice_ts: ts,
                notice_existed: false,
                reply_existed: false,
                coalesced: false,
                mention: mention_kind,
            })
        }
    }
}

/// Posts `line` into the thread of `notice_ts`, exactly once.
async fn post_line(
    app: &App,
    token: &BotToken,
    notice_ts: &str,
    event_id: &str,
    line: &notice::Message,
    deadline: Instant,
) -> Result<String, SlackError> {
    let body = line.to_post_body(&app.config.channel_id, Some(notice_ts));
    write_once(
        || app.slack.post_message(token.expose(), &body, deadline),
        || find_line(app, token, notice_ts, event_id, deadline),
    )
    .await
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

/// Searches the channel (newest first) for a notice holding this event ID, remembering the
/// newest notice of the same principal within the coalescing window on the way.
async fn find_place(
    app: &App,
    token: &BotToken,
    u: &PrivilegedUse,
    deadline: Instant,
) -> Result<Place, SlackError> {
    let window = app.config.coalesce_window.as_secs() as i64;
    let ours = notice::notice_payload(u);
    let oldest = oldest_for(
        u,
        app.config.dedupe_lookback.max(app.config.coalesce_window),
    );
    let mut join: Option<(FoundMessage, NoticePayload)> = None;
    let mut pages = app.slack.history(
        token.expose(),
        &app.config.channel_id,
        oldest.as_deref(),
        MAX_HISTORY_PAGES,
    );
    while let Some(messages) = pages.next(deadline).await? {
        for message in messages {
            let Some(payload) = payload_of::<NoticePayload>(&message.raw, NOTICE_EVENT_TYPE) else {
                continue;
            };
            if payload.holds(&ours.event_id) {
                return Ok(Place::Own(message, payload));
            }
            let within = window > 0
                && ours.event_time > 0
                && payload.last_time >= ours.event_time - window
                && payload.event_time <= ours.event_time + window;
            if join.is_none() && within && payload.coalesce_key() == ours.coalesce_key() {
                join = Some((message, payload));
            }
        }
    }
    Ok(match join {
        Some((message, payload)) => Place::Join(message, payload),
        None => Place::New,
    })
}

/// The `ts` of the thread line for this event ID in the notice's thread, if any.
async fn find_line(
    app: &App,
    token: &BotToken,
    thread_ts: &str,
    event_id: &str,
    deadline: Instant,
) -> Result<Option<String>, SlackError> {
    let wanted = event_key(event_id);
    let found = app
        .slack
        .replies(
            token.expose(),
            &app.config.channel_id,
            thread_ts,
            MAX_HISTORY_PAGES,
        )
        .find(deadline, |m| {
            payload_of::<LinePayload>(&m.raw, LINE_EVENT_TYPE)
                .is_some_and(|line| line.event_id == wanted)
        })
        .await?;
    Ok(found.map(|m| m.ts))
}

/// Search history from a little before the event (all of it, within the page bound, if the
/// record has no time).
fn oldest_for(u: &PrivilegedUse, lookback: Duration) -> Option<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    let event_time = u.time?.timestamp().min(now);
    let oldest = event_time - lookback.as_secs() as i64;
    (oldest > 0).then(|| format!("{oldest}.000000"))
}
