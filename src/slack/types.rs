//! The values Slack hands back that privwatch relies on, validated: a message timestamp ([`Ts`]),
//! a message found by a search ([`FoundMessage`]), privwatch's own bot user ([`BotUser`]).

use serde_json::Value;

/// A Slack message timestamp (`1700000000.123456`): a message's ID in its channel, and its time.
/// Only a value of that shape is one, so an odd answer cannot become a thread to write into.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Ts(String);

/// In time order (`seconds.micros`, numerically).
impl Ord for Ts {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |ts: &Ts| {
            let (s, us) = ts.0.split_once('.').unwrap_or((&ts.0, "0"));
            (
                s.parse::<u64>().unwrap_or(0),
                us.parse::<u64>().unwrap_or(0),
            )
        };
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for Ts {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ts {
    pub fn new(value: &str) -> Option<Ts> {
        let (secs, micros) = value.split_once('.')?;
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_digit());
        (digits(secs) && digits(micros)).then(|| Ts(value.to_string()))
    }

    /// The first moment of a second (`oldest`/`latest` bounds of a history read).
    pub fn from_seconds(secs: i64) -> Ts {
        Ts(format!("{}.000000", secs.max(0)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Unix seconds.
    pub fn seconds(&self) -> i64 {
        self.0
            .split('.')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

impl std::fmt::Display for Ts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message found in channel history or a thread.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundMessage {
    pub ts: Ts,
    pub reply_count: u64,
    /// The poster's user ID (`user`); for a bot, its bot user.
    pub user: String,
    pub raw: Value,
}

impl FoundMessage {
    /// A message as Slack's API returns it (`None` without a valid `ts`).
    pub fn from_raw(m: Value) -> Option<FoundMessage> {
        Some(FoundMessage {
            ts: m["ts"].as_str().and_then(Ts::new)?,
            reply_count: m["reply_count"].as_u64().unwrap_or(0),
            user: m["user"].as_str().unwrap_or_default().to_string(),
            raw: m,
        })
    }

    /// Posted by this bot user (privwatch itself), not by a person or another app.
    pub fn posted_by(&self, bot: &BotUser) -> bool {
        self.user == bot.0
    }

    /// Written by a person (see [`written_by_person`]).
    pub fn from_person(&self) -> bool {
        written_by_person(&self.raw)
    }
}

/// A message as Slack returns it was written by a person: not by a bot or app (`bot_id`,
/// `bot_profile`), not a system message. A reply also sent to the channel, one with a file, or a
/// `/me` line is still a person's. The sweep and the audit both judge replies by this.
pub fn written_by_person(message: &Value) -> bool {
    let subtype = &message["subtype"];
    let person_subtype = match subtype.as_str() {
        None => subtype.is_null(),
        Some(s) => matches!(s, "thread_broadcast" | "file_share" | "me_message"),
    };
    message["bot_id"].is_null()
        && message["bot_profile"].is_null()
        && person_subtype
        && message["user"].as_str().is_some_and(|u| !u.is_empty())
}

/// The Slack user ID of privwatch's own bot (`auth.test`), which alone makes a message privwatch's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotUser(pub String);
