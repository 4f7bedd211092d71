//! What counts as a justification: a person — not a bot, not an app, not privwatch — wrote in
//! the notice's thread the purpose of the work and a ticket URL (one matching
//! `TICKET_URL_PATTERN`; any http(s) URL when it is empty). The sweep marks such a thread
//! justified and asks once for the ticket when a person answered without one; the audit export
//! reads the purpose and the ticket from the same decision. Pure: the thread is plain JSON.

use crate::message::metadata::JUSTIFICATION_EVENT_TYPE;
use crate::message::mrkdwn::plain_text;
use crate::slack::{written_by_person, BotUser};
use serde_json::Value;

/// The decision for one thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nobody but bots wrote in the thread.
    Unanswered,
    /// A person answered, but no reply carries a ticket URL (or no purpose besides the URL):
    /// `replier` is asked for what is missing.
    Incomplete {
        replier: String,
        missing: Missing,
    },
    Justified(Justification),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    TicketUrl,
    Purpose,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Justification {
    /// The people's replies as text, the URLs taken out.
    pub purpose: String,
    pub ticket_url: String,
    /// Who replied (user IDs, in order, once each).
    pub replied_by: Vec<String>,
}

/// What the people wrote in a thread: their words without URLs, the first ticket URL, who.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub purpose: String,
    pub ticket_url: Option<String>,
    /// User IDs, in order, once each (the first is asked for what is missing).
    pub replied_by: Vec<String>,
}

/// Reads a thread (`conversations.replies`, the notice itself included or not); `None` when no
/// person wrote in it.
pub fn read(
    thread: &[Value],
    notice_ts: &str,
    bot: &BotUser,
    ticket_pattern: Option<&regex::Regex>,
) -> Option<Reading> {
    // A person's reply, or what a person submitted with the *Justify* button (privwatch posts it
    // under their name, with the text as they typed it in its metadata).
    let people: Vec<(String, String)> = thread
        .iter()
        .filter(|m| m["ts"].as_str() != Some(notice_ts))
        .filter_map(|m| {
            let by_bot = m["user"].as_str() == Some(bot.0.as_str());
            if by_bot && m["metadata"]["event_type"] == JUSTIFICATION_EVENT_TYPE {
                let p = &m["metadata"]["event_payload"];
                let text = format!(
                    "{} {}",
                    p["purpose"].as_str().unwrap_or_default(),
                    p["ticket_url"].as_str().unwrap_or_default()
                );
                return Some((p["user"].as_str()?.to_string(), text));
            }
            (written_by_person(m) && !by_bot).then(|| {
                (
                    m["user"].as_str().unwrap_or_default().to_string(),
                    plain_text(m["text"].as_str().unwrap_or_default()),
                )
            })
        })
        .collect();
    if people.is_empty() {
        return None;
    }
    let mut replied_by: Vec<String> = Vec::new();
    let mut ticket_url = None;
    let mut purpose = Vec::new();
    for (user, text) in people {
        if !replied_by.contains(&user) {
            replied_by.push(user);
        }
        let mut words = Vec::new();
        for word in text.split_whitespace() {
            match url_of(word) {
                Some(url) => {
                    let matches = ticket_pattern.is_none_or(|p| p.is_match(&url));
                    if matches && ticket_url.is_none() {
                        ticket_url = Some(url);
                    }
                }
                None => words.push(word),
            }
        }
        let said = words.join(" ");
        let said = said.trim_matches(|c: char| c.is_whitespace() || ",.:;-–—".contains(c));
        if !said.is_empty() {
            purpose.push(said.to_string());
        }
    }
    Some(Reading {
        purpose: purpose.join(" / "),
        ticket_url,
        replied_by,
    })
}

/// Judges a thread: justified only with a purpose and a ticket URL from people.
pub fn judge(
    thread: &[Value],
    notice_ts: &str,
    bot: &BotUser,
    ticket_pattern: Option<&regex::Regex>,
) -> Verdict {
    read(thread, notice_ts, bot, ticket_pattern).map_or(Verdict::Unanswered, Reading::verdict)
}

