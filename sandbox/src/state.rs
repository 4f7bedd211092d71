//! The sandbox's workspace: channels with their messages and threads, users, and a call log.

use crate::faults::FaultPlan;
use crate::{SandboxConfig, BOT_USER_ID};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub real_name: String,
    pub email: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    pub user: String,
    pub from_bot: bool,
    /// The app's bot ID for a bot's message (privwatch's is `B0PRIVBOT`).
    pub bot_id: Option<String>,
    pub text: String,
    pub blocks: Option<Value>,
    pub metadata: Option<Value>,
    pub thread_ts: Option<String>,
    pub reactions: Vec<String>,
    pub edited: bool,
    /// Pinned to the channel (`pins.add`).
    pub pinned: bool,
}

/// One Web API call as the sandbox answered it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    pub status: u16,
    /// Slack's `error` code when `ok` was false.
    pub error: Option<String>,
    /// The fault injected, if any.
    pub fault: Option<String>,
    /// A `chat.postMessage` into a thread.
    pub thread_reply: bool,
    /// A warning Slack would have added to the answer (e.g. `missing_charset`).
    pub warning: Option<String>,
}

/// A listener for each message posted.
pub type Echo = Box<dyn Fn(&Message) + Send>;

pub struct State {
    pub config: SandboxConfig,
    /// Called with each message as it is posted (`--echo`: the transcript on stdout). Set by
    /// whoever builds the state, so that the state needs no view of its own.
    pub echo: Option<Echo>,
    pub faults: FaultPlan,
    pub calls: Vec<Call>,
    messages: HashMap<String, Vec<Message>>,
    last_ts_micros: u128,
    recent_posts: HashMap<String, VecDeque<Instant>>,
    /// Recent calls of each Tier 3 method (the sliding minute of `tier3_per_minute`).
    recent_tier3: HashMap<String, VecDeque<Instant>>,
    /// Modals opened with `views.open` (the `view` as sent).
    pub views: Vec<Value>,
    /// `chat.postEphemeral` messages: (channel, user, text), seen by that user only.
    pub ephemeral: Vec<(String, String, String)>,
    /// The `trigger_id`s handed out with interactions, and when: Slack's "expire in three
    /// seconds" ("Handling user interaction in your Slack apps", docs.slack.dev).
    pub triggers: HashMap<String, std::time::Instant>,
    /// Interactions not acknowledged within Slack's three seconds: each one an error the person
    /// saw ("If your app doesn't do that, the Slack user who interacted with the app will see an
    /// error message").
    pub late_acknowledgements: u32,
}

impl State {
    pub fn new(config: SandboxConfig) -> Self {
        State {
            config,
            echo: None,
            faults: FaultPlan::default(),
            calls: Vec::new(),
            messages: HashMap::new(),
            views: Vec::new(),
            ephemeral: Vec::new(),
            triggers: HashMap::new(),
            late_acknowledgements: 0,
            last_ts_micros: 0,
            recent_posts: HashMap::new(),
            recent_tier3: HashMap::new(),
        }
    }

    /// A fresh `trigger_id`, as Slack puts in an interaction payload.
    pub fn issue_trigger(&mut self) -> String {
        let n = self.triggers.len() + 1;
        let id = format!("{n}.738474920.{:032x}", n as u128 * 0x9e37_79b9_7f4a_7c15);
        self.triggers.insert(id.clone(), std::time::Instant::now());
        id
    }

    pub fn reset(&mut self) {
        self.messages.clear();
        self.views.clear();
        self.triggers.clear();
        self.late_acknowledgements = 0;
        self.ephemeral.clear();
        self.calls.clear();
        self.recent_posts.clear();
        self.recent_tier3.clear();
    }

    pub fn age_messages(&mut self, secs: u64) {
        let shift = |ts: &str| -> String {
            let (s, us) = ts.split_once('.').unwrap_or((ts, "000000"));
            let s: u64 = s.parse().unwrap_or(0);
            format!("{}.{us}", s.saturating_sub(secs))
        };
        for messages in self.messages.values_mut() {
            for m in messages.iter_mut() {
                m.ts = shift(&m.ts);
                m.thread_ts = m.thread_ts.as_deref().map(shift);
            }
        }
    }

    pub fn messages(&self, channel: &str) -> Vec<Message> {
        self.messages.get(channel).cloned().unwrap_or_default()
    }

    pub fn channel_exists(&self, channel: &str) -> bool {
        self.config.channels.iter().any(|c| c == channel)
            || self
                .config
                .channels_without_bot
                .iter()
                .any(|c| c == channel)
    }

    pub fn bot_is_member(&self, channel: &str) -> bool {
        self.config.channels.iter().any(|c| c == channel)
    }

    /// A fresh, strictly increasing Slack timestamp (`seconds.micros`).
    pub fn next_ts(&mut self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        self.last_ts_micros = now.max(self.last_ts_micros + 1);
        format!(
            "{}.{:06}",
            self.last_ts_micros / 1_000_000,
            self.last_ts_micros % 1_000_000
        )
    }

