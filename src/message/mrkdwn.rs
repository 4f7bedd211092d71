//! Slack's mrkdwn, both ways: making untrusted text inert and bounded on the way in ([`escape`],
//! [`field`], [`clip_mrkdwn`]), and reading a person's message back as plain text on the way out
//! ([`plain_text`], [`first_url`]). A leaf: it knows nothing of CloudTrail, kinds or Block Kit.
//!
//! The invariant it keeps: a value that came from CloudTrail or from Slack is shown only after
//! [`escape`], so only markup privwatch itself writes (its chosen mention, its links) is ever live.

/// Longest value shown in a field (before escaping, which may grow it up to 5×; Slack allows
/// 2,000 characters per field and 3,000 per section text).
const FIELD_MAX_CHARS: usize = 300;

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

/// `<!date^…>`: Slack shows the time in each reader's time zone; the fallback text is UTC.
pub fn date(unix: i64) -> String {
    let plain = chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| unix.to_string());
    format!("<!date^{unix}^{{date_short_pretty}} {{time_secs}}|{plain}>")
}

/// Slack message text as a person reads it: entities decoded, links as their URL.
pub fn plain_text(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = &rest[start + 1..start + len];
        out.push_str(inner.split('|').next().unwrap_or(inner));
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The first http(s) URL in a message: Slack sends links as `<url>` or `<url|label>`.
pub fn first_url(text: &str) -> Option<String> {
    plain_text(text)
        .split_whitespace()
        .find(|w| w.starts_with("https://") || w.starts_with("http://"))
        .map(|w| w.trim_end_matches(['.', ',', ')', ']', '>']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn clip_mrkdwn_never_splits_an_entity_or_markup() {
        assert_eq!(clip_mrkdwn("ab&amp;cd", 5), "ab…");
        assert_eq!(clip_mrkdwn("ab<!date^1|x>cd", 8), "ab…");
        assert_eq!(clip_mrkdwn("short", 10), "short");
        assert_eq!(clip_mrkdwn("abcdef", 4), "abc…");
    }

    #[test]
    fn plain_text_is_the_inverse_of_escape_and_links() {
        let value = "<!here> & <b>";
        assert_eq!(plain_text(&escape(value)).replace('\u{2060}', ""), value);
        assert_eq!(
            first_url("see <https://x.example/T-1|T-1>."),
            Some("https://x.example/T-1".into())
        );
        assert_eq!(first_url("no link"), None);
    }
}
