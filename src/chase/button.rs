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

use crate::app::{App, Session};
use crate::channel::{find_reply, our_notice, Confirm};
use crate::chase::{mark_justified, Justified};
use crate::error::Error;
use crate::message::justify::{render_justification, render_modal, MAX_PURPOSE_CHARS};
use crate::message::metadata::{
    payload_of, LinePayload, JUSTIFICATION_EVENT_TYPE, LINE_EVENT_TYPE,
};
use crate::message::render::{JUSTIFY_ACTION, JUSTIFY_CALLBACK};
use crate::slack::signature::{form_field, verify_within, Rejected, MAX_AGE_SECS};
use crate::slack::{SlackError, Ts};
use crate::token::SigningSecret;
use base64::Engine;
use serde_json::{json, Value};
use tokio::time::Instant;

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

/// A Function URL request (payload format 2.0) and its response, as `aws_lambda_events` types
/// them.
pub use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest as Request, LambdaFunctionUrlResponse as Response,
};

/// The Function URL request this invocation is, if it is one (not an EventBridge event); `Err`
/// when it has the shape of one but not its fields.
pub fn http_request(payload: &Value) -> Option<Result<Request, String>> {
    payload["requestContext"]["http"]
        .is_object()
        .then(|| serde_json::from_value(payload.clone()).map_err(|e| e.to_string()))
}

/// The HTTP response: `status`, and `body` as JSON (none when it is `null`).
pub fn respond(status: u16, body: Value) -> Response {
    let mut response = Response::default();
    response.status_code = i64::from(status);
    response.headers.insert(
        aws_lambda_events::http::header::CONTENT_TYPE,
        aws_lambda_events::http::HeaderValue::from_static("application/json"),
    );
    // An empty answer is an empty body, as Slack expects for a plain acknowledgement.
    response.body = Some(match body.is_null() {
        true => String::new(),
        false => body.to_string(),
    });
    response
}

/// A Function URL request as Lambda hands it over: its headers and its raw body.
struct Signed<'a> {
    request: &'a Request,
    body: Vec<u8>,
}

impl<'a> Signed<'a> {
    fn of(request: &'a Request) -> Self {
        let raw = request.body.as_deref().unwrap_or_default();
        let body = if request.is_base64_encoded {
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .unwrap_or_default()
        } else {
            raw.as_bytes().to_vec()
        };
        Signed { request, body }
    }

    fn header(&self, name: &str) -> &'a str {
        self.request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
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
    request: &Request,
    deadline: Instant,
) -> Result<Response, Error> {
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
async fn on_button(app: &App, payload: &Value, deadline: Instant) -> Result<Value, Error> {
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
    app.with_session(channel, deadline, async |cx| {
        match allowed(cx, &ts, user).await? {
            Allowed::Yes => {
                let wording = cx.app.wording().await;
                let tracker = cx.app.config.ticket_pattern.is_some();
                let view = render_modal(channel, ts.as_str(), &wording, tracker);
                let token = cx.token.expose();
                cx.app
                    .slack
                    .open_view(token, trigger, &view, deadline)
                    .await?;
            }
            Allowed::No(asked) => {
                let text = only_text(cx, asked.as_deref()).await;
                let token = cx.token.expose();
                cx.app
                    .slack
                    .post_ephemeral(token, channel, user, &text, deadline)
                    .await?;
            }
        }
        Ok(())
    })
    .await?;
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
        let words = app
            .config
            .wording
            .modal(app.config.ticket_pattern.is_some());
        let mut errors = serde_json::Map::new();
        if self.purpose.is_empty() || self.purpose.chars().count() > MAX_PURPOSE_CHARS {
            errors.insert("purpose".into(), json!(words.purpose_missing));
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
            errors.insert("ticket".into(), json!(words.ticket_invalid));
        }
        errors
    }
}

