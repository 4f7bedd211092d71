//! `privwatch audit --since 30d [--format csv|json]`: the channel's notices and threads as one
//! row per privileged use — what an auditor asks for. Reads Slack with the same token source as
//! the Lambda; progress goes to stderr, rows to stdout.

use crate::app::{App, Session};
use crate::channel::{our_notices, whole_thread};
use crate::error::Error;
use crate::event::session::{self, Call, SessionRef};
use crate::message::justification;
use crate::message::metadata::{
    payload_of, ActivityPayload, LinePayload, NoticePayload, ACTIVITY_EVENT_TYPE, LINE_EVENT_TYPE,
    NOTICE_EVENT_TYPE,
};
use crate::slack::{BotUser, SlackError, Ts};
use chrono::{TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// The export is not bound by a Lambda deadline: each Slack call is bounded by the client's own
/// timeout and retries, and the walk by its page limits, so the session's deadline is only a
/// backstop (a day).
const EXPORT_BUDGET: Duration = Duration::from_secs(24 * 3600);
/// History pages (of 200 messages) read per channel at most.
const MAX_PAGES: u32 = 1_000;

/// One privileged use, as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    pub time: String,
    pub account: String,
    pub kind: String,
    pub principal: String,
    pub role: String,
    pub source_ip: String,
    pub event_id: String,
    pub justified: bool,
    pub justification: String,
    pub ticket_url: String,
    pub replied_by: String,
    pub permalink: String,
    /// What the admin session this use opened did: `iam:CreateUser×1; ec2:TerminateInstances×3`
    /// (the activity line's counts, on the row of the notice's first use).
    pub actions: String,
    /// Each call of that session (`--format json`, from the archive: Slack keeps the counts,
    /// not every call).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<AuditCall>,
}

/// One call of an admin session, as the export lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditCall {
    pub event_id: String,
    pub time: String,
    pub action: String,
    pub resources: Vec<String>,
    pub error: String,
}

pub const COLUMNS: [&str; 13] = [
    "time",
    "account",
    "kind",
    "principal",
    "role",
    "source_ip",
    "event_id",
    "justified",
    "justification",
    "ticket_url",
    "replied_by",
    "permalink",
    "actions",
];

/// The rows of one notice and its thread (`thread` as `conversations.replies` returns it, the
/// notice first). Pure: the tests call it directly.
pub fn rows_for_thread(
    notice: &Value,
    thread: &[Value],
    bot_user: &BotUser,
    ticket_pattern: Option<&regex::Regex>,
    permalink: &str,
) -> Vec<AuditRow> {
    let Some(payload) = payload_of::<NoticePayload>(notice, NOTICE_EVENT_TYPE) else {
        return Vec::new();
    };
    let notice_ts = notice["ts"].as_str().unwrap_or_default();
    // The same rule as the sweep's: a person's purpose and a ticket URL (TICKET_URL_PATTERN).
    let reading = justification::read(thread, notice_ts, bot_user, ticket_pattern);
    let justified = reading
        .clone()
        .is_some_and(|r| matches!(r.verdict(), justification::Verdict::Justified(_)));
    let (justification, ticket_url, replied_by) = match reading {
        Some(r) => (r.purpose, r.ticket_url.unwrap_or_default(), r.replied_by),
        None => (String::new(), String::new(), Vec::new()),
    };
    let row = |event_id: &str, time: i64, kind: &str, role: &str, ip: &str| AuditRow {
        time: rfc3339(time),
        account: payload.account.clone(),
        kind: kind.to_string(),
        principal: payload.principal.clone(),
        role: role.to_string(),
        source_ip: ip.to_string(),
        event_id: event_id.to_string(),
        justified,
        justification: justification.clone(),
        ticket_url: ticket_url.clone(),
        replied_by: replied_by.join(" "),
        permalink: permalink.to_string(),
        actions: String::new(),
        calls: Vec::new(),
    };
    let mut rows = vec![row(
        &payload.event_id,
        payload.event_time,
        &payload.kind,
        &payload.role,
        &payload.source_ip,
    )];
    // The activity lines of the notice's sessions, on its first use's row.
    rows[0].actions = thread
        .iter()
        .filter(|m| m["user"].as_str() == Some(bot_user.0.as_str()))
        .filter_map(|m| payload_of::<ActivityPayload>(m, ACTIVITY_EVENT_TYPE))
        .map(|a| a.summary())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    for line in thread
        .iter()
        .filter(|m| m["user"].as_str() == Some(bot_user.0.as_str()))
        .filter_map(|m| payload_of::<LinePayload>(m, LINE_EVENT_TYPE))
    {
        if line.repeat && line.event_id != payload.event_id {
            rows.push(row(
                &line.event_id,
                line.event_time,
                &line.kind,
                &line.role,
                &line.source_ip,
            ));
        }
    }
    rows
}

