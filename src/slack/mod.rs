//! A small Slack Web API client: the methods privwatch calls, Slack's errors mapped to one error
//! type, and bounded retries that honour `Retry-After` within the caller's deadline.
//!
//! It knows nothing of CloudTrail. The token is sent only in the `Authorization` header and
//! never appears in an error or a log line.

use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

mod error;
mod pages;
pub mod secret;
pub mod signature;
mod types;

pub use error::SlackError;
use error::{hint, TRANSIENT_ERRORS};
pub use pages::Pages;
pub use types::{written_by_person, BotUser, FoundMessage, Ts};

/// How hard to try before giving up (and letting Lambda retry the whole invocation).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Upper bound of one HTTP request; shortened to the time left before the deadline.
    pub request_timeout: Duration,
    /// How long after a write was sent Slack may still carry it out. A write whose fate is
    /// unknown is looked for until then and never sent again before then (exactly-once rests on
    /// Slack carrying out a write within this time, or never).
    pub write_settle: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
            request_timeout: Duration::from_secs(8),
            write_settle: Duration::from_secs(30),
        }
    }
}
/// Whether repeating a request can do harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Reads: any failure may be retried.
    Read,
    /// Writes: retried only when Slack surely did not carry them out (429, `ratelimited`,
    /// connection refused); otherwise reported as [`SlackError::Unconfirmed`].
    Write,
}

enum Body<'a> {
    Json(&'a Value),
    Query(&'a [(&'a str, String)]),
}

#[derive(Debug, Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    base_url: String,
    policy: RetryPolicy,
}

impl SlackClient {
    pub fn new(http: reqwest::Client, base_url: &str, policy: RetryPolicy) -> Self {
        SlackClient {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            policy,
        }
    }

    /// How long after sending Slack may still carry out a write (see [`RetryPolicy::write_settle`]).
    pub fn write_settle(&self) -> Duration {
        self.policy.write_settle
    }

