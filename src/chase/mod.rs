//! The chase: what makes a thread get its purpose and ticket. [`sweep`] reads the channel's recent
//! notices, asks again, escalates and marks the justified; [`button`] is the Justify button and
//! its modal, answered within Slack's 3 seconds.

pub mod button;
pub mod sweep;

use crate::app::Session;
use crate::channel::Confirm;
use crate::error::Error;
use crate::message::metadata::NoticePayload;
use crate::message::render::JUSTIFIED_REACTION;
use crate::slack::Ts;

/// What a thread's justification says, as the archive keeps it.
pub(crate) struct Justified {
    pub replied_by: Vec<String>,
    pub purpose: String,
    pub ticket_url: String,
}

/// Marks a notice justified, in one order for the sweep and the button: archived first (with
/// every event ID of the notice), then the check mark, then the flag the sweep and the export
/// read. A failed archive write leaves the notice unflagged, so the next sweep (or the button's
/// retry) archives it before the notice counts as justified. `confirm`: the sweep sets the flag
/// again next time; the button has no next time, so an unconfirmed flag fails its invocation and
/// Lambda's retry sets it (a justified notice without its flag would be escalated).
pub(crate) async fn mark_justified(
    cx: &Session<'_>,
    notice_ts: &Ts,
    payload: &NoticePayload,
    found: Justified,
    confirm: Confirm,
) -> Result<(), Error> {
    if let Some(archive) = &cx.app.archive {
        let record = crate::aws::archive::JustificationRecord {
            event_ids: payload.event_ids.clone(),
            replied_by: found.replied_by,
            purpose: found.purpose,
            ticket_url: found.ticket_url,
            justified_at: chrono::Utc::now().timestamp(),
            channel: cx.channel.to_string(),
            notice_ts: notice_ts.to_string(),
        };
        archive
            .put_justification(&payload.event_id, &record)
            .await?;
    }
    cx.app
        .slack
        .add_reaction(
            cx.token.expose(),
            cx.channel,
            notice_ts,
            JUSTIFIED_REACTION,
            cx.deadline,
        )
        .await?;
    crate::channel::save_flags(cx, notice_ts, confirm, |p| p.justified = true).await?;
    Ok(())
}
