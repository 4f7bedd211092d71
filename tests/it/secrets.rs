//! The bot token from AWS Secrets Manager, with the real `aws-sdk-secretsmanager` client against
//! a local moto server (`make test` starts it and sets PRIVWATCH_MOTO_URL): plain and JSON
//! secrets, rotation (one re-fetch on `invalid_auth`, no loop), and no secret in any log line.

use crate::support::*;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use privwatch::config::TokenSetting;
use privwatch::{handle, Error};
use slack_sandbox::runtime_api::RuntimeApi;
use slack_sandbox::DEMO_CHANNEL;
use std::process::Stdio;
use std::time::Duration;

fn secrets_client(url: &str) -> aws_sdk_secretsmanager::Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

async fn create_secret(client: &aws_sdk_secretsmanager::Client, name: &str, value: &str) -> String {
    let unique = format!("{name}-{}", std::process::id());
    client
        .create_secret()
        .name(&unique)
        .secret_string(value)
        .send()
        .await
        .expect("create secret in moto")
        .arn()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn token_from_a_json_or_plain_secret() {
    let Some(url) = moto_url("the Secrets Manager tests") else {
        return;
    };
    let client = secrets_client(&url);
    for (name, value) in [
        (
            "privwatch-json",
            format!(r#"{{"bot_token": "{}"}}"#, slack_sandbox::DEMO_TOKEN),
        ),
        ("privwatch-plain", slack_sandbox::DEMO_TOKEN.to_string()),
    ] {
        let arn = create_secret(&client, name, &value).await;
        let sandbox = sandbox().await;
        let app = app_with(&sandbox, TokenSetting::Secret(arn), Some(client.clone()));
        handle(&app, &fixture("root-signin-success-mfa.json"), deadline(10))
            .await
            .unwrap();
        assert_eq!(sandbox.top_level(DEMO_CHANNEL).len(), 1, "{name}");
    }
}

#[tokio::test]
async fn a_rotated_token_is_fetched_again_once() {
    let Some(url) = moto_url("the Secrets Manager tests") else {
        return;
    };
    let client = secrets_client(&url);
    let arn = create_secret(&client, "privwatch-rotation", "xoxb-old-token").await;
    let sandbox = sandbox().await;
    sandbox.set_tokens(vec!["xoxb-old-token".into()]);
    let app = app_with(
        &sandbox,
        TokenSetting::Secret(arn.clone()),
        Some(client.clone()),
    );
    handle(&app, &fixture("root-signin-success-mfa.json"), deadline(10))
        .await
        .unwrap();

    // Rotation: Slack now accepts only the new token, and the secret holds it.
    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(r#"{"bot_token":"xoxb-new-token"}"#)
        .send()
        .await
        .unwrap();
    sandbox.set_tokens(vec!["xoxb-new-token".into()]);
    handle(
        &app,
        &fixture("saml-google-workspace-admin.json"),
        deadline(10),
    )
    .await
    .unwrap();
    assert_eq!(sandbox.top_level(DEMO_CHANNEL).len(), 2);
    let refused = sandbox
        .calls()
        .iter()
        .filter(|c| c.error.as_deref() == Some("invalid_auth"))
        .count();
    assert!(refused >= 1, "the old token was refused first");

    // A token Slack refuses even after the re-fetch: a clear error, no loop.
    sandbox.set_tokens(vec!["xoxb-yet-another".into()]);
    let before = sandbox.calls().len();
    let error = handle(&app, &fixture("root-create-access-key.json"), deadline(10))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Slack(_)), "{error}");
    assert!(
        error.to_string().contains("invalid_auth") && error.to_string().contains("secret"),
        "{error}"
    );
    let calls = sandbox.calls().len() - before;
    assert!(calls <= 4, "bounded: {calls} calls for a refused token");
}

#[tokio::test]
async fn a_missing_secret_is_a_clear_error() {
    let Some(url) = moto_url("the Secrets Manager tests") else {
        return;
    };
    let client = secrets_client(&url);
    let sandbox = sandbox().await;
    let arn =
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:does-not-exist-AbCdEf".to_string();
    let app = app_with(&sandbox, TokenSetting::Secret(arn), Some(client));
    let error = handle(&app, &fixture("root-signin-success-mfa.json"), deadline(10))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Token(_)), "{error}");
    assert!(error.to_string().contains("GetSecretValue"), "{error}");
    assert!(sandbox.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_reads_the_secret_and_never_logs_it() {
    let Some(url) = moto_url("the Secrets Manager tests") else {
        return;
    };
    let client = secrets_client(&url);
    let secret_value = "xoxb-from-secrets-manager-7f3a9c";
    let arn = create_secret(
        &client,
        "privwatch-bootstrap",
        &format!(r#"{{"bot_token":"{secret_value}"}}"#),
    )
    .await;
    let sandbox = sandbox().await;
    sandbox.set_tokens(vec![secret_value.into()]);
    let runtime = RuntimeApi::start(Duration::from_secs(20)).await.unwrap();
    let child = collect_logs(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_privwatch"))
            .env_clear()
            .envs([
                ("AWS_LAMBDA_FUNCTION_NAME", "privwatch"),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
                ("AWS_LAMBDA_LOG_STREAM_NAME", "s"),
                ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/privwatch"),
                ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
                ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
            ])
            .env("AWS_ENDPOINT_URL", &url)
            .env("AWS_LAMBDA_RUNTIME_API", runtime.endpoint())
            .env("SLACK_CHANNEL_ID", DEMO_CHANNEL)
            .env("SLACK_TOKEN_SECRET_ARN", &arn)
            .env("SLACK_API_URL", sandbox.api_url())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap(),
    );
    runtime
        .invoke(std::fs::read(fixtures_dir().join("root-signin-failure.json")).unwrap())
        .await
        .unwrap();
    // A failure path too: Slack refuses the channel.
    sandbox.set_faults(slack_sandbox::FaultPlan::scripted(vec![
        slack_sandbox::ScriptedFault {
            method: "conversations.history".into(),
            thread_reply: None,
            fault: slack_sandbox::Fault::SlackError {
                code: "not_in_channel".into(),
            },
            times: 1,
        },
    ]));
    runtime
        .invoke(std::fs::read(fixtures_dir().join("assume-role-admin.json")).unwrap())
        .await
        .unwrap_err();
    assert_eq!(sandbox.top_level(DEMO_CHANNEL).len(), 1);

    let logs = stop_and_collect_logs(child).await;
    assert!(logs.contains("not_in_channel"), "the failure was logged");
    assert!(
        !logs.contains(secret_value),
        "the secret value reached a log line"
    );
    assert!(
        !logs.contains("7f3a9c"),
        "part of the secret reached a log line"
    );
}
