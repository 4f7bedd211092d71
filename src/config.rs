//! Every environment variable privwatch reads, parsed and validated once at init.

use crate::event::Deployment;
use crate::message::wording::{Lang, Wording};
use std::time::Duration;

pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api";
pub const DEFAULT_FALLBACK_MENTION: &str = "<!here>";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is required but not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {why}")]
    Invalid { name: &'static str, why: String },
}

/// Where the Slack bot token comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSetting {
    /// `SLACK_BOT_TOKEN`: for local runs only.
    Env(String),
    /// `SLACK_TOKEN_SECRET_ARN`: a Secrets Manager secret (plain `xoxb-…` or `{"bot_token": …}`).
    Secret(String),
}

impl std::fmt::Debug for TokenSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSetting::Env(_) => f.write_str("Env(<redacted>)"),
            TokenSetting::Secret(arn) => f.debug_tuple("Secret").field(arn).finish(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub channel_id: String,
    pub token: TokenSetting,
    pub slack_api_url: String,
    pub wording: Wording,
    pub fallback_mention: String,
    /// How far back `conversations.history` is searched for an existing notice.
    pub dedupe_lookback: Duration,
    /// Further uses by the same principal within this window join the existing thread
    /// (`COALESCE_MINUTES`; zero turns coalescing off).
    pub coalesce_window: Duration,
    /// An unanswered thread older than this is escalated once (`ESCALATE_AFTER_MINUTES`).
    pub escalate_after: Duration,
    /// Calls per minute of one Tier 3 Slack method (`chat.update`, `conversations.replies`) the
    /// rolling summaries of long series may spend (`SLACK_TIER3_PER_MINUTE`, default 50 — Slack's
    /// published Tier 3 floor).
    pub tier3_per_minute: u32,
    /// Who the escalation mentions (`ESCALATION_MENTION`, default: the fallback mention).
    pub escalation_mention: String,
    /// Owners of OIDC workloads (`OIDC_OWNERS`: `<subject pattern>=<mention>,…`, `*` wildcards),
    /// tried in order; a subject no pattern matches gets the fallback mention.
    pub oidc_owners: Vec<(String, String)>,
    /// privwatch's own names (function, token secret, deploy role), for the tampering rules.
    pub deployment: Deployment,
    /// `CHANNEL_ROUTES` (`<account id or OU id>=<channel>,…`): an account's notices go to its own
    /// channel; the default is `SLACK_CHANNEL_ID`. An account's own entry wins over its OU's.
    pub channel_routes: Vec<(String, String)>,
    /// `ORGANIZATION_ID` (`o-…`): this function is an organization's hub. Its sweep acts on
    /// every account's notices, account names come from Organizations, and it keeps coverage.
    pub organization_id: Option<String>,
    /// `ORG_READ_ROLE_ARN`: a read-only role in the management (or delegated-admin) account for
    /// `ListAccounts`/`ListParents`; empty: the function's own role reads Organizations.
    pub org_read_role: Option<String>,
    /// `HEARTBEAT_MINUTES`: how often each spoke's heartbeat arrives (default 60); a spoke silent
    /// for two intervals is alerted.
    pub heartbeat: Duration,
    /// `SPOKE_REGIONS`: the regions every account is expected to send heartbeats from.
    pub spoke_regions: Vec<String>,
    /// `TRAIL_CANARY=on` (a per-account deployment, whose template makes the canary): the sweep
    /// also checks that the canary's CloudTrail record keeps arriving (every `HEARTBEAT_MINUTES`).
    pub trail_canary: bool,
    /// `TICKET_URL_PATTERN`: what a ticket URL looks like (the whole URL must match); `None`:
    /// any http(s) URL.
    pub ticket_pattern: Option<regex::Regex>,
    /// `ARCHIVE_BUCKET`: the S3 bucket every use and justification is archived to.
    pub archive_bucket: Option<String>,
    /// `NOTIFIER_FUNCTION` (set on the Justify function only): the notifier a submission is
    /// handed to, with an asynchronous invoke; unset, the same invocation completes it.
    pub notifier_function: Option<String>,
    /// `ARCHIVE_LOCK_DAYS`: each use and justification is written under Object Lock in
    /// compliance mode for this many days (the bucket has Object Lock on and no default
    /// retention, so the working state stays unlocked).
    pub archive_lock_days: Option<u32>,
    /// `SLACK_SIGNING_SECRET` (local runs; in AWS the token secret's `signing_secret` key).
    pub signing_secret: Option<String>,
    /// `JUSTIFY_USERGROUP` (`S…`): its members may justify any notice with the button.
    pub justify_usergroup: Option<String>,
}

