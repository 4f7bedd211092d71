//! What the integration tests (`tests/it`) and the soaks (`tests/soak`) share: fixtures, an
//! `App` wired to a Slack sandbox, the moto S3 helpers, and a [`Scenario`] that delivers events
//! and counts what the channel got. A crate of its own, so that neither binary carries helpers it
//! does not use.

use privwatch::config::{Config, TokenSetting};
use privwatch::slack::{RetryPolicy, SlackClient};
use privwatch::token::TokenSource;
use privwatch::{App, Outcome};
use serde_json::Value;
use slack_sandbox::{Sandbox, SandboxConfig, DEMO_CHANNEL, DEMO_TOKEN};
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}

pub fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What `fixtures/expected.json` says each fixture must lead to.
pub struct Expected {
    pub file: String,
    /// `None`: privwatch ignores it.
    pub kind: Option<String>,
    pub mention: Option<String>,
    /// The rule meant to deliver it (`None`: no rule does).
    pub rule: Option<String>,
    /// Listed as `null`: no rule matches it and the function ignores it.
    pub plain_null: bool,
}

impl Expected {
    /// A rule delivers it and privwatch reports it.
    pub fn reported(&self) -> bool {
        self.kind.is_some() && self.rule.is_some()
    }

    /// A call in an admin session: counted in its session's activity line (a notice of its own
    /// only when the session's start was not seen).
    pub fn session_call(&self) -> bool {
        self.kind.as_deref() == Some("admin_session") || self.file.starts_with("session-")
    }

    /// privwatch, handed it, ignores it.
    pub fn ignored_by_function(&self) -> bool {
        self.plain_null || (self.kind.is_none() && self.rule.is_some())
    }
}

pub fn expectations() -> Vec<Expected> {
    let manifest = fixture("expected.json");
    let mut all: Vec<Expected> = manifest["fixtures"]
        .as_object()
        .expect("fixtures map")
        .iter()
        .map(|(file, e)| Expected {
            file: file.clone(),
            kind: e["kind"].as_str().map(str::to_string),
            mention: e["mention"].as_str().map(str::to_string),
            rule: e["rule"].as_str().map(str::to_string),
            plain_null: e.is_null(),
        })
        .collect();
    all.sort_by(|a, b| a.file.cmp(&b.file));
    // Every fixture file is in the manifest, and the other way round.
    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && n != "expected.json")
        .collect();
    on_disk.sort();
    let listed: Vec<String> = all.iter().map(|e| e.file.clone()).collect();
    assert_eq!(
        listed, on_disk,
        "fixtures/expected.json must list every fixture"
    );
    all
}

/// The fixtures that are a notice of their own (an admin session's calls are tested by
/// `tests/it/activity.rs`).
pub fn privileged() -> Vec<Expected> {
    expectations()
        .into_iter()
        .filter(|e| e.reported() && !e.session_call())
        .collect()
}

pub fn malformed() -> Vec<(String, Vec<u8>)> {
    let dir = fixtures_dir().join("malformed");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 3, "malformed fixtures missing");
    out
}

/// A copy of `fixture_name` with another event ID, `minutes` after 10:00 on 2026-11-01.
pub fn use_at(fixture_name: &str, event_id: &str, minutes: u32) -> Value {
    let mut event = fixture(fixture_name);
    let time = format!("2026-11-01T10:{minutes:02}:00Z");
    event["time"] = Value::String(time.clone());
    event["detail"]["eventTime"] = Value::String(time);
    event["detail"]["eventID"] = Value::String(event_id.to_string());
    event
}

pub async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::default(), 0).await.unwrap()
}

/// The admin permission set of the example account file (its ARN form).
pub const EXAMPLE_ADMIN_PERMISSION_SET: &str =
    "arn:aws:sso:::permissionSet/ssoins-72233af8ea2d1f14/ps-ae5d1fa1f80b684e";

pub fn config_for(sandbox: &Sandbox, token: TokenSetting) -> Config {
    config_with(sandbox, token, &[])
}

/// The test configuration with `extra` settings (they win over the defaults).
pub fn config_with(sandbox: &Sandbox, token: TokenSetting, extra: &[(&str, &str)]) -> Config {
    let api = sandbox.api_url();
    Config::from_lookup(|name| {
        if let Some((_, value)) = extra.iter().find(|(k, _)| *k == name) {
            return Some(value.to_string());
        }
        match name {
            "SLACK_CHANNEL_ID" => Some(DEMO_CHANNEL.to_string()),
            "SLACK_API_URL" => Some(api.clone()),
            "ACCOUNT_NAME" => Some("demo-prod".to_string()),
            "OIDC_OWNERS" => Some("repo:example-org/infra:*=<!subteam^S0PLATFORM>".to_string()),
            // As `make deploy` resolves the example account file's ADMIN_PERMISSION_SETS.
            "ADMIN_PERMISSION_SET_ARNS" => Some(EXAMPLE_ADMIN_PERMISSION_SET.to_string()),
            _ => None,
        }
        .or(match (&token, name) {
            (TokenSetting::Env(t), "SLACK_BOT_TOKEN") => Some(t.clone()),
            (TokenSetting::Secret(arn), "SLACK_TOKEN_SECRET_ARN") => Some(arn.clone()),
            _ => None,
        })
    })
    .unwrap()
}

