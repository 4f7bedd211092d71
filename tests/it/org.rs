//! Organization mode, simulated through the handler against the Slack sandbox: one hub hears 50
//! accounts × 4 regions. Every privileged event is delivered exactly once (each twice, as
//! EventBridge may), named by its account's name and routed to its account's channel; every
//! spoke's heartbeat keeps the pinned coverage message current; each silent spoke, and each
//! account of the organization never heard, is alerted once — not once per sweep — and a return
//! is noted once, in the alert's thread.

use crate::support::*;
use privwatch::config::TokenSetting;
use privwatch::coverage::{
    CoveragePayload, BACK_EVENT_TYPE, COVERAGE_EVENT_TYPE, SILENCE_EVENT_TYPE,
};
use privwatch::{handle, Outcome};
use serde_json::{json, Value};
use slack_sandbox::{Sandbox, SandboxConfig, DEMO_CHANNEL, DEMO_TOKEN};
use std::collections::HashMap;

const ACCOUNTS: usize = 50;
const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-northeast-1", "us-west-2"];
const TEAM_CHANNEL: &str = "C0TEAMA";
/// Accounts 0..10 are routed to the team's channel.
const ROUTED: usize = 10;

fn account(i: usize) -> String {
    format!("{:012}", 100_000_000_000u64 + i as u64)
}

fn heartbeat(account: &str, region: &str, at: i64) -> Value {
    let time = chrono::DateTime::from_timestamp(at, 0)
        .unwrap()
        .to_rfc3339();
    json!({
        "version": "0", "id": format!("hb-{account}-{region}-{at}"), "detail-type": "Scheduled Event",
        "source": "aws.events", "account": account, "time": time, "region": region,
        "resources": [format!("arn:aws:events:{region}:{account}:rule/privwatch-heartbeat")],
        "detail": {}
    })
}

/// The CloudTrail record of a spoke's canary, as its rule forwards it: `ssm:PutParameter` on
/// `/privwatch/canary` by EventBridge Scheduler's role. The shape is a real PutParameter record's
/// (its value hidden by CloudTrail; `fixtures/SOURCES.md` says where from)
/// with the Scheduler's assumed-role identity.
fn canary(account: &str, region: &str, at: i64) -> Value {
    let time = chrono::DateTime::from_timestamp(at, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({
        "version": "0", "id": format!("canary-{account}-{region}-{at}"),
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.ssm", "account": account,
        "time": time, "region": region, "resources": [],
        "detail": {
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLECANARY0001:3f1e0c4a9b2d4e7f",
                "arn": format!("arn:aws:sts::{account}:assumed-role/privwatch-spoke-CanaryRole-AbC123/3f1e0c4a9b2d4e7f"),
                "accountId": account,
                "accessKeyId": "ASIAEXAMPLECANARY001",
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLECANARY0001",
                        "arn": format!("arn:aws:iam::{account}:role/privwatch-spoke-CanaryRole-AbC123"),
                        "accountId": account, "userName": "privwatch-spoke-CanaryRole-AbC123"},
                    "attributes": {"creationDate": time, "mfaAuthenticated": "false"}
                },
                "invokedBy": "scheduler.amazonaws.com"
            },
            "eventTime": time, "eventSource": "ssm.amazonaws.com", "eventName": "PutParameter",
            "awsRegion": region, "sourceIPAddress": "scheduler.amazonaws.com",
            "userAgent": "scheduler.amazonaws.com",
            "requestParameters": {"name": "/privwatch/canary", "value": "HIDDEN_DUE_TO_SECURITY_REASONS",
                "type": "String", "overwrite": true},
            "responseElements": {"version": 7, "tier": "Standard"},
            "requestID": format!("req-{at}"), "eventID": format!("ev-canary-{account}-{region}-{at}"),
            "readOnly": false, "eventType": "AwsApiCall", "managementEvent": true,
            "recipientAccountId": account, "eventCategory": "Management"
        }
    })
}

/// Both signs of life of a spoke at `at`: its heartbeat and its canary's record.
async fn alive(app: &privwatch::App, account: &str, region: &str, at: i64) {
    for event in [heartbeat(account, region, at), canary(account, region, at)] {
        let outcome = handle(app, &event, deadline(10)).await.unwrap();
        assert!(matches!(outcome, Outcome::Heard(_)), "{outcome:?}");
    }
}

