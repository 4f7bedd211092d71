//! Showing the channel as a Slack reader sees it (text transcript and HTML page), and the Block
//! Kit limits Slack enforces on what is posted.

use crate::state::{Message, User};
use serde_json::Value;

/// Checks the Block Kit rules privwatch's messages must keep; the error says which was broken.
pub fn validate_blocks(blocks: &Value) -> Result<(), String> {
    let blocks = blocks.as_array().ok_or("blocks must be an array")?;
    if blocks.is_empty() || blocks.len() > 50 {
        return Err(format!(
            "there must be 1 to 50 blocks, not {}",
            blocks.len()
        ));
    }
    for (i, block) in blocks.iter().enumerate() {
        let kind = block["type"]
            .as_str()
            .ok_or(format!("blocks[{i}] has no type"))?;
        match kind {
            "header" => {
                text_object(&block["text"], 150, &format!("blocks[{i}].text"))?;
                if block["text"]["type"] != "plain_text" {
                    return Err(format!("blocks[{i}].text must be plain_text"));
                }
            }
            "section" => {
                let has_text = !block["text"].is_null();
                if has_text {
                    text_object(&block["text"], 3000, &format!("blocks[{i}].text"))?;
                }
                match &block["fields"] {
                    Value::Null if has_text => {}
                    Value::Null => return Err(format!("blocks[{i}] needs text or fields")),
                    Value::Array(fields) => {
                        if fields.is_empty() || fields.len() > 10 {
                            return Err(format!("blocks[{i}].fields must hold 1 to 10 items"));
                        }
                        for (j, f) in fields.iter().enumerate() {
                            text_object(f, 2000, &format!("blocks[{i}].fields[{j}]"))?;
                        }
                    }
                    _ => return Err(format!("blocks[{i}].fields must be an array")),
                }
            }
            "context" => {
                let elements = block["elements"]
                    .as_array()
                    .ok_or(format!("blocks[{i}].elements must be an array"))?;
                if elements.is_empty() || elements.len() > 10 {
                    return Err(format!("blocks[{i}].elements must hold 1 to 10 items"));
                }
                for (j, e) in elements.iter().enumerate() {
                    text_object(e, 3000, &format!("blocks[{i}].elements[{j}]"))?;
                }
            }
            "divider" => {}
            // Interactive elements: buttons (Block Kit: up to 25 elements, a plain_text label of
            // at most 75 characters, an action_id of at most 255).
            "actions" => {
                let elements = block["elements"]
                    .as_array()
                    .ok_or(format!("blocks[{i}].elements must be an array"))?;
                if elements.is_empty() || elements.len() > 25 {
                    return Err(format!("blocks[{i}].elements must hold 1 to 25 items"));
                }
                for (j, e) in elements.iter().enumerate() {
                    if e["type"] != "button" {
                        return Err(format!("blocks[{i}].elements[{j}] is not a button"));
                    }
                    if e["text"]["type"] != "plain_text" {
                        return Err(format!("blocks[{i}].elements[{j}].text must be plain_text"));
                    }
                    text_object(&e["text"], 75, &format!("blocks[{i}].elements[{j}].text"))?;
                    if e["action_id"]
                        .as_str()
                        .is_none_or(|a| a.is_empty() || a.len() > 255)
                    {
                        return Err(format!("blocks[{i}].elements[{j}].action_id is required"));
                    }
                }
            }
            other => return Err(format!("blocks[{i}] has unsupported type {other}")),
        }
    }
    Ok(())
}

fn text_object(t: &Value, max: usize, at: &str) -> Result<(), String> {
    let kind = t["type"]
        .as_str()
        .ok_or(format!("{at} is not a text object"))?;
    if kind != "mrkdwn" && kind != "plain_text" {
        return Err(format!("{at} has type {kind}, not mrkdwn or plain_text"));
    }
    let text = t["text"]
        .as_str()
        .ok_or(format!("{at}.text must be a string"))?;
    let len = text.chars().count();
    if len == 0 || len > max {
        return Err(format!(
            "{at}.text must be 1 to {max} characters, not {len}"
        ));
    }
    Ok(())
}

/// A piece of Slack message text.
enum Piece<'a> {
    Text(String),
    Mention(String),
    Link {
        url: &'a str,
        label: Option<&'a str>,
    },
}

