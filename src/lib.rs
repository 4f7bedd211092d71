//! privwatch: every use of the AWS root user or an admin role, posted to Slack with a threaded
//! request for its justification.
//!
//! One event's way, in one direction:
//! `EventBridge JSON → detect (kind) → PrivilegedUse → wording → render → deliver → Slack`.
//! [`handle`] is what the Lambda runtime (in `main.rs`) and the tests both call.

pub mod audit;
pub mod cloudtrail;
pub mod config;
pub mod deliver;
pub mod detect;
pub mod kind;
pub mod metadata;
pub mod mrkdwn;
pub mod pattern;
pub mod render;
pub mod slack;
pub mod sweep;
pub mod token;
pub mod wording;

use config::Config;
use detect::Classified;
use serde_json::Value;
use slack::SlackClient;
use token::TokenSource;
use tokio::time::Instant;

/// Everything built once per execution environment and shared by every invocation.
pub struct App {
    pub config: Config,
    pub slack: SlackClient,
    pub tokens: TokenSource,
    /// privwatch's own Slack bot user, learned once with `auth.test`: only its messages are
    /// privwatch's notices and lines, whatever metadata another app's message carries.
    pub bot: tokio::sync::OnceCell<slack::BotUser>,
}

impl App {
    /// Builds the clients once per execution environment: the HTTP client for Slack and, when
    /// the token lives in Secrets Manager, the SDK client (which honours `AWS_ENDPOINT_URL`).
    pub async fn from_config(config: Config) -> Result<App, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(3))
            .user_agent(concat!("privwatch/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let secrets = match &config.token {
            config::TokenSetting::Secret(_) => {
                let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                Some(aws_sdk_secretsmanager::Client::new(&aws))
            }
            config::TokenSetting::Env(_) => None,
        };
        Ok(App {
            slack: SlackClient::new(http, &config.slack_api_url, slack::RetryPolicy::default()),
            tokens: TokenSource::new(config.token.clone(), secrets),
            config,
            bot: tokio::sync::OnceCell::new(),
        })
    }

    /// privwatch's bot user (one `auth.test` per execution environment).
    pub async fn bot_user(
        &self,
        token: &token::BotToken,
        deadline: Instant,
    ) -> Result<&slack::BotUser, slack::SlackError> {
        self.bot
            .get_or_try_init(|| self.slack.auth_test(token.expose(), deadline))
            .await
    }
}

/// Why an invocation failed. Lambda retries a failed invocation, then hands it to the
/// on-failure destination: nothing is silently dropped.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Parse(#[from] detect::ParseError),
    #[error(transparent)]
    Token(#[from] token::TokenError),
    #[error(transparent)]
    Slack(#[from] slack::SlackError),
}

impl HandleError {
    /// The `errorType` Lambda records (and the on-failure destination keeps).
    pub fn error_type(&self) -> &'static str {
        match self {
            HandleError::Parse(_) => "privwatch.UnreadableEvent",
            HandleError::Token(_) => "privwatch.TokenUnavailable",
            HandleError::Slack(e) if e.is_transient() => "privwatch.SlackUnavailable",
            HandleError::Slack(_) => "privwatch.SlackRefused",
        }
    }
}

impl From<HandleError> for lambda_runtime::Diagnostic {
    fn from(e: HandleError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

/// What an invocation did, for the one summary log line and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ignored(&'static str),
    Delivered(deliver::Delivery),
    Swept(sweep::SweepReport),
}

/// Handles one invocation payload. `deadline` is when the work must be finished by.
pub async fn handle(app: &App, payload: &Value, deadline: Instant) -> Result<Outcome, HandleError> {
    let record = detect::parse(payload)?;
    let event = &record.event;
    let use_ = match detect::classify(&record, &app.config.deployment) {
        Classified::Ignored(reason) => {
            tracing::info!(
                event_id = event.detail.event_id.as_deref().or(event.id.as_deref()).unwrap_or("unknown"),
                detail_type = %event.detail_type,
                outcome = "ignored",
                reason,
                "not a privileged use"
            );
            return Ok(Outcome::Ignored(reason));
        }
        Classified::Sweep { account } => {
            return Ok(Outcome::Swept(sweep::sweep(app, &account, deadline).await?))
        }
        Classified::Use(u) => u,
    };
    let event_id = use_.event_id.clone();
    let kind = use_.kind.as_str();
    match deliver::deliver(app, &use_, deadline).await {
        Ok(delivery) => {
            let outcome = if delivery.reply_existed {
                "already_delivered"
            } else if delivery.notice_existed {
                "reply_completed"
            } else if delivery.coalesced {
                "coalesced"
            } else {
                "posted"
            };
            tracing::info!(
                event_id = %event_id, kind, outcome,
                slack_ts = %delivery.notice_ts, mention = delivery.mention,
                "privileged use delivered"
            );
            Ok(Outcome::Delivered(delivery))
        }
        Err(error) => {
            tracing::error!(event_id = %event_id, kind, outcome = "failed", %error, "privileged use NOT delivered; Lambda will retry");
            Err(error)
        }
    }
}
