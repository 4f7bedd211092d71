//! Slack rendering: a privileged use as a Block Kit notice (with fallback text and metadata), its
//! thread lines, and the `chat.update` bodies that keep a notice current. The words come from
//! `wording`; this module knows Block Kit's shapes and Slack's size limits.

use crate::event::PrivilegedUse;
use crate::message::metadata::{
    event_key, ActivityPayload, LinePayload, NoticePayload, SummaryPayload, ESCALATION_EVENT_TYPE,
    MAX_VALUE_CHARS,
};
use crate::message::mrkdwn::{clip, clip_mrkdwn, escape, field};
use crate::message::wording::{Label, Series, Shown, Wording};
use crate::slack::Ts;
use serde_json::{json, Value};

/// `block_id` prefix of the context block that counts coalesced uses. Each update gives it a new
/// suffix: Slack asks for a new `block_id` whenever a message is updated.
/// The *Justify* button's `action_id`, and its modal's `callback_id`.
pub const JUSTIFY_ACTION: &str = "privwatch_justify";
pub const JUSTIFY_CALLBACK: &str = "privwatch_justify";
/// The reaction on a notice whose thread is justified.
pub const JUSTIFIED_REACTION: &str = "white_check_mark";
const REPEATS_BLOCK_ID: &str = "privwatch-repeats";
/// `block_id` prefix of the context block naming the other account of a cross-account call.
const ACTIVITY_BLOCK_ID: &str = "privwatch-activity";
const TWIN_BLOCK_ID: &str = "privwatch-twin";
/// Slack's limits, applied to the text as sent (after escaping): a section's or context
/// element's text, a field, and a message's `text` (`chat.update` answers `msg_too_long` above it).
const SECTION_MAX_CHARS: usize = 3000;
const FIELD_TEXT_MAX_CHARS: usize = 2000;
pub const MESSAGE_TEXT_MAX_CHARS: usize = 4000;
/// Slack allows at most 10 fields in a section.
const MAX_FIELDS: usize = 10;

/// A rendered `chat.postMessage` body, less the channel (and `thread_ts` for a reply).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub text: String,
    pub blocks: Option<Value>,
    pub metadata: Value,
}

impl Message {
    /// The JSON body for `chat.postMessage`.
    pub fn to_post_body(&self, channel: &str, thread_ts: Option<&Ts>) -> Value {
        let mut body = json!({
            "channel": channel,
            "text": clip_mrkdwn(&self.text, MESSAGE_TEXT_MAX_CHARS),
            "metadata": self.metadata,
            "unfurl_links": false,
            "unfurl_media": false,
            "link_names": false,
        });
        if let Some(blocks) = &self.blocks {
            body["blocks"] = blocks.clone();
        }
        if let Some(ts) = thread_ts {
            body["thread_ts"] = json!(ts.as_str());
        }
        body
    }

    /// The JSON body for `chat.update` that makes the message at `ts` this one.
    pub fn to_update_body(&self, channel: &str, ts: &Ts) -> Value {
        let mut body = json!({
            "channel": channel,
            "ts": ts.as_str(),
            "text": clip_mrkdwn(&self.text, MESSAGE_TEXT_MAX_CHARS),
            "metadata": self.metadata,
        });
        if let Some(blocks) = &self.blocks {
            body["blocks"] = blocks.clone();
        }
        body
    }
}

/// Who the thread reply addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mention {
    /// A Slack user found by e-mail.
    User(String),
    /// Operator configuration (`FALLBACK_MENTION`, an `OIDC_OWNERS` entry): trusted markup.
    Configured(String),
}

impl Mention {
    pub fn markup(&self) -> String {
        match self {
            // Slack user IDs are upper-case letters and digits; anything else is not a user ID.
            Mention::User(id)
                if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                format!("<@{id}>")
            }
            Mention::User(id) => escape(id),
            Mention::Configured(markup) => markup.clone(),
        }
    }
}

