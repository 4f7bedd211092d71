//! A local stand-in of the Slack Web API, for privwatch's demo, tests and benchmarks.
//!
//! It implements the methods privwatch calls with Slack's request checks (bearer token, JSON
//! content type for writes, required fields, `thread_ts` of an existing message, Block Kit
//! limits, metadata shape) and Slack's answers and errors (`ok:false`, `ratelimited` with HTTP
//! 429 and `Retry-After`). It can inject faults, enforce Slack's 1 message/second/channel limit,
//! add latency, and it shows the channel as a Slack reader would: a text transcript and an HTML
//! page at `/`.
//!
//! Also here: [`runtime_api`], a minimal Lambda Runtime API for running the real bootstrap.

mod api;
pub mod faults;
pub mod render;
pub mod runtime_api;
mod state;

pub use faults::{Fault, FaultPlan, ScriptedFault};
use serde_json::Value;
pub use state::{Call, Message, User};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// How a sandbox starts.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Tokens Slack accepts.
    pub tokens: Vec<String>,
    /// Channels that exist and that the bot is a member of.
    pub channels: Vec<String>,
    /// Channels that exist but the bot was not invited to (`not_in_channel`).
    pub channels_without_bot: Vec<String>,
    pub users: Vec<User>,
    /// Added to every Slack call, like the network round trip to Slack.
    pub latency: Duration,
    /// `chat.postMessage` calls allowed per second and channel before `ratelimited` (0: no limit).
    pub post_rate_per_channel: u32,
    /// Calls per minute of each Tier 3 method (`chat.update`, `reactions.add`,
    /// `conversations.history`, `conversations.replies`, `pins.add`) across the workspace before
    /// `ratelimited` (0: no limit). Slack documents Tier 3 as "50+ per minute" with bursts: a
    /// sliding minute, so a burst of that many passes and the next waits.
    pub tier3_per_minute: u32,
    /// Print each message as it is posted (the terminal transcript).
    pub echo: bool,
    /// User groups (`S…` → member user IDs), for `usergroups.users.list`.
    pub usergroups: Vec<(String, Vec<String>)>,
    /// The scopes the token was granted: Slack names them in the `x-oauth-scopes` header of
    /// every Web API answer ("check the HTTP headers to see what OAuth scopes you have",
    /// docs.slack.dev). By default those of an app installed from privwatch's manifest.
    pub scopes: Vec<String>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            tokens: vec![DEMO_TOKEN.to_string()],
            channels: vec![DEMO_CHANNEL.to_string()],
            usergroups: vec![("S0SECURITY".to_string(), vec!["U03CAROL".to_string()])],
            channels_without_bot: vec![],
            users: demo_users(),
            latency: Duration::ZERO,
            post_rate_per_channel: 0,
            tier3_per_minute: 0,
            echo: false,
            scopes: [
                "chat:write",
                "users:read",
                "users:read.email",
                "channels:history",
                "groups:history",
                "reactions:write",
                "pins:write",
                "pins:read",
                "usergroups:read",
            ]
            .map(str::to_string)
            .to_vec(),
        }
    }
}

/// The token the demo and tests use. Not a real Slack token.
pub const DEMO_TOKEN: &str = "xoxb-sandbox-demo-token";
pub const DEMO_CHANNEL: &str = "C0PRIVWATCH";
/// The bot's own user ID in the sandbox.
pub const BOT_USER_ID: &str = "U0PRIVBOT";

/// The people the fixtures name, as Slack users.
pub fn demo_users() -> Vec<User> {
    [
        ("U01ALICE", "alice", "Alice Admin", "alice@example.com"),
        ("U02BOB", "bob", "Bob Builder", "bob@example.com"),
        ("U03CAROL", "carol", "Carol Cloud", "carol@example.co.jp"),
        ("U04DAVE", "dave", "Dave Devops", "dave@example.com"),
        ("U05ERIN", "erin", "Erin Engineer", "erin@example.com"),
    ]
    .into_iter()
    .map(|(id, name, real_name, email)| User {
        id: id.into(),
        name: name.into(),
        real_name: real_name.into(),
        email: email.into(),
    })
    .collect()
}

/// A running sandbox. Dropping it does not stop the server; it ends with the runtime.
#[derive(Clone)]
pub struct Sandbox {
    pub addr: SocketAddr,
    shared: Arc<Mutex<state::State>>,
}

