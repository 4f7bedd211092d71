//! What every job works with. [`App`] is built once per execution environment (the clients, the
//! configuration, what is remembered between invocations); a [`Session`] is one job's view of
//! Slack — token, privwatch's own bot user, channel, deadline — and [`App::with_session`] is the
//! one place a job gets one: a token Slack refuses is fetched again once (the secret may have
//! rotated), the same way for every job.

use crate::aws::handoff::Handoff;
use crate::config::Config;
use crate::error::Error;
use crate::slack::signature::Replays;
use crate::slack::{BotUser, SlackClient};
use crate::token::{BotToken, TokenSource};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// Everything built once per execution environment and shared by every invocation.
pub struct App {
    pub config: Config,
    pub slack: SlackClient,
    pub tokens: TokenSource,
    /// privwatch's own Slack bot user, learned once with `auth.test`: only its messages are
    /// privwatch's notices and lines, whatever metadata another app's message carries.
    pub bot: tokio::sync::OnceCell<BotUser>,
    /// The organization (hub mode, `ORGANIZATION_ID`): account names, OUs, who should be heard.
    pub org: Option<crate::aws::org::Org>,
    /// The S3 archive (`ARCHIVE_BUCKET`).
    pub archive: Option<crate::aws::archive::Archive>,
    /// Signatures of the Slack requests accepted lately (a replay is refused).
    pub replays: Replays,
    /// Where a Justify submission goes once Slack has its answer.
    pub handoff: Handoff,
    /// What the jobs remember between invocations (the series' states, the held coverage
    /// message), each under its own type: `App` need not know the jobs above it.
    pub memory: Memory,
}

/// Each job's memory between invocations of one execution environment, keyed by its type.
#[derive(Default)]
pub struct Memory(Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl Memory {
    /// The value of type `T` this environment holds (made with `T::default()` the first time).
    pub fn of<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let any = held
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()))
            .clone();
        any.downcast::<T>()
            .unwrap_or_else(|_| unreachable!("memory is keyed by its own type"))
    }
}