impl Reading {
    /// What the people wrote counts when it has a purpose and a ticket URL.
    pub fn verdict(self) -> Verdict {
        let replier = self.replied_by[0].clone();
        match (self.ticket_url, self.purpose.is_empty()) {
            (None, _) => Verdict::Incomplete {
                replier,
                missing: Missing::TicketUrl,
            },
            (Some(_), true) => Verdict::Incomplete {
                replier,
                missing: Missing::Purpose,
            },
            (Some(ticket_url), false) => Verdict::Justified(Justification {
                purpose: self.purpose,
                ticket_url,
                replied_by: self.replied_by,
            }),
        }
    }
}

/// An http(s) URL, trailing punctuation dropped.
fn url_of(word: &str) -> Option<String> {
    (word.starts_with("https://") || word.starts_with("http://")).then(|| {
        word.trim_end_matches(['.', ',', ')', ']', '>', ';'])
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(user: &str, text: &str) -> Value {
        json!({"ts": "2.0", "user": user, "text": text, "type": "message"})
    }

    fn jira() -> regex::Regex {
        regex::Regex::new(r"^https://[a-z0-9-]+\.atlassian\.net/browse/[A-Z]+-[0-9]+$").unwrap()
    }

    #[test]
    fn a_person_with_purpose_and_a_matching_ticket_justifies() {
        let bot = BotUser("UBOT".into());
        let thread = [
            json!({"ts": "1.0", "user": "UBOT", "text": "notice", "bot_id": "B1"}),
            reply(
                "U1",
                "Rotating the KMS key <https://acme.atlassian.net/browse/SEC-42|SEC-42>.",
            ),
        ];
        assert_eq!(
            judge(&thread, "1.0", &bot, Some(&jira())),
            Verdict::Justified(Justification {
                purpose: "Rotating the KMS key".into(),
                ticket_url: "https://acme.atlassian.net/browse/SEC-42".into(),
                replied_by: vec!["U1".into()],
            })
        );
    }

    #[test]
    fn ok_or_a_foreign_link_is_not_a_justification() {
        let bot = BotUser("UBOT".into());
        let ok = [reply("U1", "ok")];
        assert_eq!(
            judge(&ok, "1.0", &bot, Some(&jira())),
            Verdict::Incomplete {
                replier: "U1".into(),
                missing: Missing::TicketUrl
            }
        );
        let foreign = [reply("U1", "see https://evil.example/browse/SEC-1")];
        assert!(matches!(
            judge(&foreign, "1.0", &bot, Some(&jira())),
            Verdict::Incomplete {
                missing: Missing::TicketUrl,
                ..
            }
        ));
        // Without a pattern any URL is a ticket; a bare URL still lacks the purpose.
        assert!(matches!(
            judge(&foreign, "1.0", &bot, None),
            Verdict::Justified(_)
        ));
        let bare = [reply("U1", "<https://acme.atlassian.net/browse/SEC-1>")];
        assert!(matches!(
            judge(&bare, "1.0", &bot, Some(&jira())),
            Verdict::Incomplete {
                missing: Missing::Purpose,
                ..
            }
        ));
    }

    #[test]
    fn purpose_and_ticket_may_come_in_two_replies_and_bots_do_not_count() {
        let bot = BotUser("UBOT".into());
        let thread = [
            reply("U1", "quarterly key rotation"),
            json!({"ts": "3.0", "user": "U9", "bot_id": "B9", "text": "https://acme.atlassian.net/browse/X-1"}),
            reply("U2", "https://acme.atlassian.net/browse/SEC-7"),
        ];
        match judge(&thread, "1.0", &bot, Some(&jira())) {
            Verdict::Justified(j) => {
                assert_eq!(j.ticket_url, "https://acme.atlassian.net/browse/SEC-7");
                assert_eq!(j.replied_by, vec!["U1".to_string(), "U2".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(judge(&thread[1..2], "1.0", &bot, None), Verdict::Unanswered);
    }
}
