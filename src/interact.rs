//! Justify with one click: Slack calls the function through its Lambda Function URL when someone
//! presses *Justify* on a notice (`block_actions`) and when they submit the modal that opens
//! (`view_submission`).
//!
//! The URL is open to the internet (`AuthType: NONE`), so nothing is parsed before Slack's
//! signature is checked: v0, HMAC-SHA256 over `v0:{timestamp}:{body}` with the app's signing
//! secret, compared in constant time, the timestamp within five minutes, and a signature seen
//! before (a replay) refused. Only the person the notice asked, or a member of
//! `JUSTIFY_USERGROUP`, may justify; anyone else gets an ephemeral "only … can justify this".

use crate::metadata::{
    payload_of, NoticePayload, JUSTIFICATION_EVENT_TYPE, LINE_EVENT_TYPE, NOTICE_EVENT_TYPE,
};
use crate::mrkdwn::escape;
use crate::slack::{SlackError, Ts};
use crate::token::SigningSecret;
use crate::App;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::time::Instant;

pub const JUSTIFY_ACTION: &str = "privwatch_justify";
pub const JUSTIFY_CALLBACK: &str = "privwatch_justify";
/// Slack's window for a request's timestamp.
const MAX_AGE_SECS: i64 = 300;
const MAX_PURPOSE_CHARS: usize = 2000;

/// Is this invocation an HTTP request through the Function URL (not an EventBridge event)?
pub fn is_http(payload: &Value) -> bool {
    payload["requestContext"]["http"].is_object()
}

/// Why a request was refused before it was parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// No signature or timestamp header.
    Unsigned,
    /// The timestamp is more than five minutes off.
    Stale,
    /// The signature does not match.
    BadSignature,
    /// This signature was seen before.
    Replayed,
}

/// Checks Slack's v0 signature over the raw body (constant-time comparison).
pub fn verify(
    secret: &SigningSecret,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
) -> Result<(), Rejected> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| Rejected::Unsigned)?;
    if (now - ts).abs() > MAX_AGE_SECS {
        return Err(Rejected::Stale);
    }
    let expected = signature
        .strip_prefix("v0=")
        .and_then(|hex_sig| hex::decode(hex_sig).ok())
        .ok_or(Rejected::BadSignature)?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.expose())
        .map_err(|_| Rejected::BadSignature)?;
    mac.update(b"v0:");
    mac.update(timestamp.trim().as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| Rejected::BadSignature)
}

/// The signatures accepted in the last five minutes (per execution environment; the function
/// runs one at a time).
#[derive(Debug, Default)]
pub struct Replays(Mutex<HashMap<String, i64>>);

impl Replays {
    /// `true` the first time a signature is seen within its window.
    pub fn first_time(&self, signature: &str, now: i64) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, expires| *expires > now);
        if seen.contains_key(signature) {
            return false;
        }
        seen.insert(signature.to_string(), now + 2 * MAX_AGE_SECS);
        true
    }
}

/// The Function URL response (every field of the payload format, as `aws_lambda_events` reads it).
fn respond(status: u16, body: Value) -> Value {
    json!({
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": if body.is_null() { String::new() } else { body.to_string() },
        "isBase64Encoded": false,
        "cookies": [],
    })
}