fn hub_sweep() -> Value {
    json!({
        "version": "0", "id": "sweep", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "999988887777", "time": "2026-11-01T12:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:999988887777:rule/privwatch-sweep"], "detail": {}
    })
}

/// A root sign-in in `account` and `region` (the fixture, with its own event ID and time).
fn sign_in(i: usize, region: &str, n: usize, at: i64) -> Value {
    let mut e = fixture("root-signin-success-mfa.json");
    let time = chrono::DateTime::from_timestamp(at, 0)
        .unwrap()
        .to_rfc3339();
    e["account"] = json!(account(i));
    e["region"] = json!(region);
    e["time"] = json!(time);
    e["detail"]["awsRegion"] = json!(region);
    e["detail"]["eventTime"] = json!(time);
    e["detail"]["recipientAccountId"] = json!(account(i));
    e["detail"]["eventID"] = json!(format!("org-{i:02}-{region}-{n}"));
    e
}

/// The sandbox with the default channel and the team's.
async fn two_channels() -> Sandbox {
    Sandbox::start(
        SandboxConfig {
            channels: vec![DEMO_CHANNEL.to_string(), TEAM_CHANNEL.to_string()],
            ..SandboxConfig::default()
        },
        0,
    )
    .await
    .unwrap()
}

async fn hub() -> (Sandbox, privwatch::App) {
    let sandbox = two_channels().await;
    // The organization as ACCOUNT_NAMES lists it (one more account than sends anything).
    let names: Vec<String> = (0..=ACCOUNTS)
        .map(|i| format!("{}=acct-{i:02}", account(i)))
        .collect();
    let routes: Vec<String> = (0..ROUTED)
        .map(|i| format!("{}={TEAM_CHANNEL}", account(i)))
        .collect();
    let (names, routes, regions) = (names.join(","), routes.join(","), REGIONS.join(","));
    let token = TokenSetting::Env(DEMO_TOKEN.to_string());
    let config = config_with(
        &sandbox,
        token.clone(),
        &[
            ("ORGANIZATION_ID", "o-exampleorg1"),
            ("ACCOUNT_NAMES", &names),
            ("CHANNEL_ROUTES", &routes),
            ("SPOKE_REGIONS", &regions),
            ("HEARTBEAT_MINUTES", "60"),
            ("ESCALATION_MENTION", "<!subteam^S0SECURITY>"),
        ],
    );
    let app = app_from(config, token, None);
    (sandbox, app)
}

fn payload(message: &slack_sandbox::Message) -> &Value {
    &message.metadata.as_ref().unwrap()["event_payload"]
}

fn of_type(sandbox: &Sandbox, channel: &str, event_type: &str) -> Vec<slack_sandbox::Message> {
    sandbox
        .messages(channel)
        .into_iter()
        .filter(|m| {
            m.metadata
                .as_ref()
                .is_some_and(|md| md["event_type"] == event_type)
        })
        .collect()
}

/// The back lines in a silence alert's thread.
fn back_lines(sandbox: &Sandbox, alert_ts: &str) -> Vec<slack_sandbox::Message> {
    sandbox
        .thread(DEMO_CHANNEL, alert_ts)
        .into_iter()
        .filter(|m| {
            m.metadata
                .as_ref()
                .is_some_and(|md| md["event_type"] == BACK_EVENT_TYPE)
        })
        .collect()
}