    /// Slack's per-channel posting limit: true when one more post fits in the last second.
    pub fn admit_post(&mut self, channel: &str) -> bool {
        let limit = self.config.post_rate_per_channel as usize;
        if limit == 0 {
            return true;
        }
        let now = Instant::now();
        let window = self.recent_posts.entry(channel.to_string()).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t).as_secs_f64() >= 1.0)
        {
            window.pop_front();
        }
        if window.len() >= limit {
            return false;
        }
        window.push_back(now);
        true
    }

    /// Slack's Tier 3 limit for `method`: `Ok` when one more call fits in the last minute,
    /// else the seconds until one does (`Retry-After`).
    pub fn admit_tier3(&mut self, method: &str) -> Result<(), u64> {
        const TIER3: &[&str] = &[
            "chat.update",
            "reactions.add",
            "conversations.history",
            "conversations.replies",
            "pins.add",
        ];
        let limit = self.config.tier3_per_minute as usize;
        if limit == 0 || !TIER3.contains(&method) {
            return Ok(());
        }
        let now = Instant::now();
        let window = self.recent_tier3.entry(method.to_string()).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t).as_secs_f64() >= 60.0)
        {
            window.pop_front();
        }
        if window.len() >= limit {
            let oldest = *window.front().unwrap();
            let wait = 60.0 - now.duration_since(oldest).as_secs_f64();
            return Err(wait.ceil().max(1.0) as u64);
        }
        window.push_back(now);
        Ok(())
    }

    pub fn find(&self, channel: &str, ts: &str) -> Option<&Message> {
        self.messages.get(channel)?.iter().find(|m| m.ts == ts)
    }

    pub fn find_mut(&mut self, channel: &str, ts: &str) -> Option<&mut Message> {
        self.messages
            .get_mut(channel)?
            .iter_mut()
            .find(|m| m.ts == ts)
    }

    pub fn push(&mut self, message: Message) {
        if let Some(echo) = &self.echo {
            echo(&message);
        }
        self.messages
            .entry(message.channel.clone())
            .or_default()
            .push(message);
    }

    pub fn post_as_user(
        &mut self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> String {
        self.post_new(channel, user, None, text, None, thread_ts)
    }

    /// A message posted by another Slack app (its own bot user), with whatever metadata it likes:
    /// privwatch must not take it for its own.
    pub fn post_as_app(
        &mut self,
        channel: &str,
        bot_user: &str,
        text: &str,
        metadata: Option<Value>,
        thread_ts: Option<&str>,
    ) -> String {
        let bot_id = format!("B{}", bot_user.trim_start_matches('U'));
        self.post_new(channel, bot_user, Some(bot_id), text, metadata, thread_ts)
    }

    /// A message of `user` (an app's bot user when `bot_id` is set), posted now.
    fn post_new(
        &mut self,
        channel: &str,
        user: &str,
        bot_id: Option<String>,
        text: &str,
        metadata: Option<Value>,
        thread_ts: Option<&str>,
    ) -> String {
        let ts = self.next_ts();
        self.push(Message {
            channel: channel.to_string(),
            ts: ts.clone(),
            user: user.to_string(),
            from_bot: bot_id.is_some(),
            bot_id,
            text: text.to_string(),
            blocks: None,
            metadata,
            thread_ts: thread_ts.map(str::to_string),
            reactions: vec![],
            pinned: false,
            edited: false,
        });
        ts
    }

    /// A message as the Web API returns it (history, replies, postMessage's `message`).
    pub fn to_api(&self, m: &Message, with_metadata: bool) -> Value {
        let mut v = json!({
            "type": "message",
            "ts": m.ts,
            "user": m.user,
            "text": m.text,
        });
        if m.from_bot {
            let bot_id = m.bot_id.as_deref().unwrap_or("B0PRIVBOT");
            v["bot_id"] = json!(bot_id);
            v["app_id"] = json!(format!("A{}", bot_id.trim_start_matches('B')));
            v["bot_profile"] = json!({"id": bot_id, "app_id": v["app_id"], "name": m.user});
        }
        if let Some(blocks) = &m.blocks {
            v["blocks"] = blocks.clone();
        }
        if let Some(thread_ts) = &m.thread_ts {
            v["thread_ts"] = json!(thread_ts);
            v["parent_user_id"] = json!(BOT_USER_ID);
        }
        if with_metadata {
            if let Some(metadata) = &m.metadata {
                v["metadata"] = metadata.clone();
            }
        }
        if !m.reactions.is_empty() {
            v["reactions"] = json!(m
                .reactions
                .iter()
                .map(|r| json!({"name": r, "count": 1, "users": [BOT_USER_ID]}))
                .collect::<Vec<_>>());
        }
        if m.edited {
            v["edited"] = json!({"user": BOT_USER_ID, "ts": m.ts});
        }
        if m.pinned {
            v["pinned_to"] = json!([m.channel]);
        }
        if m.thread_ts.is_none() {
            let replies: Vec<&Message> = self
                .messages
                .get(&m.channel)
                .into_iter()
                .flatten()
                .filter(|r| r.thread_ts.as_deref() == Some(&m.ts))
                .collect();
            if !replies.is_empty() {
                let mut reply_users: Vec<&str> = Vec::new();
                for r in &replies {
                    if !reply_users.contains(&r.user.as_str()) {
                        reply_users.push(r.user.as_str());
                    }
                }
                v["thread_ts"] = json!(m.ts);
                v["reply_count"] = json!(replies.len());
                v["reply_users"] = json!(reply_users);
                v["latest_reply"] = json!(replies.last().map(|r| r.ts.clone()));
            }
        }
        v
    }
}
