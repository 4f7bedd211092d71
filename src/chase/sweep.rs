//! The chase, run by a scheduled EventBridge rule: a notice whose thread got a reply from a
//! person is marked justified (a reaction, and metadata the export reads); one still unanswered
//! after `ESCALATE_AFTER_MINUTES` gets one escalation reply mentioning `ESCALATION_MENTION`.
//!
//! A sweep acts only on privwatch's own notices (its bot user) of its own account (the
//! schedule's `account`), so several deployments can share one channel. It reads the whole
//! window, acts on the oldest first within a per-sweep budget, and logs what it deferred: every
//! open notice is reached sooner or later. A notice it cannot act on is skipped and logged; it
//! does not stop the others. Only a person's reply justifies (not a bot's, not an app's).

use crate::app::{App, Session};
use crate::channel::{
    find_reply, our_notices, reply_once, save_flags, whole_thread, Confirm, MAX_THREAD_PAGES,
};
use crate::chase::{mark_justified, Justified};
use crate::error::Error;
use crate::message::justification::{self, Missing, Verdict};
use crate::message::metadata::{
    payload_of, NoticePayload, ESCALATION_EVENT_TYPE, LATE_ASK_EVENT_TYPE, NOTICE_EVENT_TYPE,
    TICKET_ASK_EVENT_TYPE,
};
use crate::message::render;
use crate::slack::{BotUser, FoundMessage, SlackError, Ts};
use std::time::Duration;
use tokio::time::Instant;

/// Notices looked at per sweep: the last day's.
const SWEEP_LOOKBACK_SECS: i64 = 24 * 3600;
/// Upper bound on history pages read per sweep (50,000 messages); reaching it is logged.
const MAX_HISTORY_PAGES: u32 = 250;
/// Writes (reactions, updates, escalations) per sweep; the rest wait for the next sweep. Slack
/// allows about 50 `chat.update` and `reactions.add` a minute (Tier 3).
const MAX_ACTIONS: usize = 20;
/// Threads read per sweep to see who replied (Tier 3: about 50 `conversations.replies` a
/// minute); a thread answered only by bots is read again by every sweep, so reads are bounded too.
const MAX_THREAD_READS: usize = 40;
/// Time kept back from the deadline for the last action and the summary.
const ACTION_MARGIN: Duration = Duration::from_secs(5);
/// How long the sweep waits for `users.lookupByEmail` of a person not asked yet.
const LOOKUP_WAIT: Duration = Duration::from_secs(2);
/// People asked late per sweep (each a lookup, a thread read and a post at most).
const MAX_LATE_ASKS: usize = 5;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    pub looked_at: usize,
    pub justified: usize,
    pub escalated: usize,
    /// Notices needing action left for the next sweep (budget or time ran out).
    pub deferred: usize,
    /// Notices that could not be acted on (e.g. Slack refused the update); logged and skipped.
    pub skipped: usize,
    /// Notices of other accounts' deployments in the same channel, left to them.
    pub other_accounts: usize,
    /// The window could not be read to its end (the reason is logged).
    pub partial: bool,
    /// Organization mode: spokes newly alerted as silent.
    pub silent_alerted: usize,
    /// People asked now whom Slack could not find when their notice was posted.
    pub asked_later: usize,
}

impl SweepReport {
    fn add(&mut self, other: &SweepReport) {
        self.looked_at += other.looked_at;
        self.justified += other.justified;
        self.escalated += other.escalated;
        self.deferred += other.deferred;
        self.skipped += other.skipped;
        self.other_accounts += other.other_accounts;
        self.partial |= other.partial;
        self.asked_later += other.asked_later;
    }
}

/// What a notice needs, decided from the history entry alone (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Nothing,
    /// Someone other than privwatch replied: a person's reply justifies, a bot's does not.
    CheckReplies {
        overdue: bool,
    },
    Escalate,
}

/// The decision for one notice: `now` and the notice's `ts` in Unix seconds.
pub fn need(
    payload: &NoticePayload,
    notice: &FoundMessage,
    bot: &BotUser,
    now: i64,
    escalate_after: Duration,
) -> Need {
    if payload.justified {
        return Need::Nothing;
    }
    let overdue =
        now - notice.ts.seconds() >= escalate_after.as_secs() as i64 && !payload.escalated;
    let others_replied = notice.raw["reply_users"]
        .as_array()
        .is_some_and(|users| users.iter().any(|u| u.as_str() != Some(bot.0.as_str())));
    if others_replied {
        Need::CheckReplies { overdue }
    } else if overdue {
        Need::Escalate
    } else {
        Need::Nothing
    }
}

