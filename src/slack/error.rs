//! Slack's errors as one type: what Slack refused (and the scope or setting that would fix it),
//! what may be retried, and a write whose answer was lost (it may have landed).

#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// Slack answered `ok: false` with an error it will keep giving.
    #[error("Slack {method} answered `{code}`: {hint}")]
    Refused {
        method: &'static str,
        code: String,
        hint: String,
    },
    /// Slack could not be reached or kept failing (429, 5xx, timeouts) until attempts or time ran out.
    #[error("Slack {method} is unavailable ({detail}) after {attempts} attempt(s); the invocation fails so Lambda retries it")]
    Unavailable {
        method: &'static str,
        detail: String,
        attempts: u32,
    },
    /// A write whose fate is unknown: the request may or may not have been carried out.
    #[error("Slack {method} did not confirm the write ({detail})")]
    Unconfirmed {
        method: &'static str,
        detail: String,
    },
    /// A search of history or a thread stopped before its end (page bound, looping cursor, or the
    /// deadline): privwatch does not guess that what it looked for is absent.
    #[error("Slack {method}: the search stopped before its end ({reason}); not guessing that nothing is there")]
    Incomplete {
        method: &'static str,
        reason: String,
    },
    /// The answer was not a Slack Web API response.
    #[error("Slack {method} answered something that is not a Slack Web API response ({detail}); check SLACK_API_URL")]
    Protocol {
        method: &'static str,
        detail: String,
    },
}

impl SlackError {
    /// The token was refused: worth one re-fetch of the secret (it may have been rotated).
    pub fn is_auth(&self) -> bool {
        matches!(self, SlackError::Refused { code, .. } if AUTH_ERRORS.contains(&code.as_str()))
    }

    /// The message written to or read is gone (deleted in Slack).
    pub fn is_gone(&self) -> bool {
        matches!(self, SlackError::Refused { code, .. } if code == "thread_not_found" || code == "message_not_found")
    }

    /// Another invocation may well succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SlackError::Unavailable { .. }
                | SlackError::Unconfirmed { .. }
                | SlackError::Incomplete { .. }
        )
    }
}

const AUTH_ERRORS: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
];

/// `ok: false` errors after which the same request may succeed.
pub(super) const TRANSIENT_ERRORS: &[&str] = &[
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// What the operator should do about a permanent error.
pub(super) fn hint(method: &str, code: &str, needed: Option<&str>) -> String {
    match code {
        "channel_not_found" => "SLACK_CHANNEL_ID names no channel the bot can see: check the ID, and for a private channel invite the bot with /invite @privwatch".into(),
        "not_in_channel" => "the bot is not in the channel: invite it with /invite @privwatch".into(),
        "is_archived" => "the channel is archived: unarchive it or point SLACK_CHANNEL_ID at another channel".into(),
        "missing_scope" => format!(
            "the Slack app lacks the scope {}: add it under OAuth & Permissions (see slack/manifest.yaml), reinstall the app and store the new token",
            needed.unwrap_or("named in Slack's answer")
        ),
        c if AUTH_ERRORS.contains(&c) => "the bot token is invalid or revoked: put the current xoxb- token in the Secrets Manager secret".into(),
        "invalid_blocks" | "msg_too_long" | "invalid_metadata_format" | "invalid_metadata_schema" | "invalid_arguments" =>
            "Slack refused the message privwatch rendered: this is a privwatch bug, please report it with the event".into(),
        "thread_not_found" | "message_not_found" => "the notice's message is gone (deleted?): the next retry posts a new one".into(),
        _ => format!("see https://api.slack.com/methods/{method}"),
    }
}