/// Handles one Function URL request; the answer is the HTTP response.
pub async fn handle_http(
    app: &App,
    request: &Value,
    deadline: Instant,
) -> Result<Value, crate::HandleError> {
    let header = |name: &str| {
        request["headers"]
            .as_object()
            .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let raw = request["body"].as_str().unwrap_or_default();
    let body = if request["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap_or_default()
    } else {
        raw.as_bytes().to_vec()
    };
    let Some(secret) = app.tokens.signing_secret().await? else {
        tracing::warn!("a Function URL request, but no signing secret is configured");
        return Ok(respond(
            401,
            json!({"error": "interactivity is not configured"}),
        ));
    };
    let signature = header("x-slack-signature");
    let now = chrono::Utc::now().timestamp();
    let checked = verify(
        &secret,
        &header("x-slack-request-timestamp"),
        &body,
        &signature,
        now,
    )
    .and_then(|()| {
        app.replays
            .first_time(&signature, now)
            .then_some(())
            .ok_or(Rejected::Replayed)
    });
    if let Err(why) = checked {
        tracing::warn!(
            ?why,
            outcome = "rejected",
            "a request that is not Slack's was refused"
        );
        return Ok(respond(401, json!({"error": "unauthorized"})));
    }
    // Only now is the body read.
    let Some(payload) =
        form_field(&body, "payload").and_then(|p| serde_json::from_str::<Value>(&p).ok())
    else {
        return Ok(respond(400, json!({"error": "no interaction payload"})));
    };
    let answer = match payload["type"].as_str() {
        Some("block_actions") => on_button(app, &payload, deadline).await?,
        Some("view_submission") => on_submit(app, &payload, deadline).await?,
        _ => Value::Null,
    };
    Ok(respond(200, answer))
}

/// *Justify* pressed: the modal for the person allowed to justify, an ephemeral note for others.
async fn on_button(
    app: &App,
    payload: &Value,
    deadline: Instant,
) -> Result<Value, crate::HandleError> {
    let pressed = payload["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|a| a["action_id"] == JUSTIFY_ACTION);
    let (Some(channel), Some(ts), Some(user), Some(trigger)) = (
        payload["channel"]["id"].as_str(),
        payload["container"]["message_ts"]
            .as_str()
            .and_then(Ts::new),
        payload["user"]["id"].as_str(),
        payload["trigger_id"].as_str(),
    ) else {
        return Ok(Value::Null);
    };
    if !pressed || !app.config.channels().contains(&channel) {
        return Ok(Value::Null);
    }
    let token = app.tokens.get().await?;
    let token = token.expose();
    match allowed(app, token, channel, &ts, user, deadline).await? {
        Allowed::Yes => {
            let view = justify_view(app, channel, &ts);
            app.slack.open_view(token, trigger, &view, deadline).await?;
        }
        Allowed::No(asked) => {
            let text = only_text(asked.as_deref(), app.config.justify_usergroup.as_deref());
            app.slack
                .post_ephemeral(token, channel, user, &text, deadline)
                .await?;
        }
    }
    Ok(Value::Null)
}

/// The modal submitted: checked as Slack shows it (inline errors), then posted into the thread
/// under the person's name and archived.
async fn on_submit(
    app: &App,
    payload: &Value,
    deadline: Instant,
) -> Result<Value, crate::HandleError> {
    let view = &payload["view"];
    if view["callback_id"] != JUSTIFY_CALLBACK {
        return Ok(Value::Null);
    }
    let meta: Value = serde_json::from_str(view["private_metadata"].as_str().unwrap_or_default())
        .unwrap_or(Value::Null);
    let (Some(channel), Some(ts), Some(user)) = (
        meta["channel"].as_str(),
        meta["ts"].as_str().and_then(Ts::new),
        payload["user"]["id"].as_str(),
    ) else {
        return Ok(Value::Null);
    };
    if !app.config.channels().contains(&channel) {
        return Ok(Value::Null);
    }
    let values = &view["state"]["values"];
    let purpose = values["purpose"]["purpose"]["value"]
        .as_str()
        .unwrap_or_default()
        .trim()
        .to_string();
    let ticket = values["ticket"]["ticket"]["value"]
        .as_str()
        .unwrap_or_default()
        .trim()
        .to_string();
    let token = app.tokens.get().await?;
    let token = token.expose();
    if let Allowed::No(asked) = allowed(app, token, channel, &ts, user, deadline).await? {
        let text = only_text(asked.as_deref(), app.config.justify_usergroup.as_deref());
        return Ok(json!({"response_action": "errors", "errors": {"purpose": text}}));
    }
    let mut errors = serde_json::Map::new();
    if purpose.is_empty() || purpose.chars().count() > MAX_PURPOSE_CHARS {
        errors.insert("purpose".into(), json!("Say what the work was for."));
    }
    let is_url = (ticket.starts_with("https://") || ticket.starts_with("http://"))
        && !ticket.contains(|c: char| c.is_whitespace() || "<>|".contains(c));
    let matches = app
        .config
        .ticket_pattern
        .as_ref()
        .is_none_or(|p| p.is_match(&ticket));
    if !is_url || !matches {
        errors.insert(
            "ticket".into(),
            json!("Give the ticket's URL (the link your team's tickets have)."),
        );
    }
    if !errors.is_empty() {
        return Ok(json!({"response_action": "errors", "errors": errors}));
    }
    let body = json!({
        "channel": channel,
        "thread_ts": ts.as_str(),
        "text": format!(
            "> {}\n> {}\n— <@{user}> justified this with the *Justify* button.",
            escape(&purpose),
            escape(&ticket)
        ),
        "unfurl_links": false,
        "metadata": {"event_type": JUSTIFICATION_EVENT_TYPE,
                     "event_payload": {"user": user, "purpose": purpose, "ticket_url": ticket}},
    });
    app.slack.post_message(token, &body, deadline).await?;
    // Justified now, not at the next sweep: the check mark and the flag the export reads; and
    // archived with every event ID of the notice (the notice read once for both).
    let notice = app.slack.message(token, channel, &ts, deadline).await?;
    let Some((notice, mut payload)) = notice.and_then(|n| {
        let payload = payload_of::<NoticePayload>(&n.raw, NOTICE_EVENT_TYPE)?;
        Some((n, payload))
    }) else {
        return Ok(Value::Null);
    };
    app.slack
        .add_reaction(
            token,
            channel,
            &ts,
            crate::sweep::JUSTIFIED_REACTION,
            deadline,
        )
        .await?;
    payload.justified = true;
    let update = crate::render::render_metadata_update(channel, &notice.raw, &payload);
    app.slack.update_message(token, &update, deadline).await?;
    if let Some(archive) = &app.archive {
        let record = crate::archive::JustificationRecord {
            event_ids: payload.event_ids.clone(),
            replied_by: vec![user.to_string()],
            purpose,
            ticket_url: ticket,
            justified_at: chrono::Utc::now().timestamp(),
            channel: channel.to_string(),
            notice_ts: ts.to_string(),
        };
        archive
            .put_justification(&payload.event_id, &record)
            .await?;
    }
    Ok(Value::Null)
}

enum Allowed {
    Yes,
    /// No; the user the notice asked, if it asked a person.
    No(Option<String>),
}

/// The person the notice asked (its first line's `<@U…>`), or a member of `JUSTIFY_USERGROUP`.
async fn allowed(
    app: &App,
    token: &str,
    channel: &str,
    notice_ts: &Ts,
    user: &str,
    deadline: Instant,
) -> Result<Allowed, SlackError> {
    let first = app
        .slack
        .replies(token, channel, notice_ts, 10)
        .find(deadline, |m| {
            payload_of::<crate::metadata::LinePayload>(&m.raw, LINE_EVENT_TYPE)
                .is_some_and(|l| !l.repeat)
        })
        .await?;
    let asked = first.and_then(|m| {
        let text = m.raw["text"].as_str().unwrap_or_default();
        let id = text.strip_prefix("<@")?.split('>').next()?;
        (!id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric())).then(|| id.to_string())
    });
    if asked.as_deref() == Some(user) {
        return Ok(Allowed::Yes);
    }
    if let Some(group) = &app.config.justify_usergroup {
        if app
            .slack
            .usergroup_members(token, group, deadline)
            .await?
            .iter()
            .any(|m| m == user)
        {
            return Ok(Allowed::Yes);
        }
    }
    Ok(Allowed::No(asked))
}

fn only_text(asked: Option<&str>, group: Option<&str>) -> String {
    let who = match (asked, group) {
        (Some(user), Some(group)) => format!("<@{user}> or members of <!subteam^{group}>"),
        (Some(user), None) => format!("<@{user}>"),
        (None, Some(group)) => format!("members of <!subteam^{group}>"),
        (None, None) => "the person asked in this thread".to_string(),
    };
    format!("Only {who} can justify this.")
}

/// The modal: the purpose and the ticket URL.
fn justify_view(app: &App, channel: &str, ts: &Ts) -> Value {
    let hint = match app.config.ticket_pattern {
        Some(_) => "The link of the ticket in your team's tracker.",
        None => "The link of the ticket.",
    };
    json!({
        "type": "modal",
        "callback_id": JUSTIFY_CALLBACK,
        "title": {"type": "plain_text", "text": "Justify"},
        "submit": {"type": "plain_text", "text": "Justify"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json!({"channel": channel, "ts": ts.as_str()}).to_string(),
        "blocks": [
            {"type": "input", "block_id": "purpose",
             "label": {"type": "plain_text", "text": "Purpose of the work"},
             "element": {"type": "plain_text_input", "action_id": "purpose", "multiline": true,
                         "max_length": MAX_PURPOSE_CHARS}},
            {"type": "input", "block_id": "ticket",
             "label": {"type": "plain_text", "text": "Ticket URL"},
             "hint": {"type": "plain_text", "text": hint},
             "element": {"type": "url_text_input", "action_id": "ticket"}},
        ],
    })
}

/// One field of an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (percent_decode(k)? == name)
            .then(|| percent_decode(v))
            .flatten()
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, ts: &str, body: &str) -> String {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn good_bad_and_stale_signatures() {
        let secret = SigningSecret::new("8f742231b10e8888abcd99yyyzzz85a5");
        let body = "payload=%7B%22type%22%3A%22block_actions%22%7D";
        let good = sign("8f742231b10e8888abcd99yyyzzz85a5", "1700000000", body);
        assert_eq!(
            verify(&secret, "1700000000", body.as_bytes(), &good, 1_700_000_100),
            Ok(())
        );
        assert_eq!(
            verify(&secret, "1700000000", b"payload=x", &good, 1_700_000_100),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            verify(&secret, "1700000000", body.as_bytes(), &good, 1_700_000_301),
            Err(Rejected::Stale)
        );
        assert_eq!(
            verify(
                &secret,
                "1700000000",
                body.as_bytes(),
                "v0=zz",
                1_700_000_000
            ),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            verify(&secret, "", body.as_bytes(), &good, 1_700_000_000),
            Err(Rejected::Unsigned)
        );
    }

    #[test]
    fn a_signature_is_accepted_once() {
        let replays = Replays::default();
        assert!(replays.first_time("v0=ab", 100));
        assert!(!replays.first_time("v0=ab", 200));
        assert!(
            replays.first_time("v0=ab", 100 + 2 * MAX_AGE_SECS + 1),
            "forgotten after the window"
        );
    }

    #[test]
    fn form_bodies_decode() {
        assert_eq!(
            form_field(b"a=1&payload=%7B%22x%22%3A+1%7D", "payload").as_deref(),
            Some("{\"x\": 1}")
        );
        assert_eq!(form_field(b"payload=%zz", "payload"), None);
    }
}