impl Sandbox {
    /// Starts on `127.0.0.1:port` (0: any free port).
    pub async fn start(config: SandboxConfig, port: u16) -> std::io::Result<Sandbox> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let mut state = state::State::new(config);
        if state.config.echo {
            let users = state.config.users.clone();
            state.echo = Some(Box::new(move |m| {
                println!("{}", render::transcript_entry(m, &users))
            }));
        }
        let shared = Arc::new(Mutex::new(state));
        let router = api::router(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Sandbox { addr, shared })
    }

    /// The Web API base URL, for `SLACK_API_URL`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// Every message in `channel`, in posting order (thread replies included).
    pub fn messages(&self, channel: &str) -> Vec<Message> {
        self.shared.lock().unwrap().messages(channel)
    }

    /// Top-level messages in `channel`.
    pub fn top_level(&self, channel: &str) -> Vec<Message> {
        self.messages(channel)
            .into_iter()
            .filter(|m| m.thread_ts.is_none())
            .collect()
    }

    /// Replies in the thread of `ts`.
    pub fn thread(&self, channel: &str, ts: &str) -> Vec<Message> {
        self.messages(channel)
            .into_iter()
            .filter(|m| m.thread_ts.as_deref() == Some(ts))
            .collect()
    }

    /// Every Web API call received, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().unwrap().calls.clone()
    }

    pub fn set_faults(&self, plan: FaultPlan) {
        self.shared.lock().unwrap().faults = plan;
    }

    pub fn set_scopes(&self, scopes: Vec<String>) {
        self.shared.lock().unwrap().config.scopes = scopes;
    }

    pub fn set_tokens(&self, tokens: Vec<String>) {
        self.shared.lock().unwrap().config.tokens = tokens;
    }

    /// Posts a message as a person (a human reply in a thread, for the justification loop).
    pub fn post_as_user(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> String {
        self.shared
            .lock()
            .unwrap()
            .post_as_user(channel, user, text, thread_ts)
    }

    /// Posts a message as another Slack app (bot user `bot_user`), optionally with metadata and
    /// into a thread.
    pub fn post_as_app(
        &self,
        channel: &str,
        bot_user: &str,
        text: &str,
        metadata: Option<serde_json::Value>,
        thread_ts: Option<&str>,
    ) -> String {
        self.shared
            .lock()
            .unwrap()
            .post_as_app(channel, bot_user, text, metadata, thread_ts)
    }

    /// Moves every message `secs` into the past, as if that much time had passed since it was
    /// posted (the chase's tests).
    pub fn age_messages(&self, secs: u64) {
        self.shared.lock().unwrap().age_messages(secs);
    }

    /// Forgets every message and call.
    /// The modals opened so far (`views.open`).
    /// A fresh `trigger_id`: valid for `views.open` for three seconds from now, as in Slack.
    pub fn trigger(&self) -> String {
        self.shared.lock().unwrap().issue_trigger()
    }

    /// Sends an interaction the way Slack does: `answer` is the app handling it; Slack waits
    /// three seconds for the acknowledgement, and an answer later than that is an error the
    /// person saw (counted in [`Sandbox::late_acknowledgements`]) even if the app went on.
    /// Returns the answer and whether it came in time.
    pub async fn interact<T>(&self, answer: impl std::future::Future<Output = T>) -> (T, bool) {
        let started = std::time::Instant::now();
        let out = answer.await;
        let in_time = started.elapsed() <= std::time::Duration::from_secs(3);
        if !in_time {
            self.shared.lock().unwrap().late_acknowledgements += 1;
        }
        (out, in_time)
    }

    /// Interactions answered after Slack's three seconds.
    pub fn late_acknowledgements(&self) -> u32 {
        self.shared.lock().unwrap().late_acknowledgements
    }

    pub fn views(&self) -> Vec<Value> {
        self.shared.lock().unwrap().views.clone()
    }

    /// Ephemeral messages: (channel, user, text).
    pub fn ephemeral(&self) -> Vec<(String, String, String)> {
        self.shared.lock().unwrap().ephemeral.clone()
    }

    /// Forgets the calls made so far (the channel stays).
    pub fn reset_calls(&self) {
        self.shared.lock().unwrap().calls.clear();
    }

    pub fn reset(&self) {
        self.shared.lock().unwrap().reset();
    }
}