/// Splits mrkdwn into text and the `<…>` markup Slack makes live. Text is entity-decoded.
fn pieces<'a>(text: &'a str, users: &[User]) -> Vec<Piece<'a>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push(Piece::Text(decode(&rest[..start])));
        let Some(len) = rest[start..].find('>') else {
            out.push(Piece::Text(decode(&rest[start..])));
            rest = "";
            break;
        };
        let inner = &rest[start + 1..start + len];
        rest = &rest[start + len + 1..];
        let (target, label) = match inner.split_once('|') {
            Some((t, l)) => (t, Some(l)),
            None => (inner, None),
        };
        let piece = if let Some(id) = target.strip_prefix('@') {
            let name = users
                .iter()
                .find(|u| u.id == id)
                .map(|u| u.name.as_str())
                .unwrap_or(id);
            Piece::Mention(format!("@{name}"))
        } else if let Some(special) = target.strip_prefix('!') {
            if special.starts_with("date^") {
                Piece::Text(decode(label.unwrap_or(special)))
            } else if let Some(group) = special.strip_prefix("subteam^") {
                Piece::Mention(format!("@{}", label.unwrap_or(group)))
            } else {
                Piece::Mention(format!("@{special}"))
            }
        } else if let Some(channel) = target.strip_prefix('#') {
            Piece::Mention(format!("#{}", label.unwrap_or(channel)))
        } else {
            Piece::Link { url: target, label }
        };
        out.push(piece);
    }
    out.push(Piece::Text(decode(rest)));
    out
}

fn decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// mrkdwn as plain text: mentions resolved to names, dates to their fallback.
pub fn plain(text: &str, users: &[User]) -> String {
    pieces(text, users)
        .into_iter()
        .map(|p| match p {
            Piece::Text(t) | Piece::Mention(t) => t,
            Piece::Link {
                url,
                label: Some(l),
            } => format!("{} ({url})", decode(l)),
            Piece::Link { url, label: None } => url.to_string(),
        })
        .collect()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `*bold*` and `` `code` `` in already-escaped HTML text.
fn emphasis(escaped: &str) -> String {
    let mut out = String::new();
    for (i, part) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{part}</code>"));
            continue;
        }
        let bits: Vec<&str> = part.split('*').collect();
        for (j, bit) in bits.iter().enumerate() {
            let bold = j % 2 == 1 && j + 1 < bits.len();
            if bold {
                out.push_str(&format!("<b>{bit}</b>"));
            } else {
                if j % 2 == 1 {
                    out.push('*');
                }
                out.push_str(bit);
            }
        }
    }
    out.replace('\n', "<br>")
}

/// mrkdwn as HTML: everything escaped, mentions and links as Slack shows them.
pub fn html(text: &str, users: &[User]) -> String {
    pieces(text, users)
        .into_iter()
        .map(|p| match p {
            Piece::Text(t) => emphasis(&html_escape(&t)),
            Piece::Mention(m) => format!("<span class=\"mention\">{}</span>", html_escape(&m)),
            Piece::Link { url, label } => {
                let safe = url.starts_with("https://") || url.starts_with("http://");
                let label = html_escape(&decode(label.unwrap_or(url)));
                if safe {
                    format!("<a href=\"{}\">{label}</a>", html_escape(url))
                } else {
                    label
                }
            }
        })
        .collect()
}

fn user_name(id: &str, users: &[User]) -> String {
    if id == crate::BOT_USER_ID {
        return "privwatch (bot)".into();
    }
    users
        .iter()
        .find(|u| u.id == id)
        .map(|u| u.real_name.clone())
        .unwrap_or_else(|| id.to_string())
}

/// The Block Kit Builder link that previews `blocks` in the real Slack renderer.
pub fn block_kit_builder_url(blocks: &Value) -> String {
    let payload = serde_json::json!({"blocks": blocks}).to_string();
    let mut encoded = String::with_capacity(payload.len() * 2);
    for byte in payload.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("https://app.slack.com/block-kit-builder#{encoded}")
}

