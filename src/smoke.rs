//! `make smoke`'s test event: the deploy scripts' smoke check puts one event (`source`
//! `privwatch.smoke`) on the bus the rules listen on, its own rule (`<function>-smoke`) hands it
//! to the function, and the function posts a test notice that says it is one. The notice carries
//! no ask and its metadata is not a notice's, so the sweep never chases it and the export never
//! counts it. A retry finds the notice by its nonce instead of posting it again.

use crate::app::{App, Session};
use crate::slack::{SlackError, Ts};
use serde_json::{json, Value};
use tokio::time::Instant;

pub const SMOKE_SOURCE: &str = "privwatch.smoke";
pub const SMOKE_DETAIL_TYPE: &str = "privwatch smoke test";
pub const SMOKE_EVENT_TYPE: &str = "privwatch_smoke";
/// How far back a retry looks for the notice it may have posted.
const LOOK_BACK_SECS: i64 = 3600;

/// A smoke test as the event carries it (every value bounded; the channel must be one of ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeTest {
    pub nonce: String,
    pub account: String,
    /// The channel to test (`detail.channel`), if it is one privwatch writes to.
    pub channel: Option<String>,
}

/// The smoke test in this payload, if it is one.
pub fn test_event(payload: &Value) -> Option<SmokeTest> {
    if payload["source"] != SMOKE_SOURCE || payload["detail-type"] != SMOKE_DETAIL_TYPE {
        return None;
    }
    let nonce = payload["detail"]["nonce"].as_str()?;
    let fine = |c: char| c.is_ascii_alphanumeric() || c == '-';
    if nonce.is_empty() || nonce.len() > 64 || !nonce.chars().all(fine) {
        return None;
    }
    let account = payload["account"].as_str().unwrap_or_default();
    Some(SmokeTest {
        nonce: nonce.to_string(),
        account: if crate::config::is_account_id(account) {
            account.to_string()
        } else {
            String::new()
        },
        channel: payload["detail"]["channel"].as_str().map(str::to_string),
    })
}

/// Posts the test notice once; its `ts`.
pub async fn post(
    app: &App,
    test: &SmokeTest,
    deadline: Instant,
) -> Result<Ts, crate::error::Error> {
    let channel = test
        .channel
        .as_deref()
        .filter(|c| app.config.channels().contains(c))
        .unwrap_or(app.config.channel_id.as_str());
    app.with_session(channel, deadline, async |cx| Ok(post_in(cx, test).await?))
        .await
}

async fn post_in(cx: &Session<'_>, test: &SmokeTest) -> Result<Ts, SlackError> {
    let (app, token, bot, channel, deadline) = (cx.app, cx.token, cx.bot, cx.channel, cx.deadline);
    let oldest = Ts::from_seconds(chrono::Utc::now().timestamp() - LOOK_BACK_SECS);
    let earlier = app
        .slack
        .history(token.expose(), channel, Some(&oldest), None, 5)
        .find(deadline, |m| {
            m.posted_by(bot)
                && m.raw["metadata"]["event_type"] == SMOKE_EVENT_TYPE
                && m.raw["metadata"]["event_payload"]["nonce"] == test.nonce.as_str()
        })
        .await?;
    if let Some(found) = earlier {
        return Ok(found.ts);
    }
    let wording = app.wording().await;
    let body = json!({
        "channel": channel,
        "text": wording.smoke(&test.account),
        "metadata": {"event_type": SMOKE_EVENT_TYPE, "event_payload": {"nonce": test.nonce}},
    });
    app.slack
        .post_message(token.expose(), &body, deadline)
        .await
}
