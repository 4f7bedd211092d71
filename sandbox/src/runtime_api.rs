//! A minimal Lambda Runtime API (`/2018-06-01/runtime/...`), enough to run a real bootstrap
//! the way Lambda does: the process polls `invocation/next`, then posts a response or an error.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};

/// What the function answered: its response, or the error document it reported.
pub type InvokeResult = Result<Value, Value>;

struct Pending {
    id: String,
    payload: Bytes,
    reply: oneshot::Sender<InvokeResult>,
}

#[derive(Default)]
struct Inner {
    queue: Mutex<VecDeque<Pending>>,
    arrived: Notify,
    in_flight: Mutex<HashMap<String, oneshot::Sender<InvokeResult>>>,
    first_poll: Mutex<Option<Instant>>,
    init_error: Mutex<Option<Value>>,
    next_id: AtomicU64,
    timeout_ms: AtomicU64,
}

#[derive(Clone)]
pub struct RuntimeApi {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl RuntimeApi {
    /// Starts on a free loopback port. `timeout` is the function timeout each event gets.
    pub async fn start(timeout: Duration) -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner::default());
        inner
            .timeout_ms
            .store(timeout.as_millis() as u64, Ordering::Relaxed);
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(RuntimeApi { addr, inner })
    }

    /// For `AWS_LAMBDA_RUNTIME_API`.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an event and waits for the function's answer.
    pub async fn invoke(&self, payload: impl Into<Bytes>) -> InvokeResult {
        let (tx, rx) = oneshot::channel();
        let id = format!(
            "req-{:08}",
            self.inner.next_id.fetch_add(1, Ordering::Relaxed)
        );
        self.inner.queue.lock().unwrap().push_back(Pending {
            id,
            payload: payload.into(),
            reply: tx,
        });
        self.inner.arrived.notify_one();
        rx.await.unwrap_or_else(|_| {
            Err(serde_json::json!({"errorMessage": "runtime API dropped the invocation"}))
        })
    }

    /// When the function first asked for an event (the end of its init).
    pub fn first_poll(&self) -> Option<Instant> {
        *self.inner.first_poll.lock().unwrap()
    }

    /// The error the function reported at init, if any.
    pub fn init_error(&self) -> Option<Value> {
        self.inner.init_error.lock().unwrap().clone()
    }
}

async fn next(State(inner): State<Arc<Inner>>) -> impl IntoResponse {
    inner
        .first_poll
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    let pending = loop {
        let notified = inner.arrived.notified();
        if let Some(p) = inner.queue.lock().unwrap().pop_front() {
            break p;
        }
        notified.await;
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let deadline = now_ms + inner.timeout_ms.load(Ordering::Relaxed);
    let mut headers = HeaderMap::new();
    let h = |v: String| HeaderValue::from_str(&v).unwrap();
    headers.insert("Lambda-Runtime-Aws-Request-Id", h(pending.id.clone()));
    headers.insert("Lambda-Runtime-Deadline-Ms", h(deadline.to_string()));
    headers.insert(
        "Lambda-Runtime-Invoked-Function-Arn",
        h("arn:aws:lambda:us-east-1:111122223333:function:privwatch".into()),
    );
    headers.insert(
        "Lambda-Runtime-Trace-Id",
        h("Root=1-00000000-000000000000000000000000;Sampled=0".into()),
    );
    headers.insert("Content-Type", h("application/json".into()));
    inner
        .in_flight
        .lock()
        .unwrap()
        .insert(pending.id, pending.reply);
    (StatusCode::OK, headers, pending.payload)
}

fn finish(inner: &Inner, id: &str, result: InvokeResult) -> StatusCode {
    match inner.in_flight.lock().unwrap().remove(id) {
        Some(tx) => {
            let _ = tx.send(result);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json_or_text(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    finish(&inner, &id, Ok(json_or_text(&body)))
}

async fn error(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(&inner, &id, Err(json_or_text(&body)))
}

async fn init_error(State(inner): State<Arc<Inner>>, body: Bytes) -> StatusCode {
    *inner.init_error.lock().unwrap() = Some(json_or_text(&body));
    StatusCode::ACCEPTED
}
