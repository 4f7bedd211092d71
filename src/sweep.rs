//! The chase, run by a scheduled EventBridge rule: a notice whose thread got a reply from a
//! person is marked justified (a reaction, and metadata the export reads); one still unanswered
//! after `ESCALATE_AFTER_MINUTES` gets one escalation reply mentioning `ESCALATION_MENTION`.
//! Bounded Slack calls per sweep; Slack's rate limits are honoured by the client.

use crate::metadata::{payload_of, NoticePayload, ESCALATION_EVENT_TYPE, NOTICE_EVENT_TYPE};
use crate::notice;
use crate::slack::{FoundMessage, SlackError};
use crate::token::BotToken;
use crate::App;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Notices looked at per sweep: the last day's, at most this many pages of history.
const SWEEP_LOOKBACK_SECS: i64 = 24 * 3600;
const MAX_HISTORY_PAGES: u32 = 3;
/// Notices acted on (marked or escalated) per sweep; the rest wait for the next one.
const MAX_ACTIONS: usize = 10;
pub const JUSTIFIED_REACTION: &str = "white_check_mark";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub looked_at: usize,
    pub justified: usize,
    pub escalated: usize,
    /// Actions left for the next sweep (the per-sweep bound was reached).
    pub deferred: usize,
}

pub async fn sweep(app: &App, deadline: Instant) -> Result<SweepReport, crate::HandleError> {
    let token = app.tokens.get().await?;
    match sweep_with(app, &token, deadline).await {
        Err(e) if e.is_auth() => {
            let fresh = app.tokens.refresh().await?;
            Ok(sweep_with(app, &fresh, deadline).await?)
        }
        other => Ok(other?),
    }
}

async fn sweep_with(
    app: &App,
    token: &BotToken,
    deadline: Instant,
) -> Result<SweepReport, SlackError> {
    let bot_user = app.slack.auth_test(token.expose(), deadline).await?;
    let now = unix_now();
    let oldest = format!("{}.000000", now - SWEEP_LOOKBACK_SECS);
    let mut report = SweepReport::default();
    let mut actions = 0;
    let mut pages = app.slack.history(
        token.expose(),
        &app.config.channel_id,
        Some(&oldest),
        MAX_HISTORY_PAGES,
    );
    while let Some(messages) = pages.next(deadline).await? {
        for message in messages {
            let Some(payload) = payload_of::<NoticePayload>(&message.raw, NOTICE_EVENT_TYPE) else {
                continue;
            };
            report.looked_at += 1;
            if payload.justified {
                continue;
            }
            let answered = people_who_replied(&message.raw, &bot_user) > 0;
            let overdue =
                now - ts_seconds(&message.ts) >= app.config.escalate_after.as_secs() as i64;
            let needs_action = answered || (overdue && !payload.escalated);
            if !needs_action {
                continue;
            }
            if actions >= MAX_ACTIONS {
                report.deferred += 1;
                continue;
            }
            actions += 1;
            if answered {
                mark_justified(app, token, &message, payload, deadline).await?;
                report.justified += 1;
            } else {
                escalate(app, token, &message, payload, deadline).await?;
                report.escalated += 1;
            }
        }
    }
    tracing::info!(
        looked_at = report.looked_at,
        justified = report.justified,
        escalated = report.escalated,
        deferred = report.deferred,
        outcome = "swept",
        "justification sweep"
    );
    Ok(report)
}

/// People other than the bot who replied in the thread (`reply_users` of the history entry).
fn people_who_replied(notice: &Value, bot_user: &str) -> usize {
    notice["reply_users"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .filter(|u| u.as_str().is_some_and(|u| u != bot_user))
                .count()
        })
        .unwrap_or(0)
}

async fn mark_justified(
    app: &App,
    token: &BotToken,
    notice_message: &FoundMessage,
    mut payload: NoticePayload,
    deadline: Instant,
) -> Result<(), SlackError> {
    app.slack
        .add_reaction(
            token.expose(),
            &app.config.channel_id,
            &notice_message.ts,
            JUSTIFIED_REACTION,
            deadline,
        )
        .await?;
    payload.justified = true;
    save_flags(app, token, notice_message, &payload, deadline).await
}

/// One escalation reply per notice: before posting, a look in the thread for an escalation an
/// earlier sweep posted but could not flag; the flag is set only once the reply is there.
async fn escalate(
    app: &App,
    token: &BotToken,
    notice_message: &FoundMessage,
    mut payload: NoticePayload,
    deadline: Instant,
) -> Result<(), SlackError> {
    if !has_escalation(app, token, &notice_message.ts, deadline).await? {
        let minutes = app.config.escalate_after.as_secs() / 60;
        let message = notice::render_escalation(
            &payload,
            &app.config.escalation_mention,
            minutes,
            &app.config.wording,
        );
        let body = message.to_post_body(&app.config.channel_id, Some(&notice_message.ts));
        match app
            .slack
            .post_message(token.expose(), &body, deadline)
            .await
        {
            Ok(_) => {}
            // Did it land? If not, leave the flag unset: the next sweep tries again.
            Err(SlackError::Unconfirmed { .. }) => {
                if !has_escalation(app, token, &notice_message.ts, deadline).await? {
                    return Ok(());
                }
            }
            Err(e) => return Err(e),
        }
    }
    payload.escalated = true;
    save_flags(app, token, notice_message, &payload, deadline).await
}

async fn has_escalation(
    app: &App,
    token: &BotToken,
    thread_ts: &str,
    deadline: Instant,
) -> Result<bool, SlackError> {
    let found = app
        .slack
        .replies(
            token.expose(),
            &app.config.channel_id,
            thread_ts,
            MAX_HISTORY_PAGES,
        )
        .find(deadline, |m| {
            m.raw["metadata"]["event_type"] == ESCALATION_EVENT_TYPE
        })
        .await?;
    Ok(found.is_some())
}

/// Writes the notice's metadata flags. Setting a flag twice is harmless: an unconfirmed update
/// is simply done again by the next sweep.
async fn save_flags(
    app: &App,
    token: &BotToken,
    notice_message: &FoundMessage,
    payload: &NoticePayload,
    deadline: Instant,
) -> Result<(), SlackError> {
    let body = notice::render_metadata_update(&app.config.channel_id, &notice_message.raw, payload);
    match app
        .slack
        .update_message(token.expose(), &body, deadline)
        .await
    {
        Err(SlackError::Unconfirmed { .. }) | Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn ts_seconds(ts: &str) -> i64 {
    ts.split('.')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