/// Fast retries, so fault tests finish quickly while still exercising every path.
pub fn quick_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        request_timeout: Duration::from_millis(1500),
        // Slow answers in these tests land within a second of the timeout.
        write_settle: Duration::from_millis(2500),
    }
}

pub fn app_for(sandbox: &Sandbox) -> App {
    app_with(sandbox, TokenSetting::Env(DEMO_TOKEN.to_string()), None)
}

pub fn app_with(
    sandbox: &Sandbox,
    token: TokenSetting,
    secrets: Option<aws_sdk_secretsmanager::Client>,
) -> App {
    app_from(config_for(sandbox, token.clone()), token, secrets)
}

pub fn app_from(
    config: Config,
    token: TokenSetting,
    secrets: Option<aws_sdk_secretsmanager::Client>,
) -> App {
    App {
        slack: SlackClient::new(
            reqwest::Client::new(),
            &config.slack_api_url,
            quick_policy(),
        ),
        tokens: TokenSource::new(token, secrets),
        config,
        bot: Default::default(),
        org: None,
        archive: None,
        replays: Default::default(),
        handoff: privwatch::aws::handoff::Handoff::Inline,
        memory: Default::default(),
    }
}

pub fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// The thread reply privwatch posted for `notice_ts`.
pub fn replies(sandbox: &Sandbox, notice_ts: &str) -> Vec<slack_sandbox::Message> {
    sandbox.thread(DEMO_CHANNEL, notice_ts)
}

/// Markup in `text` that Slack would make live (a mention, a ping, a link), except markup that
/// starts with one of `allowed` (what the bot chose: the person's mention, the CloudTrail link).
pub fn unexpected_markup(text: &str, allowed: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        let markup = &rest[start..start + len + 1];
        let harmless = markup.starts_with("<!date^") || is_console_link(markup);
        if !harmless && !allowed.iter().any(|a| markup.starts_with(a)) {
            found.push(markup.to_string());
        }
        rest = &rest[start + len + 1..];
    }
    for word in ["@here", "@channel", "@everyone"] {
        if text.contains(word) {
            found.push(word.to_string());
        }
    }
    found
}

/// Every `text` in a Block Kit structure.
pub fn texts_in(blocks: &Value, out: &mut Vec<String>) {
    match blocks {
        Value::Object(map) => {
            if let Some(Value::String(t)) = map.get("text") {
                out.push(t.clone());
            }
            map.values().for_each(|v| texts_in(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| texts_in(v, out)),
        _ => {}
    }
}

/// Every text of a posted message: fallback text and every text object in its blocks.
pub fn all_texts(message: &slack_sandbox::Message) -> Vec<String> {
    let mut out = vec![message.text.clone()];
    if let Some(blocks) = &message.blocks {
        texts_in(blocks, &mut out);
    }
    out
}

/// `<https://REGION.console.aws.amazon.com/cloudtrailv2/home?region=REGION#/events/ID|label>`
fn is_console_link(markup: &str) -> bool {
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let Some(rest) = markup.strip_prefix("<https://") else {
        return false;
    };
    let Some((region, rest)) = rest.split_once(".console.aws.amazon.com/cloudtrailv2/home?region=")
    else {
        return false;
    };
    let Some((region2, rest)) = rest.split_once("#/events/") else {
        return false;
    };
    let Some((id, _label)) = rest.split_once('|') else {
        return false;
    };
    plain(region) && region == region2 && plain(id)
}

/// Stops a spawned bootstrap and returns everything it printed (stdout, then stderr).
/// A running function process whose output is read as it comes (a pipe left unread fills up
/// and stalls the process once it has logged 64 KiB).
pub struct Running {
    child: tokio::process::Child,
    logs: tokio::task::JoinHandle<String>,
}

pub fn collect_logs(mut child: tokio::process::Child) -> Running {
    use tokio::io::AsyncReadExt;
    let mut out = child.stdout.take().expect("stdout piped");
    let mut err = child.stderr.take().expect("stderr piped");
    let logs = tokio::spawn(async move {
        let (mut a, mut b) = (String::new(), String::new());
        let _ = tokio::join!(out.read_to_string(&mut a), err.read_to_string(&mut b));
        a + &b
    });
    Running { child, logs }
}

pub async fn stop_and_collect_logs(mut running: Running) -> String {
    running.child.start_kill().unwrap();
    let _ = running.child.wait().await;
    running.logs.await.unwrap()
}

/// The moto endpoint, or `None` (and a note) when this run has none. `make test` sets
/// PRIVWATCH_REQUIRE_MOTO=1, which turns a missing moto into a failure.
#[allow(dead_code)]
pub fn moto_url(what: &str) -> Option<String> {
    match std::env::var("PRIVWATCH_MOTO_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("PRIVWATCH_REQUIRE_MOTO").is_err(),
                "PRIVWATCH_MOTO_URL is not set but PRIVWATCH_REQUIRE_MOTO is: start moto (make test does)"
            );
            eprintln!("SKIPPED: no PRIVWATCH_MOTO_URL; run `make test` to include {what}");
            None
        }
    }
}

