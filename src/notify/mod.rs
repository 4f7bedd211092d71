//! A privileged use → its notice, its ask and its thread. [`deliver`] posts a use's notice and ask
//! (look before write, exactly once); with the archive, [`series`] counts a person's long run of
//! uses in the S3 ledger and keeps one notice current instead of posting each; [`activity`]
//! keeps an admin session's calls in one line of its notice's thread.

pub mod activity;
pub mod deliver;
pub mod series;

use crate::app::App;
use crate::aws::archive;
use crate::error::Error;
use crate::event::PrivilegedUse;
use serde_json::Value;
use tokio::time::Instant;

/// A privileged use → its notice. With the archive, the ledger first (exactly once per event
/// ID), then the person's series counts it; without, [`deliver`] posts it.
pub async fn notify(
    app: &App,
    use_: &PrivilegedUse,
    detail: &Value,
    deadline: Instant,
) -> Result<deliver::Delivery, Error> {
    let event_id = &use_.event_id;
    match &app.archive {
        // With the archive, the ledger first: then the series counts the event (`notify::series`).
        Some(archive) => match archive.put_use(&use_record(use_, detail)).await {
            Ok(created) => series::record(app, archive, use_, created, deadline).await,
            // The ledger is out of reach: Slack still hears of the use now (the retry finds
            // the notice instead of posting another), and the invocation fails so that the
            // retry records it.
            Err(e) => match deliver::deliver(app, use_, deadline).await {
                Ok(_) => Err(e.into()),
                Err(slack) => {
                    tracing::error!(event_id = %event_id, error = %e, "the archive is out of reach too");
                    Err(slack)
                }
            },
        },
        None => deliver::deliver(app, use_, deadline).await,
    }
}

/// A privileged use as the archive keeps it.
fn use_record(u: &PrivilegedUse, detail: &Value) -> archive::UseRecord {
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
