//! The HTTP side: Slack Web API methods under `/api/`, the channel page at `/`, and a small
//! control API under `/_sandbox/` for tests and the demo.

use crate::faults::{Fault, FaultPlan};
use crate::state::{Call, Message, State};
use crate::{render, BOT_USER_ID};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State as AxState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Shared = Arc<Mutex<State>>;

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/api/{method}", any(web_api))
        .route("/", get(page))
        .route("/_sandbox/state", get(state_json))
        .route("/_sandbox/transcript", get(transcript))
        .route("/_sandbox/faults", post(set_faults))
        .route("/_sandbox/reset", post(reset))
        .route("/_sandbox/post_as_user", post(post_as_user))
        .route("/_sandbox/age", post(age))
        .route("/_sandbox/trigger", post(trigger))
        .with_state(shared)
}

/// Methods whose arguments may come as a JSON body (Slack accepts JSON for writes only).
const JSON_METHODS: &[&str] = &[
    "chat.postMessage",
    "chat.update",
    "reactions.add",
    "pins.add",
    "views.open",
    "chat.postEphemeral",
];

/// What a method call produced: Slack's answer, and whether a message was written.
struct Answer {
    status: StatusCode,
    body: Value,
    retry_after: Option<u64>,
}

impl Answer {
    fn ok(mut body: Value) -> Self {
        body["ok"] = json!(true);
        Answer {
            status: StatusCode::OK,
            body,
            retry_after: None,
        }
    }

    fn err(code: &str) -> Self {
        Answer {
            status: StatusCode::OK,
            body: json!({"ok": false, "error": code}),
            retry_after: None,
        }
    }

    fn with(mut self, key: &str, value: Value) -> Self {
        self.body[key] = value;
        self
    }
}

/// Like Slack, a request once received is carried out whether or not the client is still
/// waiting: the work runs in its own task, which a client hanging up does not cancel.
async fn web_api(
    shared: AxState<Shared>,
    method: Path<String>,
    query: Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    tokio::spawn(serve_call(shared, method, query, headers, body))
        .await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn serve_call(
    AxState(shared): AxState<Shared>,
    Path(method): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    // Arguments: query string, then a form body, then (for writes) a JSON body.
    let mut params: Map<String, Value> = query
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let mut bad_body = false;
    let mut warning = None;
    if !body.is_empty() {
        if content_type.starts_with("application/json") {
            // Slack: a JSON body without `charset=utf-8` is read, with a warning in the answer.
            if !content_type.replace(' ', "").contains("charset=utf-8") {
                warning = Some("missing_charset".to_string());
            }
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(map)) if JSON_METHODS.contains(&method.as_str()) => {
                    params.extend(map)
                }
                Ok(Value::Object(_)) => {}
                _ => bad_body = true,
            }
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            match serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) {
                Ok(pairs) => params.extend(pairs.into_iter().map(|(k, v)| (k, Value::String(v)))),
                Err(_) => bad_body = true,
            }
        } else {
            bad_body = true;
        }
    }
    let thread_reply = params.get("thread_ts").is_some_and(|v| v.is_string());

    let (latency, fault) = {
        let mut state = shared.lock().unwrap();
        let fault = state.faults.pick(&method, thread_reply);
        (state.config.latency, fault)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    // Faults that strike before the request is carried out.
    let early = match &fault {
        Some(Fault::ServerError { status }) => Some(Answer {
            status: StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            body: json!({"ok": false, "error": "service_unavailable"}),
            retry_after: None,
        }),
        Some(Fault::RateLimited { retry_after_secs }) => Some(Answer {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: json!({"ok": false, "error": "ratelimited"}),
            retry_after: Some(*retry_after_secs),
        }),
        Some(Fault::SlackError { code }) => Some(Answer::err(code)),
        _ => None,
    };
    let fault_label = fault.as_ref().map(Fault::label);
    if matches!(fault, Some(Fault::DropBefore)) {
        log_call(&shared, &method, 0, None, fault_label, thread_reply, None);
        return dropped_connection();
    }
    // A write that lands late: nothing is visible until it is carried out, `millis` later.
    if let Some(Fault::LandLate { millis }) = &fault {
        tokio::time::sleep(Duration::from_millis(*millis)).await;
    }

    let answer = match early {
        Some(answer) => answer,
        None => {
            let mut state = shared.lock().unwrap();
            match check_auth(&state, auth.as_deref()) {
                Err(answer) => answer,
                Ok(()) if bad_body => Answer::err("invalid_form_data"),
                Ok(()) => call_method(&mut state, &method, &params),
            }
        }
    };
    let mut answer = answer;
    if matches!(fault, Some(Fault::RepeatCursor)) && answer.body["ok"] == true {
        if let Some(cursor) = str_param(&params, "cursor") {
            answer.body["response_metadata"]["next_cursor"] = json!(cursor);
            answer.body["has_more"] = json!(true);
        }
    }
    if let Some(w) = &warning {
        answer.body["warning"] = json!(w);
        answer.body["response_metadata"]["warnings"] = json!([w]);
    }
    let error = answer.body["error"].as_str().map(str::to_string);
    log_call(
        &shared,
        &method,
        answer.status.as_u16(),
        error,
        fault_label,
        thread_reply,
        warning,
    );

    match fault {
        Some(Fault::DropAfter) => return dropped_connection(),
        Some(Fault::SlowAfter { millis }) => {
            tokio::time::sleep(Duration::from_millis(millis)).await
        }
        _ => {}
    }
    let mut response = (answer.status, Json(answer.body)).into_response();
    let scopes = shared.lock().unwrap().config.scopes.join(",");
    if let Ok(value) = scopes.parse() {
        response.headers_mut().insert("x-oauth-scopes", value);
    }
    if let Some(secs) = answer.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.to_string().parse().unwrap());
    }
    response
}