/// The top-level notice for a privileged use.
pub fn render_notice(u: &PrivilegedUse, wording: &Wording) -> Message {
    let headline = wording.headline(u);
    let summary = wording.summary(u);
    let field_of =
        |label: Label, value: String| mrkdwn(format!("*{}*\n{}", wording.label(label), value));

    let mut fields = vec![
        field_of(Label::Account, wording.account(&u.account_id)),
        field_of(Label::Identity, field(u.identity.label())),
    ];
    if let Some(role) = &u.role_arn {
        let mut role_text = field(role);
        if let Some(set) = &u.permission_set {
            role_text = format!(
                "{}: *{}*\n{}",
                wording.label(Label::PermissionSet),
                field(set),
                role_text
            );
        }
        fields.push(field_of(Label::Role, role_text));
    }
    if u.kind.spec().shows_action {
        if let Some(name) = &u.event_name {
            fields.push(field_of(Label::Action, format!("`{}`", field(name))));
        }
    }
    let account = |a: &Option<String>| a.as_deref().map(|a| wording.account(a));
    let shown = |v: &Option<String>| v.as_deref().map(field);
    let optional = [
        (Label::Target, shown(&u.target)),
        (Label::TargetAccount, account(&u.target_account)),
        (Label::Task, shown(&u.task)),
        (Label::Provider, shown(&u.provider)),
        (Label::SwitchedFrom, shown(&u.switched_from)),
        (Label::OtherAccount, account(&u.other_account)),
        (Label::SessionKey, shown(&u.session_key)),
        (Label::SourceIp, shown(&u.source_ip)),
    ];
    for (label, value) in optional {
        if let Some(value) = value {
            fields.push(field_of(label, value));
        }
    }
    if let Some(mfa) = u.mfa_used {
        fields.push(mrkdwn(format!("*MFA*\n{}", wording.mfa(mfa))));
    }
    if let Some(region) = &u.region {
        fields.push(field_of(Label::Region, field(region)));
    }
    fields.push(field_of(Label::Time, time_token(u)));
    if let Some(agent) = &u.user_agent {
        fields.push(field_of(Label::UserAgent, field(agent)));
    }
    fields.truncate(MAX_FIELDS);
    for f in &mut fields {
        if let Some(text) = f["text"].as_str() {
            f["text"] = json!(clip_mrkdwn(text, FIELD_TEXT_MAX_CHARS));
        }
    }

    let mut context = format!(
        "{} `{}`",
        wording.label(Label::CloudTrailEvent),
        field(&u.event_id)
    );
    if let Some(link) = console_link(u) {
        context.push_str(&format!(
            " · <{link}|{}>",
            wording.label(Label::OpenInCloudTrail)
        ));
    }

    let mut blocks = json!([
        {"type": "header", "text": {"type": "plain_text", "text": headline, "emoji": true}},
        {"type": "section", "text": mrkdwn(summary.clone())},
        {"type": "section", "fields": fields},
        {"type": "context", "elements": [mrkdwn(context)]},
    ]);
    if wording.justify_button {
        blocks.as_array_mut().expect("an array").push(json!({
            "type": "actions",
            "elements": [{"type": "button", "action_id": JUSTIFY_ACTION,
                          "style": "primary", "value": "justify",
                          "text": {"type": "plain_text", "text": wording.justify_label()}}],
        }));
    }

    let text = format!(
        "{headline}: {summary} ({} {})",
        wording.label(Label::Event),
        field(&u.event_id)
    );
    Message {
        text,
        blocks: Some(blocks),
        metadata: notice_payload(u).to_metadata(),
    }
}

/// The reply in the notice's thread that asks the person for the purpose and the ticket.
pub fn render_reply(u: &PrivilegedUse, mention: &Mention, wording: &Wording) -> Message {
    Message {
        text: wording.ask(u, &mention.markup()),
        blocks: None,
        metadata: line_payload(u, false).to_metadata(),
    }
}

