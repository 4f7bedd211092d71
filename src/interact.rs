//! Justify with one click: Slack calls the function through its Lambda Function URL when someone
//! presses *Justify* on a notice (`block_actions`) and when they submit the modal that opens
//! (`view_submission`).
//!
//! The URL is open to the internet (`AuthType: NONE`), so nothing is parsed before Slack's
//! signature is checked: v0, HMAC-SHA256 over `v0:{timestamp}:{body}` with the app's signing
//! secret, compared in constant time, the timestamp within five minutes, and a signature seen
//! before (a replay) refused. Only the person the notice asked, or a member of
//! `JUSTIFY_USERGROUP`, may justify; anyone else gets an ephemeral "only … can justify this".
//!
//! Slack's three seconds: "your app must reply to the HTTP POST request with an HTTP 200 OK
//! response. This must be sent within 3 seconds of receiving the payload", and "Triggers expire
//! in three seconds" ("Handling user interaction in your Slack apps", docs.slack.dev). So the URL
//! belongs to a function of its own (the Justify function: the same binary with
//! `NOTIFIER_FUNCTION` set, and no reserved concurrency), never throttled behind the notifier's
//! one-at-a-time work: it checks, opens the modal, and for a submission checks the fields and
//! hands the signed request to the notifier with an asynchronous invoke (Lambda queues it rather
//! than refusing it; a failure is retried and then kept in the failure queue) before it answers.
//! Every Slack call of a request is bounded by [`ACK_BUDGET`]: nothing waits out a `Retry-After`
//! past the point where Slack has already shown the person an error. The notifier
//! ([`complete`]) verifies the signature again, posts the justification once (a second
//! submission of the same one posts nothing), then marks the notice: archive, reaction, flag —
//! the sweep's order, so a failed archive write is retried before the notice counts as justified.

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
/// How old a handed-over submission may be when the notifier completes it: the request was
/// checked in Slack's 5-minute window when it arrived, and then waited — in Lambda's queue (up to
/// 6 hours), or in the failure queue for `make redrive` (14 days). The signature still proves
/// Slack sent it, and completing it twice posts nothing twice.
const DEFERRED_MAX_AGE_SECS: i64 = 15 * 86_400;
/// What a request may spend on Slack calls before it answers: under Slack's 3 seconds, with room
/// for Lambda and the network.
pub const ACK_BUDGET: std::time::Duration = std::time::Duration::from_millis(2_300);
/// The key of a submission handed to the notifier (`{"privwatch_interaction": <the request>}`).
pub const DEFERRED_KEY: &str = "privwatch_interaction";
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
    verify_within(secret, timestamp, body, signature, now, MAX_AGE_SECS)
}

fn verify_within(
    secret: &SigningSecret,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
    max_age: i64,
) -> Result<(), Rejected> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| Rejected::Unsigned)?;
    if (now - ts).abs() > max_age {
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

/// The signatures accepted in the last five minutes, per execution environment. The Justify
/// function may run in several at once, so a replay that reaches another one gets through this
/// check — and changes nothing: a trigger is good for three seconds, and the notifier posts a
/// justification once.
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

/// A Function URL request as Lambda hands it over: its headers and its raw body.
struct Signed<'a> {
    request: &'a Value,
    body: Vec<u8>,
}

impl<'a> Signed<'a> {
    fn of(request: &'a Value) -> Self {
        let raw = request["body"].as_str().unwrap_or_default();
        let body = if request["isBase64Encoded"] == true {
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .unwrap_or_default()
        } else {
            raw.as_bytes().to_vec()
        };
        Signed { request, body }
    }

    fn header(&self, name: &str) -> &'a str {
        self.request["headers"]
            .as_object()
            .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    fn verify(&self, secret: &SigningSecret, now: i64, max_age: i64) -> Result<(), Rejected> {
        verify_within(
            secret,
            self.header("x-slack-request-timestamp"),
            &self.body,
            self.header("x-slack-signature"),
            now,
            max_age,
        )
    }

    /// The interaction payload (the `payload` form field), read only after the signature.
    fn payload(&self) -> Option<Value> {
        form_field(&self.body, "payload").and_then(|p| serde_json::from_str::<Value>(&p).ok())
    }
}

