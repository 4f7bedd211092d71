//! PURE. The *Justify* button's modal and what it posts, as Slack shows them; every word from
//! [`Wording`] (`en` and `ja`).

use crate::message::metadata::JUSTIFICATION_EVENT_TYPE;
use crate::message::mrkdwn::escape;
use crate::message::render::JUSTIFY_CALLBACK;
use crate::message::wording::Wording;
use serde_json::{json, Value};

/// The longest purpose the modal takes.
pub const MAX_PURPOSE_CHARS: usize = 2000;

/// The modal: the purpose and the ticket URL. `private_metadata` carries the notice it is for;
/// `tracker`: a `TICKET_URL_PATTERN` is set (the hint names the team's tracker).
pub fn render_modal(channel: &str, notice_ts: &str, wording: &Wording, tracker: bool) -> Value {
    let words = wording.modal(tracker);
    json!({
        "type": "modal",
        "callback_id": JUSTIFY_CALLBACK,
        "title": {"type": "plain_text", "text": words.title},
        "submit": {"type": "plain_text", "text": words.submit},
        "close": {"type": "plain_text", "text": words.close},
        "private_metadata": json!({"channel": channel, "ts": notice_ts}).to_string(),
        "blocks": [
            {"type": "input", "block_id": "purpose",
             "label": {"type": "plain_text", "text": words.purpose},
             "element": {"type": "plain_text_input", "action_id": "purpose", "multiline": true,
                         "max_length": MAX_PURPOSE_CHARS}},
            {"type": "input", "block_id": "ticket",
             "label": {"type": "plain_text", "text": words.ticket},
             "hint": {"type": "plain_text", "text": words.hint},
             "element": {"type": "url_text_input", "action_id": "ticket"}},
        ],
    })
}

/// The justification posted in the notice's thread, with the metadata the sweep and the export
/// read (the values escaped in the text, kept as given in the metadata).
pub fn render_justification(
    channel: &str,
    notice_ts: &str,
    user: &str,
    purpose: &str,
    ticket: &str,
    wording: &Wording,
) -> Value {
    json!({
        "channel": channel,
        "thread_ts": notice_ts,
        "text": wording.justified_with_button(user, &escape(purpose), &escape(ticket)),
        "unfurl_links": false,
        "metadata": {"event_type": JUSTIFICATION_EVENT_TYPE,
                     "event_payload": {"user": user, "purpose": purpose, "ticket_url": ticket}},
    })
}