/// Reads every notice posted since `since` ago, with its thread and permalink.
pub async fn export(
    app: &App,
    since: Duration,
    mut progress: impl FnMut(&str),
) -> Result<Vec<AuditRow>, Error> {
    let mut rows = Vec::new();
    // Every channel privwatch writes to (`SLACK_CHANNEL_ID`, then each `CHANNEL_ROUTES` one).
    for channel in app.config.channels() {
        let deadline = Instant::now() + EXPORT_BUDGET;
        let read = app
            .with_session(channel, deadline, async |cx| {
                Ok(export_channel(cx, since, &mut progress).await?)
            })
            .await?;
        rows.extend(read);
    }
    Ok(one_row_per_use(rows))
}

/// Sorted by time, one row per event ID: Slack's pages may repeat (a cursor that comes back
/// hands the same page again), and an auditor counts rows.
fn one_row_per_use(mut rows: Vec<AuditRow>) -> Vec<AuditRow> {
    rows.sort_by(|a, b| a.time.cmp(&b.time).then(a.event_id.cmp(&b.event_id)));
    let mut seen = std::collections::HashSet::new();
    rows.retain(|r| seen.insert(r.event_id.clone()));
    rows
}

async fn export_channel(
    cx: &Session<'_>,
    since: Duration,
    progress: &mut impl FnMut(&str),
) -> Result<Vec<AuditRow>, SlackError> {
    let oldest = Ts::from_seconds(Utc::now().timestamp() - since.as_secs() as i64);
    let mut notices = Vec::new();
    let mut walk = our_notices(cx, Some(&oldest), MAX_PAGES);
    let mut page = 0;
    while let Some(found) = walk.next().await? {
        page += 1;
        notices.extend(found.into_iter().map(|(message, _)| message));
        progress(&format!(
            "history page {page}: {} notices so far",
            notices.len()
        ));
    }
    if let Some(reason) = walk.stopped_early() {
        progress(&format!("history stopped early: {reason}"));
    }
    let mut rows = Vec::new();
    for (i, notice) in notices.iter().enumerate() {
        let thread = whole_thread(cx, &notice.ts, MAX_PAGES).await?;
        if let Some(e) = &thread.incomplete {
            tracing::warn!(thread_ts = %notice.ts, error = %e, "a thread was read only in part");
        }
        let permalink = cx
            .app
            .slack
            .permalink(cx.token.expose(), cx.channel, &notice.ts, cx.deadline)
            .await?;
        rows.extend(rows_for_thread(
            &notice.raw,
            &thread.messages,
            cx.bot,
            cx.app.config.ticket_pattern.as_ref(),
            &permalink,
        ));
        if (i + 1) % 20 == 0 || i + 1 == notices.len() {
            progress(&format!("threads read: {}/{}", i + 1, notices.len()));
        }
    }
    Ok(rows)
}