fn log_call(
    shared: &Shared,
    method: &str,
    status: u16,
    error: Option<String>,
    fault: Option<String>,
    thread_reply: bool,
    warning: Option<String>,
) {
    shared.lock().unwrap().calls.push(Call {
        method: method.to_string(),
        status,
        error,
        fault,
        thread_reply: thread_reply && method == "chat.postMessage",
        warning,
    });
}

/// A response whose body fails: the connection is closed without a complete answer.
fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("sandbox: injected connection drop"))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(failing))
        .unwrap()
}

fn check_auth(state: &State, auth: Option<&str>) -> Result<(), Answer> {
    let Some(auth) = auth else {
        return Err(Answer::err("not_authed"));
    };
    let Some(token) = auth.strip_prefix("Bearer ") else {
        return Err(Answer::err("not_authed"));
    };
    if state.config.tokens.iter().any(|t| t == token) {
        Ok(())
    } else {
        Err(Answer::err("invalid_auth"))
    }
}

fn call_method(state: &mut State, method: &str, p: &Map<String, Value>) -> Answer {
    if let Err(retry_after) = state.admit_tier3(method) {
        return Answer {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: json!({"ok": false, "error": "ratelimited"}),
            retry_after: Some(retry_after),
        };
    }
    match method {
        "auth.test" => Answer::ok(json!({
            "url": "http://sandbox.slack.local/", "team": "privwatch sandbox", "user": "privwatch",
            "team_id": "T0SANDBOX", "user_id": BOT_USER_ID, "bot_id": "B0PRIVBOT",
        })),
        "chat.postMessage" => post_message(state, p),
        "chat.update" => update_message(state, p),
        "users.lookupByEmail" => lookup_by_email(state, p),
        "conversations.history" => history(state, p),
        "conversations.replies" => replies(state, p),
        "reactions.add" => add_reaction(state, p),
        "chat.getPermalink" => permalink(state, p),
        "pins.add" => add_pin(state, p),
        "pins.list" => list_pins(state, p),
        "views.open" => open_view(state, p),
        "chat.postEphemeral" => post_ephemeral(state, p),
        "usergroups.users.list" => usergroup_users(state, p),
        _ => Answer::err("unknown_method"),
    }
}

fn str_param<'a>(p: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    p.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn bool_param(p: &Map<String, Value>, key: &str) -> bool {
    match p.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true" || s == "1",
        _ => false,
    }
}

/// Checks the channel as Slack does: exists, and the bot is in it.
fn channel_of<'a>(state: &State, p: &'a Map<String, Value>) -> Result<&'a str, Answer> {
    let channel = str_param(p, "channel").ok_or_else(|| Answer::err("channel_not_found"))?;
    if !state.channel_exists(channel) {
        return Err(Answer::err("channel_not_found"));
    }
    if !state.bot_is_member(channel) {
        return Err(Answer::err("not_in_channel"));
    }
    Ok(channel)
}

