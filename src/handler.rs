//! Routes one invocation to its job: a Function URL request (the Justify button), `make smoke`'s
//! test event, a handed-over justification, or an EventBridge event — a privileged use, the
//! sweep, a spoke's heartbeat, the series catch-up. It decides nothing else.

use crate::app::App;
use crate::chase::{button, sweep};
use crate::error::Error;
use crate::event::kind::Kind;
use crate::event::kind::Known;
use crate::event::{self, Classified};
use crate::notify::{self, activity, deliver, series};
use crate::{coverage, smoke};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

/// What an invocation did: the one summary log line, the tests' view, and (serialized) what the
/// function answers Lambda with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    Ignored(&'static str),
    Delivered(deliver::Delivery),
    Swept(sweep::SweepReport),
    Heard(coverage::CoverageReport),
    CaughtUp(series::CatchUpReport),
    /// An admin session's call, counted in its activity line.
    Counted(activity::Counted),
    /// A request through the Function URL (Slack's interactivity): the HTTP response.
    Http(button::Response),
    /// A Justify submission handed over by the Justify function, completed.
    Justified(button::Completed),
    /// `make smoke`'s test event: the test notice's `ts`.
    Smoke(crate::slack::Ts),
}

/// Handles one invocation payload. `deadline` is when the work must be finished by.
pub async fn handle(app: &App, payload: &Value, deadline: Instant) -> Result<Outcome, Error> {
    if let Some(request) = button::http_request(payload) {
        let response = match request {
            Ok(request) => button::handle_http(app, &request, deadline).await?,
            Err(why) => {
                tracing::warn!(%why, outcome = "rejected", "a Function URL request without its fields");
                button::respond(
                    400,
                    serde_json::json!({"error": "not a Function URL request"}),
                )
            }
        };
        return Ok(Outcome::Http(response));
    }
    if let Some(test) = smoke::test_event(payload) {
        let ts = smoke::post(app, &test, deadline).await?;
        tracing::info!(nonce = %test.nonce, slack_ts = %ts, outcome = "smoke", "smoke test notice");
        return Ok(Outcome::Smoke(ts));
    }
    if let Some(request) = button::deferred(payload) {
        return Ok(Outcome::Justified(
            button::complete(app, &request, deadline).await?,
        ));
    }
    let record = event::parse(payload)?;
    let event = &record.event;
    let mut classified = event::classify(&record, &app.config.deployment);
    if classified.depends_on_known_accounts() && app.org.is_some() {
        // Only then is the organization read (it is cached per execution environment).
        let accounts = app.org_accounts().await;
        let known = Known {
            accounts: &accounts,
        };
        classified = event::classify_knowing(&record, &app.config.deployment, known);
    }
    let use_ = match classified {
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
        Classified::Sweep { account, region } => {
            let mut report = sweep::sweep(app, &account, deadline).await?;
            // The hub's sweep also checks who has fallen silent; a per-account deployment with a
            // CloudTrail canary, whether its own trail has.
            if app.config.organization_id.is_some() {
                report.silent_alerted = coverage::check(app, deadline).await?.alerted;
            } else if app.config.trail_canary {
                report.silent_alerted = coverage::check_account(app, &account, &region, deadline)
                    .await?
                    .alerted;
            }
            return Ok(Outcome::Swept(report));
        }
        Classified::Heartbeat {
            account,
            region,
            time,
            signal,
        } => {
            let report =
                coverage::heartbeat(app, &account, &region, signal, time, deadline).await?;
            tracing::info!(
                account,
                region,
                ?signal,
                back = report.back,
                outcome = "heard",
                "spoke heartbeat"
            );
            return Ok(Outcome::Heard(report));
        }
        Classified::CatchUp => {
            let report = series::catch_up(app, deadline).await?;
            let sessions = activity::catch_up(app, deadline).await?;
            tracing::info!(
                flushed = sessions.flushed,
                left = sessions.left,
                "sessions' activity lines caught up"
            );
            return Ok(Outcome::CaughtUp(report));
        }
        Classified::Use(u) => u,
    };
    // An admin session's call, and a root call of a console session: counted in the session's
    // activity line (a root call without a session — a root access key's — is a use as before).
    let session_call = match use_.kind {
        Kind::AdminSession => true,
        Kind::RootApiCall => use_.session.is_some(),
        _ => false,
    };
    if session_call {
        let event_id = use_.event_id.clone();
        return match activity::record(app, &use_, &record.raw["detail"], deadline).await {
            Ok(counted) => {
                tracing::info!(
                    event_id = %event_id, kind = use_.kind.as_str(),
                    outcome = if counted.counted { "counted" } else { "already_counted" },
                    opened = counted.opened, total = counted.total,
                    slack_ts = %counted.notice_ts,
                    "admin session's call counted"
                );
                Ok(Outcome::Counted(counted))
            }
            Err(error) => {
                tracing::error!(event_id = %event_id, kind = use_.kind.as_str(), outcome = "failed", %error, "admin session's call NOT counted; Lambda will retry");
                Err(error)
            }
        };
    }
    let event_id = use_.event_id.clone();
    let kind = use_.kind.as_str();
    let delivered = notify::notify(app, &use_, &record.raw["detail"], deadline).await;
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