pub async fn sweep(
    app: &App,
    account: &str,
    deadline: Instant,
) -> Result<SweepReport, crate::error::Error> {
    // A hub (organization mode) sweeps every account's notices; a per-account deployment only
    // its own, so that several can share a channel.
    let only = match app.config.organization_id {
        Some(_) => None,
        None => Some(account),
    };
    let mut total = SweepReport::default();
    for channel in app.config.channels() {
        let report = app
            .with_session(channel, deadline, async |cx| Ok(sweep_in(cx, only).await?))
            .await?;
        total.add(&report);
    }
    Ok(total)
}

async fn sweep_in(cx: &Session<'_>, only: Option<&str>) -> Result<SweepReport, SlackError> {
    let (app, bot, deadline) = (cx.app, cx.bot, cx.deadline);
    let now = chrono::Utc::now().timestamp();
    let oldest = Ts::from_seconds(now - SWEEP_LOOKBACK_SECS);
    let mut report = SweepReport::default();
    let mut open: Vec<(FoundMessage, NoticePayload, Need)> = Vec::new();
    let mut unasked: Vec<FoundMessage> = Vec::new();
    let mut notices = our_notices(cx, Some(&oldest), MAX_HISTORY_PAGES);
    while let Some(page) = notices.next().await? {
        for (message, payload) in page {
            if only.is_some_and(|account| payload.account != account) {
                report.other_accounts += 1;
                continue;
            }
            report.looked_at += 1;
            if payload.person_unasked && !payload.justified {
                unasked.push(message.clone());
            }
            match need(&payload, &message, bot, now, app.config.escalate_after) {
                Need::Nothing => {}
                need => open.push((message, payload, need)),
            }
        }
    }
    if let Some(reason) = notices.stopped_early() {
        report.partial = true;
        tracing::warn!(reason, "the sweep read only part of its window");
    }
    // Escalations and first looks at replies before re-reading threads already escalated; oldest
    // first within each: whatever is deferred now is first in line next time.
    let recheck =
        |p: &NoticePayload, n: &Need| p.escalated && matches!(n, Need::CheckReplies { .. });
    open.sort_by(|a, b| {
        recheck(&a.1, &a.2)
            .cmp(&recheck(&b.1, &b.2))
            .then_with(|| a.0.ts.cmp(&b.0.ts))
    });
    let mut actions = 0;
    let mut reads = 0;
    let total = open.len();
    for (done, (message, payload, need)) in open.into_iter().enumerate() {
        if matches!(need, Need::CheckReplies { .. }) {
            reads += 1;
        }
        if actions >= MAX_ACTIONS
            || reads > MAX_THREAD_READS
            || Instant::now() + ACTION_MARGIN >= deadline
        {
            report.deferred = total - done;
            tracing::info!(
                deferred = report.deferred,
                "the sweep's budget is spent; the oldest of the rest come first next time"
            );
            break;
        }
        let result = act(cx, &message, payload, need).await;
        match result {
            Ok(Acted::Justified) => {
                report.justified += 1;
                actions += 1;
            }
            Ok(Acted::Escalated) => {
                report.escalated += 1;
                actions += 1;
            }
            Ok(Acted::Nothing) => {}
            Ok(Acted::Deferred) => report.deferred += 1,
            // This notice cannot be acted on (e.g. `cant_update_message`, `message_not_found`, a
            // thread whose paging never ends): the others still get theirs.
            Err(e @ (SlackError::Refused { .. } | SlackError::Incomplete { .. }))
                if !e.is_auth() =>
            {
                tracing::warn!(notice_ts = %message.ts, error = %e, "could not act on this notice; skipped");
                report.skipped += 1;
            }
            Err(e) => return Err(e),
        }
    }
    // People Slack could not be asked about when their notice was posted: asked now, once — after
    // the chase, with a budget of their own (after an outage there may be many).
    for (late, message) in unasked.iter().enumerate() {
        if late >= MAX_LATE_ASKS || Instant::now() + ACTION_MARGIN >= deadline {
            break;
        }
        match ask_the_person(cx, message).await {
            Ok(true) => report.asked_later += 1,
            Ok(false) => {}
            Err(e @ (SlackError::Refused { .. } | SlackError::Incomplete { .. }))
                if !e.is_auth() =>
            {
                tracing::warn!(notice_ts = %message.ts, error = %e, "could not ask the person; skipped");
                report.skipped += 1;
            }
            Err(e) => return Err(e),
        }
    }
    tracing::info!(
        looked_at = report.looked_at,
        justified = report.justified,
        escalated = report.escalated,
        deferred = report.deferred,
        skipped = report.skipped,
        other_accounts = report.other_accounts,
        partial = report.partial,
        outcome = "swept",
        "justification sweep"
    );
    Ok(report)
}