/// What a notice's metadata says of its first use.
pub fn notice_payload(u: &PrivilegedUse) -> NoticePayload {
    let time = u.time.map(|t| t.timestamp()).unwrap_or(0);
    let event_id = event_key(&u.event_id);
    NoticePayload {
        event_ids: vec![event_id.clone()],
        event_id,
        account: clip(&u.account_id, MAX_VALUE_CHARS),
        kind: u.kind.as_str().to_string(),
        principal: clip(u.identity.label(), MAX_VALUE_CHARS),
        role: clip(u.role_arn.as_deref().unwrap_or(""), MAX_VALUE_CHARS),
        source_ip: clip(u.source_ip.as_deref().unwrap_or(""), MAX_VALUE_CHARS),
        event_time: time,
        failed: u.failed(),
        count: 1,
        last_time: time,
        justified: false,
        escalated: false,
        shared_event_id: u
            .shared_event_id
            .as_deref()
            .map(event_key)
            .unwrap_or_default(),
        twin_event_id: String::new(),
        ticket_asked: false,
        person_unasked: false,
        sessions: u.session.iter().cloned().collect(),
    }
}

fn line_payload(u: &PrivilegedUse, repeat: bool) -> LinePayload {
    LinePayload {
        event_id: event_key(&u.event_id),
        kind: u.kind.as_str().to_string(),
        event_time: u.time.map(|t| t.timestamp()).unwrap_or(0),
        source_ip: clip(u.source_ip.as_deref().unwrap_or(""), MAX_VALUE_CHARS),
        role: clip(u.role_arn.as_deref().unwrap_or(""), MAX_VALUE_CHARS),
        repeat,
    }
}

/// The short thread line for a further use coalesced into an existing notice (no mention: the
/// person was already asked in this thread).
pub fn render_repeat_line(u: &PrivilegedUse, wording: &Wording) -> Message {
    Message {
        text: wording.repeat(u, &time_token(u)),
        blocks: None,
        metadata: line_payload(u, true).to_metadata(),
    }
}

/// The rolling summary line of a long series (posted once into the notice's thread, then
/// rewritten with `chat.update`).
pub fn render_rolling(series: &Series<'_>, wording: &Wording) -> Message {
    Message {
        text: wording.rolling(series),
        blocks: None,
        metadata: SummaryPayload {
            count: series.count,
            first_time: series.first,
            last_time: series.last,
        }
        .to_metadata(),
    }
}

/// The `chat.update` body that shows how many uses a notice stands for and over which time
/// range. `existing` is the notice as `conversations.history` returned it.
pub fn render_count_update(
    channel: &str,
    existing: &Value,
    payload: &NoticePayload,
    shown: Shown,
    wording: &Wording,
) -> Value {
    let mut blocks: Vec<Value> = renew_block_ids(&existing["blocks"])
        .into_iter()
        .filter(|b| !has_block_id(b, REPEATS_BLOCK_ID))
        .collect();
    let summary = wording.count(payload.count, payload.event_time, payload.last_time, shown);
    blocks.push(json!({"type": "context", "block_id": new_block_id(REPEATS_BLOCK_ID), "elements": [mrkdwn(summary)]}));
    let base_text = existing["text"].as_str().unwrap_or_default();
    let base_text = base_text.split(" [×").next().unwrap_or(base_text);
    let suffix = format!(" [×{}]", payload.count);
    let base_text = clip_mrkdwn(base_text, MESSAGE_TEXT_MAX_CHARS - suffix.chars().count());
    json!({
        "channel": channel,
        "ts": existing["ts"],
        "text": format!("{base_text}{suffix}"),
        "blocks": blocks,
        "metadata": payload.to_metadata(),
    })
}

/// An admin session's activity line (posted in its notice's thread, then updated in place).
pub fn render_activity_line(activity: &ActivityPayload, wording: &Wording) -> Message {
    Message {
        text: clip_mrkdwn(&wording.activity_line(activity), MESSAGE_TEXT_MAX_CHARS),
        blocks: None,
        metadata: activity.to_metadata(),
    }
}