impl Config {
    /// The channel an account's notices go to, given the OUs it is in (innermost first; empty
    /// when unknown).
    pub fn channel_for(&self, account_id: &str, ous: &[String]) -> &str {
        let route = |key: &str| {
            self.channel_routes
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, c)| c.as_str())
        };
        route(account_id)
            .or_else(|| ous.iter().find_map(|ou| route(ou)))
            .unwrap_or(&self.channel_id)
    }

    /// Every channel privwatch writes to: the default first, then each routed one once.
    pub fn channels(&self) -> Vec<&str> {
        let mut all = vec![self.channel_id.as_str()];
        for (_, channel) in &self.channel_routes {
            if !all.contains(&channel.as_str()) {
                all.push(channel);
            }
        }
        all
    }

    /// Some account or OU is routed by OU: the hub must know the organization's tree.
    pub fn routes_by_ou(&self) -> bool {
        self.channel_routes.iter().any(|(k, _)| !is_account_id(k))
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment in production, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let channel_id = get("SLACK_CHANNEL_ID").ok_or(ConfigError::Missing("SLACK_CHANNEL_ID"))?;
        if !is_channel_id(&channel_id) {
            return Err(ConfigError::Invalid {
                name: "SLACK_CHANNEL_ID",
                why: format!(
                    "{channel_id:?} is not a channel ID (C… or G…; find it in the channel's details in Slack)"
                ),
            });
        }

        let token = match (get("SLACK_BOT_TOKEN"), get("SLACK_TOKEN_SECRET_ARN")) {
            (Some(token), _) => {
                if !token.starts_with("xox") {
                    return Err(ConfigError::Invalid {
                        name: "SLACK_BOT_TOKEN",
                        why: "does not look like a Slack token (xoxb-…)".into(),
                    });
                }
                if !is_token_shaped(&token) {
                    return Err(ConfigError::Invalid {
                        name: "SLACK_BOT_TOKEN",
                        why: "contains a space, line break or other control character (copied with extra characters?)".into(),
                    });
                }
                TokenSetting::Env(token)
            }
            (None, Some(arn)) => {
                if !arn.starts_with("arn:") {
                    return Err(ConfigError::Invalid {
                        name: "SLACK_TOKEN_SECRET_ARN",
                        why: format!("{arn:?} is not an ARN"),
                    });
                }
                TokenSetting::Secret(arn)
            }
            (None, None) => {
                return Err(ConfigError::Missing(
                    "SLACK_TOKEN_SECRET_ARN (or SLACK_BOT_TOKEN for local runs)",
                ))
            }
        };

        let slack_api_url = get("SLACK_API_URL").unwrap_or_else(|| DEFAULT_SLACK_API_URL.into());
        if !(slack_api_url.starts_with("https://") || slack_api_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: "SLACK_API_URL",
                why: format!("{slack_api_url:?} is not an http(s) URL"),
            });
        }
        let slack_api_url = slack_api_url.trim_end_matches('/').to_string();

        let lang = match get("MESSAGE_LANGUAGE").as_deref() {
            None | Some("en") => Lang::En,
            Some("ja") => Lang::Ja,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "MESSAGE_LANGUAGE",
                    why: format!("{other:?} is not one of en, ja"),
                })
            }
        };

        let fallback_mention =
            get("FALLBACK_MENTION").unwrap_or_else(|| DEFAULT_FALLBACK_MENTION.into());
        if !is_mention_markup(&fallback_mention) {
            return Err(ConfigError::Invalid {
                name: "FALLBACK_MENTION",
                why: format!(
                    "{fallback_mention:?} is not Slack mention markup such as <!here>, <!channel>, <@U…> or <!subteam^S…>"
                ),
            });
        }

        let dedupe_minutes = match get("DEDUPE_LOOKBACK_MINUTES") {
            None => 15,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|m| (1..=1440).contains(m))
                .ok_or(ConfigError::Invalid {
                    name: "DEDUPE_LOOKBACK_MINUTES",
                    why: format!("{v:?} is not a whole number of minutes from 1 to 1440"),
                })?,
        };

        let minutes = |name: &'static str, default: u64, min: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|m| (min..=10_080).contains(m))
                    .ok_or(ConfigError::Invalid {
                        name,
                        why: format!("{v:?} is not a whole number of minutes from {min} to 10080"),
                    }),
            }
        };
        let coalesce_minutes = minutes("COALESCE_MINUTES", 15, 0)?;
        let escalate_minutes = minutes("ESCALATE_AFTER_MINUTES", 30, 1)?;
        let tier3_per_minute = match get("SLACK_TIER3_PER_MINUTE") {
            None => 50,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=6000).contains(n))
                .ok_or(ConfigError::Invalid {
                    name: "SLACK_TIER3_PER_MINUTE",
                    why: format!("{v:?} is not a whole number of calls from 1 to 6000"),
                })?,
        };
        let escalation_mention =
            get("ESCALATION_MENTION").unwrap_or_else(|| fallback_mention.clone());
        if !is_mention_markup(&escalation_mention) {
            return Err(ConfigError::Invalid {
                name: "ESCALATION_MENTION",
                why: format!("{escalation_mention:?} is not Slack mention markup such as <!here> or <!subteam^S…>"),
            });
        }

        // A subject pattern may hold `=`; the mention never does.
        let oidc_owners = pairs(
            "OIDC_OWNERS",
            get("OIDC_OWNERS"),
            |entry| entry.rsplit_once('='),
            |pattern, mention| !pattern.is_empty() && is_mention_markup(mention),
            "<subject pattern>=<mention>, e.g. repo:my-org/infra:*=<!subteam^S0123>",
        )?;
        let account_names = pairs(
            "ACCOUNT_NAMES",
            get("ACCOUNT_NAMES"),
            |entry| entry.split_once('='),
            |id, name| is_account_id(id) && !name.is_empty(),
            "<12-digit account id>=<name>, e.g. 111122223333=prod",
        )?;
        let channel_routes = pairs(
            "CHANNEL_ROUTES",
            get("CHANNEL_ROUTES"),
            |entry| entry.split_once('='),
            |key, channel| {
                (is_account_id(key) || key.starts_with("ou-") || key.starts_with("r-"))
                    && is_channel_id(channel)
            },
            "<account id or OU id>=<channel id>, e.g. 111122223333=C0PROD or ou-ab12-cdef3456=C0DEV",
        )?;
        let organization_id = get("ORGANIZATION_ID");
        if let Some(id) = &organization_id {
            if !(id.starts_with("o-")
                && id.len() > 2
                && id[2..].bytes().all(|b| b.is_ascii_alphanumeric()))
            {
                return Err(ConfigError::Invalid {
                    name: "ORGANIZATION_ID",
                    why: format!("{id:?} is not an organization ID (o-…)"),
                });
            }
        }
        let heartbeat_minutes = minutes("HEARTBEAT_MINUTES", 60, 5)?;
        let trail_canary = match get("TRAIL_CANARY").as_deref() {
            None | Some("off") => false,
            Some("on") => true,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "TRAIL_CANARY",
                    why: format!("{other:?} is neither on nor off"),
                })
            }
        };
        let archive_lock_days = match get("ARCHIVE_LOCK_DAYS") {
            None => None,
            Some(v) => Some(
                v.parse::<u32>()
                    .ok()
                    .filter(|d| (1..=36_500).contains(d))
                    .ok_or(ConfigError::Invalid {
                        name: "ARCHIVE_LOCK_DAYS",
                        why: format!("{v:?} is not a whole number of days from 1 to 36500"),
                    })?,
            ),
        };
        let spoke_regions: Vec<String> = get("SPOKE_REGIONS")
            .unwrap_or_default()
            .split([',', ' '])
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect();
        let ticket_pattern = match get("TICKET_URL_PATTERN") {
            None => None,
            Some(pattern) => Some(regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                ConfigError::Invalid {
                    name: "TICKET_URL_PATTERN",
                    why: format!("{pattern:?} is not a regular expression: {e}"),
                }
            })?),
        };
        let justify_usergroup = get("JUSTIFY_USERGROUP");
        if let Some(group) = &justify_usergroup {
            if !(group.starts_with('S') && group.chars().all(|c| c.is_ascii_alphanumeric())) {
                return Err(ConfigError::Invalid {
                    name: "JUSTIFY_USERGROUP",
                    why: format!("{group:?} is not a user group ID (S…)"),
                });
            }
        }
        let justify_button = matches!(get("JUSTIFY_BUTTON").as_deref(), Some("true" | "1"));
        let function_name =
            get("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| "privwatch".to_string());
        let secret_arn = match &token {
            TokenSetting::Secret(arn) => Some(arn.as_str()),
            TokenSetting::Env(_) => None,
        };
        let deployment = Deployment::new(
            &function_name,
            secret_arn,
            get("DEPLOY_ROLE_ARN").as_deref(),
        );
        let permission_sets: Vec<String> = get("ADMIN_PERMISSION_SET_ARNS")
            .unwrap_or_default()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(bad) = permission_sets.iter().find(|a| !a.starts_with("arn:")) {
            return Err(ConfigError::Invalid {
                name: "ADMIN_PERMISSION_SET_ARNS",
                why: format!("{bad:?} is not a permission set's ARN"),
            });
        }
        let mut deployment = deployment.with_permission_sets(&permission_sets);
        // A hub's spokes are rolled out by StackSets (organization mode only).
        deployment.stacksets_roll_out = organization_id.is_some();
        deployment.known_accounts = account_names.iter().map(|(id, _)| id.clone()).collect();

        Ok(Config {
            channel_id,
            token,
            slack_api_url,
            wording: Wording {
                lang,
                account_name: get("ACCOUNT_NAME"),
                account_names,
                justify_button,
                critical_mention: Some(escalation_mention.clone()),
            },
            fallback_mention,
            dedupe_lookback: Duration::from_secs(dedupe_minutes * 60),
            coalesce_window: Duration::from_secs(coalesce_minutes * 60),
            escalate_after: Duration::from_secs(escalate_minutes * 60),
            tier3_per_minute,
            escalation_mention,
            oidc_owners,
            deployment,
            channel_routes,
            organization_id,
            org_read_role: get("ORG_READ_ROLE_ARN"),
            heartbeat: Duration::from_secs(heartbeat_minutes * 60),
            spoke_regions,
            trail_canary,
            ticket_pattern,
            archive_bucket: get("ARCHIVE_BUCKET"),
            notifier_function: get("NOTIFIER_FUNCTION"),
            archive_lock_days,
            signing_secret: get("SLACK_SIGNING_SECRET"),
            justify_usergroup,
        })
    }
}