impl App {
    /// Builds the clients once per execution environment: the HTTP client for Slack and, when
    /// the token lives in Secrets Manager, the SDK client (which honours `AWS_ENDPOINT_URL`).
    pub async fn from_config(config: Config) -> Result<App, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(3))
            .user_agent(concat!("privwatch/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let needs_aws = matches!(config.token, crate::config::TokenSetting::Secret(_))
            || config.organization_id.is_some()
            || config.archive_bucket.is_some()
            || config.notifier_function.is_some();
        let aws = match needs_aws {
            true => Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await),
            false => None,
        };
        let secrets = match (&config.token, &aws) {
            (crate::config::TokenSetting::Secret(_), Some(aws)) => {
                Some(aws_sdk_secretsmanager::Client::new(aws))
            }
            _ => None,
        };
        let org = match (&config.organization_id, &aws) {
            (Some(_), Some(aws)) => {
                let mut conf = aws_sdk_organizations::config::Builder::from(aws);
                // The hub outside the management account reads through a read-only role.
                if let Some(role) = &config.org_read_role {
                    let provider = aws_config::sts::AssumeRoleProvider::builder(role)
                        .session_name("privwatch-hub")
                        .configure(aws)
                        .build()
                        .await;
                    conf = conf.credentials_provider(provider);
                }
                Some(crate::aws::org::Org::new(
                    aws_sdk_organizations::Client::from_conf(conf.build()),
                    config.routes_by_ou(),
                ))
            }
            _ => None,
        };
        let archive = match (&config.archive_bucket, &aws) {
            (Some(bucket), Some(aws)) => {
                // An emulator (AWS_ENDPOINT_URL) answers on one host: address buckets by path.
                let emulated = std::env::var_os("AWS_ENDPOINT_URL").is_some()
                    || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
                let conf = aws_sdk_s3::config::Builder::from(aws)
                    .force_path_style(emulated)
                    .build();
                Some(
                    crate::aws::archive::Archive::new(aws_sdk_s3::Client::from_conf(conf), bucket)
                        .locking_records_for(config.archive_lock_days),
                )
            }
            _ => None,
        };
        let handoff = match (&config.notifier_function, &aws) {
            (Some(function), Some(aws)) => Handoff::Lambda {
                client: aws_sdk_lambda::Client::new(aws),
                function: function.clone(),
            },
            _ => Handoff::Inline,
        };
        Ok(App {
            handoff,
            archive,
            slack: SlackClient::new(
                http,
                &config.slack_api_url,
                crate::slack::RetryPolicy::default(),
            ),
            tokens: TokenSource::new(config.token.clone(), secrets)
                .with_signing_secret(config.signing_secret.clone()),
            config,
            bot: tokio::sync::OnceCell::new(),
            org,
            replays: Default::default(),
            memory: Default::default(),
        })
    }

    /// The OUs an account is in, innermost first (empty when no channel is routed by OU, or the
    /// organization cannot be read).
    pub async fn org_units_of(&self, account_id: &str) -> Vec<String> {
        if !self.config.routes_by_ou() {
            return Vec::new();
        }
        match &self.org {
            Some(org) => org
                .snapshot()
                .await
                .and_then(|s| s.ous.get(account_id).cloned())
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// The organization's account IDs (organization mode; empty otherwise, or when the
    /// organization cannot be read).
    pub async fn org_accounts(&self) -> Vec<String> {
        let Some(org) = &self.org else {
            return Vec::new();
        };
        org.snapshot()
            .await
            .map(|s| s.accounts.iter().map(|a| a.id.clone()).collect())
            .unwrap_or_default()
    }

    /// The wording, with the organization's account names added to those configured
    /// (`ACCOUNT_NAMES` wins).
    pub async fn wording(&self) -> std::borrow::Cow<'_, crate::message::wording::Wording> {
        let Some(org) = &self.org else {
            return std::borrow::Cow::Borrowed(&self.config.wording);
        };
        let Some(snapshot) = org.snapshot().await else {
            return std::borrow::Cow::Borrowed(&self.config.wording);
        };
        let mut wording = self.config.wording.clone();
        for account in &snapshot.accounts {
            if !wording
                .account_names
                .iter()
                .any(|(id, _)| *id == account.id)
            {
                wording
                    .account_names
                    .push((account.id.clone(), account.name.clone()));
            }
        }
        std::borrow::Cow::Owned(wording)
    }

    /// privwatch's bot user (one `auth.test` per execution environment).
    pub async fn bot_user(
        &self,
        token: &BotToken,
        deadline: Instant,
    ) -> Result<&BotUser, crate::slack::SlackError> {
        self.bot
            .get_or_try_init(|| self.slack.auth_test(token.expose(), deadline))
            .await
    }

    /// Runs `work` with a session in `channel`: the current token and privwatch's bot user. When
    /// Slack refuses the token (`invalid_auth`, `token_revoked`, …), it is fetched again once
    /// and the work runs again — every job's writes look before they write, so a second run
    /// completes what the first did not.
    pub async fn with_session<T>(
        &self,
        channel: &str,
        deadline: Instant,
        mut work: impl AsyncFnMut(&Session<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let token = self.tokens.get().await?;
        match self.run_session(&token, channel, deadline, &mut work).await {
            Err(e) if e.is_auth() => {
                tracing::warn!(
                    channel,
                    "Slack refused the bot token; fetching it again once"
                );
                // Within the job's deadline (the Justify button has Slack's three seconds).
                let fresh = match tokio::time::timeout_at(deadline, self.tokens.refresh()).await {
                    Ok(fresh) => fresh?,
                    Err(_) => return Err(e),
                };
                self.run_session(&fresh, channel, deadline, &mut work).await
            }
            other => other,
        }
    }

    async fn run_session<T>(
        &self,
        token: &BotToken,
        channel: &str,
        deadline: Instant,
        work: &mut impl AsyncFnMut(&Session<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let bot = self.bot_user(token, deadline).await?;
        work(&Session::new(self, token, bot, channel, deadline)).await
    }
}

/// One piece of work's view of Slack: the app, the token in use, privwatch's own bot user, the
/// channel it works in (an account's routed channel, or the one a sweep reads), and the deadline.
pub struct Session<'a> {
    pub app: &'a App,
    pub token: &'a BotToken,
    pub bot: &'a BotUser,
    pub channel: &'a str,
    pub deadline: Instant,
}

impl<'a> Session<'a> {
    pub fn new(
        app: &'a App,
        token: &'a BotToken,
        bot: &'a BotUser,
        channel: &'a str,
        deadline: Instant,
    ) -> Self {
        Session {
            app,
            token,
            bot,
            channel,
            deadline,
        }
    }
}