/// The real S3 client against moto.
#[allow(dead_code)]
pub fn s3(url: &str) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(url)
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .build(),
    )
}

/// A versioned bucket, as the template makes it (a rewrite would show as a second version).
#[allow(dead_code)]
pub async fn bucket(client: &aws_sdk_s3::Client, name: &str) -> String {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    let name = format!("{name}-{}", std::process::id());
    client.create_bucket().bucket(&name).send().await.unwrap();
    client
        .put_bucket_versioning()
        .bucket(&name)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    name
}

/// An admin-role use (`assume-role-admin.json`) by `person` in `account`, `secs` after 11:00 on
/// 2026-11-01, with event ID `id`: the raw material of bursts and floods.
#[allow(dead_code)]
pub fn person_use(account: &str, person: &str, id: &str, secs: u32) -> Value {
    let mut event = fixture("assume-role-admin.json");
    let time = (chrono::DateTime::parse_from_rfc3339("2026-11-01T11:00:00Z").unwrap()
        + chrono::Duration::seconds(secs as i64))
    .with_timezone(&chrono::Utc)
    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = serde_json::to_string(&event)
        .unwrap()
        .replace("111122223333", account)
        .replace("dave@example.com", &format!("{person}@example.com"))
        .replace("dave-admin", &format!("{person}-admin"));
    event = serde_json::from_str(&text).unwrap();
    event["time"] = Value::String(time.clone());
    event["detail"]["eventTime"] = Value::String(time);
    event["detail"]["eventID"] = Value::String(id.to_string());
    event
}

/// An S3 object as JSON, with its ETag (`None`: not there).
#[allow(dead_code)]
pub async fn object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Option<(Value, String)> {
    let got = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    let etag = got.e_tag().unwrap_or_default().to_string();
    let bytes = got.body.collect().await.unwrap().into_bytes();
    Some((serde_json::from_slice(&bytes).unwrap(), etag))
}

/// The scheduled catch-up of long series (`<function>-catchup`).
#[allow(dead_code)]
pub fn catch_up_event() -> Value {
    let mut event = fixture("schedule/sweep.json");
    event["resources"] =
        serde_json::json!(["arn:aws:events:us-east-1:111122223333:rule/privwatch-catchup"]);
    event
}

/// The sandbox answers the next `times` calls of `method` with `fault` (only thread replies, or
/// only top-level posts, when `thread_reply` says so).
pub fn script(
    sandbox: &Sandbox,
    method: &str,
    thread_reply: Option<bool>,
    fault: slack_sandbox::Fault,
    times: u32,
) {
    sandbox.set_faults(slack_sandbox::FaultPlan::scripted(vec![
        slack_sandbox::ScriptedFault {
            method: method.into(),
            thread_reply,
            fault,
            times,
        },
    ]));
}

/// One channel in the Slack sandbox and a privwatch delivering into it: the set-up most tests
/// share, and the counts they assert on.
pub struct Scenario {
    pub sandbox: Sandbox,
    pub app: App,
}

impl Scenario {
    /// A fresh sandbox and an app with the demo settings.
    pub async fn new() -> Scenario {
        let sandbox = sandbox().await;
        let app = app_for(&sandbox);
        Scenario { sandbox, app }
    }

    /// The same, with more settings (`ACCOUNT_NAMES`, `MESSAGE_LANGUAGE`, …).
    pub async fn with(extra: &[(&str, &str)]) -> Scenario {
        let sandbox = sandbox().await;
        let token = TokenSetting::Env(DEMO_TOKEN.to_string());
        let app = app_from(config_with(&sandbox, token.clone(), extra), token, None);
        Scenario { sandbox, app }
    }

    /// Hands `event` to the function, as Lambda would (10 s to go).
    pub async fn deliver(&self, event: &Value) -> Result<Outcome, privwatch::Error> {
        privwatch::handle(&self.app, event, deadline(10)).await
    }

    /// Hands the fixture `name` to the function.
    pub async fn deliver_fixture(&self, name: &str) -> Result<Outcome, privwatch::Error> {
        self.deliver(&fixture(name)).await
    }

    /// The notices in the channel (its top-level messages), oldest first.
    pub fn notices(&self) -> Vec<slack_sandbox::Message> {
        self.sandbox.top_level(DEMO_CHANNEL)
    }

    /// The lines in a notice's thread (the notice itself not counted).
    pub fn lines(&self, notice_ts: &str) -> Vec<slack_sandbox::Message> {
        replies(&self.sandbox, notice_ts)
    }

    /// `chat.postMessage` calls Slack carried out (notices and thread lines alike).
    pub fn posts(&self) -> usize {
        self.sandbox
            .calls()
            .iter()
            .filter(|c| c.method == "chat.postMessage" && c.error.is_none() && c.status == 200)
            .count()
    }
}