/// The modal submitted: checked as Slack shows it (inline errors), then handed over to be
/// posted, and answered — within Slack's three seconds.
async fn on_submit(
    app: &App,
    request: &Request,
    payload: &Value,
    deadline: Instant,
) -> Result<Value, Error> {
    let Some(submission) = Submission::of(payload) else {
        return Ok(Value::Null);
    };
    if !app.config.channels().contains(&submission.channel.as_str()) {
        return Ok(Value::Null);
    }
    let (channel, ts, user) = (&submission.channel, &submission.ts, &submission.user);
    let refused = app
        .with_session(channel, deadline, async |cx| {
            match allowed(cx, ts, user).await? {
                Allowed::Yes => Ok(None),
                Allowed::No(asked) => Ok(Some(only_text(cx, asked.as_deref()).await)),
            }
        })
        .await?;
    if let Some(text) = refused {
        return Ok(json!({"response_action": "errors", "errors": {"purpose": text}}));
    }
    let errors = submission.errors(app);
    if !errors.is_empty() {
        return Ok(json!({"response_action": "errors", "errors": errors}));
    }
    let handed = app
        .handoff
        .send(&json!({ DEFERRED_KEY: request }), deadline)
        .await?;
    if !handed {
        complete(app, request, deadline).await?;
    }
    Ok(Value::Null)
}

/// The request inside a handed-over submission, if this payload is one.
pub fn deferred(payload: &Value) -> Option<Request> {
    let request = payload.get(DEFERRED_KEY).filter(|r| r.is_object())?;
    serde_json::from_value(request.clone()).ok()
}

/// What completing a submission did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
pub async fn complete(app: &App, request: &Request, deadline: Instant) -> Result<Completed, Error> {
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
    let channel = submission.channel.clone();
    app.with_session(&channel, deadline, async |cx| {
        complete_in(cx, &submission).await
    })
    .await
}

async fn complete_in(cx: &Session<'_>, submission: &Submission) -> Result<Completed, Error> {
    let nothing = Completed {
        posted: false,
        marked: false,
    };
    let Submission {
        channel,
        ts,
        user,
        purpose,
        ticket,
    } = submission;
    if let Allowed::No(_) = allowed(cx, ts, user).await? {
        return Ok(nothing);
    }
    // Look before writing: a second submission of the same justification (or this one's retry
    // after a post whose answer was lost) finds it in the thread.
    let there = find_reply(cx, ts, JUSTIFICATION_EVENT_TYPE, |m| {
        let p = &m.raw["metadata"]["event_payload"];
        p["user"] == user.as_str()
            && p["purpose"] == purpose.as_str()
            && p["ticket_url"] == ticket.as_str()
    })
    .await?
    .is_some();
    if !there {
        let wording = cx.app.wording().await;
        let body = render_justification(channel, ts.as_str(), user, purpose, ticket, &wording);
        cx.app
            .slack
            .post_message(cx.token.expose(), &body, cx.deadline)
            .await?;
    }
    // Justified now, not at the next sweep, in the sweep's order (`mark_justified`).
    let marked = match our_notice(cx, ts).await? {
        Some((_, payload)) if !payload.justified => {
            let found = Justified {
                replied_by: vec![user.clone()],
                purpose: purpose.clone(),
                ticket_url: ticket.clone(),
            };
            mark_justified(cx, ts, &payload, found, Confirm::Required).await?;
            true
        }
        _ => false,
    };
    Ok(Completed {
        posted: !there,
        marked,
    })
}

enum Allowed {
    Yes,
    /// No; the user the notice asked, if it asked a person.
    No(Option<String>),
}

/// The person the notice asked (privwatch's first line's `<@U…>`), or a member of
/// `JUSTIFY_USERGROUP`.
async fn allowed(cx: &Session<'_>, notice_ts: &Ts, user: &str) -> Result<Allowed, SlackError> {
    let first = find_reply(cx, notice_ts, LINE_EVENT_TYPE, |m| {
        payload_of::<LinePayload>(&m.raw, LINE_EVENT_TYPE).is_some_and(|l| !l.repeat)
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
    if let Some(group) = &cx.app.config.justify_usergroup {
        if cx
            .app
            .slack
            .usergroup_members(cx.token.expose(), group, cx.deadline)
            .await?
            .iter()
            .any(|m| m == user)
        {
            return Ok(Allowed::Yes);
        }
    }
    Ok(Allowed::No(asked))
}

/// "Only … can justify this", in the deployment's language.
async fn only_text(cx: &Session<'_>, asked: Option<&str>) -> String {
    let group = cx.app.config.justify_usergroup.as_deref();
    cx.app.wording().await.only_they_justify(asked, group)
}
