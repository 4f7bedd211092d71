//! PURE. The organization hub's coverage messages as Slack shows them: the coverage table (one
//! line per spoke, account × region), the alert for a spoke that fell silent, and the line in its
//! thread when it is heard again. Every word comes from [`Wording`].

use crate::message::mrkdwn::{clip_mrkdwn, date, field};
pub use crate::message::wording::Silence;
use crate::message::wording::{Heard, Wording};
use serde_json::{json, Value};
use std::time::Duration;

/// Spoke lines per section (a section's text stays within Slack's 3,000 characters).
const LINES_PER_SECTION: usize = 25;
/// Sections after the header and context: Slack's 50 blocks a message.
const MAX_SECTIONS: usize = 45;

/// One spoke as the coverage table shows it.
pub struct SpokeLine<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub heard: Heard,
    /// Its last heartbeat (Unix seconds; 0: none yet).
    pub last: i64,
    /// Its canary's last CloudTrail record (Unix seconds; 0: none yet).
    pub trail: i64,
}

/// A spoke to alert: silent since `since` (its last heartbeat, or when listening began).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silent {
    pub account: String,
    pub region: String,
    pub since: i64,
    pub never_heard: bool,
    pub what: Silence,
}

/// The coverage message: a table of accounts × regions and the last heartbeat of each. With
/// `existing` (the message as found), a `chat.update` of it; else a `chat.postMessage`.
pub fn render_coverage(
    channel: &str,
    existing: Option<&Value>,
    spokes: &[SpokeLine<'_>],
    metadata: Value,
    wording: &Wording,
    interval: Duration,
) -> Value {
    let lines: Vec<String> = spokes
        .iter()
        .map(|s| {
            let when = |t: i64| if t > 0 { date(t) } else { "—".to_string() };
            wording.coverage_line(
                s.heard,
                &wording.account(s.account),
                &field(s.region),
                &when(s.last),
                &when(s.trail),
            )
        })
        .collect();
    let heading = wording.coverage_heading(spokes.len(), interval.as_secs() / 60);
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": wording.coverage_title()}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": heading, "verbatim": true}]}),
    ];
    for chunk in lines.chunks(LINES_PER_SECTION).take(MAX_SECTIONS) {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": clip_mrkdwn(&chunk.join("\n"), 3000), "verbatim": true}}));
    }
    let mut body = json!({
        "channel": channel,
        "text": heading,
        "blocks": blocks,
        "metadata": metadata,
    });
    if let Some(existing) = existing {
        body["ts"] = existing["ts"].clone();
    }
    body
}

/// The alert for a spoke privwatch cannot hear.
pub fn render_silence(
    channel: &str,
    mention: &str,
    spoke: &Silent,
    metadata: Value,
    wording: &Wording,
) -> Value {
    let text = wording.silence(
        mention,
        &wording.account(&spoke.account),
        &field(&spoke.region),
        spoke.never_heard,
        &date(spoke.since),
        spoke.what,
    );
    json!({"channel": channel, "text": text, "metadata": metadata})
}

/// The one line in a silence alert's thread when the spoke is heard again.
pub fn render_back(
    channel: &str,
    alert_ts: &str,
    account: &str,
    region: &str,
    metadata: Value,
    wording: &Wording,
) -> Value {
    json!({
        "channel": channel,
        "thread_ts": alert_ts,
        "text": wording.back(&wording.account(account), &field(region)),
        "metadata": metadata,
    })
}