    /// `chat.postMessage`; returns the new message's `ts`.
    pub async fn post_message(
        &self,
        token: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<Ts, SlackError> {
        let method = "chat.postMessage";
        let answer = self
            .call(method, token, Body::Json(body), Effect::Write, deadline)
            .await?;
        answer["ts"]
            .as_str()
            .and_then(Ts::new)
            .ok_or_else(|| SlackError::Protocol {
                method,
                detail: "no `ts` in the answer".into(),
            })
    }

    /// `chat.update` (the coalesced notice's count and time range).
    pub async fn update_message(
        &self,
        token: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<(), SlackError> {
        self.call(
            "chat.update",
            token,
            Body::Json(body),
            Effect::Write,
            deadline,
        )
        .await
        .map(|_| ())
    }

    /// `reactions.add`; `already_reacted` counts as success.
    pub async fn add_reaction(
        &self,
        token: &str,
        channel: &str,
        ts: &Ts,
        name: &str,
        deadline: Instant,
    ) -> Result<(), SlackError> {
        let body = serde_json::json!({"channel": channel, "timestamp": ts.as_str(), "name": name});
        self.write_idempotent("reactions.add", token, &body, "already_reacted", deadline)
            .await
    }

    /// A write whose `already` answer means it was done before (a retry): success.
    async fn write_idempotent(
        &self,
        method: &'static str,
        token: &str,
        body: &Value,
        already: &str,
        deadline: Instant,
    ) -> Result<(), SlackError> {
        match self
            .call(method, token, Body::Json(body), Effect::Write, deadline)
            .await
        {
            Err(SlackError::Refused { code, .. }) if code == already => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// `users.lookupByEmail`; `None` when no Slack user has that address.
    pub async fn lookup_user_by_email(
        &self,
        token: &str,
        email: &str,
        deadline: Instant,
    ) -> Result<Option<String>, SlackError> {
        let method = "users.lookupByEmail";
        let query = [("email", email.to_string())];
        match self
            .call(method, token, Body::Query(&query), Effect::Read, deadline)
            .await
        {
            Ok(answer) => Ok(answer["user"]["id"].as_str().map(str::to_string)),
            Err(SlackError::Refused { code, .. }) if code == "users_not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The pages of `conversations.history` (newest first, with message metadata), at most
    /// `max_pages` of 200 messages.
    pub fn history<'a>(
        &'a self,
        token: &'a str,
        channel: &str,
        oldest: Option<&Ts>,
        latest: Option<&Ts>,
        max_pages: u32,
    ) -> Pages<'a> {
        let mut query = vec![("channel", channel.to_string())];
        if let Some(oldest) = oldest {
            query.push(("oldest", oldest.to_string()));
        }
        if let Some(latest) = latest {
            query.push(("latest", latest.to_string()));
            query.push(("inclusive", "true".to_string()));
        }
        Pages::new(self, token, "conversations.history", query, max_pages)
    }

    /// The pages of `conversations.replies` (the parent first, with message metadata), at most
    /// `max_pages` of 200 messages.
    pub fn replies<'a>(
        &'a self,
        token: &'a str,
        channel: &str,
        thread_ts: &Ts,
        max_pages: u32,
    ) -> Pages<'a> {
        let query = vec![
            ("channel", channel.to_string()),
            ("ts", thread_ts.to_string()),
        ];
        Pages::new(self, token, "conversations.replies", query, max_pages)
    }

    /// `auth.test`: opens (and so warms) the connection; returns the bot's user ID.
    pub async fn auth_test(&self, token: &str, deadline: Instant) -> Result<BotUser, SlackError> {
        let method = "auth.test";
        let answer = self
            .call(method, token, Body::Query(&[]), Effect::Read, deadline)
            .await?;
        match answer["user_id"].as_str() {
            Some(id) if !id.is_empty() => Ok(BotUser(id.to_string())),
            _ => Err(SlackError::Protocol {
                method,
                detail: "no `user_id` in the answer".into(),
            }),
        }
    }

    /// `views.open`: a modal, in answer to an interaction's `trigger_id`.
    pub async fn open_view(
        &self,
        token: &str,
        trigger_id: &str,
        view: &Value,
        deadline: Instant,
    ) -> Result<(), SlackError> {
        let body = serde_json::json!({"trigger_id": trigger_id, "view": view});
        self.call(
            "views.open",
            token,
            Body::Json(&body),
            Effect::Write,
            deadline,
        )
        .await
        .map(|_| ())
    }

    /// `chat.postEphemeral`: a message only `user` sees.
    pub async fn post_ephemeral(
        &self,
        token: &str,
        channel: &str,
        user: &str,
        text: &str,
        deadline: Instant,
    ) -> Result<(), SlackError> {
        let body = serde_json::json!({"channel": channel, "user": user, "text": text});
        self.call(
            "chat.postEphemeral",
            token,
            Body::Json(&body),
            Effect::Write,
            deadline,
        )
        .await
        .map(|_| ())
    }

    /// `usergroups.users.list`: the members of a user group (`S…`).
    pub async fn usergroup_members(
        &self,
        token: &str,
        usergroup: &str,
        deadline: Instant,
    ) -> Result<Vec<String>, SlackError> {
        let query = [("usergroup", usergroup.to_string())];
        let answer = self
            .call(
                "usergroups.users.list",
                token,
                Body::Query(&query),
                Effect::Read,
                deadline,
            )
            .await?;
        Ok(answer["users"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str().map(str::to_string))
            .collect())
    }

    /// `pins.add`; `already_pinned` counts as success.
    pub async fn pin(
        &self,
        token: &str,
        channel: &str,
        ts: &Ts,
        deadline: Instant,
    ) -> Result<(), SlackError> {
        let body = serde_json::json!({"channel": channel, "timestamp": ts.as_str()});
        self.write_idempotent("pins.add", token, &body, "already_pinned", deadline)
            .await
    }

    /// `pins.list`: the channel's pinned messages (without metadata: read those with
    /// [`SlackClient::message`]).
    pub async fn pinned(
        &self,
        token: &str,
        channel: &str,
        deadline: Instant,
    ) -> Result<Vec<FoundMessage>, SlackError> {
        let query = [("channel", channel.to_string())];
        let answer = self
            .call(
                "pins.list",
                token,
                Body::Query(&query),
                Effect::Read,
                deadline,
            )
            .await?;
        Ok(answer["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| FoundMessage::from_raw(item["message"].clone()))
            .collect())
    }

    /// One message of the channel, with its metadata, read again (`None`: it is gone).
    pub async fn message(
        &self,
        token: &str,
        channel: &str,
        ts: &Ts,
        deadline: Instant,
    ) -> Result<Option<FoundMessage>, SlackError> {
        self.history(token, channel, Some(ts), Some(ts), 1)
            .find(deadline, |m| m.ts == *ts)
            .await
    }

    /// `chat.getPermalink`.
    pub async fn permalink(
        &self,
        token: &str,
        channel: &str,
        ts: &Ts,
        deadline: Instant,
    ) -> Result<String, SlackError> {
        let query = [
            ("channel", channel.to_string()),
            ("message_ts", ts.to_string()),
        ];
        let answer = self
            .call(
                "chat.getPermalink",
                token,
                Body::Query(&query),
                Effect::Read,
                deadline,
            )
            .await?;
        Ok(answer["permalink"].as_str().unwrap_or_default().to_string())
    }

    async fn page(
        &self,
        method: &'static str,
        token: &str,
        query: &[(&str, String)],
        deadline: Instant,
    ) -> Result<(Vec<FoundMessage>, Option<String>), SlackError> {
        let mut answer = self
            .call(method, token, Body::Query(query), Effect::Read, deadline)
            .await?;
        // Moved out of the answer, not cloned: a page can hold 200 messages with their blocks.
        let Value::Array(raw_messages) = answer["messages"].take() else {
            return Err(SlackError::Protocol {
                method,
                detail: "no `messages` in the answer".into(),
            });
        };
        let messages = raw_messages
            .into_iter()
            .filter_map(FoundMessage::from_raw)
            .collect();
        let next = answer["response_metadata"]["next_cursor"]
            .as_str()
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        Ok((messages, next))
    }

    async fn call(
        &self,
        method: &'static str,
        token: &str,
        body: Body<'_>,
        effect: Effect,
        deadline: Instant,
    ) -> Result<Value, SlackError> {
        let url = format!("{}/{method}", self.base_url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(SlackError::Unavailable {
                    method,
                    detail: "no time left before the invocation's deadline".into(),
                    attempts: attempt - 1,
                });
            }
            let request = match &body {
                // Slack asks for the charset (it answers `missing_charset` otherwise).
                Body::Json(json) => self
                    .http
                    .post(&url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/json; charset=utf-8",
                    )
                    .body(serde_json::to_vec(json).unwrap_or_default()),
                Body::Query(query) => self.http.get(&url).query(query),
            }
            .bearer_auth(token)
            .timeout(remaining.min(self.policy.request_timeout));

            let retry = match attempt_once(method, request, effect).await {
                Ok(answer) => return Ok(answer),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry { detail, wait }) => (detail, wait),
            };
            let (detail, wait) = retry;
            let wait = wait.unwrap_or_else(|| self.backoff(attempt));
            let time_left = deadline.saturating_duration_since(Instant::now());
            if attempt >= self.policy.max_attempts || wait + Duration::from_millis(50) >= time_left
            {
                let detail = match history_limit_hint(method, &detail) {
                    Some(hint) => {
                        tracing::error!(method, attempts = attempt, "{hint}");
                        format!("{detail}; {hint}")
                    }
                    None => detail,
                };
                return Err(SlackError::Unavailable {
                    method,
                    detail,
                    attempts: attempt,
                });
            }
            tracing::warn!(
                method,
                attempt,
                wait_ms = wait.as_millis() as u64,
                reason = %detail,
                "Slack call failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(10);
        (self.policy.base_backoff * factor).min(self.policy.max_backoff)
    }
}

/// A history or thread read that Slack kept rate-limiting is named for what it most likely is:
/// "...will be limited to 1 request per minute, unless they are approved for the Slack
/// Marketplace. The maximum and default for the `limit` parameter has been reduced to 15
/// objects" — for commercially distributed apps; "Internal customer-built applications are not
/// impacted by these changes" ("Rate limit changes for non-Marketplace apps", docs.slack.dev,
/// 2025-05-29). privwatch reads both on every path, so it must be installed as an internal app.
fn history_limit_hint(method: &str, detail: &str) -> Option<&'static str> {
    let reads_history = matches!(method, "conversations.history" | "conversations.replies");
    let rate_limited = detail == "ratelimited" || detail.contains("429");
    (reads_history && rate_limited).then_some(
        "Slack kept rate-limiting reads of channel history: if privwatch's Slack app is distributed \
         (not an internal app of this workspace), Slack allows it 1 conversations.history or \
         conversations.replies call a minute since 2025; install it as an internal app \
         (slack/manifest.yaml, docs/operations.md \"Before the first deploy\")",
    )
}

/// How one attempt ended, when it did not return Slack's answer.
enum Attempt {
    Fatal(SlackError),
    Retry {
        detail: String,
        wait: Option<Duration>,
    },
}

async fn attempt_once(
    method: &'static str,
    request: reqwest::RequestBuilder,
    effect: Effect,
) -> Result<Value, Attempt> {
    // A failed write is repeated only when Slack surely did not carry it out.
    let unsure = |detail: String, wait: Option<Duration>| match effect {
        Effect::Write => Attempt::Fatal(SlackError::Unconfirmed { method, detail }),
        Effect::Read => Attempt::Retry { detail, wait },
    };
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) if e.is_connect() => {
            return Err(Attempt::Retry {
                detail: describe_transport_error(&e),
                wait: None,
            })
        }
        Err(e) => return Err(unsure(describe_transport_error(&e), None)),
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    if status.as_u16() == 429 {
        return Err(Attempt::Retry {
            detail: "HTTP 429 rate limited".into(),
            wait: Some(retry_after.unwrap_or(Duration::from_secs(1))),
        });
    }
    if status.is_server_error() {
        return Err(unsure(format!("HTTP {}", status.as_u16()), retry_after));
    }
    let bytes = match response.bytes().await {
        Ok(bytes) => bytes,
        Err(e) => return Err(unsure(describe_transport_error(&e), None)),
    };
    let answer: Value = serde_json::from_slice(&bytes).map_err(|_| {
        Attempt::Fatal(SlackError::Protocol {
            method,
            detail: format!("HTTP {} without a JSON body", status.as_u16()),
        })
    })?;
    match answer["ok"].as_bool() {
        Some(true) => Ok(answer),
        Some(false) => {
            let code = answer["error"]
                .as_str()
                .unwrap_or("unknown_error")
                .to_string();
            if code == "ratelimited" {
                Err(Attempt::Retry {
                    detail: code,
                    wait: Some(retry_after.unwrap_or(Duration::from_secs(1))),
                })
            } else if TRANSIENT_ERRORS.contains(&code.as_str()) {
                Err(unsure(code, retry_after))
            } else {
                let hint = hint(method, &code, answer["needed"].as_str());
                Err(Attempt::Fatal(SlackError::Refused { method, code, hint }))
            }
        }
        None => Err(Attempt::Fatal(SlackError::Protocol {
            method,
            detail: "no `ok` field".into(),
        })),
    }
}

/// A transport error, without the URL's query string (which may hold an e-mail address).
fn describe_transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_decode() {
        "unreadable answer"
    } else if e.is_body() || e.is_request() {
        "connection dropped"
    } else {
        "transport error"
    };
    kind.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_persons_reply_may_carry_a_subtype_a_system_message_is_not_one() {
        for ok in [json!(null), json!("thread_broadcast"), json!("file_share")] {
            assert!(
                written_by_person(&json!({"user": "U1", "subtype": ok})),
                "{ok}"
            );
        }
        for not in [json!("channel_join"), json!("bot_message"), json!(3)] {
            assert!(
                !written_by_person(&json!({"user": "U1", "subtype": not})),
                "{not}"
            );
        }
        assert!(!written_by_person(&json!({"user": "U1", "bot_id": "B1"})));
        assert!(!written_by_person(
            &json!({"user": "U1", "bot_profile": {"id": "B1"}})
        ));
        assert!(!written_by_person(&json!({"text": "no user"})));
    }
}
