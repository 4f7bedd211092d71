//! The orchestration of one privileged use: find where it belongs (its own notice if one exists,
//! else a recent notice of the same person to coalesce into) ∥ look up the person → post or
//! update the notice → post the thread line. The only module that decides order and
//! concurrency, and the only one that talks to Slack for an event.
//!
//! Exactly once per CloudTrail event ID, resting on three conditions (docs/architecture.md, *Exactly once*):
//! one invocation at a time per deployment (reserved concurrency 1, which the template holds);
//! Slack carries out a write within `RetryPolicy::write_settle` of sending it, or never; and only
//! privwatch's own bot user's messages count. Every write is preceded by a look for what an
//! earlier attempt posted; a write whose fate is unknown is looked for until it has settled and
//! is never sent again before then (if the deadline comes first, the invocation fails and
//! Lambda's retry, a minute or more later, looks first). A search that cannot reach its end
//! fails the invocation instead of guessing "not posted".

use crate::app::{App, Session};
use crate::channel::{find_reply, our_notices, post_in_thread, write_once};
use crate::error::Error;
use crate::event::Identity;
use crate::event::PrivilegedUse;
use crate::message::metadata::{
    event_key, payload_of, LinePayload, NoticePayload, LINE_EVENT_TYPE, MAX_EVENT_IDS,
};
use crate::message::render::{self, Mention};
use crate::message::wording::Shown;
use crate::slack::{FoundMessage, SlackError, Ts};
use std::time::Duration;
use tokio::time::Instant;

/// Upper bound on history pages (of 200 messages) searched for an existing notice: 50,000
/// messages between the event and now. Reaching it fails the invocation loudly.
const MAX_SEARCH_PAGES: u32 = 250;
/// The mention label of a person Slack could not be asked about (a transient failure): the
/// fallback now, the person later (`sweep`).
pub const UNREACHED: &str = "unreached";
/// How long the notice waits for `users.lookupByEmail` before using the fallback mention.
const MENTION_WAIT: Duration = Duration::from_secs(2);

/// What one event led to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    pub notice_ts: Ts,
    /// A notice holding this event ID was already in the channel (an earlier attempt posted it).
    pub notice_existed: bool,
    /// The thread line was already there too: nothing was posted.
    pub reply_existed: bool,
    /// The event joined another notice's thread (same person, within `COALESCE_MINUTES`).
    pub coalesced: bool,
    /// `user` when the person was found in Slack, `fallback` otherwise (`unreached` when Slack
    /// could not be asked), `owner` for a CI workload, `none` for a repeat line.
    pub mention: &'static str,
    /// The notice's metadata as it stands after this delivery (`None`: the event named another
    /// account's notice as the other record of its cross-account call, or `notify::series` counted it).
    pub notice: Option<Box<NoticePayload>>,
}

/// Where the search of the channel put this event.
enum Place {
    /// A notice that already holds this event ID.
    Own(FoundMessage, NoticePayload),
    /// A recent notice of the same principal to coalesce into.
    Join(FoundMessage, NoticePayload),
    /// The notice of the same cross-account call as recorded in the other account.
    Twin(FoundMessage, NoticePayload),
    New,
}

/// Delivers `u` to its account's channel (one token refresh, as every job: [`App::with_session`]).
pub async fn deliver(app: &App, u: &PrivilegedUse, deadline: Instant) -> Result<Delivery, Error> {
    let ous = app.org_units_of(&u.account_id).await;
    let channel = app.config.channel_for(&u.account_id, &ous);
    app.with_session(channel, deadline, async |cx| Ok(deliver_in(cx, u).await?))
        .await
}

