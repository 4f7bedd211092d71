//! Slack's secrets as values that never print: the bot token (sent only in the `Authorization`
//! header) and the app's signing secret (used only for the HMAC).

use std::fmt;
use std::sync::Arc;

/// A Slack bot token. Printing it shows `xoxb-…<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct BotToken(Arc<str>);

impl BotToken {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        BotToken(value.into())
    }

    /// The value, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BotToken(<redacted>)")
    }
}

/// The Slack app's signing secret (it checks that a request came from Slack). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Arc<str>);

impl SigningSecret {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        SigningSecret(value.into())
    }

    /// The value, for the HMAC only.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}