fn post_message(state: &mut State, p: &Map<String, Value>) -> Answer {
    let channel = match channel_of(state, p) {
        Ok(c) => c.to_string(),
        Err(a) => return a,
    };
    let text = p
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let (blocks, metadata) = match blocks_and_metadata(p) {
        Ok(both) => both,
        Err(answer) => return answer,
    };
    if text.trim().is_empty() && blocks.is_none() {
        return Answer::err("no_text");
    }
    if text.chars().count() > 40_000 {
        return Answer::err("msg_too_long");
    }
    let thread_ts = match str_param(p, "thread_ts") {
        None => None,
        Some(ts) => match state.find(&channel, ts) {
            None => return Answer::err("thread_not_found"),
            Some(parent) => Some(
                parent
                    .thread_ts
                    .clone()
                    .unwrap_or_else(|| parent.ts.clone()),
            ),
        },
    };
    if !state.admit_post(&channel) {
        return Answer {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: json!({"ok": false, "error": "ratelimited"}),
            retry_after: Some(1),
        };
    }
    let ts = state.next_ts();
    let blocks = blocks.map(assign_block_ids);
    let message = Message {
        channel: channel.clone(),
        ts: ts.clone(),
        user: BOT_USER_ID.to_string(),
        from_bot: true,
        bot_id: None,
        text,
        blocks,
        metadata,
        thread_ts,
        reactions: vec![],
        pinned: false,
        edited: false,
    };
    let api = state.to_api(&message, true);
    state.push(message);
    Answer::ok(json!({"channel": channel, "ts": ts, "message": api}))
}

/// The `blocks` (JSON or a JSON string) and `metadata` of a write, checked as Slack checks them.
fn blocks_and_metadata(p: &Map<String, Value>) -> Result<(Option<Value>, Option<Value>), Answer> {
    let blocks = match p.get("blocks") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            serde_json::from_str::<Value>(s).map_err(|_| Answer::err("invalid_blocks_format"))?,
        ),
        Some(v) => Some(v.clone()),
    };
    if let Some(blocks) = &blocks {
        render::validate_blocks(blocks).map_err(|problem| {
            Answer::err("invalid_blocks").with("response_metadata", json!({"messages": [problem]}))
        })?;
    }
    let metadata = match p.get("metadata") {
        None | Some(Value::Null) => None,
        Some(m) => Some(validate_metadata(m).map_err(Answer::err)?),
    };
    Ok((blocks, metadata))
}

/// Slack gives every block without one a `block_id`, as it does.
fn assign_block_ids(mut blocks: Value) -> Value {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if let Some(items) = blocks.as_array_mut() {
        for block in items {
            if block["block_id"].is_null() {
                let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                block["block_id"] = json!(format!("sb{n:x}"));
            }
        }
    }
    blocks
}

fn block_ids(blocks: Option<&Value>) -> Vec<String> {
    blocks
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| b["block_id"].as_str().map(str::to_string))
        .collect()
}

/// `event_payload` as `@slack/types` `MessageMetadata` allows it: each value a string, number,
/// boolean, an object of those, or an array of such objects.
fn payload_value_ok(value: &Value) -> bool {
    let scalar = |v: &Value| v.is_string() || v.is_number() || v.is_boolean();
    let flat_object = |v: &Value| v.as_object().is_some_and(|o| o.values().all(scalar));
    scalar(value)
        || flat_object(value)
        || value
            .as_array()
            .is_some_and(|items| items.iter().all(flat_object))
}

fn validate_metadata(m: &Value) -> Result<Value, &'static str> {
    let m = match m {
        Value::String(s) => {
            serde_json::from_str::<Value>(s).map_err(|_| "invalid_metadata_format")?
        }
        other => other.clone(),
    };
    let event_type = m["event_type"].as_str().ok_or("invalid_metadata_format")?;
    if event_type.is_empty()
        || !event_type
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err("invalid_metadata_format");
    }
    let Some(payload) = m["event_payload"].as_object() else {
        return Err("invalid_metadata_format");
    };
    if !payload.values().all(payload_value_ok) {
        return Err("invalid_metadata_schema");
    }
    Ok(m)
}

