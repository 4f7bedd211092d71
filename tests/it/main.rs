//! The integration tests: one binary (fast; `tests/soak` holds the long ones). Each module is one
//! concern of privwatch as a user meets it, against the Slack sandbox and, where AWS is in the
//! way, moto (`scripts/with-moto.sh`).

mod activity;
mod admins;
mod archive;
mod bootstrap;
mod cli;
mod exactly_once;
mod handler;
mod hostile;
mod interact;
mod justification;
mod kinds;
mod org;
mod properties;
mod secrets;

/// The shared helpers (`privwatch-testkit`), and the one that needs this binary's `privwatch`.
mod support {
    pub use privwatch_testkit::*;
    use slack_sandbox::{Sandbox, DEMO_CHANNEL, DEMO_TOKEN};

    /// Runs `privwatch audit ARGS…` against the sandbox, as a user would.
    pub async fn audit_cli(sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
        audit_cli_with(sandbox, args, &[]).await
    }

    /// `privwatch audit ARGS…` with more settings (`TICKET_URL_PATTERN`, `ARCHIVE_BUCKET`, …).
    pub async fn audit_cli_with(
        sandbox: &Sandbox,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> std::process::Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_privwatch"))
            .arg("audit")
            .args(args)
            .env_clear()
            .env("SLACK_CHANNEL_ID", DEMO_CHANNEL)
            .env("SLACK_BOT_TOKEN", DEMO_TOKEN)
            .env("SLACK_API_URL", sandbox.api_url())
            .envs(env.iter().copied())
            .output()
            .await
            .unwrap()
    }
}
