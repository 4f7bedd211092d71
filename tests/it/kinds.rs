//! The privileged paths of issue #11, each from a public CloudTrail record (fixtures/SOURCES.md):
//! what each notice must say so that a reader knows who did what, where — and that one
//! cross-account call recorded in both accounts makes one notice naming both.

use crate::support::*;
use privwatch::{handle, Outcome};
use slack_sandbox::DEMO_CHANNEL;

/// The facts each new kind's notice must show (escaped text as a reader sees it).
#[tokio::test]
async fn each_new_kind_names_what_a_reader_needs() {
    let cases: [(&str, &[&str]); 9] = [
        (
            "assume-root-management.json",
            &[
                "Root session opened for a member account",
                "erin@example.com",
                "222233334444",
                "S3UnlockBucketPolicy",
                "ASIAIOSFODNN7EXAMPLE",
            ],
        ),
        (
            "root-session-member-call.json",
            &[
                "DeleteBucketPolicy",
                "centralized root session",
                "ASIAIOSFODNN7EXAMPLE",
            ],
        ),
        (
            "switch-role-admin.json",
            &[
                "Switch Role",
                "bob@example.com",
                "OrganizationAccountAccessRole",
                "arn:aws:iam::444455556666:user/bob@example.com",
                "75.15.154.15",
                "Chrome/85",
            ],
        ),
        (
            "web-identity-github-admin.json",
            &[
                "repo:example-org/infra:ref:refs/heads/main",
                "token.actions.githubusercontent.com",
                "CiDeployAdmin",
            ],
        ),
        (
            "root-password-updated.json",
            &["Root user password changed or recovered", "PasswordUpdated"],
        ),
        (
            "cross-account-assume-role-role-account.json",
            &[
                "bob@example.com",
                "OrganizationAccountAccessRole",
                "444455556666",
            ],
        ),
        (
            "tamper-stop-logging.json",
            &[
                "The alarm itself was changed",
                "StopLogging",
                "trail/management-events",
                "alice@example.com",
            ],
        ),
        (
            "tamper-update-function-code.json",
            &["UpdateFunctionCode20150331v2", "function:privwatch"],
        ),
        (
            "tamper-put-secret-value.json",
            &["PutSecretValue", "privwatch/slack-bot-token"],
        ),
    ];
    for (file, facts) in cases {
        let sandbox = sandbox().await;
        let app = app_for(&sandbox);
        handle(&app, &fixture(file), deadline(10))
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let notice = &sandbox.top_level(DEMO_CHANNEL)[0];
        // (escaping puts a word joiner after `@`)
        let shown = all_texts(notice).join("\n").replace('\u{2060}', "");
        for fact in facts {
            assert!(
                shown.contains(fact),
                "{file}: {fact:?} missing from\n{shown}"
            );
        }
    }
}

/// The caller's account and the role's account each record a cross-account AssumeRole, with
/// different event IDs and the same `sharedEventID`. In one channel: one notice naming both
/// accounts, one ask, and a retry of either record adds nothing.
#[tokio::test]
async fn one_cross_account_call_recorded_twice_is_one_notice() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    let role_side = fixture("cross-account-assume-role-role-account.json");
    let caller_side = fixture("cross-account-assume-role-caller-account.json");
    assert_ne!(
        role_side["detail"]["eventID"],
        caller_side["detail"]["eventID"]
    );
    assert_eq!(
        role_side["detail"]["sharedEventID"],
        caller_side["detail"]["sharedEventID"]
    );
    for event in [&role_side, &caller_side, &role_side, &caller_side] {
        let outcome = handle(&app, event, deadline(10)).await.unwrap();
        assert!(matches!(outcome, Outcome::Delivered(_)), "{outcome:?}");
    }
    let notices = sandbox.top_level(DEMO_CHANNEL);
    assert_eq!(notices.len(), 1, "one notice for one call");
    let shown = all_texts(&notices[0]).join("\n");
    assert!(
        shown.contains("111122223333") && shown.contains("444455556666"),
        "{shown}"
    );
    assert!(shown.contains("also recorded in account"), "{shown}");
    let metadata = &notices[0].metadata.as_ref().unwrap()["event_payload"];
    assert_eq!(metadata["twin_event_id"], caller_side["detail"]["eventID"]);
    assert_eq!(metadata["count"], 1, "one use, not two");
    let thread = replies(&sandbox, &notices[0].ts);
    assert_eq!(thread.len(), 1, "one ask: {thread:?}");
    assert!(thread[0].text.starts_with("<@U02BOB> "));
}

/// A trail change that still records every management event is not tampering; one that stops
/// management events is.
#[tokio::test]
async fn only_trail_changes_that_narrow_management_events_are_tampering() {
    let sandbox = sandbox().await;
    let app = app_for(&sandbox);
    let keeps = handle(
        &app,
        &fixture("ignored-put-event-selectors-keeps-management.json"),
        deadline(10),
    )
    .await
    .unwrap();
    assert!(matches!(keeps, Outcome::Ignored(_)), "{keeps:?}");
    let stops = handle(
        &app,
        &fixture("tamper-put-event-selectors.json"),
        deadline(10),
    )
    .await
    .unwrap();
    assert!(matches!(stops, Outcome::Delivered(_)), "{stops:?}");
}

/// Each account by its own name where one channel hears from several (`ACCOUNT_NAMES`), and a
/// SAML record's provider is not shown as an OIDC provider.
#[tokio::test]
async fn accounts_are_named_each_by_its_own_name() {
    let sandbox = sandbox().await;
    let mut app = app_for(&sandbox);
    app.config.wording.account_names = vec![
        ("111122223333".into(), "mgmt".into()),
        ("222233334444".into(), "member-a".into()),
    ];
    handle(&app, &fixture("assume-root-management.json"), deadline(10))
        .await
        .unwrap();
    handle(
        &app,
        &fixture("hostile-saml-session-name.json"),
        deadline(10),
    )
    .await
    .unwrap();
    let shown: Vec<String> = sandbox
        .top_level(DEMO_CHANNEL)
        .iter()
        .map(|n| all_texts(n).join("\n"))
        .collect();
    assert!(shown[0].contains("111122223333 (mgmt)"), "{}", shown[0]);
    assert!(shown[0].contains("222233334444 (member-a)"), "{}", shown[0]);
    assert!(!shown[1].contains("OIDC provider"), "{}", shown[1]);
}