fn update_message(state: &mut State, p: &Map<String, Value>) -> Answer {
    let channel = match channel_of(state, p) {
        Ok(c) => c.to_string(),
        Err(a) => return a,
    };
    let Some(ts) = str_param(p, "ts") else {
        return Answer::err("message_not_found");
    };
    let (blocks, metadata) = match blocks_and_metadata(p) {
        Ok(both) => both,
        Err(answer) => return answer,
    };
    let text = p.get("text").and_then(Value::as_str);
    // chat.update: "msg_too_long — Message text is too long" (4,000 characters).
    if text.is_some_and(|t| t.chars().count() > 4_000) {
        return Answer::err("msg_too_long");
    }
    let Some(message) = state.find_mut(&channel, ts) else {
        return Answer::err("message_not_found");
    };
    // Only the poster may edit: another app's (or a person's) message is not the bot's to change.
    if message.user != BOT_USER_ID {
        return Answer::err("cant_update_message");
    }
    // "If a message is updated, use a new block_id."
    if let Some(new) = &blocks {
        let old = block_ids(message.blocks.as_ref());
        if let Some(reused) = block_ids(Some(new)).into_iter().find(|id| old.contains(id)) {
            return Answer::err("invalid_blocks").with(
                "response_metadata",
                json!({"messages": [format!("block_id {reused} was already used by this message; an update needs new block_ids")]}),
            );
        }
    }
    if let Some(text) = text {
        message.text = text.to_string();
    }
    if let Some(new) = blocks {
        message.blocks = Some(assign_block_ids(new));
    }
    if metadata.is_some() {
        message.metadata = metadata;
    }
    message.edited = true;
    let text = message.text.clone();
    Answer::ok(json!({"channel": channel, "ts": ts, "text": text}))
}

fn lookup_by_email(state: &State, p: &Map<String, Value>) -> Answer {
    let Some(email) = str_param(p, "email") else {
        return Answer::err("invalid_arguments");
    };
    match state
        .config
        .users
        .iter()
        .find(|u| u.email.eq_ignore_ascii_case(email))
    {
        Some(u) => Answer::ok(json!({"user": {
            "id": u.id, "name": u.name, "real_name": u.real_name,
            "profile": {"email": u.email, "real_name": u.real_name, "display_name": u.name},
            "deleted": false, "is_bot": false,
        }})),
        None => Answer::err("users_not_found"),
    }
}

fn ts_value(ts: &str) -> f64 {
    ts.parse().unwrap_or(0.0)
}

