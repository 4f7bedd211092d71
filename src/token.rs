//! The Slack bot token: from `SLACK_BOT_TOKEN` (local runs) or AWS Secrets Manager, fetched at
//! init, cached for the life of the execution environment, re-fetched on request after Slack
//! refused it (the secret may have been rotated).
//!
//! The token is a [`BotToken`], whose `Debug` and `Display` never show the value.

use crate::config::TokenSetting;
pub use crate::slack::secret::{BotToken, SigningSecret};
use tokio::sync::RwLock;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("could not read the Slack token secret {arn}: {reason}. Check that the secret exists and that the function's role may call secretsmanager:GetSecretValue on it")]
    Fetch { arn: String, reason: String },
    #[error("the Slack token secret {arn} holds no bot token: store the plain xoxb-… token, or JSON {{\"bot_token\": \"xoxb-…\"}}")]
    Malformed { arn: String },
}

/// Hands out the current token (and the signing secret that lives beside it).
pub struct TokenSource {
    setting: TokenSetting,
    secrets: Option<aws_sdk_secretsmanager::Client>,
    cached: RwLock<Option<BotToken>>,
    signing: RwLock<Option<SigningSecret>>,
}

impl TokenSource {
    /// `secrets` is needed only for [`TokenSetting::Secret`].
    pub fn new(setting: TokenSetting, secrets: Option<aws_sdk_secretsmanager::Client>) -> Self {
        let cached = match &setting {
            TokenSetting::Env(value) => Some(BotToken::new(value.as_str())),
            TokenSetting::Secret(_) => None,
        };
        TokenSource {
            setting,
            secrets,
            cached: RwLock::new(cached),
            signing: RwLock::new(None),
        }
    }

    /// The signing secret for local runs (`SLACK_SIGNING_SECRET`).
    pub fn with_signing_secret(self, secret: Option<String>) -> Self {
        TokenSource {
            signing: RwLock::new(secret.map(SigningSecret::new)),
            ..self
        }
    }

    /// The signing secret: `SLACK_SIGNING_SECRET`, else the `signing_secret` key of the token's
    /// secret in AWS (read with the token). `None`: interactivity is not set up.
    pub async fn signing_secret(&self) -> Result<Option<SigningSecret>, TokenError> {
        if let Some(secret) = self.signing.read().await.clone() {
            return Ok(Some(secret));
        }
        if matches!(self.setting, TokenSetting::Secret(_)) {
            self.refresh().await?;
        }
        Ok(self.signing.read().await.clone())
    }

    /// The cached token, fetched first if there is none yet.
    pub async fn get(&self) -> Result<BotToken, TokenError> {
        if let Some(token) = self.cached.read().await.clone() {
            return Ok(token);
        }
        self.refresh().await
    }

    /// Fetches the token again (after `invalid_auth`). With `SLACK_BOT_TOKEN` there is nothing to
    /// re-read, and the same token comes back.
    pub async fn refresh(&self) -> Result<BotToken, TokenError> {
        let arn = match &self.setting {
            TokenSetting::Env(value) => return Ok(BotToken::new(value.as_str())),
            TokenSetting::Secret(arn) => arn,
        };
        let client = self.secrets.as_ref().ok_or_else(|| TokenError::Fetch {
            arn: arn.clone(),
            reason: "no Secrets Manager client was configured".into(),
        })?;
        let answer = client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| TokenError::Fetch {
                arn: arn.clone(),
                reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
            })?;
        let token = answer
            .secret_string()
            .and_then(token_from_secret)
            .ok_or_else(|| TokenError::Malformed { arn: arn.clone() })?;
        if let Some(signing) = answer.secret_string().and_then(signing_secret_from_secret) {
            *self.signing.write().await = Some(signing);
        }
        *self.cached.write().await = Some(token.clone());
        Ok(token)
    }
}

/// The secret holds either the plain token or JSON `{"bot_token": "…"}`.
pub fn token_from_secret(secret: &str) -> Option<BotToken> {
    let secret = secret.trim();
    let value = if secret.starts_with('{') {
        serde_json::from_str::<serde_json::Value>(secret)
            .ok()?
            .get("bot_token")?
            .as_str()?
            .trim()
            .to_string()
    } else {
        secret.to_string()
    };
    crate::config::is_token_shaped(&value).then(|| BotToken::new(value))
}

/// The `signing_secret` key of a JSON secret, if any.
fn signing_secret_from_secret(secret: &str) -> Option<SigningSecret> {
    let value: serde_json::Value = serde_json::from_str(secret.trim()).ok()?;
    let signing = value.get("signing_secret")?.as_str()?.trim();
    (!signing.is_empty()).then(|| SigningSecret::new(signing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_may_be_plain_or_json() {
        assert_eq!(
            token_from_secret("xoxb-1-2").map(|t| t.expose().to_string()),
            Some("xoxb-1-2".into())
        );
        assert_eq!(
            token_from_secret(r#"{"bot_token": "xoxb-3"}"#).map(|t| t.expose().to_string()),
            Some("xoxb-3".into())
        );
        assert!(token_from_secret(r#"{"token": "xoxb-3"}"#).is_none());
        assert!(token_from_secret("hunter2").is_none());
        assert!(token_from_secret("xoxb-1\n2").is_none());
        assert!(token_from_secret("xoxb-1\u{1b}2").is_none());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = BotToken::new("xoxb-very-secret");
        assert!(!format!("{token:?}").contains("very-secret"));
    }
}