/// Block Kit as text lines: header, sections, fields, context.
fn blocks_text(blocks: &Value, users: &[User]) -> Vec<String> {
    let mut lines = Vec::new();
    for block in blocks.as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("header") => lines.push(format!(
                "== {} ==",
                block["text"]["text"].as_str().unwrap_or("")
            )),
            Some("section") => {
                if let Some(t) = block["text"]["text"].as_str() {
                    lines.push(plain(t, users).replace('\n', "\n  "));
                }
                for f in block["fields"].as_array().into_iter().flatten() {
                    let t = plain(f["text"].as_str().unwrap_or(""), users);
                    lines.push(format!(
                        "  {}",
                        t.replacen('\n', ": ", 1).replace('\n', " ")
                    ));
                }
            }
            Some("context") => {
                let parts: Vec<String> = block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| plain(e["text"].as_str().unwrap_or(""), users))
                    .collect();
                lines.push(format!("  ({})", parts.join(" ")));
            }
            _ => {}
        }
    }
    lines
}

/// One message as transcript lines.
pub fn transcript_entry(m: &Message, users: &[User]) -> String {
    let who = user_name(&m.user, users);
    let edited = if m.edited { " (edited)" } else { "" };
    match &m.thread_ts {
        Some(_) => format!(
            "    └─ [thread] {who}{edited}: {}",
            plain(&m.text, users).replace('\n', "\n       ")
        ),
        None => {
            let mut out = format!("● {who} in #{}{edited} (ts {})", m.channel, m.ts);
            match &m.blocks {
                Some(blocks) => {
                    for line in blocks_text(blocks, users) {
                        out.push_str(&format!("\n  {line}"));
                    }
                }
                None => out.push_str(&format!("\n  {}", plain(&m.text, users))),
            }
            if !m.reactions.is_empty() {
                out.push_str(&format!("\n  reactions: :{}:", m.reactions.join(": :")));
            }
            out
        }
    }
}

/// The channel as text: each notice, then its thread; with `builder_links`, then a link that
/// previews the notice in Slack's Block Kit Builder.
pub fn transcript_with(messages: &[Message], users: &[User], builder_links: bool) -> String {
    let mut out = String::new();
    for top in messages.iter().filter(|m| m.thread_ts.is_none()) {
        out.push_str(&transcript_entry(top, users));
        out.push('\n');
        for reply in messages
            .iter()
            .filter(|m| m.thread_ts.as_deref() == Some(&top.ts))
        {
            out.push_str(&transcript_entry(reply, users));
            out.push('\n');
        }
        if let (true, Some(blocks)) = (builder_links, &top.blocks) {
            out.push_str(&format!(
                "    Preview in Block Kit Builder: {}\n",
                block_kit_builder_url(blocks)
            ));
        }
        out.push('\n');
    }
    out
}

/// The channel as text: each notice, then its thread.
pub fn transcript(messages: &[Message], users: &[User]) -> String {
    transcript_with(messages, users, false)
}

