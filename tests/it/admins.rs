//! `privwatch admins` against moto, with the real IAM and SSO Admin clients making what a real
//! account holds: roles and permission sets that are admin by a managed policy, an inline
//! policy or a customer-managed policy, one that is not, and ones the settings already name.

use crate::support::moto_url;
use aws_sdk_iam::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;

const EVERYTHING: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
const READ_ONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;

fn sdk(url: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_iam::config::SharedCredentialsProvider::new(
            Credentials::new("testing", "testing", None, None, "moto"),
        ))
        .build()
}

async fn role(iam: &aws_sdk_iam::Client, name: &str) -> String {
    let made = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    made.role.unwrap().arn
}

async fn permission_set(
    sso: &aws_sdk_ssoadmin::Client,
    instance: &str,
    name: &str,
    managed: Option<&str>,
    inline: Option<&str>,
) -> String {
    let arn = sso
        .create_permission_set()
        .instance_arn(instance)
        .name(name)
        // moto answers a number unless given the ISO 8601 duration AWS uses.
        .session_duration("PT1H")
        .send()
        .await
        .unwrap()
        .permission_set
        .unwrap()
        .permission_set_arn
        .unwrap();
    if let Some(policy) = managed {
        sso.attach_managed_policy_to_permission_set()
            .instance_arn(instance)
            .permission_set_arn(&arn)
            .managed_policy_arn(policy)
            .send()
            .await
            .unwrap();
    }
    if let Some(policy) = inline {
        sso.put_inline_policy_to_permission_set()
            .instance_arn(instance)
            .permission_set_arn(&arn)
            .inline_policy(policy)
            .send()
            .await
            .unwrap();
    }
    arn
}

fn admins(url: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_privwatch"))
        .arg("admins")
        .args(args)
        .env_clear()
        .env("AWS_ENDPOINT_URL", url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[tokio::test]
async fn admins_lists_every_admin_path_the_settings_do_not_name() {
    let Some(url) = moto_url("privwatch admins") else {
        return;
    };
    let config = sdk(&url);
    let iam = aws_sdk_iam::Client::new(&config);
    let sso = aws_sdk_ssoadmin::Client::new(&config);
    let run = format!("pwadm{}", std::process::id());

    let ops = role(&iam, &format!("{run}-Ops")).await;
    iam.attach_role_policy()
        .role_name(format!("{run}-Ops"))
        .policy_arn(ADMIN)
        .send()
        .await
        .unwrap();
    let inline = role(&iam, &format!("{run}-Inline")).await;
    iam.put_role_policy()
        .role_name(format!("{run}-Inline"))
        .policy_name("everything")
        .policy_document(EVERYTHING)
        .send()
        .await
        .unwrap();
    let custom = role(&iam, &format!("{run}-Custom")).await;
    let policy = iam
        .create_policy()
        .policy_name(format!("{run}-AllOfIt"))
        .policy_document(EVERYTHING)
        .send()
        .await
        .unwrap()
        .policy
        .unwrap()
        .arn
        .unwrap();
    iam.attach_role_policy()
        .role_name(format!("{run}-Custom"))
        .policy_arn(&policy)
        .send()
        .await
        .unwrap();
    let reader = role(&iam, &format!("{run}-Reader")).await;
    iam.attach_role_policy()
        .role_name(format!("{run}-Reader"))
        .policy_arn(READ_ONLY)
        .send()
        .await
        .unwrap();
    let covered = role(&iam, &format!("{run}-BreakGlass")).await;
    iam.attach_role_policy()
        .role_name(format!("{run}-BreakGlass"))
        .policy_arn(ADMIN)
        .send()
        .await
        .unwrap();

    let instance = sso
        .list_instances()
        .send()
        .await
        .unwrap()
        .instances
        .unwrap()
        .remove(0)
        .instance_arn
        .unwrap();
    let ps_ops = permission_set(&sso, &instance, &format!("{run}Ops"), Some(ADMIN), None).await;
    let ps_inline = permission_set(
        &sso,
        &instance,
        &format!("{run}Wide"),
        None,
        Some(EVERYTHING),
    )
    .await;
    let ps_read = permission_set(
        &sso,
        &instance,
        &format!("{run}Read"),
        Some(READ_ONLY),
        None,
    )
    .await;
    let ps_named = permission_set(&sso, &instance, &format!("{run}Admin"), Some(ADMIN), None).await;

    let settings = [
        ("ADMIN_ROLE_PATTERNS", "*-BreakGlass"),
        ("ADMIN_PERMISSION_SETS", &*format!("{run}Admin nosuchset")),
    ];
    let out = admins(&url, &["--format", "json"], &settings);
    assert_eq!(
        out.status.code(),
        Some(1),
        "uncovered paths exit 1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = |arn: &str| {
        report["paths"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["arn"] == arn)
            .cloned()
    };
    for (arn, why) in [
        (&ops, "AdministratorAccess attached"),
        (&inline, "inline policy everything allows * on *"),
        (&custom, &*format!("policy {policy} allows * on *")),
        (&ps_ops, "AdministratorAccess attached"),
        (&ps_inline, "inline policy allows * on *"),
    ] {
        let found = path(arn).unwrap_or_else(|| panic!("{arn} not listed: {report}"));
        assert_eq!(found["covered"], false, "{found}");
        assert_eq!(found["why"], why, "{found}");
    }
    for arn in [&covered, &ps_named] {
        assert_eq!(path(arn).unwrap()["covered"], true, "{arn}");
    }
    for arn in [&reader, &ps_read] {
        assert!(path(arn).is_none(), "{arn} is not admin: {report}");
    }
    assert!(
        report["notes"].to_string().contains("nosuchset"),
        "a name no permission set has is said: {report}"
    );

    // The text a person reads says what to add.
    let out = admins(&url, &[], &settings);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("role {run}-Ops")) && text.contains("add it to ADMIN_ROLE_ARNS"),
        "{text}"
    );

    // What the Identity Center assignment rule matches: the named set's ARN.
    let out = admins(&url, &["--permission-set-arns"], &settings);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ps_named);
}