/// [`deliver`] within a session the caller holds.
pub(crate) async fn deliver_in(
    cx: &Session<'_>,
    u: &PrivilegedUse,
) -> Result<Delivery, SlackError> {
    let (app, token, channel, deadline) = (cx.app, cx.token, cx.channel, cx.deadline);
    let (place, mention) = tokio::join!(find_place(cx, u), mention_for(cx, u));
    let wording = &*app.wording().await;
    let settle = app.slack.write_settle();

    let place = match place? {
        // A long series no longer lists every event ID in the notice: its line in the thread
        // says whether this event was already counted.
        Place::Join(found, payload) if payload.ids_evicted() => {
            match find_line(cx, &found.ts, &u.event_id).await? {
                Some(_) => Place::Own(found, payload),
                None => Place::Join(found, payload),
            }
        }
        place => place,
    };
    match place {
        Place::Own(found, payload) if payload.twin_event_id == event_key(&u.event_id) => {
            // The other account's record of this call: it is already named by the notice.
            Ok(Delivery {
                notice_ts: found.ts,
                notice_existed: true,
                reply_existed: true,
                coalesced: true,
                mention: "none",
                notice: None,
            })
        }
        Place::Own(found, payload) => {
            // An earlier attempt posted (or counted) this event: add only what is missing.
            let is_first = payload.event_id == event_key(&u.event_id);
            if found.reply_count > 0 && find_line(cx, &found.ts, &u.event_id).await?.is_some() {
                return Ok(Delivery {
                    notice_ts: found.ts,
                    notice_existed: true,
                    reply_existed: true,
                    coalesced: !is_first,
                    mention: "none",
                    notice: Some(Box::new(payload)),
                });
            }
            let (line, mention_kind) = if is_first {
                let (mention, kind) = mention?;
                (render::render_reply(u, &mention, wording), kind)
            } else {
                (render::render_repeat_line(u, wording), "none")
            };
            post_line(cx, &found.ts, &u.event_id, &line).await?;
            Ok(Delivery {
                notice_ts: found.ts,
                notice_existed: true,
                reply_existed: false,
                coalesced: !is_first,
                mention: mention_kind,
                notice: Some(Box::new(payload)),
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
            payload.add_session(u.session.as_ref());
            let update = render::render_count_update(
                channel,
                &found.raw,
                &payload,
                Shown::EveryLine,
                wording,
            );
            update_once(cx, u, &found.ts, &update).await?;
            let line = render::render_repeat_line(u, wording);
            post_line(cx, &found.ts, &u.event_id, &line).await?;
            Ok(Delivery {
                notice_ts: found.ts,
                notice_existed: false,
                reply_existed: false,
                coalesced: true,
                mention: "none",
                notice: Some(Box::new(payload)),
            })
        }
        Place::Twin(found, mut payload) => {
            // One call, two records (the caller's account and the role's): one notice naming
            // both accounts, no second ask.
            payload.twin_event_id = event_key(&u.event_id);
            let update = render::render_twin_update(channel, &found.raw, &payload, u, wording);
            let ts = update_once(cx, u, &found.ts, &update).await?;
            Ok(Delivery {
                notice_ts: ts,
                notice_existed: true,
                reply_existed: false,
                coalesced: true,
                mention: "none",
                notice: None,
            })
        }
        Place::New => {
            let (mention, mention_kind) = mention?;
            let mut body = render::render_notice(u, wording).to_post_body(channel, None);
            let mut notice = render::notice_payload(u);
            if mention_kind == UNREACHED {
                // The sweep asks the person once Slack can say who they are.
                notice.person_unasked = true;
                body["metadata"] = notice.to_metadata();
            }
            let ts = write_once(
                settle,
                deadline,
                || app.slack.post_message(token.expose(), &body, deadline),
                || async {
                    Ok(match find_place(cx, u).await? {
                        Place::Own(m, _) => Some(m.ts),
                        Place::Join(..) | Place::Twin(..) | Place::New => None,
                    })
                },
            )
            .await?;
            let reply = render::render_reply(u, &mention, wording);
            post_line(cx, &ts, &u.event_id, &reply).await?;
            Ok(Delivery {
                notice_ts: ts,
                notice_existed: false,
                reply_existed: false,
                coalesced: false,
                mention: mention_kind,
                notice: Some(Box::new(notice)),
            })
        }
    }
}

/// Updates the notice at `notice_ts` so that its metadata holds `u`'s event ID, exactly once:
/// the look for what an earlier attempt did is the search that finds the event's own notice.
async fn update_once(
    cx: &Session<'_>,
    u: &PrivilegedUse,
    notice_ts: &Ts,
    update: &serde_json::Value,
) -> Result<Ts, SlackError> {
    write_once(
        cx.app.slack.write_settle(),
        cx.deadline,
        || async {
            cx.app
                .slack
                .update_message(cx.token.expose(), update, cx.deadline)
                .await?;
            Ok(notice_ts.clone())
        },
        || async {
            Ok(match find_place(cx, u).await? {
                Place::Own(m, _) => Some(m.ts),
                Place::Join(..) | Place::Twin(..) | Place::New => None,
            })
        },
    )
    .await
}

/// Posts `line` into the thread of `notice_ts`, exactly once.
pub(crate) async fn post_line(
    cx: &Session<'_>,
    notice_ts: &Ts,
    event_id: &str,
    line: &render::Message,
) -> Result<Ts, SlackError> {
    post_in_thread(cx, notice_ts, line, || find_line(cx, notice_ts, event_id)).await
}

/// The person's Slack mention, or the configured fallback. A failed lookup does not hold the
/// notice back: it falls back (and says so in the log), except when the token itself is refused.
async fn mention_for(
    cx: &Session<'_>,
    u: &PrivilegedUse,
) -> Result<(Mention, &'static str), SlackError> {
    let (app, token, deadline) = (cx.app, cx.token, cx.deadline);
    let fallback = || {
        (
            Mention::Configured(app.config.fallback_mention.clone()),
            "fallback",
        )
    };
    if let Identity::Workload { subject } = &u.identity {
        // A CI workload has no e-mail: its owner is configured (`OIDC_OWNERS`).
        return Ok(app
            .config
            .oidc_owners
            .iter()
            .find(|(pattern, _)| crate::event::pattern::wildcard(pattern, subject))
            .map_or_else(fallback, |(_, owner)| {
                (Mention::Configured(owner.clone()), "owner")
            }));
    }
    let Some(email) = u.identity.email() else {
        return Ok(fallback());
    };
    // The notice does not wait long for the person: the lookup gets its own short deadline, and
    // running out of it means the fallback.
    match app
        .slack
        .lookup_user_by_email(
            token.expose(),
            email,
            deadline.min(Instant::now() + MENTION_WAIT),
        )
        .await
    {
        Ok(Some(user_id)) => Ok((Mention::User(user_id), "user")),
        Ok(None) => Ok(fallback()),
        Err(e) if e.is_auth() => Err(e),
        Err(e) => {
            tracing::warn!(event_id = %u.event_id, error = %e, "could not look the person up in Slack; mentioning the fallback, the sweep asks them later");
            Ok((fallback().0, UNREACHED))
        }
    }
}

/// Searches the channel (newest first, from a little before the event to now, to the end of
/// that range however busy the channel) for privwatch's notice holding this event ID,
/// remembering the newest notice of the same principal within the coalescing window on the way.
async fn find_place(cx: &Session<'_>, u: &PrivilegedUse) -> Result<Place, SlackError> {
    let app = cx.app;
    let window = app.config.coalesce_window.as_secs() as i64;
    let ours = render::notice_payload(u);
    let oldest = oldest_for(
        u,
        app.config.dedupe_lookback.max(app.config.coalesce_window),
    );
    let mut join: Option<(FoundMessage, NoticePayload)> = None;
    let mut notices = our_notices(cx, oldest.as_ref(), MAX_SEARCH_PAGES);
    while let Some(page) = notices.next().await? {
        for (message, payload) in page {
            if payload.holds(&ours.event_id) {
                return Ok(Place::Own(message, payload));
            }
            if payload.is_twin_of(&ours) {
                return Ok(Place::Twin(message, payload));
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
    if let Err(e) = notices.require_complete() {
        tracing::error!(event_id = %u.event_id, error = %e, "the search for an earlier notice stopped before its end");
        return Err(e);
    }
    Ok(match join {
        Some((message, payload)) => Place::Join(message, payload),
        None => Place::New,
    })
}

/// The `ts` of privwatch's thread line for this event ID in the notice's thread, if any.
pub(crate) async fn find_line(
    cx: &Session<'_>,
    thread_ts: &Ts,
    event_id: &str,
) -> Result<Option<Ts>, SlackError> {
    let wanted = event_key(event_id);
    let found = find_reply(cx, thread_ts, LINE_EVENT_TYPE, |m| {
        payload_of::<LinePayload>(&m.raw, LINE_EVENT_TYPE)
            .is_some_and(|line| line.event_id == wanted)
    })
    .await?;
    Ok(found.map(|m| m.ts))
}

/// Search history from a little before the event (all of it if the record has no time).
fn oldest_for(u: &PrivilegedUse, lookback: Duration) -> Option<Ts> {
    let now = chrono::Utc::now().timestamp();
    let event_time = u.time?.timestamp().min(now);
    let oldest = event_time - lookback.as_secs() as i64;
    (oldest > 0).then(|| Ts::from_seconds(oldest))
}
