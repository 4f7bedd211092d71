//! The command line a person meets outside Lambda: help and version work without any setting,
//! bad arguments name the problem (exit 2), and errors are sentences, not Debug dumps.

use std::process::Output;

fn privwatch(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_privwatch"))
        .args(args)
        .env_clear()
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn help_and_version_work_without_any_setting() {
    for args in [
        &["--help"][..],
        &["--version"],
        &["audit", "--help"],
        &["help", "audit"],
    ] {
        let out = privwatch(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        assert!(
            !text(&out).contains("SLACK_CHANNEL_ID is required"),
            "{args:?}"
        );
    }
    assert!(text(&privwatch(&["--version"])).contains(env!("CARGO_PKG_VERSION")));
    assert!(text(&privwatch(&["audit", "--help"])).contains("--since"));
}

#[test]
fn bad_arguments_name_the_problem_and_exit_2() {
    let out = privwatch(&["audit", "--since", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("\"soon\" is not a duration"),
        "{}",
        text(&out)
    );
    let out = privwatch(&["audit", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("xml"), "{}", text(&out));
    let out = privwatch(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn errors_are_sentences() {
    // A missing setting: the variable's name in a sentence, not `Missing("…")`.
    let out = privwatch(&["audit"]);
    assert_eq!(out.status.code(), Some(2));
    let all = text(&out);
    assert!(
        all.contains("SLACK_CHANNEL_ID is required but not set"),
        "{all}"
    );
    assert!(!all.contains("Missing("), "{all}");
    // Started outside Lambda without a command.
    let out = privwatch(&[]);
    assert_eq!(out.status.code(), Some(1));
    let all = text(&out);
    assert!(all.contains("not running in AWS Lambda"), "{all}");
    assert!(!all.contains("Error: "), "{all}");
}

/// `privwatch rules` prints what infra/rules.json holds (what the templates are rendered from).
#[test]
fn rules_prints_the_rendered_rules() {
    let out = privwatch(&["rules"]);
    assert_eq!(out.status.code(), Some(0));
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/infra/rules.json")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}