fn is_channel_id(value: &str) -> bool {
    value.starts_with(['C', 'G'])
        && value.len() > 1
        && value.chars().all(|c| c.is_ascii_alphanumeric())
}

pub fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

/// A comma-separated list of `key=value` pairs (`split` finds the `=`), each checked by `valid`.
fn pairs(
    name: &'static str,
    value: Option<String>,
    split: impl Fn(&str) -> Option<(&str, &str)>,
    valid: impl Fn(&str, &str) -> bool,
    shape: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let value = value.unwrap_or_default();
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (key, val) = split(entry)
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, v)| valid(k, v))
            .ok_or_else(|| ConfigError::Invalid {
                name,
                why: format!("{entry:?} is not {shape}"),
            })?;
        out.push((key.to_string(), val.to_string()));
    }
    Ok(out)
}

/// A Slack token is `xox…` followed by printable ASCII only: anything else (a line break pasted
/// along, a control character) could never authenticate and would make every call fail as a
/// transport error, so it is refused where it is read.
pub fn is_token_shaped(value: &str) -> bool {
    value.starts_with("xox") && value.bytes().all(|b| b.is_ascii_graphic())
}

/// `<!here>`, `<!channel>`, `<!everyone>`, `<@U…>`, `<!subteam^S…>`: the mentions an operator may
/// configure as fallback. Nothing else, so the setting cannot smuggle in arbitrary markup.
fn is_mention_markup(value: &str) -> bool {
    let Some(inner) = value.strip_prefix('<').and_then(|v| v.strip_suffix('>')) else {
        return false;
    };
    let id_ok = |id: &str| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric());
    match inner {
        "!here" | "!channel" | "!everyone" => true,
        _ => {
            if let Some(user) = inner.strip_prefix('@') {
                id_ok(user)
            } else if let Some(group) = inner.strip_prefix("!subteam^") {
                id_ok(group)
            } else {
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply() {
        let c = config(&[
            ("SLACK_CHANNEL_ID", "C0123"),
            (
                "SLACK_TOKEN_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:x",
            ),
        ])
        .unwrap();
        assert_eq!(c.slack_api_url, DEFAULT_SLACK_API_URL);
        assert_eq!(c.fallback_mention, "<!here>");
        assert_eq!(c.wording.lang, Lang::En);
        assert!(matches!(c.token, TokenSetting::Secret(_)));
    }

    #[test]
    fn env_token_wins_and_is_never_printed() {
        let c = config(&[
            ("SLACK_CHANNEL_ID", "C0123"),
            ("SLACK_BOT_TOKEN", "xoxb-secret-value"),
            ("SLACK_TOKEN_SECRET_ARN", "arn:x"),
        ])
        .unwrap();
        assert!(matches!(c.token, TokenSetting::Env(_)));
        assert!(!format!("{c:?}").contains("secret-value"));
    }

    #[test]
    fn errors_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "SLACK_CHANNEL_ID"),
            (
                &[
                    ("SLACK_CHANNEL_ID", "#general"),
                    ("SLACK_BOT_TOKEN", "xoxb-1"),
                ],
                "SLACK_CHANNEL_ID",
            ),
            (&[("SLACK_CHANNEL_ID", "C1")], "SLACK_TOKEN_SECRET_ARN"),
            (
                &[("SLACK_CHANNEL_ID", "C1"), ("SLACK_BOT_TOKEN", "nope")],
                "SLACK_BOT_TOKEN",
            ),
            (
                &[
                    ("SLACK_CHANNEL_ID", "C1"),
                    ("SLACK_BOT_TOKEN", "xoxb-1"),
                    ("MESSAGE_LANGUAGE", "fr"),
                ],
                "MESSAGE_LANGUAGE",
            ),
            (
                &[
                    ("SLACK_CHANNEL_ID", "C1"),
                    ("SLACK_BOT_TOKEN", "xoxb-1"),
                    ("FALLBACK_MENTION", "<https://x|y>"),
                ],
                "FALLBACK_MENTION",
            ),
            (
                &[
                    ("SLACK_CHANNEL_ID", "C1"),
                    ("SLACK_BOT_TOKEN", "xoxb-1"),
                    ("SLACK_API_URL", "slack.com"),
                ],
                "SLACK_API_URL",
            ),
            (
                &[
                    ("SLACK_CHANNEL_ID", "C1"),
                    ("SLACK_BOT_TOKEN", "xoxb-1"),
                    ("DEDUPE_LOOKBACK_MINUTES", "0"),
                ],
                "DEDUPE_LOOKBACK_MINUTES",
            ),
        ];
        for (vars, name) in cases {
            let err = config(vars).unwrap_err().to_string();
            assert!(err.contains(name), "{err} should name {name}");
        }
    }

    #[test]
    fn tokens_with_control_characters_are_refused_at_init() {
        for bad in [
            "xoxb-1\n2",
            "xoxb-1\r\n2",
            "xoxb-1\u{0}2",
            "xoxb-1 2",
            "xoxb-1\u{7f}",
        ] {
            let err = config(&[("SLACK_CHANNEL_ID", "C1"), ("SLACK_BOT_TOKEN", bad)])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("SLACK_BOT_TOKEN") && err.contains("control"),
                "{err}"
            );
            assert!(!err.contains("xoxb-1"), "the token is not echoed: {err}");
        }
        assert!(config(&[
            ("SLACK_CHANNEL_ID", "C1"),
            ("SLACK_BOT_TOKEN", " xoxb-1-2\n")
        ])
        .is_ok());
    }

    #[test]
    fn fallback_mentions_that_are_allowed() {
        for ok in ["<!here>", "<!channel>", "<@U123>", "<!subteam^S0123ABC>"] {
            assert!(is_mention_markup(ok), "{ok}");
        }
        for bad in ["here", "<!here", "<@U1|x>", "<!subteam^>", "<#C1>"] {
            assert!(!is_mention_markup(bad), "{bad}");
        }
    }

    #[test]
    fn owner_and_account_lists_parse_or_name_the_bad_entry() {
        let base = [("SLACK_CHANNEL_ID", "C1"), ("SLACK_BOT_TOKEN", "xoxb-1")];
        let with = |name, value| {
            let mut vars = base.to_vec();
            vars.push((name, value));
            config(&vars)
        };
        let c = with(
            "OIDC_OWNERS",
            "repo:a/b:ref:x=y:*=<!subteam^S1>, repo:c/*=<@U2>",
        )
        .unwrap();
        assert_eq!(
            c.oidc_owners,
            vec![
                (
                    "repo:a/b:ref:x=y:*".to_string(),
                    "<!subteam^S1>".to_string()
                ),
                ("repo:c/*".to_string(), "<@U2>".to_string())
            ]
        );
        let err = with("OIDC_OWNERS", "repo:a/*=@here")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("OIDC_OWNERS") && err.contains("repo:a/*=@here"),
            "{err}"
        );
        let c = with("ACCOUNT_NAMES", "111122223333=prod,444455556666 = dev").unwrap();
        assert_eq!(c.wording.account_names.len(), 2);
        assert_eq!(c.wording.account("444455556666"), "444455556666 (dev)");
        let err = with("ACCOUNT_NAMES", "1111=prod").unwrap_err().to_string();
        assert!(
            err.contains("ACCOUNT_NAMES") && err.contains("1111=prod"),
            "{err}"
        );
    }
}
