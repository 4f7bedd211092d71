//! The `privwatch` binary: with no command, the Lambda bootstrap (builds everything once at init,
//! then hands events to [`privwatch::handle`]); with one, the command line (`cli`).

mod cli;

use clap::Parser;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{
    layers, service_fn, Diagnostic, Error, LambdaEvent, LambdaInvocation, Runtime,
};
use privwatch::config::Config;
use privwatch::App;
use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;
use tokio::time::Instant;

/// Time kept back from Lambda's deadline to report the outcome.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);
/// How long the init-time warm-up (token fetch, first TLS connection to Slack) may take.
const WARM_UP_BUDGET: Duration = Duration::from_secs(2);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        Some(command) => return cli::run(command).await,
        None => lambda().await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A sentence, not a Debug dump: this is what the operator reads in the log.
            eprintln!("privwatch: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The Lambda function: build everything once, then serve invocations.
async fn lambda() -> Result<(), Error> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return Err("not running in AWS Lambda (AWS_LAMBDA_RUNTIME_API is not set): run `cargo lambda watch` for a local function, or see `privwatch --help` for the commands".into());
    }
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env().map_err(|e| {
        tracing::error!(error = %e, "privwatch is misconfigured");
        format!("misconfigured: {e}")
    })?;
    let app = App::from_config(config).await?;
    // Lives as long as the execution environment; shared by every invocation.
    let app: &'static App = Box::leak(Box::new(app));
    warm_up(app).await;

    let handler = service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = deadline_of(event.context.deadline);
        let outcome = privwatch::handle(app, &event.payload, deadline).await?;
        // A Function URL request is answered with its HTTP response; anything else with the
        // outcome itself (`{"outcome": "delivered", "detail": {…}}`).
        let answer = match outcome {
            privwatch::Outcome::Http(response) => serde_json::to_value(response),
            outcome => serde_json::to_value(outcome),
        };
        answer.map_err(|e| Diagnostic {
            error_type: "privwatch.UnserializableOutcome".into(),
            error_message: e.to_string(),
        })
    });
    Runtime::new(handler)
        .layer(layers::TracingLayer::new())
        .layer(UnreadablePayloadLayer)
        .run()
        .await
}

/// A payload that is not JSON never reaches the handler as such: the runtime's deserializer would
/// report it under its own internal type. It is handed on as a marker object instead, so that
/// `handle` rejects it with privwatch's error (`privwatch.UnreadableEvent`) and a clear message.
#[derive(Clone, Copy)]
struct UnreadablePayloadLayer;

impl<S> Layer<S> for UnreadablePayloadLayer {
    type Service = UnreadablePayload<S>;
    fn layer(&self, inner: S) -> Self::Service {
        UnreadablePayload(inner)
    }
}

struct UnreadablePayload<S>(S);

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for UnreadablePayload<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&invocation.body) {
            let marker = privwatch::event::unreadable_payload_marker(&e.to_string());
            invocation.body = serde_json::to_vec(&marker).unwrap_or_default().into();
        }
        self.0.call(invocation)
    }
}

/// Init is where Lambda's CPU is cheapest: fetch the token now, and open the TLS connection to
/// Slack (`auth.test`) alongside the first poll for an event, so the first event finds it ready
/// or half-way there without init waiting for Slack. A failure here is logged, not fatal: the
/// first event tries again and fails loudly.
async fn warm_up(app: &'static App) {
    let token = match app.tokens.get().await {
        Ok(token) => token,
        Err(error) => {
            tracing::error!(%error, "could not fetch the Slack token at init; each event will try again");
            return;
        }
    };
    tokio::spawn(async move {
        let deadline = Instant::now() + WARM_UP_BUDGET;
        // Learns privwatch's own bot user once (`auth.test`), which also opens the connection.
        match app.bot_user(&token, deadline).await {
            Ok(bot_user) => tracing::debug!(bot_user = %bot_user.0, "Slack connection ready"),
            Err(error) => {
                tracing::warn!(%error, "Slack warm-up failed; events will still be tried")
            }
        }
    });
}

/// Lambda's deadline (ms since the epoch) as an `Instant`, less a margin to report the outcome.
fn deadline_of(deadline_ms: u64) -> Instant {
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    Instant::now() + remaining(deadline_ms, now_ms).saturating_sub(DEADLINE_MARGIN)
}

/// Lambda sends the deadline in ms since the epoch. `cargo lambda watch` sends the timeout
/// itself (e.g. 600000); a value that cannot be an epoch time is read as that.
fn remaining(deadline_ms: u64, now_ms: u64) -> Duration {
    const LAMBDA_MAX_TIMEOUT_MS: u64 = 15 * 60 * 1000;
    const YEAR_2000_MS: u64 = 946_684_800_000;
    if deadline_ms < YEAR_2000_MS {
        return Duration::from_millis(deadline_ms.min(LAMBDA_MAX_TIMEOUT_MS));
    }
    Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_from_lambda_and_from_cargo_lambda_watch() {
        let now = 1_795_000_000_000;
        assert_eq!(remaining(now + 30_000, now), Duration::from_secs(30));
        assert_eq!(remaining(now - 5, now), Duration::ZERO);
        assert_eq!(remaining(600_000, now), Duration::from_secs(600));
        assert_eq!(remaining(3_600_000, now), Duration::from_secs(900));
    }
}