/// Slack's cursors are opaque; the sandbox's encode an offset.
fn page_of<T: Clone>(items: &[T], p: &Map<String, Value>) -> (Vec<T>, Option<String>) {
    let limit = str_param(p, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .or_else(|| p.get("limit").and_then(Value::as_u64).map(|l| l as usize))
        .unwrap_or(100)
        .clamp(1, 999);
    let offset = str_param(p, "cursor")
        .and_then(|c| c.strip_prefix("offset_"))
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let page: Vec<T> = items.iter().skip(offset).take(limit).cloned().collect();
    let next = (offset + limit < items.len()).then(|| format!("offset_{}", offset + limit));
    (page, next)
}

fn history(state: &State, p: &Map<String, Value>) -> Answer {
    let channel = match channel_of(state, p) {
        Ok(c) => c,
        Err(a) => return a,
    };
    let oldest = str_param(p, "oldest").map(ts_value).unwrap_or(0.0);
    let latest = str_param(p, "latest").map(ts_value).unwrap_or(f64::MAX);
    let inclusive = bool_param(p, "inclusive");
    let with_metadata = bool_param(p, "include_all_metadata");
    let within = |ts: f64| {
        if inclusive {
            ts >= oldest && ts <= latest
        } else {
            ts > oldest && ts < latest
        }
    };
    let mut top: Vec<Message> = state
        .messages(channel)
        .into_iter()
        .filter(|m| m.thread_ts.is_none() && within(ts_value(&m.ts)))
        .collect();
    top.reverse(); // newest first
    let (page, next) = page_of(&top, p);
    let messages: Vec<Value> = page
        .iter()
        .map(|m| state.to_api(m, with_metadata))
        .collect();
    Answer::ok(json!({
        "messages": messages,
        "has_more": next.is_some(),
        "response_metadata": {"next_cursor": next.unwrap_or_default()},
    }))
}

fn replies(state: &State, p: &Map<String, Value>) -> Answer {
    let channel = match channel_of(state, p) {
        Ok(c) => c,
        Err(a) => return a,
    };
    let Some(ts) = str_param(p, "ts") else {
        return Answer::err("thread_not_found");
    };
    let Some(parent) = state.find(channel, ts) else {
        return Answer::err("thread_not_found");
    };
    let root = parent
        .thread_ts
        .clone()
        .unwrap_or_else(|| parent.ts.clone());
    let with_metadata = bool_param(p, "include_all_metadata");
    let thread: Vec<Message> = state
        .messages(channel)
        .into_iter()
        .filter(|m| m.ts == root || m.thread_ts.as_deref() == Some(&root))
        .collect();
    let (page, next) = page_of(&thread, p);
    let messages: Vec<Value> = page
        .iter()
        .map(|m| state.to_api(m, with_metadata))
        .collect();
    Answer::ok(json!({
        "messages": messages,
        "has_more": next.is_some(),
        "response_metadata": {"next_cursor": next.unwrap_or_default()},
    }))
}

fn add_reaction(state: &mut State, p: &Map<String, Value>) -> Answer {
    let channel = match channel_of(state, p) {
        Ok(c) => c.to_string(),
        Err(a) => return a,
    };
    let (Some(ts), Some(name)) = (str_param(p, "timestamp"), str_param(p, "name")) else {
        return Answer::err("invalid_arguments");
    };
    let Some(message) = state.find_mut(&channel, ts) else {
        return Answer::err("message_not_found");
    };
    if message.reactions.iter().any(|r| r == name) {
        return Answer::err("already_reacted");
    }
    message.reactions.push(name.to_string());
    Answer::ok(json!({}))
}

/// `pins.add`: `channel`, `timestamp`; `already_pinned`, `message_not_found` as Slack answers.
fn add_pin(state: &mut State, p: &Map<String, Value>) -> Answer {
    let channel = match channel_of(state, p) {
        Ok(c) => c.to_string(),
        Err(a) => return a,
    };
    let Some(ts) = str_param(p, "timestamp") else {
        return Answer::err("no_item_specified");
    };
    let Some(message) = state.find_mut(&channel, ts) else {
        return Answer::err("message_not_found");
    };
    if message.pinned {
        return Answer::err("already_pinned");
    }
    message.pinned = true;
    Answer::ok(json!({}))
}

/// `pins.list`: the channel's pinned messages, newest first, without metadata (Slack returns
/// message metadata only from `conversations.history`/`replies` with `include_all_metadata`).
fn list_pins(state: &State, p: &Map<String, Value>) -> Answer {
    let channel = match channel_of(state, p) {
        Ok(c) => c,
        Err(a) => return a,
    };
    let mut items: Vec<Value> = state
        .messages(channel)
        .iter()
        .filter(|m| m.pinned)
        .map(|m| {
            let mut message = state.to_api(m, false);
            message.as_object_mut().map(|o| o.remove("metadata"));
            json!({"type": "message", "channel": channel, "created_by": BOT_USER_ID,
                   "created": m.ts.split('.').next().unwrap_or("0").parse::<i64>().unwrap_or(0),
                   "message": message})
        })
        .collect();
    items.reverse();
    Answer::ok(json!({"items": items}))
}

/// `views.open`: a `trigger_id` (from an interaction, valid 3 s in Slack) and a modal `view`
/// with a title, at most 100 blocks, and a `callback_id` to route its submission.
fn open_view(state: &mut State, p: &Map<String, Value>) -> Answer {
    // A trigger Slack never handed out is invalid; one older than three seconds has expired
    // ("Triggers expire in three seconds", "Handling user interaction in your Slack apps").
    let Some(issued) = str_param(p, "trigger_id").and_then(|t| state.triggers.get(t)) else {
        return Answer::err("invalid_trigger_id");
    };
    if issued.elapsed() > std::time::Duration::from_secs(3) {
        return Answer::err("expired_trigger_id");
    }
    let view = match p.get("view") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(v) => v.clone(),
        None => Value::Null,
    };
    let ok = view["type"] == "modal"
        && view["title"]["type"] == "plain_text"
        && view["title"]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty() && t.chars().count() <= 24)
        && view["blocks"]
            .as_array()
            .is_some_and(|b| !b.is_empty() && b.len() <= 100)
        && view["private_metadata"]
            .as_str()
            .is_none_or(|m| m.len() <= 3000);
    if !ok {
        return Answer::err("invalid_arguments");
    }
    state.views.push(view.clone());
    Answer::ok(json!({"view": view}))
}

