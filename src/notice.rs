//! PrivilegedUse → the Slack notice (Block Kit + fallback text + metadata) and its thread reply.
//!
//! Everything that came from CloudTrail goes through [`escape`] before it reaches a Slack text:
//! only the mention privwatch itself chooses is ever live. Slack's size limits are kept here.

use crate::detect::{Kind, PrivilegedUse};
use crate::metadata::{
    event_key, LinePayload, NoticePayload, ESCALATION_EVENT_TYPE, MAX_VALUE_CHARS,
};
use serde_json::{json, Value};

/// `block_id` prefix of the context block that counts coalesced uses. Each update gives it a new
/// suffix: Slack asks for a new `block_id` whenever a message is updated.
const REPEATS_BLOCK_ID: &str = "privwatch-repeats";
/// Slack's limits, applied to the text as sent (after escaping): a section's or context
/// element's text, a field, and a message's `text` (`chat.update` answers `msg_too_long` above it).
const SECTION_MAX_CHARS: usize = 3000;
const FIELD_TEXT_MAX_CHARS: usize = 2000;
pub const MESSAGE_TEXT_MAX_CHARS: usize = 4000;

/// Longest value shown in a field (before escaping, which may grow it up to 5×; Slack allows
/// 2,000 characters per field and 3,000 per section text).
const FIELD_MAX_CHARS: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Ja,
}

/// Settings the wording depends on (from `Config`).
#[derive(Debug, Clone, Default)]
pub struct Wording {
    pub lang: Lang,
    pub account_name: Option<String>,
}

/// A rendered `chat.postMessage` body, less the channel (and `thread_ts` for a reply).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub text: String,
    pub blocks: Option<Value>,
    pub metadata: Value,
}

impl Message {
    /// The JSON body for `chat.postMessage`.
    pub fn to_post_body(&self, channel: &str, thread_ts: Option<&str>) -> Value {
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
            body["thread_ts"] = json!(ts);
        }
        body
    }
}

/// Who the thread reply addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mention {
    /// A Slack user found by e-mail.
    User(String),
    /// The configured fallback (`<!here>`, `<!subteam^S…>`): trusted operator configuration.
    Fallback(String),
}

impl Mention {
    fn markup(&self) -> String {
        match self {
            // Slack user IDs are upper-case letters and digits; anything else is not a user ID.
            Mention::User(id)
                if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                format!("<@{id}>")
            }
            Mention::User(id) => escape(id),
            Mention::Fallback(markup) => markup.clone(),
        }
    }
}

/// The top-level notice for a privileged use.
pub fn render_notice(u: &PrivilegedUse, wording: &Wording) -> Message {
    let ja = wording.lang == Lang::Ja;
    let account = account_label(&u.account_id, wording.account_name.as_deref());
    let who = field(u.identity.label());
    let headline = headline(u, ja);
    let summary = summary(u, ja, &who, &account);

    let mut fields = vec![
        mrkdwn(format!("*{}*\n{}", t(ja, "Account", "アカウント"), account)),
        mrkdwn(format!("*{}*\n{}", t(ja, "Identity", "ID"), who)),
    ];
    if let Some(role) = &u.role_arn {
        let mut role_text = field(role);
        if let Some(set) = &u.permission_set {
            role_text = format!(
                "{}: *{}*\n{}",
                t(ja, "Permission set", "許可セット"),
                field(set),
                role_text
            );
        }
        fields.push(mrkdwn(format!(
            "*{}*\n{}",
            t(ja, "Role", "ロール"),
            role_text
        )));
    }
    if u.kind == Kind::RootApiCall {
        if let Some(name) = &u.event_name {
            fields.push(mrkdwn(format!(
                "*{}*\n`{}`",
                t(ja, "Action", "操作"),
                field(name)
            )));
        }
    }
    if let Some(ip) = &u.source_ip {
        fields.push(mrkdwn(format!(
            "*{}*\n{}",
            t(ja, "Source IP", "送信元IP"),
            field(ip)
        )));
    }
    if let Some(mfa) = u.mfa_used {
        let value = match (mfa, ja) {
            (true, false) => "yes",
            (false, false) => ":warning: no",
            (true, true) => "あり",
            (false, true) => ":warning: なし",
        };
        fields.push(mrkdwn(format!("*MFA*\n{value}")));
    }
    if let Some(region) = &u.region {
        fields.push(mrkdwn(format!(
            "*{}*\n{}",
            t(ja, "Region", "リージョン"),
            field(region)
        )));
    }
    fields.push(mrkdwn(format!(
        "*{}*\n{}",
        t(ja, "Time", "日時"),
        time_token(u)
    )));
    if let Some(agent) = &u.user_agent {
        fields.push(mrkdwn(format!(
            "*{}*\n{}",
            t(ja, "User agent", "ユーザーエージェント"),
            field(agent)
        )));
    }
    fields.truncate(10); // Slack allows at most 10 fields in a section.
    for f in &mut fields {
        if let Some(text) = f["text"].as_str() {
            f["text"] = json!(clip_mrkdwn(text, FIELD_TEXT_MAX_CHARS));
        }
    }

    let mut context = format!("CloudTrail event `{}`", field(&u.event_id));
    if let Some(link) = console_link(u) {
        context.push_str(&format!(
            " · <{link}|{}>",
            t(ja, "Open in CloudTrail", "CloudTrailで開く")
        ));
    }

    let blocks = json!([
        {"type": "header", "text": {"type": "plain_text", "text": headline, "emoji": true}},
        {"type": "section", "text": mrkdwn(summary.clone())},
        {"type": "section", "fields": fields},
        {"type": "context", "elements": [mrkdwn(context)]},
    ]);

    let text = format!("{headline}: {summary} (event {})", field(&u.event_id));
    Message {
        text,
        blocks: Some(blocks),
        metadata: notice_payload(u).to_metadata(),
    }
}