/// The `chat.update` body of an activity line already posted.
pub fn render_activity_update(
    channel: &str,
    line_ts: &Ts,
    activity: &ActivityPayload,
    wording: &Wording,
) -> Value {
    let line = render_activity_line(activity, wording);
    json!({
        "channel": channel,
        "ts": line_ts.as_str(),
        "text": line.text,
        "metadata": line.metadata,
    })
}

/// The `chat.update` body that says on the notice how many write calls its sessions made so far
/// (the notice's own metadata kept as it is).
pub fn render_notice_activity(
    channel: &str,
    existing: &Value,
    total: u32,
    wording: &Wording,
) -> Value {
    let mut blocks: Vec<Value> = renew_block_ids(&existing["blocks"])
        .into_iter()
        .filter(|b| !has_block_id(b, ACTIVITY_BLOCK_ID))
        .collect();
    blocks.push(json!({"type": "context", "block_id": new_block_id(ACTIVITY_BLOCK_ID), "elements": [mrkdwn(wording.activity_count(total))]}));
    json!({
        "channel": channel,
        "ts": existing["ts"],
        "text": clip_mrkdwn(existing["text"].as_str().unwrap_or_default(), MESSAGE_TEXT_MAX_CHARS),
        "blocks": blocks,
        "metadata": existing["metadata"],
    })
}

/// The `chat.update` body that adds the other account's record of a cross-account call to its
/// notice (one notice naming both accounts).
pub fn render_twin_update(
    channel: &str,
    existing: &Value,
    payload: &NoticePayload,
    u: &PrivilegedUse,
    wording: &Wording,
) -> Value {
    let mut blocks: Vec<Value> = renew_block_ids(&existing["blocks"])
        .into_iter()
        .filter(|b| !has_block_id(b, TWIN_BLOCK_ID))
        .collect();
    let line = wording.twin(&u.account_id, &u.event_id);
    blocks.push(json!({"type": "context", "block_id": new_block_id(TWIN_BLOCK_ID), "elements": [mrkdwn(line)]}));
    json!({
        "channel": channel,
        "ts": existing["ts"],
        "text": clip_mrkdwn(existing["text"].as_str().unwrap_or_default(), MESSAGE_TEXT_MAX_CHARS),
        "blocks": blocks,
        "metadata": payload.to_metadata(),
    })
}

/// A `chat.update` body that changes only the metadata (justified, escalated), keeping the
/// notice as it is.
pub fn render_metadata_update(channel: &str, existing: &Value, payload: &NoticePayload) -> Value {
    let text = clip_mrkdwn(
        existing["text"].as_str().unwrap_or_default(),
        MESSAGE_TEXT_MAX_CHARS,
    );
    let mut body = json!({
        "channel": channel,
        "ts": existing["ts"],
        "text": text,
        "metadata": payload.to_metadata(),
    });
    if existing["blocks"].is_array() {
        body["blocks"] = json!(renew_block_ids(&existing["blocks"]));
    }
    body
}

/// The blocks of a message read back, ready to be sent in an update: Slack's own `block_id`s are
/// dropped (it assigns new ones) and our context blocks get new ones of ours.
fn renew_block_ids(blocks: &Value) -> Vec<Value> {
    let mut blocks = blocks.as_array().cloned().unwrap_or_default();
    for block in &mut blocks {
        let ours = [REPEATS_BLOCK_ID, TWIN_BLOCK_ID]
            .into_iter()
            .find(|prefix| has_block_id(block, prefix));
        if let Some(map) = block.as_object_mut() {
            map.remove("block_id");
            if let Some(prefix) = ours {
                map.insert("block_id".into(), json!(new_block_id(prefix)));
            }
        }
    }
    blocks
}

fn has_block_id(block: &Value, prefix: &str) -> bool {
    block["block_id"]
        .as_str()
        .is_some_and(|id| id.starts_with(prefix))
}