fn coverage(sandbox: &Sandbox, channel: &str) -> CoveragePayload {
    let pinned: Vec<_> = sandbox
        .messages(channel)
        .into_iter()
        .filter(|m| m.pinned)
        .collect();
    assert_eq!(pinned.len(), 1, "one pinned coverage message in {channel}");
    serde_json::from_value(payload(&pinned[0]).clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_hears_fifty_accounts_in_four_regions() {
    let (sandbox, app) = hub().await;
    let now = chrono::Utc::now().timestamp();
    let hours_ago = now - 3 * 3600;

    // Every spoke's heartbeat three hours ago, and again ten minutes ago — but for three spokes.
    let silent = [(3usize, "eu-west-1"), (17, "us-east-1"), (42, "us-west-2")];
    for at in [hours_ago, now - 600] {
        for i in 0..ACCOUNTS {
            for region in REGIONS {
                if at != hours_ago && silent.contains(&(i, region)) {
                    continue;
                }
                alive(&app, &account(i), region, at).await;
            }
        }
    }

    // One privileged use per spoke, each delivered twice.
    let mut events = Vec::new();
    for i in 0..ACCOUNTS {
        for (n, region) in REGIONS.iter().enumerate() {
            events.push((i, sign_in(i, region, n, now - 3000 + n as i64 * 60)));
        }
    }
    for round in 0..2 {
        for (i, event) in &events {
            let outcome = handle(&app, event, deadline(10))
                .await
                .unwrap_or_else(|e| panic!("round {round}, account {i}: {e}"));
            assert!(matches!(outcome, Outcome::Delivered(_)), "{outcome:?}");
        }
    }

    // Exactly once, in the account's channel, by its name.
    let mut held: HashMap<String, usize> = HashMap::new();
    for channel in [DEMO_CHANNEL, TEAM_CHANNEL] {
        for notice in of_type(&sandbox, channel, "privileged_use") {
            let p = payload(&notice);
            let i: usize = p["account"].as_str().unwrap()[9..].parse().unwrap();
            let want = if i < ROUTED {
                TEAM_CHANNEL
            } else {
                DEMO_CHANNEL
            };
            assert_eq!(channel, want, "account {i} routed");
            let text = all_texts(&notice).join("\n");
            assert!(text.contains(&format!("(acct-{i:02})")), "named: {text}");
            for id in p["event_ids"].as_array().unwrap() {
                *held
                    .entry(id["id"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
            let lines = sandbox.thread(channel, &notice.ts);
            assert_eq!(lines.len(), p["event_ids"].as_array().unwrap().len());
        }
    }
    assert_eq!(held.len(), events.len(), "every event held");
    assert!(held.values().all(|n| *n == 1), "none twice");

    // The coverage messages: one per channel, every spoke heard, pinned and updated in place.
    let team = coverage(&sandbox, TEAM_CHANNEL);
    assert_eq!(team.spokes.len(), ROUTED * REGIONS.len());
    let main = coverage(&sandbox, DEMO_CHANNEL);
    assert_eq!(main.spokes.len(), (ACCOUNTS - ROUTED) * REGIONS.len());

    // The sweep alerts the three silent spokes and the four regions of the account never heard,
    // once; a second sweep alerts nothing new.
    for want_alerted in [silent.len() + REGIONS.len(), 0] {
        match handle(&app, &hub_sweep(), deadline(30)).await.unwrap() {
            Outcome::Swept(report) => assert_eq!(report.silent_alerted, want_alerted, "{report:?}"),
            other => panic!("{other:?}"),
        }
    }
    let alerts: Vec<_> = [DEMO_CHANNEL, TEAM_CHANNEL]
        .iter()
        .flat_map(|c| of_type(&sandbox, c, SILENCE_EVENT_TYPE))
        .collect();
    let mut alerted: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            let p = payload(a);
            (
                p["account"].as_str().unwrap().to_string(),
                p["region"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    alerted.sort();
    let mut want: Vec<(String, String)> = silent
        .iter()
        .map(|(i, r)| (account(*i), r.to_string()))
        .chain(REGIONS.iter().map(|r| (account(ACCOUNTS), r.to_string())))
        .collect();
    want.sort();
    assert_eq!(alerted, want, "each silent spoke alerted once");
    let team_alert = of_type(&sandbox, TEAM_CHANNEL, SILENCE_EVENT_TYPE);
    assert_eq!(
        team_alert.len(),
        1,
        "account 3 is the team's: its alert is in the team channel"
    );
    assert!(
        team_alert[0].text.starts_with("<!subteam^S0SECURITY> "),
        "{}",
        team_alert[0].text
    );
    assert!(
        team_alert[0].text.contains("acct-03"),
        "{}",
        team_alert[0].text
    );

    // Account 17 in us-east-1 comes back: one back line in its alert's thread, however many
    // heartbeats follow.
    for at in [now - 60, now] {
        alive(&app, &account(17), "us-east-1", at).await;
    }
    let alert = alerts
        .iter()
        .find(|a| payload(a)["account"] == account(17).as_str())
        .unwrap();
    let back = back_lines(&sandbox, &alert.ts);
    assert_eq!(back.len(), 1, "its return noted once");
    // And a later sweep does not alert it again; it writes the table, with the last heartbeat
    // (heartbeats that change nothing a reader must see are written together, at most once a
    // minute or by the sweep).
    handle(&app, &hub_sweep(), deadline(30)).await.unwrap();
    let spoke = coverage(&sandbox, DEMO_CHANNEL)
        .spokes
        .into_iter()
        .find(|s| s.account == account(17) && s.region == "us-east-1")
        .unwrap();
    assert_eq!((spoke.silent_since, spoke.last), (0, now));
    let again = of_type(&sandbox, DEMO_CHANNEL, SILENCE_EVENT_TYPE);
    assert_eq!(again.len(), alerts.len() - 1);
    assert_eq!(
        of_type(&sandbox, DEMO_CHANNEL, COVERAGE_EVENT_TYPE).len(),
        1
    );
}

/// Heartbeats fire together (a StackSet operation creates the spokes within minutes): 200 in a
/// row cost a handful of Slack calls — the coverage message found once (no `pins.list` per
/// heartbeat), written for each spoke heard the first time and then at most once a minute — and
/// the table the sweep writes holds every one. (Before: pins.list, a history read and an update
/// per heartbeat, 600 calls.)
#[tokio::test]
async fn two_hundred_heartbeats_together_cost_a_few_slack_calls() {
    let (sandbox, app) = hub().await;
    let now = chrono::Utc::now().timestamp();
    let spokes: Vec<(String, &str)> = (ROUTED..ROUTED + 50)
        .flat_map(|i| REGIONS.iter().map(move |r| (account(i), *r)))
        .collect();
    assert_eq!(spokes.len(), 200);
    // First heard an hour ago (each new spoke is written at once), then all again now.
    for (account, region) in &spokes {
        handle(&app, &heartbeat(account, region, now - 3600), deadline(10))
            .await
            .unwrap();
    }
    let before = sandbox.calls().len();
    for (account, region) in &spokes {
        handle(&app, &heartbeat(account, region, now), deadline(10))
            .await
            .unwrap();
    }
    let calls = sandbox.calls()[before..].to_vec();
    assert!(
        calls.len() <= 4,
        "{} calls for 200 heartbeats: {:?}",
        calls.len(),
        calls.iter().map(|c| &c.method).collect::<Vec<_>>()
    );
    assert!(!calls.iter().any(|c| c.method == "pins.list"));
    handle(&app, &hub_sweep(), deadline(30)).await.unwrap();
    let table = coverage(&sandbox, DEMO_CHANNEL);
    for (account, region) in &spokes {
        let spoke = table
            .spokes
            .iter()
            .find(|s| &s.account == account && s.region == *region)
            .unwrap();
        assert_eq!(spoke.last, now, "{account} {region}");
    }
}

/// The held coverage copy never runs ahead of Slack: a heartbeat whose back line Slack refused
/// fails (Lambda retries it), and the retry — starting again from the message in Slack — posts the
/// back line once. (Keeping the changed copy after the failure would lose the back line.)
#[tokio::test]
async fn a_back_line_refused_once_is_posted_by_the_retry() {
    use slack_sandbox::Fault;
    let (sandbox, app) = hub().await;
    let now = chrono::Utc::now().timestamp();
    let spoke = account(ROUTED);
    alive(&app, &spoke, "us-east-1", now - 3 * 3600).await;
    handle(&app, &canary(&spoke, "us-east-1", now - 120), deadline(10))
        .await
        .unwrap();
    handle(&app, &hub_sweep(), deadline(30)).await.unwrap();
    let alert = of_type(&sandbox, DEMO_CHANNEL, SILENCE_EVENT_TYPE)
        .into_iter()
        .find(|a| payload(a)["account"] == spoke.as_str() && payload(a)["region"] == "us-east-1")
        .expect("alerted");
    script(
        &sandbox,
        "chat.postMessage",
        Some(true),
        Fault::SlackError {
            code: "not_in_channel".into(),
        },
        1,
    );
    assert!(handle(
        &app,
        &heartbeat(&spoke, "us-east-1", now - 60),
        deadline(10)
    )
    .await
    .is_err());
    let Outcome::Heard(report) = handle(&app, &heartbeat(&spoke, "us-east-1", now), deadline(10))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(report.back, 1, "the retry posts the back line");
    assert_eq!(back_lines(&sandbox, &alert.ts).len(), 1);
}

/// The real `aws-sdk-organizations` client against moto: the hub reads the organization's
/// accounts (their names) and OUs, and routes an account by its OU.
#[tokio::test]
async fn the_organization_is_read_with_the_sdk_and_routes_by_ou() {
    use aws_sdk_organizations::config::{BehaviorVersion, Credentials, Region};
    let Some(url) = moto_url("Organizations") else {
        return;
    };
    let client = aws_sdk_organizations::Client::from_conf(
        aws_sdk_organizations::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&url)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .build(),
    );
    if client.describe_organization().send().await.is_err() {
        client
            .create_organization()
            .send()
            .await
            .expect("an organization in moto");
    }
    let root = client.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let ou = client
        .create_organizational_unit()
        .parent_id(&root)
        .name(format!("team-{}", std::process::id()))
        .send()
        .await
        .unwrap()
        .organizational_unit()
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    let created = client
        .create_account()
        .account_name("payments-prod")
        .email(format!("payments+{}@example.com", std::process::id()))
        .send()
        .await
        .unwrap();
    let account = created
        .create_account_status()
        .unwrap()
        .account_id()
        .unwrap()
        .to_string();
    client
        .move_account()
        .account_id(&account)
        .source_parent_id(&root)
        .destination_parent_id(&ou)
        .send()
        .await
        .unwrap();

    let sandbox = two_channels().await;
    let token = TokenSetting::Env(DEMO_TOKEN.to_string());
    let routes = format!("{ou}={TEAM_CHANNEL}");
    let config = config_with(
        &sandbox,
        token.clone(),
        &[
            ("ORGANIZATION_ID", "o-exampleorg1"),
            ("CHANNEL_ROUTES", &routes),
        ],
    );
    let mut app = app_from(config, token, None);
    app.org = Some(privwatch::aws::org::Org::new(client, true));

    let snapshot = app.org.as_ref().unwrap().snapshot().await.expect("read");
    assert_eq!(snapshot.name_of(&account), Some("payments-prod"));
    assert_eq!(
        snapshot.ous[&account].first(),
        Some(&ou),
        "its OU, innermost first"
    );
    assert_eq!(app.org_units_of(&account).await.first(), Some(&ou));

    let mut event = fixture("root-signin-success-mfa.json");
    event["account"] = json!(account);
    handle(&app, &event, deadline(10)).await.unwrap();
    let notices = sandbox.top_level(TEAM_CHANNEL);
    assert_eq!(notices.len(), 1, "routed by its OU");
    let text = all_texts(&notices[0]).join("\n");
    assert!(
        text.contains(&format!("{account} (payments-prod)")),
        "{text}"
    );
    assert!(sandbox.top_level(DEMO_CHANNEL).is_empty());
}

/// The heartbeat proves the spoke's rules, not CloudTrail: a spoke whose heartbeat goes on while
/// its canary's records stop (a trail stopped or narrowed) is alerted once, as a silent trail,
/// and its canary's return gets one back line.
#[tokio::test]
async fn a_trail_silent_behind_a_live_heartbeat_is_alerted_once_and_back_with_its_canary() {
    let (sandbox, app) = hub().await;
    let now = chrono::Utc::now().timestamp();
    let spoke = account(ROUTED + 1);
    alive(&app, &spoke, "eu-west-1", now - 3 * 3600).await;
    for at in [now - 2 * 3600, now - 3600, now - 60] {
        handle(&app, &heartbeat(&spoke, "eu-west-1", at), deadline(10))
            .await
            .unwrap();
    }
    handle(&app, &hub_sweep(), deadline(30)).await.unwrap();
    let alerts: Vec<_> = of_type(&sandbox, DEMO_CHANNEL, SILENCE_EVENT_TYPE)
        .into_iter()
        .filter(|a| payload(a)["account"] == spoke.as_str() && payload(a)["region"] == "eu-west-1")
        .collect();
    assert_eq!(alerts.len(), 1, "one alert");
    assert!(
        alerts[0].text.contains("CloudTrail is silent") && alerts[0].text.contains("eu-west-1"),
        "{}",
        alerts[0].text
    );
    handle(&app, &hub_sweep(), deadline(30)).await.unwrap();
    let again = of_type(&sandbox, DEMO_CHANNEL, SILENCE_EVENT_TYPE)
        .into_iter()
        .filter(|a| payload(a)["account"] == spoke.as_str() && payload(a)["region"] == "eu-west-1")
        .count();
    assert_eq!(again, 1, "not once per sweep");
    // More heartbeats are not its return; its canary is.
    handle(&app, &heartbeat(&spoke, "eu-west-1", now), deadline(10))
        .await
        .unwrap();
    assert!(back_lines(&sandbox, &alerts[0].ts).is_empty());
    let Outcome::Heard(report) = handle(&app, &canary(&spoke, "eu-west-1", now), deadline(10))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(report.back, 1);
    assert_eq!(back_lines(&sandbox, &alerts[0].ts).len(), 1);
    let table = coverage(&sandbox, DEMO_CHANNEL);
    let row = table
        .spokes
        .iter()
        .find(|s| s.account == spoke && s.region == "eu-west-1")
        .unwrap();
    assert_eq!((row.last, row.trail, row.silent_since), (now, now, 0));
}

/// Only the canary's own parameter is a sign of life; another PutParameter is nobody's business.
#[tokio::test]
async fn another_parameter_written_is_not_the_canary() {
    let (_sandbox, app) = hub().await;
    let now = chrono::Utc::now().timestamp();
    let mut other = canary(&account(1), "us-east-1", now);
    other["detail"]["requestParameters"]["name"] = json!("/app/config");
    // (By a person, as the real record this shape comes from: no admin session.)
    other["detail"]["userIdentity"] =
        json!({"type": "IAMUser", "arn": format!("arn:aws:iam::{}:user/ops", account(1))});
    let outcome = handle(&app, &other, deadline(10)).await.unwrap();
    assert!(matches!(outcome, Outcome::Ignored(_)), "{outcome:?}");
}

/// Per account (`TRAIL_CANARY=on`, as the notifier template sets it): the sweep checks that the
/// account's own canary keeps arriving; a silent trail is alerted once and its return noted.
#[tokio::test]
async fn one_account_alerts_once_when_its_own_trail_falls_silent() {
    let sandbox = two_channels().await;
    let token = TokenSetting::Env(DEMO_TOKEN.to_string());
    let config = config_with(
        &sandbox,
        token.clone(),
        &[("TRAIL_CANARY", "on"), ("HEARTBEAT_MINUTES", "15")],
    );
    let app = app_from(config, token, None);
    let own = "111122223333";
    let now = chrono::Utc::now().timestamp();
    let sweep = json!({
        "version": "0", "id": "sweep-1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": own, "time": "2026-11-01T12:00:00Z", "region": "us-east-1",
        "resources": [format!("arn:aws:events:us-east-1:{own}:rule/privwatch-sweep")], "detail": {}
    });
    let swept = |report: Outcome| match report {
        Outcome::Swept(r) => r.silent_alerted,
        other => panic!("{other:?}"),
    };
    handle(&app, &canary(own, "us-east-1", now - 3600), deadline(10))
        .await
        .unwrap();
    assert_eq!(swept(handle(&app, &sweep, deadline(30)).await.unwrap()), 1);
    assert_eq!(swept(handle(&app, &sweep, deadline(30)).await.unwrap()), 0);
    let alert = of_type(&sandbox, DEMO_CHANNEL, SILENCE_EVENT_TYPE);
    assert_eq!(alert.len(), 1);
    assert!(
        alert[0].text.contains("CloudTrail is silent"),
        "{}",
        alert[0].text
    );
    handle(&app, &canary(own, "us-east-1", now), deadline(10))
        .await
        .unwrap();
    assert_eq!(back_lines(&sandbox, &alert[0].ts).len(), 1);
    // Without the setting (a deployment from before the canary) the sweep checks nothing.
    let quiet = two_channels().await;
    let token = TokenSetting::Env(DEMO_TOKEN.to_string());
    let app = app_from(config_with(&quiet, token.clone(), &[]), token, None);
    assert_eq!(swept(handle(&app, &sweep, deadline(30)).await.unwrap()), 0);
    assert!(of_type(&quiet, DEMO_CHANNEL, COVERAGE_EVENT_TYPE).is_empty());
}