/// `chat.postEphemeral`: seen only by `user`, who must be in the channel.
fn post_ephemeral(state: &mut State, p: &Map<String, Value>) -> Answer {
    let channel = match channel_of(state, p) {
        Ok(c) => c.to_string(),
        Err(a) => return a,
    };
    let (Some(user), Some(text)) = (str_param(p, "user"), str_param(p, "text")) else {
        return Answer::err("invalid_arguments");
    };
    if !state.config.users.iter().any(|u| u.id == user) {
        return Answer::err("user_not_in_channel");
    }
    state
        .ephemeral
        .push((channel, user.to_string(), text.to_string()));
    Answer::ok(json!({"message_ts": "0.000001"}))
}

/// `usergroups.users.list`: the group's member IDs.
fn usergroup_users(state: &State, p: &Map<String, Value>) -> Answer {
    let Some(group) = str_param(p, "usergroup") else {
        return Answer::err("no_such_subteam");
    };
    match state.config.usergroups.iter().find(|(id, _)| id == group) {
        Some((_, users)) => Answer::ok(json!({"users": users})),
        None => Answer::err("no_such_subteam"),
    }
}

fn permalink(state: &State, p: &Map<String, Value>) -> Answer {
    let channel = match channel_of(state, p) {
        Ok(c) => c,
        Err(a) => return a,
    };
    let Some(ts) = str_param(p, "message_ts") else {
        return Answer::err("message_not_found");
    };
    let Some(message) = state.find(channel, ts) else {
        return Answer::err("message_not_found");
    };
    let mut link = format!(
        "http://sandbox.slack.local/archives/{channel}/p{}",
        ts.replace('.', "")
    );
    if let Some(thread) = &message.thread_ts {
        link.push_str(&format!("?thread_ts={thread}&cid={channel}"));
    }
    Answer::ok(json!({"channel": channel, "permalink": link}))
}

async fn page(AxState(shared): AxState<Shared>) -> Html<String> {
    let state = shared.lock().unwrap();
    Html(render::page(
        &state.config.channels,
        |c| state.messages(c),
        &state.config.users,
    ))
}

async fn state_json(AxState(shared): AxState<Shared>) -> Json<Value> {
    let state = shared.lock().unwrap();
    let channels: Map<String, Value> = state
        .config
        .channels
        .iter()
        .map(|c| (c.clone(), json!(state.messages(c))))
        .collect();
    Json(
        json!({"channels": channels, "calls": state.calls, "views": state.views,
                "ephemeral": state.ephemeral}),
    )
}

/// The channel as text; with `?links=1`, a Block Kit Builder preview link for each notice.
async fn transcript(
    AxState(shared): AxState<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> String {
    let state = shared.lock().unwrap();
    let links = q.get("links").is_some_and(|v| v == "1");
    state
        .config
        .channels
        .iter()
        .map(|c| render::transcript_with(&state.messages(c), &state.config.users, links))
        .collect()
}

async fn set_faults(AxState(shared): AxState<Shared>, Json(plan): Json<FaultPlan>) -> StatusCode {
    shared.lock().unwrap().faults = plan;
    StatusCode::NO_CONTENT
}

/// A person's message (a reply in a thread), as the demo's "someone answered" step.
#[derive(serde::Deserialize)]
struct PersonMessage {
    channel: Option<String>,
    user: String,
    text: String,
    thread_ts: Option<String>,
}

async fn post_as_user(
    AxState(shared): AxState<Shared>,
    Json(m): Json<PersonMessage>,
) -> Json<Value> {
    let mut state = shared.lock().unwrap();
    let channel = m.channel.unwrap_or_else(|| crate::DEMO_CHANNEL.to_string());
    let ts = state.post_as_user(&channel, &m.user, &m.text, m.thread_ts.as_deref());
    Json(json!({"ok": true, "ts": ts}))
}

/// Moves every message into the past, as if `secs` had passed (the demo's "time passes" step).
#[derive(serde::Deserialize)]
struct Age {
    secs: u64,
}

async fn age(AxState(shared): AxState<Shared>, Json(a): Json<Age>) -> StatusCode {
    shared.lock().unwrap().age_messages(a.secs);
    StatusCode::NO_CONTENT
}

/// A fresh `trigger_id` for an interaction the caller is about to send (the demo's clicks).
async fn trigger(AxState(shared): AxState<Shared>) -> Json<Value> {
    Json(json!({"trigger_id": shared.lock().unwrap().issue_trigger()}))
}

async fn reset(AxState(shared): AxState<Shared>) -> StatusCode {
    shared.lock().unwrap().reset();
    StatusCode::NO_CONTENT
}