/// The rows from the S3 archive (`privwatch audit --from s3`): every use archived since then,
/// with its justification when the sweep archived one. The archive keeps what Slack may lose
/// (retention, deleted messages); rows carry no permalink.
pub async fn export_archive(
    app: &App,
    since: Duration,
    mut progress: impl FnMut(&str),
) -> Result<Vec<AuditRow>, Error> {
    let Some(archive) = &app.archive else {
        return Ok(Vec::new());
    };
    let (uses, justifications) = archive.read_all().await?;
    let mut calls = archive.read_calls().await?;
    calls.sort_by(|a, b| {
        a.archived_at
            .cmp(&b.archived_at)
            .then(a.event_id.cmp(&b.event_id))
    });
    progress(&format!(
        "archive s3://{}: {} uses, {} justifications, {} admin-session calls",
        archive.bucket(),
        uses.len(),
        justifications.len(),
        calls.len()
    ));
    let oldest = Utc::now().timestamp() - since.as_secs() as i64;
    let mut rows: Vec<AuditRow> = uses
        .into_iter()
        // As from Slack, where a notice's time is when privwatch posted it: archived since then.
        .filter(|u| u.archived_at >= oldest)
        .map(|u| {
            let key = crate::message::metadata::event_key(&u.event_id);
            let found = justifications.iter().find(|j| j.event_ids.contains(&key));
            // The session a use opened; an "admin session seen without its start" notice's use
            // is the session's own first call. (A use of another kind made inside an admin
            // session is not that session's row.)
            let session = match u.kind.as_str() {
                "admin_session" => session::of_call(&u.record),
                _ => session::started(&u.record),
            };
            let (actions, session_calls) = match &session {
                Some(s) => activity_of(s, &calls),
                None => (String::new(), Vec::new()),
            };
            AuditRow {
                time: u.time,
                account: u.account,
                kind: u.kind,
                principal: u.principal,
                role: u.role,
                source_ip: u.source_ip,
                event_id: u.event_id,
                justified: found.is_some(),
                justification: found.map(|j| j.purpose.clone()).unwrap_or_default(),
                ticket_url: found.map(|j| j.ticket_url.clone()).unwrap_or_default(),
                replied_by: found.map(|j| j.replied_by.join(" ")).unwrap_or_default(),
                permalink: String::new(),
                actions,
                calls: session_calls,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.time.cmp(&b.time).then(a.event_id.cmp(&b.event_id)));
    Ok(rows)
}

/// A session's calls from the archive: counted as its activity line counts them (in the order
/// they were archived), and listed one by one.
fn activity_of(
    session: &SessionRef,
    calls: &[crate::aws::archive::CallRecord],
) -> (String, Vec<AuditCall>) {
    let mut activity = ActivityPayload::new(session.clone());
    let mut listed = Vec::new();
    for c in calls.iter().filter(|c| {
        SessionRef {
            arn: c.session.clone(),
            created: c.session_created,
        }
        .is(session)
    }) {
        let time = chrono::DateTime::parse_from_rfc3339(&c.time).map_or(0, |t| t.timestamp());
        let call = Call {
            event_id: c.event_id.clone(),
            action: c.action.clone(),
            resources: c.resources.clone(),
            error: c.error.clone(),
            time,
        };
        if activity.add(&call, usize::MAX) {
            listed.push(AuditCall {
                event_id: c.event_id.clone(),
                time: c.time.clone(),
                action: c.action.clone(),
                resources: c.resources.clone(),
                error: c.error.clone().unwrap_or_default(),
            });
        }
    }
    (activity.summary(), listed)
}

/// RFC 4180 CSV with a header row (the `csv` crate), every value kept as text in a spreadsheet.
pub fn to_csv(rows: &[AuditRow]) -> String {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let mut write = |fields: &[&str]| {
        out.write_record(fields.iter().map(|f| defuse_formula(f).into_owned()))
            .expect("writing CSV to memory cannot fail");
    };
    write(&COLUMNS);
    for r in rows {
        write(&[
            r.time.as_str(),
            &r.account,
            &r.kind,
            &r.principal,
            &r.role,
            &r.source_ip,
            &r.event_id,
            if r.justified { "yes" } else { "no" },
            &r.justification,
            &r.ticket_url,
            &r.replied_by,
            &r.permalink,
            &r.actions,
        ]);
    }
    let bytes = out.into_inner().expect("an in-memory CSV writer flushes");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

/// A leading `=`, `+`, `-` or `@` would be a formula in a spreadsheet: keep it text.
fn defuse_formula(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}").into()
    } else {
        value.into()
    }
}

pub fn to_json(rows: &[AuditRow]) -> String {
    serde_json::to_string_pretty(rows).unwrap_or_else(|_| "[]".into())
}

/// `30d`, `12h`, `90m` → a duration.
pub fn parse_since(value: &str) -> Option<Duration> {
    let (number, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = number.parse().ok()?;
    let secs = match unit {
        "d" => n * 86_400,
        "h" => n * 3_600,
        "m" => n * 60,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

fn rfc3339(unix: i64) -> String {
    Utc.timestamp_opt(unix, 0)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_carry_the_justification_ticket_and_repeats() {
        let notice = json!({"ts": "100.1", "reply_count": 3, "metadata": {"event_type": "privileged_use", "event_payload": {
            "event_id": "e1", "account": "111", "kind": "admin_role_via_saml", "principal": "a@example.com",
            "role": "arn:r", "source_ip": "1.2.3.4", "event_time": 1_793_527_200, "count": 2,
            "last_time": 1_793_527_260, "event_ids": ["e1", "e2"]}}});
        let thread = vec![
            notice.clone(),
            json!({"ts": "100.2", "user": "UBOT", "bot_id": "B1", "text": "<@U1> please reply",
                   "metadata": {"event_type": "privileged_use_reply", "event_payload": {"event_id": "e1"}}}),
            json!({"ts": "100.3", "user": "UBOT", "bot_id": "B1", "text": "Again",
                   "metadata": {"event_type": "privileged_use_reply", "event_payload": {
                       "event_id": "e2", "kind": "admin_role_via_saml", "event_time": 1_793_527_260,
                       "source_ip": "5.6.7.8", "role": "arn:r", "repeat": true}}}),
            json!({"ts": "100.4", "user": "U1", "text": "Rotating keys, see <https://tickets.example/T-1|T-1> &amp; done"}),
        ];
        let rows = rows_for_thread(
            &notice,
            &thread,
            &BotUser("UBOT".into()),
            None,
            "https://slack/p1",
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].event_id, "e1");
        assert_eq!(rows[0].time, "2026-11-01T10:00:00Z");
        assert!(rows[0].justified);
        // The purpose without the URL, and the ticket apart.
        assert_eq!(rows[0].justification, "Rotating keys, see & done");
        assert_eq!(rows[0].ticket_url, "https://tickets.example/T-1");
        assert_eq!(rows[0].replied_by, "U1");
        assert_eq!(rows[1].event_id, "e2");
        assert_eq!(rows[1].source_ip, "5.6.7.8");
    }

    #[test]
    fn a_use_read_twice_is_one_row() {
        let notice = json!({"ts": "1.1", "metadata": {"event_type": "privileged_use", "event_payload": {"event_id": "e"}}});
        let template = rows_for_thread(
            &notice,
            std::slice::from_ref(&notice),
            &BotUser("UBOT".into()),
            None,
            "",
        )[0]
        .clone();
        let row = |id: &str, time: &str| AuditRow {
            event_id: id.into(),
            time: time.into(),
            ..template.clone()
        };
        let rows = one_row_per_use(vec![
            row("e2", "2026-11-01T10:05:00Z"),
            row("e1", "2026-11-01T10:00:00Z"),
            row("e2", "2026-11-01T10:05:00Z"),
        ]);
        let ids: Vec<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
        assert_eq!(ids, ["e1", "e2"]);
    }

    #[test]
    fn unanswered_threads_are_not_justified() {
        let notice = json!({"ts": "1.1", "metadata": {"event_type": "privileged_use", "event_payload": {"event_id": "e"}}});
        let rows = rows_for_thread(
            &notice,
            std::slice::from_ref(&notice),
            &BotUser("UBOT".into()),
            None,
            "",
        );
        assert!(!rows[0].justified && rows[0].justification.is_empty());
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let row = AuditRow {
            time: "2026-11-01T10:00:00Z".into(),
            account: "a,b".into(),
            kind: "root_api_call".into(),
            principal: "say \"hi\"".into(),
            role: "=HYPERLINK(1)".into(),
            source_ip: "+1".into(),
            event_id: "e\r\n1".into(),
            justified: true,
            justification: "@here".into(),
            ticket_url: String::new(),
            replied_by: String::new(),
            permalink: String::new(),
            actions: "-iam:CreateUser×1".into(),
            calls: Vec::new(),
        };
        let csv = to_csv(&[row]);
        let line = csv.split_once("\r\n").unwrap().1;
        assert!(
            line.starts_with("2026-11-01T10:00:00Z,\"a,b\",root_api_call,\"say \"\"hi\"\"\",'=HYPERLINK(1),'+1,\"e\r\n1\",yes,'@here,,,,'-iam:CreateUser×1"),
            "{line}"
        );
    }

    #[test]
    fn since_takes_days_hours_minutes() {
        assert_eq!(parse_since("30d"), Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_since("12h"), Some(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_since("x"), None);
        assert_eq!(parse_since("0d"), None);
    }
}
