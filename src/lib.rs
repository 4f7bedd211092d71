//! privwatch: every use of the AWS root user or an admin role, posted to Slack with a threaded
//! request for its justification.
//!
//! One event's way, in one direction:
//! `EventBridge JSON → detect (kind) → PrivilegedUse → wording → render → deliver → Slack`.
//! [`handle`] is what the Lambda runtime (in `main.rs`) and the tests both call.

pub mod archive;
pub mod audit;
pub mod cloudtrail;
pub mod config;
pub mod coverage;
pub mod deliver;
pub mod detect;
pub mod fold;
pub mod interact;
pub mod justification;
pub mod kind;
pub mod metadata;
pub mod mrkdwn;
pub mod org;
pub mod pattern;
pub mod render;
pub mod slack;
pub mod smoke;
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
    /// The organization (hub mode, `ORGANIZATION_ID`): account names, OUs, who should be heard.
    pub org: Option<org::Org>,
    /// The S3 archive (`ARCHIVE_BUCKET`).
    pub archive: Option<archive::Archive>,
    /// Signatures of the Slack requests accepted lately (a replay is refused).
    pub replays: interact::Replays,
    /// With the archive: the series this environment wrote last, and Slack's room (`fold`).
    pub fold: fold::Local,
    /// Where a Justify submission goes once Slack has its answer (`interact::Handoff`).
    pub handoff: interact::Handoff,
    /// Organization mode: each channel's coverage message, held between heartbeats.
    pub coverage: coverage::Held,
}