enum Acted {
    Justified,
    Escalated,
    Nothing,
    /// Left for the next sweep (the archive could not be written).
    Deferred,
}

async fn act(
    cx: &Session<'_>,
    message: &FoundMessage,
    payload: NoticePayload,
    need: Need,
) -> Result<Acted, SlackError> {
    let escalate_now = match need {
        Need::Nothing => false,
        Need::Escalate => true,
        Need::CheckReplies { overdue } => {
            let thread = whole_thread(cx, &message.ts, MAX_THREAD_PAGES).await?;
            if let Some(e) = thread.incomplete {
                return Err(e);
            }
            let thread = thread.messages;
            let pattern = cx.app.config.ticket_pattern.as_ref();
            match justification::judge(&thread, message.ts.as_str(), cx.bot, pattern) {
                Verdict::Justified(found) => {
                    let found = Justified {
                        replied_by: found.replied_by,
                        purpose: found.purpose,
                        ticket_url: found.ticket_url,
                    };
                    return match mark_justified(cx, &message.ts, &payload, found, Confirm::Lenient)
                        .await
                    {
                        Ok(()) => Ok(Acted::Justified),
                        Err(Error::Slack(e)) => Err(e),
                        // Not archived, so not marked: the next sweep tries again.
                        Err(error) => {
                            tracing::warn!(notice_ts = %message.ts, %error, "could not archive a justification; the next sweep tries again");
                            Ok(Acted::Deferred)
                        }
                    };
                }
                // A person answered without what counts: asked once, and the chase goes on.
                Verdict::Incomplete { replier, missing } if !payload.ticket_asked => {
                    ask_for_what_is_missing(cx, message, &thread, &replier, missing).await?;
                }
                Verdict::Incomplete { .. } | Verdict::Unanswered => {}
            }
            overdue
        }
    };
    if !escalate_now {
        return Ok(Acted::Nothing);
    }
    escalate(cx, message, &payload).await?;
    Ok(Acted::Escalated)
}

/// The person of a notice whose first reply went to the fallback because Slack could not be
/// asked who they were: looked up again; found, they are asked in the thread once (a look before
/// the post finds an earlier sweep's), and the flag is cleared. Not a Slack user after all: the
/// fallback was right, the flag is cleared. Slack still unreachable: the next sweep tries again.
async fn ask_the_person(
    cx: &Session<'_>,
    notice_message: &FoundMessage,
) -> Result<bool, SlackError> {
    let Some(payload) = payload_of::<NoticePayload>(&notice_message.raw, NOTICE_EVENT_TYPE) else {
        return Ok(false);
    };
    let email = payload.principal.as_str();
    if !crate::event::looks_like_email(email) {
        save_flags(cx, &notice_message.ts, Confirm::Lenient, |p| {
            p.person_unasked = false
        })
        .await?;
        return Ok(false);
    }
    let lookup = cx
        .app
        .slack
        .lookup_user_by_email(
            cx.token.expose(),
            email,
            cx.deadline.min(Instant::now() + LOOKUP_WAIT),
        )
        .await;
    let user = match lookup {
        Ok(Some(user)) => user,
        Ok(None) => {
            save_flags(cx, &notice_message.ts, Confirm::Lenient, |p| {
                p.person_unasked = false
            })
            .await?;
            return Ok(false);
        }
        Err(e) if e.is_auth() => return Err(e),
        Err(e) => {
            tracing::info!(notice_ts = %notice_message.ts, error = %e, "the person still cannot be looked up; the next sweep tries again");
            return Ok(false);
        }
    };
    let thread = whole_thread(cx, &notice_message.ts, MAX_THREAD_PAGES).await?;
    if let Some(e) = thread.incomplete {
        return Err(e);
    }
    let thread = thread.messages;
    // Someone answered already (the fallback's people, or the person): nobody to ask.
    let answered = thread
        .iter()
        .skip(1)
        .any(|m| m["user"].as_str().is_some_and(|u| u != cx.bot.0.as_str()));
    if answered {
        save_flags(cx, &notice_message.ts, Confirm::Lenient, |p| {
            p.person_unasked = false
        })
        .await?;
        return Ok(false);
    }
    let ask = || render::render_late_ask(&render::Mention::User(user), &cx.app.config.wording);
    let Some(posted) =
        reply_once(cx, &notice_message.ts, &thread, LATE_ASK_EVENT_TYPE, ask).await?
    else {
        return Ok(false);
    };
    save_flags(cx, &notice_message.ts, Confirm::Lenient, |p| {
        p.person_unasked = false
    })
    .await?;
    Ok(posted)
}

