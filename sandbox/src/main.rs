//! `slack-sandbox`: the Slack Web API stand-in as a standalone server, for `make demo`,
//! `make sandbox` and `cargo lambda watch` sessions.

use slack_sandbox::{Sandbox, SandboxConfig, DEMO_CHANNEL, DEMO_TOKEN};
use std::time::Duration;

const USAGE: &str =
    "usage: slack-sandbox [--port N] [--latency-ms N] [--post-rate N] [--tier3 N] [--quiet]
  --port N        listen on 127.0.0.1:N (default 3030)
  --latency-ms N  add N ms to every Web API call (like the trip to Slack)
  --post-rate N   allow N chat.postMessage per second and channel, then answer ratelimited
  --tier3 N       allow N calls per minute of each Tier 3 method (chat.update, reactions.add,
                  conversations.history/replies, pins.add), then answer ratelimited
  --scopes A,B    the scopes the token was granted (x-oauth-scopes; default: the manifest's)
  --uninvited C   a channel that exists but the bot was not invited to
  --quiet         do not print messages as they are posted
Accepts the token xoxb-sandbox-demo-token; the channel is C0PRIVWATCH.";

#[tokio::main]
async fn main() {
    let mut config = SandboxConfig {
        echo: true,
        ..SandboxConfig::default()
    };
    let mut port: u16 = 3030;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| fail(&format!("{name} needs a number")))
        };
        match arg.as_str() {
            "--port" => port = number("--port") as u16,
            "--latency-ms" => config.latency = Duration::from_millis(number("--latency-ms")),
            "--post-rate" => config.post_rate_per_channel = number("--post-rate") as u32,
            "--tier3" => config.tier3_per_minute = number("--tier3") as u32,
            "--quiet" => config.echo = false,
            "--scopes" => {
                let list = args.next().unwrap_or_else(|| fail("--scopes needs a list"));
                config.scopes = list
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            "--uninvited" => {
                let channel = args
                    .next()
                    .unwrap_or_else(|| fail("--uninvited needs a channel"));
                config.channels_without_bot.push(channel);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    let sandbox = Sandbox::start(config, port)
        .await
        .unwrap_or_else(|e| fail(&format!("cannot listen on 127.0.0.1:{port}: {e}")));
    println!(
        "slack-sandbox: Web API at {} (token {DEMO_TOKEN}, channel {DEMO_CHANNEL}); channel page at http://{}/",
        sandbox.api_url(),
        sandbox.addr
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

fn fail(message: &str) -> ! {
    eprintln!("slack-sandbox: {message}\n{USAGE}");
    std::process::exit(2)
}