impl App {
    /// Builds the clients once per execution environment: the HTTP client for Slack and, when
    /// the token lives in Secrets Manager, the SDK client (which honours `AWS_ENDPOINT_URL`).
    pub async fn from_config(config: Config) -> Result<App, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(3))
            .user_agent(concat!("privwatch/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let needs_aws = matches!(config.token, config::TokenSetting::Secret(_))
            || config.organization_id.is_some()
            || config.archive_bucket.is_some()
            || config.notifier_function.is_some();
        let aws = match needs_aws {
            true => Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await),
            false => None,
        };
        let secrets = match (&config.token, &aws) {
            (config::TokenSetting::Secret(_), Some(aws)) => {
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
                Some(org::Org::new(
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
                    archive::Archive::new(aws_sdk_s3::Client::from_conf(conf), bucket)
                        .locking_records_for(config.archive_lock_days),
                )
            }
            _ => None,
        };
        let handoff = match (&config.notifier_function, &aws) {
            (Some(function), Some(aws)) => interact::Handoff::Lambda {
                client: aws_sdk_lambda::Client::new(aws),
                function: function.clone(),
            },
            _ => interact::Handoff::Inline,
        };
        Ok(App {
            coverage: Default::default(),
            handoff,
            archive,
            slack: SlackClient::new(http, &config.slack_api_url, slack::RetryPolicy::default()),
            tokens: TokenSource::new(config.token.clone(), secrets)
                .with_signing_secret(config.signing_secret.clone()),
            config,
            bot: tokio::sync::OnceCell::new(),
            org,
            replays: Default::default(),
            fold: Default::default(),
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

    /// The wording, with the organization's account names added to those configured
    /// (`ACCOUNT_NAMES` wins).
    pub async fn wording(&self) -> std::borrow::Cow<'_, wording::Wording> {
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
        token: &token::BotToken,
        deadline: Instant,
    ) -> Result<&slack::BotUser, slack::SlackError> {
        self.bot
            .get_or_try_init(|| self.slack.auth_test(token.expose(), deadline))
            .await
    }
}

/// An error with its sources, as one line (the AWS SDK's errors say what went wrong only there).
pub(crate) fn error_chain<E: std::error::Error>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// One piece of work's view of Slack: the app, the token in use, privwatch's own bot user, the
/// channel it works in (an account's routed channel, or the one a sweep reads), and the deadline.
pub(crate) struct Cx<'a> {
    pub app: &'a App,
    pub token: &'a token::BotToken,
    pub bot: &'a slack::BotUser,
    pub channel: &'a str,
    pub deadline: Instant,
}

impl<'a> Cx<'a> {
    pub fn new(
        app: &'a App,
        token: &'a token::BotToken,
        bot: &'a slack::BotUser,
        channel: &'a str,
        deadline: Instant,
    ) -> Self {
        Cx {
            app,
            token,
            bot,
            channel,
            deadline,
        }
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
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
    /// A series' state kept changing under this invocation (another writer): retried.
    #[error("the state of series {0} in the archive kept changing while it was written; the invocation fails so Lambda retries it")]
    Conflict(String),
    /// The Justify function could not hand a submission to the notifier.
    #[error("the justification could not be handed to the notifier function {function}: {detail}")]
    Handoff { function: String, detail: String },
}

impl HandleError {
    /// The `errorType` Lambda records (and the on-failure destination keeps).
    pub fn error_type(&self) -> &'static str {
        match self {
            HandleError::Parse(_) => "privwatch.UnreadableEvent",
            HandleError::Token(_) => "privwatch.TokenUnavailable",
            HandleError::Slack(e) if e.is_transient() => "privwatch.SlackUnavailable",
            HandleError::Slack(_) => "privwatch.SlackRefused",
            HandleError::Archive(_) => "privwatch.ArchiveUnavailable",
            HandleError::Conflict(_) => "privwatch.ArchiveConflict",
            HandleError::Handoff { .. } => "privwatch.HandoffFailed",
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
    Heard(coverage::CoverageReport),
    CaughtUp(fold::CatchUpReport),
    /// A request through the Function URL (Slack's interactivity): the HTTP response.
    Http(Value),
    /// A Justify submission handed over by the Justify function, completed.
    Justified(interact::Completed),
    /// `make smoke`'s test event: the test notice's `ts`.
    Smoke(slack::Ts),
}

/// A privileged use as the archive keeps it.
fn use_record(u: &detect::PrivilegedUse, detail: &Value) -> archive::UseRecord {
    archive::UseRecord {
        event_id: u.event_id.clone(),
        kind: u.kind.as_str().to_string(),
        account: u.account_id.clone(),
        principal: u.identity.label().to_string(),
        role: u.role_arn.clone().unwrap_or_default(),
        source_ip: u.source_ip.clone().unwrap_or_default(),
        time: u
            .time
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
        region: u.region.clone().unwrap_or_default(),
        archived_at: chrono::Utc::now().timestamp(),
        record: detail.clone(),
    }
}

/// Handles one invocation payload. `deadline` is when the work must be finished by.
pub async fn handle(app: &App, payload: &Value, deadline: Instant) -> Result<Outcome, HandleError> {
    if interact::is_http(payload) {
        return Ok(Outcome::Http(
            interact::handle_http(app, payload, deadline).await?,
        ));
    }
    if let Some(test) = smoke::test_event(payload) {
        let ts = smoke::post(app, &test, deadline).await?;
        tracing::info!(nonce = %test.nonce, slack_ts = %ts, outcome = "smoke", "smoke test notice");
        return Ok(Outcome::Smoke(ts));
    }
    if let Some(request) = interact::deferred(payload) {
        return Ok(Outcome::Justified(
            interact::complete(app, request, deadline).await?,
        ));
    }
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
        Classified::Heartbeat {
            account,
            region,
            time,
        } => {
            let report = coverage::heartbeat(app, &account, &region, time, deadline).await?;
            tracing::info!(
                account,
                region,
                back = report.back,
                outcome = "heard",
                "spoke heartbeat"
            );
            return Ok(Outcome::Heard(report));
        }
        Classified::CatchUp => return Ok(Outcome::CaughtUp(fold::catch_up(app, deadline).await?)),
        Classified::Use(u) => u,
    };
    let event_id = use_.event_id.clone();
    let kind = use_.kind.as_str();
    let delivered = match &app.archive {
        // With the archive, the ledger first: then the series counts the event (`fold`).
        Some(archive) => match archive
            .put_use(&use_record(&use_, &record.raw["detail"]))
            .await
        {
            Ok(created) => fold::record(app, archive, &use_, created, deadline).await,
            // The ledger is out of reach: Slack still hears of the use now (the retry finds
            // the notice instead of posting another), and the invocation fails so that the
            // retry records it.
            Err(e) => match deliver::deliver(app, &use_, deadline).await {
                Ok(_) => Err(e.into()),
                Err(slack) => {
                    tracing::error!(event_id = %event_id, error = %e, "the archive is out of reach too");
                    Err(slack)
                }
            },
        },
        None => deliver::deliver(app, &use_, deadline).await,
    };
    match delivered {
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