/// The reply in the notice's thread that asks the person for the purpose and the ticket.
pub fn render_reply(u: &PrivilegedUse, mention: &Mention, wording: &Wording) -> Message {
    let who = mention.markup();
    let text = match (wording.lang, u.kind, u.failed()) {
        (Lang::En, Kind::RootConsoleSignIn, true) => format!(
            "{who} Someone tried to sign in to the console as *root* and failed. *Was this you?* \
             If it was, reply in this thread with the purpose of the work and the ticket URL. \
             If nobody here did it, treat it as a security incident."
        ),
        (Lang::En, Kind::RootConsoleSignIn, false) => format!(
            "{who} The *root user* signed in to the console. Whoever did it: please reply in this \
             thread with the purpose of the work and the ticket URL."
        ),
        (Lang::En, Kind::RootApiCall, _) => format!(
            "{who} The *root user* called an AWS API. Whoever did it: please reply in this thread \
             with the purpose of the work and the ticket URL."
        ),
        (Lang::En, _, _) => format!(
            "{who} You are using an *admin role*. Please reply in this thread with the purpose of \
             the work and the ticket URL."
        ),
        (Lang::Ja, Kind::RootConsoleSignIn, true) => format!(
            "{who} rootユーザーによるコンソールログインが失敗しました。*ご本人の操作ですか?* \
             ご本人の場合は、このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。\
             心当たりがない場合はセキュリティインシデントとして対応してください。"
        ),
        (Lang::Ja, Kind::RootConsoleSignIn, false) => format!(
            "{who} rootユーザーによるコンソールログインが行われました。\
             このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。"
        ),
        (Lang::Ja, Kind::RootApiCall, _) => format!(
            "{who} rootユーザーによるAPI操作が行われました。\
             このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。"
        ),
        (Lang::Ja, _, _) => format!(
            "{who} 管理者ロールが使用されました。\
             このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。"
        ),
    };
    Message {
        text,
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
    let ja = wording.lang == Lang::Ja;
    let what = match (u.kind, &u.event_name) {
        (Kind::RootApiCall, Some(name)) => format!("`{}`", field(name)),
        _ => headline(u, ja),
    };
    let from = u
        .source_ip
        .as_deref()
        .map(|ip| format!(" {} {}", t(ja, "from", "送信元"), field(ip)))
        .unwrap_or_default();
    let text = format!(
        "{} {}: {what}{from} ({} `{}`)",
        t(ja, "Again", "再度"),
        time_token(u),
        t(ja, "event", "イベント"),
        field(&u.event_id)
    );
    Message {
        text,
        blocks: None,
        metadata: line_payload(u, true).to_metadata(),
    }
}

/// The `chat.update` body that shows how many uses a notice stands for and over which time
/// range. `existing` is the notice as `conversations.history` returned it.
pub fn render_count_update(
    channel: &str,
    existing: &Value,
    payload: &NoticePayload,
    wording: &Wording,
) -> Value {
    let ja = wording.lang == Lang::Ja;
    let mut blocks: Vec<Value> = renew_block_ids(&existing["blocks"])
        .into_iter()
        .filter(|b| !is_repeats_block(b))
        .collect();
    let date = |unix: i64| {
        let plain = chrono::DateTime::from_timestamp(unix, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| unix.to_string());
        format!("<!date^{unix}^{{date_short_pretty}} {{time_secs}}|{plain}>")
    };
    let summary = if ja {
        format!(
            "{} 回の使用（{} 〜 {}）。各イベントはスレッドにあります。",
            payload.count,
            date(payload.event_time),
            date(payload.last_time)
        )
    } else {
        format!(
            "Used *{}* times between {} and {}; every event is in the thread.",
            payload.count,
            date(payload.event_time),
            date(payload.last_time)
        )
    };
    blocks.push(
        json!({"type": "context", "block_id": new_repeats_block_id(), "elements": [mrkdwn(summary)]}),
    );
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
/// dropped (it assigns new ones) and the repeats block gets a new one of ours.
fn renew_block_ids(blocks: &Value) -> Vec<Value> {
    let mut blocks = blocks.as_array().cloned().unwrap_or_default();
    for block in &mut blocks {
        let repeats = is_repeats_block(block);
        if let Some(map) = block.as_object_mut() {
            map.remove("block_id");
            if repeats {
                map.insert("block_id".into(), json!(new_repeats_block_id()));
            }
        }
    }
    blocks
}

fn is_repeats_block(block: &Value) -> bool {
    block["block_id"]
        .as_str()
        .is_some_and(|id| id.starts_with(REPEATS_BLOCK_ID))
}

/// A `block_id` for the repeats block that no earlier version of the message carried.
fn new_repeats_block_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let micros = chrono::Utc::now().timestamp_micros();
    format!(
        "{REPEATS_BLOCK_ID}-{micros}-{}",
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The chase: one reply in an unanswered thread, mentioning who must follow up.
pub fn render_escalation(
    payload: &NoticePayload,
    mention: &str,
    minutes: u64,
    wording: &Wording,
) -> Message {
    let text = match wording.lang {
        Lang::En => format!(
            "{mention} Nobody has explained this privileged use in {minutes} minutes. Please find out \
             who it was and have them reply here with the purpose of the work and the ticket URL."
        ),
        Lang::Ja => format!(
            "{mention} {minutes}分経っても、この特権利用の「作業目的や内容」「タスクチケットURL」が記入されていません。\
             利用者を確認し、このスレッドに記入してもらってください。"
        ),
    };
    Message {
        text,
        blocks: None,
        metadata: json!({
            "event_type": ESCALATION_EVENT_TYPE,
            "event_payload": {"event_id": payload.event_id},
        }),
    }
}

fn headline(u: &PrivilegedUse, ja: bool) -> String {
    let (icon, en, jp) = match (u.kind, u.failed()) {
        (Kind::RootConsoleSignIn, false) => (
            ":rotating_light:",
            "Root user signed in to the AWS console",
            "rootユーザーによるコンソールログイン",
        ),
        (Kind::RootConsoleSignIn, true) => (
            ":no_entry:",
            "FAILED root sign-in to the AWS console",
            "rootユーザーのコンソールログイン失敗",
        ),
        (Kind::RootApiCall, _) => (
            ":rotating_light:",
            "Root user called an AWS API",
            "rootユーザーによるAPI操作",
        ),
        (Kind::AdminRoleViaSaml, _) => (
            ":key:",
            "Admin role assumed via SAML",
            "SAMLによる管理者ロールの使用",
        ),
        (Kind::AdminRoleViaAssumeRole, _) => (
            ":key:",
            "Admin role assumed via AssumeRole",
            "AssumeRoleによる管理者ロールの使用",
        ),
    };
    format!("{icon} {}", if ja { jp } else { en })
}

fn summary(u: &PrivilegedUse, ja: bool, who: &str, account: &str) -> String {
    let mut text = match (u.kind, ja) {
        (Kind::RootConsoleSignIn, false) if u.failed() => {
            format!("A sign-in as *root* to account *{account}* failed.")
        }
        (Kind::RootConsoleSignIn, false) => {
            format!("*root* signed in to the console of account *{account}*.")
        }
        (Kind::RootApiCall, false) => format!(
            "*root* called `{}` in account *{account}*.",
            field(u.event_name.as_deref().unwrap_or("?"))
        ),
        (_, false) => format!(
            "*{who}* assumed *{}* in account *{account}*.",
            field(role_short(u))
        ),
        (Kind::RootConsoleSignIn, true) if u.failed() => {
            format!("アカウント *{account}* へのrootログインが失敗しました。")
        }
        (Kind::RootConsoleSignIn, true) => {
            format!("アカウント *{account}* でrootユーザーがコンソールにログインしました。")
        }
        (Kind::RootApiCall, true) => format!(
            "アカウント *{account}* でrootユーザーが `{}` を実行しました。",
            field(u.event_name.as_deref().unwrap_or("?"))
        ),
        (_, true) => format!(
            "*{who}* がアカウント *{account}* で *{}* を使用しました。",
            field(role_short(u))
        ),
    };
    if let Some(reason) = &u.failure {
        text.push_str(&format!(
            "\n{}: {}",
            t(ja, "Error", "エラー"),
            field(reason)
        ));
    }
    text
}

/// Permission set, else role name, else "a role".
fn role_short(u: &PrivilegedUse) -> &str {
    if let Some(set) = &u.permission_set {
        return set;
    }
    u.role_arn
        .as_deref()
        .and_then(|arn| arn.rsplit('/').next())
        .unwrap_or("an admin role")
}

fn account_label(account_id: &str, account_name: Option<&str>) -> String {
    match account_name {
        Some(name) if !name.is_empty() => format!("{} ({})", field(account_id), field(name)),
        _ => field(account_id),
    }
}

/// `<!date^…>` shows the time in each reader's time zone; the fallback is UTC.
fn time_token(u: &PrivilegedUse) -> String {
    match u.time {
        Some(time) => format!(
            "<!date^{}^{{date_short_pretty}} {{time_secs}}|{}>",
            time.timestamp(),
            time.format("%Y-%m-%d %H:%M:%S UTC")
        ),
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

fn t<'a>(ja: bool, en: &'a str, jp: &'a str) -> &'a str {
    if ja {
        jp
    } else {
        en
    }
}

/// A mrkdwn text object that Slack must not auto-link (`verbatim`), within Slack's 3,000
/// characters as sent.
fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": clip_mrkdwn(&text, SECTION_MAX_CHARS), "verbatim": true})
}

/// Shortens already escaped mrkdwn to at most `max` characters, never cutting inside an entity
/// (`&amp;`) or markup (`<…>`), and marks the cut with `…`.
pub fn clip_mrkdwn(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut kept: String = text.chars().take(max.saturating_sub(1)).collect();
    // An entity or markup left open at the cut is dropped whole.
    if let Some(amp) = kept.rfind('&') {
        if !kept[amp..].contains(';') {
            kept.truncate(amp);
        }
    }
    if let Some(open) = kept.rfind('<') {
        if !kept[open..].contains('>') {
            kept.truncate(open);
        }
    }
    kept.push('…');
    kept
}

/// An untrusted value, shortened and escaped for display.
pub fn field(value: &str) -> String {
    escape(&clip(value, FIELD_MAX_CHARS))
}

/// Shortens `value` to `max` characters, saying visibly how much was cut.
pub fn clip(value: &str, max: usize) -> String {
    let count = value.chars().count();
    if count <= max {
        return value.to_string();
    }
    let kept: String = value.chars().take(max).collect();
    format!("{kept}…(+{} chars)", count - max)
}

/// Makes untrusted text inert in Slack mrkdwn: `&`, `<`, `>` become entities (so no `<!here>`,
/// `<@U…>` or `<https://…|…>` can form), control and bidi-override characters become spaces, and
/// a zero-width word joiner after `@` keeps `@here`/`@channel`/`@everyone` from being parsed.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => out.push_str("@\u{2060}"),
            c if c.is_control() => out.push(' '),
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' => {
                out.push(' ')
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Identity;
    use crate::metadata::NOTICE_EVENT_TYPE;
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
    fn escape_neutralises_mentions_links_and_entities() {
        assert_eq!(escape("<!channel>"), "&lt;!channel&gt;");
        assert_eq!(escape("<https://evil|click>"), "&lt;https://evil|click&gt;");
        assert_eq!(escape("a & b"), "a &amp; b");
        assert_eq!(escape("&lt;"), "&amp;lt;");
        assert_eq!(escape("x\ny\u{7}\u{202E}"), "x y  ");
        assert_eq!(escape("@here"), "@\u{2060}here");
    }

    #[test]
    fn clip_says_how_much_was_cut() {
        assert_eq!(clip("abcdef", 3), "abc…(+3 chars)");
        assert_eq!(clip("日本語", 3), "日本語");
    }

    #[test]
    fn notice_has_the_facts_a_reader_needs() {
        let wording = Wording {
            lang: Lang::En,
            account_name: Some("prod".into()),
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
        let r = render_reply(&u, &Mention::Fallback("<!here>".into()), &wording);
        assert!(r.text.starts_with("<!here> "));
        assert!(r.text.contains("Was this you?"));
    }

    #[test]
    fn japanese_wording_follows_the_original_process() {
        let wording = Wording {
            lang: Lang::Ja,
            account_name: None,
        };
        let r = render_reply(
            &root_sign_in(),
            &Mention::Fallback("<!here>".into()),
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
        let update = render_count_update("C1", &existing, &payload, &wording);
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

    #[test]
    fn clip_mrkdwn_never_splits_an_entity_or_markup() {
        assert_eq!(clip_mrkdwn("ab&amp;cd", 5), "ab…");
        assert_eq!(clip_mrkdwn("ab<!date^1|x>cd", 8), "ab…");
        assert_eq!(clip_mrkdwn("short", 10), "short");
        assert_eq!(clip_mrkdwn("abcdef", 4), "abc…");
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
        let first = render_count_update("C1", &existing, &payload, &Wording::default());
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
        let again = render_count_update("C1", &first, &payload, &Wording::default());
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
