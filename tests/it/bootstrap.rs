//! The real `privwatch` binary under a Lambda Runtime API, the way Lambda runs it: every
//! fixture in, exactly one notice and one threaded reply out per privileged event, errors for
//! malformed ones while the loop goes on, one JSON summary line per event, and no token in any
//! log line.

use crate::support::*;
use slack_sandbox::runtime_api::RuntimeApi;
use slack_sandbox::{DEMO_CHANNEL, DEMO_TOKEN};
use std::process::Stdio;
use std::time::Duration;

pub const FUNCTION_ENV: &[(&str, &str)] = &[
    ("AWS_LAMBDA_FUNCTION_NAME", "privwatch"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    (
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "2026/11/01/[$LATEST]0123456789abcdef",
    ),
    ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/privwatch"),
    ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
    ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
    ("AWS_REGION", "us-east-1"),
    (
        "ADMIN_PERMISSION_SET_ARNS",
        privwatch_testkit::EXAMPLE_ADMIN_PERMISSION_SET,
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_handles_every_fixture_like_lambda_would() {
    let sandbox = sandbox().await;
    let runtime = RuntimeApi::start(Duration::from_secs(20)).await.unwrap();
    let child = collect_logs(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_privwatch"))
            .env_clear()
            .envs(FUNCTION_ENV.iter().copied())
            .env("AWS_LAMBDA_RUNTIME_API", runtime.endpoint())
            .env("SLACK_CHANNEL_ID", DEMO_CHANNEL)
            .env("SLACK_BOT_TOKEN", DEMO_TOKEN)
            .env("SLACK_API_URL", sandbox.api_url())
            .env("ACCOUNT_NAME", "demo-prod")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("privwatch binary"),
    );

    let mut privileged_ids = Vec::new();
    // (Fixtures no rule delivers never reach the function.)
    for expected in expectations()
        .into_iter()
        .filter(|e| e.reported() || e.ignored_by_function())
    {
        let payload = std::fs::read(fixtures_dir().join(&expected.file)).unwrap();
        let answer = runtime.invoke(payload).await;
        let answer = answer.unwrap_or_else(|e| panic!("{}: {e}", expected.file));
        let outcome = answer["outcome"].as_str().unwrap_or_default().to_string();
        match &expected.kind {
            Some(_) if expected.session_call() => {
                // Counted in its session's activity line; a session whose start no fixture
                // holds opens a notice of its own.
                assert_eq!(outcome, "counted", "{}: {answer}", expected.file);
                if answer["detail"]["opened"] == true {
                    privileged_ids.push(
                        fixture(&expected.file)["detail"]["eventID"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    );
                }
            }
            Some(_) => {
                assert_eq!(outcome, "delivered", "{}: {answer}", expected.file);
                assert!(
                    answer["detail"]["notice_ts"].is_string(),
                    "{}: {answer}",
                    expected.file
                );
                privileged_ids.push(
                    fixture(&expected.file)["detail"]["eventID"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            None => assert_eq!(outcome, "ignored", "{}: {answer}", expected.file),
        }
    }
    for (name, bytes) in malformed() {
        let error = runtime.invoke(bytes).await.expect_err(&name);
        let message = error["errorMessage"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{name}: {error}");
        // privwatch's own error type, also for a payload that is not JSON at all (which the
        // runtime's deserializer would otherwise report as its own internal type).
        assert_eq!(
            error["errorType"], "privwatch.UnreadableEvent",
            "{name}: {error}"
        );
    }
    // The loop goes on after the malformed ones.
    let again = runtime
        .invoke(std::fs::read(fixtures_dir().join("root-signin-success-mfa.json")).unwrap())
        .await;
    assert_eq!(again.unwrap()["outcome"], "delivered");

    // Exactly one notice per privileged event: each event ID is held by one notice (its own, a
    // coalesced one, or — for the other account's record of a cross-account call — its twin's),
    // and each notice's thread has one ask and one line per further event it holds.
    let notices = sandbox.top_level(DEMO_CHANNEL);
    let mut held = std::collections::HashMap::<String, usize>::new();
    for notice in &notices {
        let payload = &notice.metadata.as_ref().unwrap()["event_payload"];
        let mut ids: Vec<String> = payload["event_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        // (An admin session's activity line is not a use's line.)
        let lines = replies(&sandbox, &notice.ts)
            .iter()
            .filter(|m| {
                m.metadata.as_ref().map(|md| md["event_type"].clone())
                    != Some(serde_json::json!("privileged_use_activity"))
            })
            .count();
        assert_eq!(
            lines,
            ids.len(),
            "one ask, then one line per coalesced event"
        );
        if let Some(twin) = payload["twin_event_id"].as_str().filter(|t| !t.is_empty()) {
            ids.push(twin.to_string());
        }
        for id in ids {
            *held.entry(id).or_default() += 1;
        }
    }
    for id in &privileged_ids {
        assert_eq!(held.get(id), Some(&1), "{id} is held by exactly one notice");
    }
    assert_eq!(
        held.len(),
        privileged_ids.len(),
        "no notice for anything else"
    );

    let logs = stop_and_collect_logs(child).await;
    assert!(!logs.contains(DEMO_TOKEN), "the token reached a log line");
    assert!(
        !logs.contains("sandbox-demo"),
        "part of the token reached a log line"
    );
    for id in &privileged_ids {
        let summary = logs
            .lines()
            .filter(|l| l.contains(id) && l.contains("\"outcome\""))
            .collect::<Vec<_>>();
        assert!(!summary.is_empty(), "no summary line for {id}");
        let line: serde_json::Value = serde_json::from_str(summary[0]).expect("JSON log line");
        assert!(
            line["fields"]["kind"].is_string() || line["kind"].is_string(),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_setting_fails_init_naming_the_variable() {
    let runtime = RuntimeApi::start(Duration::from_secs(5)).await.unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_privwatch"))
        .env_clear()
        .envs(FUNCTION_ENV.iter().copied())
        .env("AWS_LAMBDA_RUNTIME_API", runtime.endpoint())
        .env("SLACK_BOT_TOKEN", DEMO_TOKEN)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(all.contains("SLACK_CHANNEL_ID"), "{all}");
    assert!(!all.contains(DEMO_TOKEN));
}