/// A `block_id` that no earlier version of the message carried.
fn new_block_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let micros = chrono::Utc::now().timestamp_micros();
    format!("{prefix}-{micros}-{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

/// The chase: one reply in an unanswered thread, mentioning who must follow up.
pub fn render_escalation(
    payload: &NoticePayload,
    mention: &str,
    minutes: u64,
    wording: &Wording,
) -> Message {
    Message {
        text: wording.escalation(mention, minutes),
        blocks: None,
        metadata: json!({
            "event_type": ESCALATION_EVENT_TYPE,
            "event_payload": {"event_id": payload.event_id},
        }),
    }
}

/// The one reply asking a person for what their answer lacks.
pub fn render_ticket_ask(
    mention: &Mention,
    missing: crate::message::justification::Missing,
    wording: &Wording,
) -> Message {
    Message {
        text: wording.ask_missing(&mention.markup(), missing),
        blocks: None,
        metadata: json!({"event_type": crate::message::metadata::TICKET_ASK_EVENT_TYPE,
        "event_payload": {"missing": match missing {
            crate::message::justification::Missing::TicketUrl => "ticket_url",
            crate::message::justification::Missing::Purpose => "purpose",
        }}}),
    }
}

/// The ask of a person Slack could not find when the notice was posted, once they can be.
pub fn render_late_ask(mention: &Mention, wording: &Wording) -> Message {
    Message {
        text: wording.late_ask(&mention.markup()),
        blocks: None,
        metadata: json!({"event_type": crate::message::metadata::LATE_ASK_EVENT_TYPE, "event_payload": {}}),
    }
}

/// `<!date^…>` shows the time in each reader's time zone; the fallback is UTC.
fn time_token(u: &PrivilegedUse) -> String {
    match u.time {
        Some(time) => crate::message::mrkdwn::date(time.timestamp()),
        None => "?".to_string(),
    }
}

/// Link to the event in the CloudTrail console, only for IDs and regions of the shape AWS uses.
fn console_link(u: &PrivilegedUse) -> Option<String> {
    let region = match u.region.as_deref() {
        None | Some("global") => "us-east-1",
        Some(r) => r,
    };
    let plain = |s: &str| {
        !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    (plain(region) && plain(&u.event_id)).then(|| {
        format!(
            "https://{region}.console.aws.amazon.com/cloudtrailv2/home?region={region}#/events/{}",
            u.event_id
        )
    })
}

/// A mrkdwn text object that Slack must not auto-link (`verbatim`), within Slack's 3,000
/// characters as sent.
fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": clip_mrkdwn(&text, SECTION_MAX_CHARS), "verbatim": true})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::kind::Kind;
    use crate::event::Identity;
    use crate::message::metadata::NOTICE_EVENT_TYPE;
    use crate::message::wording::Lang;
    use chrono::TimeZone;

    fn root_sign_in() -> PrivilegedUse {
        PrivilegedUse {
            kind: Kind::RootConsoleSignIn,
            event_id: "3fcfb586-8e23-4c9f-a1ce-1b7c1a1c2b33".into(),
            account_id: "111122223333".into(),
            identity: Identity::Root,
            role_arn: None,
            permission_set: None,
            event_name: Some("ConsoleLogin".into()),
            source_ip: Some("192.0.2.10".into()),
            user_agent: Some("Mozilla/5.0".into()),
            mfa_used: Some(true),
            region: Some("us-east-1".into()),
            time: Some(chrono::Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap()),
            failure: None,
            target: None,
            target_account: None,
            task: None,
            provider: None,
            switched_from: None,
            other_account: None,
            shared_event_id: None,
            centralized_root: false,
            session_key: None,
            session: None,
        }
    }

    fn all_texts(message: &Message) -> String {
        format!(
            "{}\n{}",
            message.text,
            message.blocks.clone().unwrap_or_default()
        )
    }

    #[test]
    fn notice_has_the_facts_a_reader_needs() {
        let wording = Wording {
            lang: Lang::En,
            account_name: Some("prod".into()),
            ..Wording::default()
        };
        let n = render_notice(&root_sign_in(), &wording);
        let all = all_texts(&n);
        for expected in [
            "111122223333 (prod)",
            "192.0.2.10",
            "Mozilla/5.0",
            "<!date^1793527200^{date_short_pretty} {time_secs}|2026-11-01 10:00:00 UTC>",
            "3fcfb586-8e23-4c9f-a1ce-1b7c1a1c2b33",
            "https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/3fcfb586-8e23-4c9f-a1ce-1b7c1a1c2b33",
            "Root user signed in",
        ] {
            assert!(all.contains(expected), "missing {expected} in {all}");
        }
        assert_eq!(n.metadata["event_type"], NOTICE_EVENT_TYPE);
        assert_eq!(
            n.metadata["event_payload"]["event_id"],
            "3fcfb586-8e23-4c9f-a1ce-1b7c1a1c2b33"
        );
        assert_eq!(n.metadata["event_payload"]["kind"], "root_console_sign_in");
    }

    #[test]
    fn failed_sign_in_is_marked_and_asks_was_this_you() {
        let mut u = root_sign_in();
        u.failure = Some("Failed authentication".into());
        let wording = Wording::default();
        let n = render_notice(&u, &wording);
        assert!(all_texts(&n).contains("FAILED root sign-in"));
        assert!(all_texts(&n).contains("Failed authentication"));
        let r = render_reply(&u, &Mention::Configured("<!here>".into()), &wording);
        assert!(r.text.starts_with("<!here> "));
        assert!(r.text.contains("Was this you?"));
    }

    #[test]
    fn japanese_wording_follows_the_original_process() {
        let wording = Wording {
            lang: Lang::Ja,
            account_name: None,
            ..Wording::default()
        };
        let r = render_reply(
            &root_sign_in(),
            &Mention::Configured("<!here>".into()),
            &wording,
        );
        assert!(r
            .text
            .contains("rootユーザーによるコンソールログインが行われました。"));
        assert!(r.text.contains("「作業目的や内容」"));
        assert!(r.text.contains("「タスクチケットURL」"));
    }

    #[test]
    fn hostile_values_never_become_live_markup() {
        let mut u = root_sign_in();
        u.user_agent =
            Some("<!channel> <@U999> <https://evil.example|login> & <!subteam^S1>".into());
        u.source_ip = Some("@everyone".into());
        u.event_id = "<!here>".into();
        let n = render_notice(&u, &Wording::default());
        let all = all_texts(&n);
        for live in [
            "<!channel>",
            "<@U999>",
            "<https://evil",
            "<!subteam",
            "<!here>",
            "@everyone",
        ] {
            assert!(!all.contains(live), "{live} is live in {all}");
        }
        assert!(
            !all.contains("cloudtrailv2"),
            "no link for a hostile event id"
        );
    }

    #[test]
    fn long_values_are_clipped_within_slack_limits() {
        let mut u = root_sign_in();
        u.user_agent = Some("<".repeat(100_000));
        let n = render_notice(&u, &Wording::default());
        for block in n.blocks.unwrap().as_array().unwrap() {
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(text.chars().count() <= 3000);
            }
            for f in block["fields"].as_array().into_iter().flatten() {
                assert!(f["text"].as_str().unwrap().chars().count() <= 2000);
            }
        }
        assert!(n.text.chars().count() <= 4000);
    }

    /// Every untrusted value at its longest and most hostile (each `<` grows to `&lt;`): the
    /// texts as sent stay within Slack's limits, and no cut leaves half an entity.
    #[test]
    fn hostile_values_stay_within_slack_limits_after_escaping() {
        let hostile = "<&>@".repeat(5_000);
        let mut u = root_sign_in();
        u.kind = Kind::AdminRoleViaSaml;
        u.identity = Identity::Person {
            email: hostile.clone(),
        };
        u.role_arn = Some(hostile.clone());
        u.permission_set = Some(hostile.clone());
        u.event_name = Some(hostile.clone());
        u.source_ip = Some(hostile.clone());
        u.user_agent = Some(hostile.clone());
        u.region = Some(hostile.clone());
        u.failure = Some(hostile.clone());
        let wording = Wording {
            lang: Lang::En,
            account_name: Some(hostile.clone()),
            ..Wording::default()
        };
        let notice = render_notice(&u, &wording);
        let post = notice.to_post_body("C1", None);
        let blocks = post["blocks"].as_array().unwrap();
        let mut texts = vec![];
        for block in blocks {
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(text.chars().count() <= SECTION_MAX_CHARS, "{}", text.len());
                texts.push(text.to_string());
            }
            for f in block["fields"].as_array().into_iter().flatten() {
                let text = f["text"].as_str().unwrap();
                assert!(text.chars().count() <= FIELD_TEXT_MAX_CHARS);
                texts.push(text.to_string());
            }
            for e in block["elements"].as_array().into_iter().flatten() {
                let text = e["text"].as_str().unwrap();
                assert!(text.chars().count() <= SECTION_MAX_CHARS);
                texts.push(text.to_string());
            }
        }
        let text = post["text"].as_str().unwrap();
        assert!(text.chars().count() <= MESSAGE_TEXT_MAX_CHARS);
        texts.push(text.to_string());
        // A coalesced update of that notice, and a metadata update, keep the limit too.
        let existing = json!({"ts": "1.2", "text": text.repeat(3), "blocks": post["blocks"]});
        let payload = notice_payload(&u);
        let update = render_count_update("C1", &existing, &payload, Shown::EveryLine, &wording);
        assert!(update["text"].as_str().unwrap().chars().count() <= MESSAGE_TEXT_MAX_CHARS);
        let flags = render_metadata_update("C1", &existing, &payload);
        assert!(flags["text"].as_str().unwrap().chars().count() <= MESSAGE_TEXT_MAX_CHARS);
        for t in texts {
            // No entity cut in half at the clip: every `&` starts a whole entity.
            for (i, _) in t.match_indices('&') {
                let rest = &t[i..];
                assert!(
                    rest.starts_with("&amp;")
                        || rest.starts_with("&lt;")
                        || rest.starts_with("&gt;"),
                    "half an entity at {i}"
                );
            }
        }
    }

    /// Slack: "If a message is updated, use a new block_id". The blocks read back keep none of
    /// their ids, and the repeats block gets a new one on every update.
    #[test]
    fn updates_carry_new_block_ids() {
        let u = root_sign_in();
        let mut blocks = render_notice(&u, &Wording::default()).blocks.unwrap();
        for (i, b) in blocks.as_array_mut().unwrap().iter_mut().enumerate() {
            b["block_id"] = json!(format!("slack-assigned-{i}"));
        }
        let existing = json!({"ts": "1.2", "text": "x", "blocks": blocks});
        let payload = NoticePayload {
            count: 2,
            ..notice_payload(&u)
        };
        let first = render_count_update(
            "C1",
            &existing,
            &payload,
            Shown::Summed,
            &Wording::default(),
        );
        let ids = |v: &Value| -> Vec<String> {
            v["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|b| b["block_id"].as_str().map(str::to_string))
                .collect()
        };
        let first_ids = ids(&first);
        assert_eq!(
            first_ids.len(),
            1,
            "only the repeats block carries an id of ours"
        );
        assert!(first_ids[0].starts_with(REPEATS_BLOCK_ID));
        let again = render_count_update("C1", &first, &payload, Shown::Summed, &Wording::default());
        assert_eq!(ids(&again).len(), 1);
        assert_ne!(ids(&again), first_ids, "a new id on every update");
        let flags = render_metadata_update("C1", &first, &payload);
        assert_ne!(ids(&flags), first_ids);
        assert_eq!(
            flags["blocks"].as_array().unwrap().len(),
            first["blocks"].as_array().unwrap().len()
        );
    }

    #[test]
    fn user_mention_is_live_only_for_a_real_user_id() {
        let u = root_sign_in();
        let ok = render_reply(&u, &Mention::User("U012AB3CD".into()), &Wording::default());
        assert!(ok.text.starts_with("<@U012AB3CD> "));
        let bad = render_reply(&u, &Mention::User("U1> <!here".into()), &Wording::default());
        assert!(!bad.text.contains("<!here"));
    }
}