fn blocks_html(blocks: &Value, users: &[User]) -> String {
    let mut out = String::new();
    for block in blocks.as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("header") => out.push_str(&format!(
                "<h3>{}</h3>",
                html_escape(block["text"]["text"].as_str().unwrap_or(""))
            )),
            Some("section") => {
                if let Some(t) = block["text"]["text"].as_str() {
                    out.push_str(&format!("<p>{}</p>", html(t, users)));
                }
                if let Some(fields) = block["fields"].as_array() {
                    out.push_str("<div class=\"fields\">");
                    for f in fields {
                        out.push_str(&format!(
                            "<div>{}</div>",
                            html(f["text"].as_str().unwrap_or(""), users)
                        ));
                    }
                    out.push_str("</div>");
                }
            }
            Some("context") => {
                let parts: Vec<String> = block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| html(e["text"].as_str().unwrap_or(""), users))
                    .collect();
                out.push_str(&format!("<div class=\"context\">{}</div>", parts.join(" ")));
            }
            Some("actions") => {
                for e in block["elements"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "<button class=\"action\" disabled>{}</button>",
                        html_escape(e["text"]["text"].as_str().unwrap_or(""))
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

/// The channel page: notices with their threads, the way a Slack reader sees them.
pub fn page(
    channels: &[String],
    messages_of: impl Fn(&str) -> Vec<Message>,
    users: &[User],
) -> String {
    let mut body = String::new();
    for channel in channels {
        let messages = messages_of(channel);
        body.push_str(&format!("<h2>#{}</h2>", html_escape(channel)));
        let tops: Vec<&Message> = messages.iter().filter(|m| m.thread_ts.is_none()).collect();
        if tops.is_empty() {
            body.push_str("<p class=\"empty\">No messages yet.</p>");
        }
        for top in tops {
            let content = match &top.blocks {
                Some(b) => blocks_html(b, users),
                None => format!("<p>{}</p>", html(&top.text, users)),
            };
            let reactions: String = top
                .reactions
                .iter()
                .map(|r| format!("<span class=\"reaction\">:{}:</span>", html_escape(r)))
                .collect();
            let edited = if top.edited {
                " <small>(edited)</small>"
            } else {
                ""
            };
            body.push_str(&format!(
                "<article class=\"notice\" data-ts=\"{ts}\"><div class=\"who\">{who}{edited} <small>{ts}</small></div>{content}{reactions}",
                ts = html_escape(&top.ts),
                who = html_escape(&user_name(&top.user, users)),
            ));
            let replies: Vec<&Message> = messages
                .iter()
                .filter(|m| m.thread_ts.as_deref() == Some(&top.ts))
                .collect();
            if !replies.is_empty() {
                body.push_str(&format!(
                    "<section class=\"thread\"><div class=\"count\">{} repl{}</div>",
                    replies.len(),
                    if replies.len() == 1 { "y" } else { "ies" }
                ));
                for r in replies {
                    body.push_str(&format!(
                        "<div class=\"reply\"><span class=\"who\">{}</span> {}</div>",
                        html_escape(&user_name(&r.user, users)),
                        html(&r.text, users)
                    ));
                }
                body.push_str("</section>");
            }
            body.push_str("</article>");
        }
    }
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">
<title>privwatch — Slack sandbox</title><style>
body{{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:860px;margin:2em auto;color:#1d1c1d;background:#fff}}
h1{{font-size:1.2em}} h2{{font-size:1em;color:#616061}} h3{{margin:.2em 0}}
.notice{{border:1px solid #ddd;border-left:4px solid #e01e5a;border-radius:6px;padding:.6em 1em;margin:1em 0}}
.who{{font-weight:bold}} .who small{{font-weight:normal;color:#888}}
.fields{{display:grid;grid-template-columns:1fr 1fr;gap:.4em 1em;margin:.4em 0;word-break:break-all}}
.context{{color:#616061;font-size:.85em}} code{{background:#f4f4f4;padding:0 .2em;border-radius:3px}}
.mention{{background:#e8f5fa;color:#1264a3;border-radius:3px;padding:0 .15em}}
.thread{{border-top:1px solid #eee;margin-top:.6em;padding-top:.4em}} .count{{color:#1264a3;font-size:.85em}}
.reply{{margin:.4em 0 .4em 1em}} .reaction{{border:1px solid #ddd;border-radius:1em;padding:0 .5em;margin-right:.3em}}
</style></head><body><h1>privwatch — Slack sandbox</h1>{body}</body></html>"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_resolved_and_entities_decoded() {
        let users = crate::demo_users();
        assert_eq!(
            plain("<@U01ALICE> <!here> &lt;!channel&gt; <!date^1^{date}|2026-01-01> <https://x.example|x>", &users),
            "@alice @here <!channel> 2026-01-01 x (https://x.example)"
        );
    }

    #[test]
    fn html_never_lets_text_through_unescaped() {
        let users = crate::demo_users();
        let out = html(
            "&lt;script&gt;alert(1)&lt;/script&gt; <javascript:alert(1)|x>",
            &users,
        );
        assert!(!out.contains("<script>"));
        assert!(!out.contains("href=\"javascript"));
    }

    #[test]
    fn block_limits_are_enforced() {
        let long = "x".repeat(3001);
        let bad =
            serde_json::json!([{"type": "section", "text": {"type": "mrkdwn", "text": long}}]);
        assert!(validate_blocks(&bad).unwrap_err().contains("3000"));
        let ok =
            serde_json::json!([{"type": "header", "text": {"type": "plain_text", "text": "hi"}}]);
        assert!(validate_blocks(&ok).is_ok());
    }
}