/// One reply asking the person who answered for what their answer lacks (the ticket URL, or the
/// purpose), unless an earlier sweep already asked; then the flag.
async fn ask_for_what_is_missing(
    cx: &Session<'_>,
    notice_message: &FoundMessage,
    thread: &[serde_json::Value],
    replier: &str,
    missing: Missing,
) -> Result<(), SlackError> {
    let mention = render::Mention::User(replier.to_string());
    let ask = || render::render_ticket_ask(&mention, missing, &cx.app.config.wording);
    if reply_once(cx, &notice_message.ts, thread, TICKET_ASK_EVENT_TYPE, ask)
        .await?
        .is_none()
    {
        return Ok(());
    }
    save_flags(cx, &notice_message.ts, Confirm::Lenient, |p| {
        p.ticket_asked = true
    })
    .await
}

/// One escalation reply per notice: before posting, a look in the thread for an escalation an
/// earlier sweep posted but could not flag; the flag is set only once the reply is there.
async fn escalate(
    cx: &Session<'_>,
    notice_message: &FoundMessage,
    payload: &NoticePayload,
) -> Result<(), SlackError> {
    let (app, token, deadline) = (cx.app, cx.token, cx.deadline);
    if !has_escalation(cx, &notice_message.ts).await? {
        let minutes = app.config.escalate_after.as_secs() / 60;
        let message = render::render_escalation(
            payload,
            &app.config.escalation_mention,
            minutes,
            &app.config.wording,
        );
        let body = message.to_post_body(cx.channel, Some(&notice_message.ts));
        match app
            .slack
            .post_message(token.expose(), &body, deadline)
            .await
        {
            Ok(_) => {}
            // Did it land? If not, leave the flag unset: the next sweep (minutes later, after the
            // write has settled) looks again.
            Err(SlackError::Unconfirmed { .. }) => {
                if !has_escalation(cx, &notice_message.ts).await? {
                    return Ok(());
                }
            }
            Err(e) => return Err(e),
        }
    }
    save_flags(cx, &notice_message.ts, Confirm::Lenient, |p| {
        p.escalated = true
    })
    .await
}

async fn has_escalation(cx: &Session<'_>, thread_ts: &Ts) -> Result<bool, SlackError> {
    Ok(find_reply(cx, thread_ts, ESCALATION_EVENT_TYPE, |_| true)
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn notice(ts: &str, reply_users: &[&str]) -> FoundMessage {
        FoundMessage {
            ts: Ts::new(ts).unwrap(),
            reply_count: reply_users.len() as u64,
            user: "UBOT".into(),
            raw: json!({"ts": ts, "reply_users": reply_users}),
        }
    }

    #[test]
    fn what_a_notice_needs() {
        let bot = BotUser("UBOT".into());
        let after = Duration::from_secs(1800);
        let open = NoticePayload::default();
        let now = 10_000;
        // Fresh, only privwatch in the thread: nothing yet.
        assert_eq!(
            need(&open, &notice("9000.1", &["UBOT"]), &bot, now, after),
            Need::Nothing
        );
        // Overdue, unanswered: escalate.
        assert_eq!(
            need(&open, &notice("8000.1", &["UBOT"]), &bot, now, after),
            Need::Escalate
        );
        // Someone else replied: look who (a person justifies, a bot does not).
        assert_eq!(
            need(&open, &notice("8000.1", &["UBOT", "U1"]), &bot, now, after),
            Need::CheckReplies { overdue: true }
        );
        let escalated = NoticePayload {
            escalated: true,
            ..Default::default()
        };
        assert_eq!(
            need(&escalated, &notice("8000.1", &["UBOT"]), &bot, now, after),
            Need::Nothing
        );
        let justified = NoticePayload {
            justified: true,
            ..Default::default()
        };
        assert_eq!(
            need(&justified, &notice("8000.1", &["U1"]), &bot, now, after),
            Need::Nothing
        );
    }

    #[test]
    fn timestamps_order_by_seconds_then_micros() {
        let ts = |t: &str| Ts::new(t).unwrap();
        assert!(ts("99.000002") < ts("100.000001"), "numeric, not textual");
        assert!(ts("100.000002") < ts("100.000010"));
        assert_eq!(ts("1700000000.000001").seconds(), 1_700_000_000);
        assert_eq!(Ts::new("1.2> <!here"), None, "only the shape of a Slack ts");
        assert_eq!(Ts::new("12"), None);
    }
}