/// Handles one Function URL request; the answer is the HTTP response. Its Slack calls end by
/// [`ACK_BUDGET`] from now, whatever the invocation's own deadline.
pub async fn handle_http(
    app: &App,
    request: &Value,
    deadline: Instant,
) -> Result<Value, crate::HandleError> {
    let deadline = deadline.min(Instant::now() + ACK_BUDGET);
    let signed = Signed::of(request);
    let Some(secret) = app.tokens.signing_secret().await? else {
        tracing::warn!("a Function URL request, but no signing secret is configured");
        return Ok(respond(
            401,
            json!({"error": "interactivity is not configured"}),
        ));
    };
    let signature = signed.header("x-slack-signature");
    let now = chrono::Utc::now().timestamp();
    let checked = signed.verify(&secret, now, MAX_AGE_SECS).and_then(|()| {
        app.replays
            .first_time(signature, now)
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
    let Some(payload) = signed.payload() else {
        return Ok(respond(400, json!({"error": "no interaction payload"})));
    };
    let answer = match payload["type"].as_str() {
        Some("block_actions") => on_button(app, &payload, deadline).await?,
        Some("view_submission") => on_submit(app, request, &payload, deadline).await?,
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

/// What a submitted modal says, read from Slack's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Submission {
    channel: String,
    ts: Ts,
    user: String,
    purpose: String,
    ticket: String,
}

impl Submission {
    fn of(payload: &Value) -> Option<Submission> {
        let view = &payload["view"];
        if view["callback_id"] != JUSTIFY_CALLBACK {
            return None;
        }
        let meta: Value =
            serde_json::from_str(view["private_metadata"].as_str().unwrap_or_default()).ok()?;
        let values = &view["state"]["values"];
        let field = |block: &str| {
            values[block][block]["value"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        Some(Submission {
            channel: meta["channel"].as_str()?.to_string(),
            ts: meta["ts"].as_str().and_then(Ts::new)?,
            user: payload["user"]["id"].as_str()?.to_string(),
            purpose: field("purpose"),
            ticket: field("ticket"),
        })
    }

    /// Slack's inline errors for fields that do not do (empty when all do).
    fn errors(&self, app: &App) -> serde_json::Map<String, Value> {
        let mut errors = serde_json::Map::new();
        if self.purpose.is_empty() || self.purpose.chars().count() > MAX_PURPOSE_CHARS {
            errors.insert("purpose".into(), json!("Say what the work was for."));
        }
        let ticket = &self.ticket;
        let is_url = (ticket.starts_with("https://") || ticket.starts_with("http://"))
            && !ticket.contains(|c: char| c.is_whitespace() || "<>|".contains(c));
        let matches = app
            .config
            .ticket_pattern
            .as_ref()
            .is_none_or(|p| p.is_match(ticket));
        if !is_url || !matches {
            errors.insert(
                "ticket".into(),
                json!("Give the ticket's URL (the link your team's tickets have)."),
            );
        }
        errors
    }
}

/// The modal submitted: checked as Slack shows it (inline errors), then handed over to be
/// posted, and answered — within Slack's three seconds.
async fn on_submit(
    app: &App,
    request: &Value,
    payload: &Value,
    deadline: Instant,
) -> Result<Value, crate::HandleError> {
    let Some(submission) = Submission::of(payload) else {
        return Ok(Value::Null);
    };
    if !app.config.channels().contains(&submission.channel.as_str()) {
        return Ok(Value::Null);
    }
    let token = app.tokens.get().await?;
    let token = token.expose();
    let (channel, ts, user) = (&submission.channel, &submission.ts, &submission.user);
    if let Allowed::No(asked) = allowed(app, token, channel, ts, user, deadline).await? {
        let text = only_text(asked.as_deref(), app.config.justify_usergroup.as_deref());
        return Ok(json!({"response_action": "errors", "errors": {"purpose": text}}));
    }
    let errors = submission.errors(app);
    if !errors.is_empty() {
        return Ok(json!({"response_action": "errors", "errors": errors}));
    }
    app.handoff.send(app, request, deadline).await?;
    Ok(Value::Null)
}

/// Where a checked submission goes before Slack gets its answer.
pub enum Handoff {
    /// The same invocation completes it (one function plays both parts: `cargo lambda watch`,
    /// `make demo`).
    Inline,
    /// An asynchronous invoke of the notifier (`NOTIFIER_FUNCTION`): Lambda queues it, even while
    /// the notifier is busy, retries a failure twice and then keeps it in the failure queue.
    Lambda {
        client: aws_sdk_lambda::Client,
        function: String,
    },
    /// Kept for the caller to deliver, as Lambda would (tests).
    Queue(Mutex<Vec<Value>>),
}

impl Handoff {
    async fn send(
        &self,
        app: &App,
        request: &Value,
        deadline: Instant,
    ) -> Result<(), crate::HandleError> {
        match self {
            Handoff::Inline => complete(app, request, deadline).await.map(|_| ()),
            Handoff::Queue(queue) => {
                queue
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(json!({ DEFERRED_KEY: request }));
                Ok(())
            }
            Handoff::Lambda { client, function } => {
                let failed = |detail: String| crate::HandleError::Handoff {
                    function: function.clone(),
                    detail,
                };
                let body = serde_json::to_vec(&json!({ DEFERRED_KEY: request }))
                    .map_err(|e| failed(e.to_string()))?;
                let invoke = client
                    .invoke()
                    .function_name(function)
                    .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                    .payload(aws_sdk_lambda::primitives::Blob::new(body))
                    .send();
                match tokio::time::timeout_at(deadline, invoke).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(failed(crate::error_chain(&e))),
                    Err(_) => Err(failed("no answer within Slack's three seconds".into())),
                }
            }
        }
    }

    /// Tests: the submissions handed over so far, taken.
    pub fn take(&self) -> Vec<Value> {
        match self {
            Handoff::Queue(queue) => {
                std::mem::take(&mut *queue.lock().unwrap_or_else(|e| e.into_inner()))
            }
            _ => Vec::new(),
        }
    }
}

/// The request inside a handed-over submission, if this payload is one.
pub fn deferred(payload: &Value) -> Option<&Value> {
    payload.get(DEFERRED_KEY).filter(|r| r.is_object())
}

/// What completing a submission did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// The justification was posted now (`false`: it was in the thread already).
    pub posted: bool,
    /// The notice was marked justified now (`false`: it was, or it is gone).
    pub marked: bool,
}

/// The notifier's half: a submission the Justify function checked and handed over. Its
/// signature is verified again (the notifier trusts no caller); then the justification is posted
/// once, and the notice is marked justified (archive, reaction, flag). A failure fails the
/// invocation: Lambda retries it, and a retry completes only what is missing.
pub async fn complete(
    app: &App,
    request: &Value,
    deadline: Instant,
) -> Result<Completed, crate::HandleError> {
    let nothing = Completed {
        posted: false,
        marked: false,
    };
    let signed = Signed::of(request);
    let Some(secret) = app.tokens.signing_secret().await? else {
        tracing::error!("a handed-over justification, but no signing secret is configured");
        return Ok(nothing);
    };
    let now = chrono::Utc::now().timestamp();
    if let Err(why) = signed.verify(&secret, now, DEFERRED_MAX_AGE_SECS) {
        tracing::warn!(
            ?why,
            outcome = "rejected",
            "a handed-over justification that is not Slack's (or older than 15 days) was refused"
        );
        return Ok(nothing);
    }
    let Some(submission) = signed.payload().as_ref().and_then(Submission::of) else {
        return Ok(nothing);
    };
    if !app.config.channels().contains(&submission.channel.as_str())
        || !submission.errors(app).is_empty()
    {
        return Ok(nothing);
    }
    let token = app.tokens.get().await?;
    let bot = app.bot_user(&token, deadline).await?;
    let token = token.expose();
    let Submission {
        channel,
        ts,
        user,
        purpose,
        ticket,
    } = &submission;
    if let Allowed::No(_) = allowed(app, token, channel, ts, user, deadline).await? {
        return Ok(nothing);
    }
    // Look before writing: a second submission of the same justification (or this one's retry
    // after a post whose answer was lost) finds it in the thread.
    let same = |m: &crate::slack::FoundMessage| {
        let meta = &m.raw["metadata"];
        let p = &meta["event_payload"];
        m.posted_by(bot)
            && meta["event_type"] == JUSTIFICATION_EVENT_TYPE
            && p["user"] == user.as_str()
            && p["purpose"] == purpose.as_str()
            && p["ticket_url"] == ticket.as_str()
    };
    let there = app
        .slack
        .replies(token, channel, ts, 50)
        .find(deadline, same)
        .await?
        .is_some();
    if !there {
        let body = json!({
            "channel": channel,
            "thread_ts": ts.as_str(),
            "text": format!(
                "> {}\n> {}\n— <@{user}> justified this with the *Justify* button.",
                escape(purpose),
                escape(ticket)
            ),
            "unfurl_links": false,
            "metadata": {"event_type": JUSTIFICATION_EVENT_TYPE,
                         "event_payload": {"user": user, "purpose": purpose, "ticket_url": ticket}},
        });
        app.slack.post_message(token, &body, deadline).await?;
    }
    let marked = mark_justified(app, token, &submission, deadline).await?;
    Ok(Completed {
        posted: !there,
        marked,
    })
}

/// Justified now, not at the next sweep, in the sweep's order: archived first (with every event
/// ID of the notice), then the check mark, then the flag the sweep and the export read — so a
/// failed archive write leaves the notice unflagged and the retry archives it.
async fn mark_justified(
    app: &App,
    token: &str,
    submission: &Submission,
    deadline: Instant,
) -> Result<bool, crate::HandleError> {
    let (channel, ts) = (submission.channel.as_str(), &submission.ts);
    let notice = app.slack.message(token, channel, ts, deadline).await?;
    let Some((notice, mut payload)) = notice.and_then(|n| {
        let payload = payload_of::<NoticePayload>(&n.raw, NOTICE_EVENT_TYPE)?;
        Some((n, payload))
    }) else {
        return Ok(false);
    };
    if payload.justified {
        return Ok(false);
    }
    if let Some(archive) = &app.archive {
        let record = crate::archive::JustificationRecord {
            event_ids: payload.event_ids.clone(),
            replied_by: vec![submission.user.clone()],
            purpose: submission.purpose.clone(),
            ticket_url: submission.ticket.clone(),
            justified_at: chrono::Utc::now().timestamp(),
            channel: channel.to_string(),
            notice_ts: ts.to_string(),
        };
        archive
            .put_justification(&payload.event_id, &record)
            .await?;
    }
    app.slack
        .add_reaction(
            token,
            channel,
            ts,
            crate::sweep::JUSTIFIED_REACTION,
            deadline,
        )
        .await?;
    payload.justified = true;
    let update = crate::render::render_metadata_update(channel, &notice.raw, &payload);
    app.slack.update_message(token, &update, deadline).await?;
    Ok(true)
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
