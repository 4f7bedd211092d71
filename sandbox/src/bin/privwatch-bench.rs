//! `make bench`: the release `privwatch` binary under a local Lambda Runtime API, against the
//! Slack sandbox with a latency per call, the way Lambda runs it. Prints a Markdown table.
//!
//! usage: privwatch-bench BINARY FIXTURES_DIR [--latency-ms 50] [--runs 15] [--events 100]
//!        [--cpu-events 1000] [--burst 100] [--zip PATH] [--secret-arn ARN --aws-endpoint URL]

use serde_json::Value;
use slack_sandbox::runtime_api::RuntimeApi;
use slack_sandbox::{Sandbox, SandboxConfig, DEMO_CHANNEL, DEMO_TOKEN};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

struct Options {
    binary: PathBuf,
    fixtures: PathBuf,
    latency: Duration,
    runs: usize,
    events: usize,
    cpu_events: usize,
    burst: usize,
    zip: Option<PathBuf>,
    secret_arn: Option<String>,
    aws_endpoint: Option<String>,
    archive_bucket: Option<String>,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let binary = PathBuf::from(args.next().expect("BINARY"));
    let fixtures = PathBuf::from(args.next().expect("FIXTURES_DIR"));
    let mut o = Options {
        binary,
        fixtures,
        latency: Duration::from_millis(50),
        runs: 15,
        events: 100,
        cpu_events: 1000,
        burst: 100,
        zip: None,
        secret_arn: None,
        aws_endpoint: None,
        archive_bucket: None,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--latency-ms" => o.latency = Duration::from_millis(value.parse().unwrap()),
            "--runs" => o.runs = value.parse().unwrap(),
            "--events" => o.events = value.parse().unwrap(),
            "--cpu-events" => o.cpu_events = value.parse().unwrap(),
            "--burst" => o.burst = value.parse().unwrap(),
            "--zip" => o.zip = Some(value.into()),
            "--secret-arn" => o.secret_arn = Some(value),
            "--aws-endpoint" => o.aws_endpoint = Some(value),
            "--archive-bucket" => o.archive_bucket = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    o
}

/// The privileged fixtures, as bytes.
fn privileged_fixtures(dir: &Path) -> Vec<Value> {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let mut names: Vec<String> = manifest["fixtures"]
        .as_object()
        .unwrap()
        .iter()
        // What a rule delivers and privwatch reports.
        .filter(|(_, e)| e["kind"].is_string() && e["rule"].is_string())
        .map(|(f, _)| f.clone())
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| serde_json::from_str(&std::fs::read_to_string(dir.join(n)).unwrap()).unwrap())
        .collect()
}

fn with_event_id(event: &Value, id: String) -> Vec<u8> {
    let mut event = event.clone();
    if event["detail"].get("sharedEventID").is_some() {
        // Copies of one record are separate calls, not the two records of one cross-account call.
        event["detail"]["sharedEventID"] = Value::String(format!("shared-{id}"));
    }
    event["detail"]["eventID"] = Value::String(id);
    serde_json::to_vec(&event).unwrap()
}

fn spawn(o: &Options, runtime: &RuntimeApi, sandbox: &Sandbox, token_from_secret: bool) -> Child {
    spawn_with(o, runtime, sandbox, token_from_secret, false)
}

fn spawn_with(
    o: &Options,
    runtime: &RuntimeApi,
    sandbox: &Sandbox,
    token_from_secret: bool,
    archive: bool,
) -> Child {
    let mut command = function_command(o, runtime, &sandbox.api_url());
    if archive {
        command
            .env("ARCHIVE_BUCKET", o.archive_bucket.as_ref().unwrap())
            .env("AWS_ENDPOINT_URL", o.aws_endpoint.as_ref().unwrap())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing");
    }
    if token_from_secret {
        command
            .env_remove("SLACK_BOT_TOKEN")
            .env("SLACK_TOKEN_SECRET_ARN", o.secret_arn.as_ref().unwrap())
            .env("AWS_ENDPOINT_URL", o.aws_endpoint.as_ref().unwrap())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing");
    }
    command.spawn().expect("start the privwatch binary")
}

/// The release binary with Lambda's environment, the demo token and `slack_api_url`.
fn function_command(o: &Options, runtime: &RuntimeApi, slack_api_url: &str) -> Command {
    let mut command = Command::new(&o.binary);
    command
        .env_clear()
        .env("AWS_LAMBDA_FUNCTION_NAME", "privwatch")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/privwatch")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_LAMBDA_RUNTIME_API", runtime.endpoint())
        .env("SLACK_CHANNEL_ID", DEMO_CHANNEL)
        .env("SLACK_BOT_TOKEN", DEMO_TOKEN)
        .env("SLACK_API_URL", slack_api_url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    command
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

/// user+sys CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0 // USER_HZ on Linux
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb / 1024.0
}

async fn sandbox_with(latency: Duration, post_rate: u32) -> Sandbox {
    Sandbox::start(
        SandboxConfig {
            latency,
            post_rate_per_channel: post_rate,
            ..SandboxConfig::default()
        },
        0,
    )
    .await
    .unwrap()
}

struct PerEvent {
    walls: Vec<f64>,
    calls_per_event: f64,
    cpu_quiet_ms: f64,
    cpu_busy_ms: f64,
    notices_busy: usize,
    rss: f64,
}

/// Warm per-event figures in one process. Quiet channel: at most 10 notices in the history
/// privwatch searches (a normal day); busy channel: every notice of the run stays (a burst).
async fn per_event(o: &Options, latency: Duration, events: usize) -> PerEvent {
    per_event_with(o, latency, events, false).await
}

async fn per_event_with(o: &Options, latency: Duration, events: usize, archive: bool) -> PerEvent {
    let fixtures = privileged_fixtures(&o.fixtures);
    let sandbox = sandbox_with(latency, 0).await;
    let runtime = RuntimeApi::start(Duration::from_secs(60)).await.unwrap();
    let child = spawn_with(o, &runtime, &sandbox, false, archive);
    let pid = child.id().unwrap();
    // The first event (the cold one) is not counted.
    runtime
        .invoke(with_event_id(&fixtures[0], "bench-warm".into()))
        .await
        .unwrap();
    let mut calls = 0;
    let cpu_before = cpu_seconds(pid);
    let mut walls = Vec::new();
    for i in 0..events {
        if i % 10 == 0 {
            calls += sandbox.calls().len();
            sandbox.reset();
        }
        let event = with_event_id(&fixtures[i % fixtures.len()], format!("bench-{i:05}"));
        let started = Instant::now();
        let answer = runtime.invoke(event).await;
        walls.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(answer.is_ok(), "event {i} failed: {answer:?}");
    }
    calls += sandbox.calls().len();
    let cpu_quiet_ms = (cpu_seconds(pid) - cpu_before) * 1000.0 / events as f64;
    sandbox.reset();
    let cpu_before = cpu_seconds(pid);
    for i in 0..events {
        let event = with_event_id(&fixtures[i % fixtures.len()], format!("busy-{i:05}"));
        assert!(runtime.invoke(event).await.is_ok(), "busy event {i} failed");
    }
    PerEvent {
        walls,
        calls_per_event: calls as f64 / events as f64,
        cpu_quiet_ms,
        cpu_busy_ms: (cpu_seconds(pid) - cpu_before) * 1000.0 / events as f64,
        notices_busy: sandbox.top_level(DEMO_CHANNEL).len(),
        rss: peak_rss_mb(pid),
    }
}

/// Median time from process start to its first poll for an event.
async fn init_ms(o: &Options, token_from_secret: bool) -> f64 {
    let mut samples = Vec::new();
    for _ in 0..o.runs {
        let sandbox = sandbox_with(o.latency, 0).await;
        let runtime = RuntimeApi::start(Duration::from_secs(60)).await.unwrap();
        let started = Instant::now();
        let mut child = spawn(o, &runtime, &sandbox, token_from_secret);
        while runtime.first_poll().is_none() {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        samples.push((runtime.first_poll().unwrap() - started).as_secs_f64() * 1000.0);
        let _ = child.kill().await;
    }
    median(samples)
}

/// Median time from process start until the first bytes of its TLS handshake reach a listener
/// standing in for slack.com: building the ClientHello is the first use of aws-lc's RNG.
async fn first_client_hello_ms(o: &Options) -> f64 {
    use tokio::io::AsyncReadExt;
    let mut samples = Vec::new();
    for _ in 0..o.runs {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let runtime = RuntimeApi::start(Duration::from_secs(60)).await.unwrap();
        let mut command = function_command(o, &runtime, &format!("https://127.0.0.1:{port}/api"));
        let started = Instant::now();
        let mut child = command.spawn().expect("start the privwatch binary");
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut first = [0u8; 5];
        socket.read_exact(&mut first).await.unwrap();
        assert_eq!(first[0], 0x16, "a TLS handshake record");
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        let _ = child.kill().await;
    }
    median(samples)
}

#[tokio::main]
async fn main() {
    let o = options();
    let fixtures = privileged_fixtures(&o.fixtures);
    let latency_ms = o.latency.as_millis();
    let mut rows: Vec<(String, String, String)> = Vec::new();

    eprintln!("bench: init with SLACK_BOT_TOKEN ({} runs)…", o.runs);
    let init_env = init_ms(&o, false).await;
    rows.push((
        "init, token from the environment (median)".into(),
        format!("{init_env:.1} ms"),
        "≤ 15 ms".into(),
    ));
    eprintln!(
        "bench: time to the first TLS ClientHello ({} runs)…",
        o.runs
    );
    let hello = first_client_hello_ms(&o).await;
    rows.push((
        "process start → first TLS ClientHello to Slack (median; its RNG seeding is aws-lc's entropy start-up)".into(),
        format!("{hello:.1} ms"),
        "—".into(),
    ));
    if o.secret_arn.is_some() {
        eprintln!("bench: init with the token from Secrets Manager (moto)…");
        let init_secret = init_ms(&o, true).await;
        rows.push((
            "init, token from Secrets Manager on a local moto (median)".into(),
            format!("{init_secret:.1} ms"),
            "—".into(),
        ));
    }

    eprintln!(
        "bench: {} events, {latency_ms} ms per Slack call…",
        o.events
    );
    let timed = per_event(&o, o.latency, o.events).await;
    // CPU is counted in /proc ticks of 10 ms: many events make the per-event figure precise,
    // and a short latency keeps that quick (waiting for Slack costs no CPU).
    eprintln!(
        "bench: {} events for CPU and memory, 5 ms per Slack call…",
        o.cpu_events
    );
    let counted = per_event(&o, Duration::from_millis(5), o.cpu_events).await;
    let PerEvent {
        walls,
        calls_per_event,
        ..
    } = timed;
    let PerEvent {
        cpu_quiet_ms,
        cpu_busy_ms,
        notices_busy,
        rss,
        ..
    } = counted;
    let wall = median(walls);
    let sequential = (wall / latency_ms as f64).round();
    rows.push((
        format!("per event: handler wall time (median, {latency_ms} ms per Slack call)"),
        format!("{wall:.1} ms"),
        "—".into(),
    ));
    rows.push((
        "per event: sequential Slack round trips on the critical path (wall time ÷ latency per call)".into(),
        format!("{sequential} (of {calls_per_event:.1} calls)"),
        "≤ 3".into(),
    ));
    rows.push((
        "per event: CPU, user+sys, quiet channel (≤ 10 recent notices)".into(),
        format!("{cpu_quiet_ms:.2} ms"),
        "≤ 1 ms".into(),
    ));
    rows.push((
        format!(
            "per event: CPU, user+sys, busy channel ({notices_busy} notices in the dedupe window)"
        ),
        format!("{cpu_busy_ms:.2} ms"),
        "—".into(),
    ));
    if o.archive_bucket.is_some() {
        eprintln!(
            "bench: {} events with the S3 archive (moto), {latency_ms} ms per Slack call…",
            o.events
        );
        let archived = per_event_with(&o, o.latency, o.events, true).await;
        let wall_archived = median(archived.walls);
        rows.push((
            format!("per event with the S3 archive on a local moto: handler wall time (median, {latency_ms} ms per Slack call)"),
            format!("{wall_archived:.1} ms"),
            "the critical path unchanged".into(),
        ));
        rows.push((
            "per event with the S3 archive: sequential Slack round trips on the critical path"
                .into(),
            format!("{}", (wall_archived / latency_ms as f64).round()),
            format!("= {sequential}"),
        ));
    }
    rows.push(("peak RSS".into(), format!("{rss:.1} MB"), "≤ 20 MB".into()));
    if let Some(zip) = &o.zip {
        let size = std::fs::metadata(zip)
            .map(|m| m.len() as f64 / 1_048_576.0)
            .unwrap_or(f64::NAN);
        rows.push((
            "zip (`cargo lambda build --release --arm64`)".into(),
            format!("{size:.2} MB"),
            "≤ 4 MB".into(),
        ));
    }

    if o.burst > 0 {
        eprintln!(
            "bench: burst of {} events, Slack allowing 1 post/s/channel…",
            o.burst
        );
        let sandbox = sandbox_with(o.latency, 1).await;
        let runtime = RuntimeApi::start(Duration::from_secs(120)).await.unwrap();
        let _child = spawn(&o, &runtime, &sandbox, false);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..o.burst {
            let runtime = runtime.clone();
            let event = with_event_id(&fixtures[i % fixtures.len()], format!("burst-{i:05}"));
            tasks.push(tokio::spawn(async move { runtime.invoke(event).await }));
        }
        let mut failed = 0;
        for task in tasks {
            if task.await.unwrap().is_err() {
                failed += 1;
            }
        }
        let drained = started.elapsed().as_secs_f64();
        let rate_limited = sandbox.calls().iter().filter(|c| c.status == 429).count();
        let notices = sandbox.top_level(DEMO_CHANNEL).len();
        // Every event has exactly one line (the first reply, or a coalesced repeat) in a thread.
        let mut lines: Vec<String> = sandbox
            .messages(DEMO_CHANNEL)
            .iter()
            .filter_map(|m| m.metadata.as_ref())
            .filter(|md| md["event_type"] == "privileged_use_reply")
            .filter_map(|md| md["event_payload"]["event_id"].as_str().map(str::to_string))
            .collect();
        lines.sort();
        lines.dedup();
        rows.push((
            format!("burst: {} events at once (10 people/kinds), Slack at 1 post/s/channel", o.burst),
            format!(
                "{} events in {notices} coalesced notices, each event one thread line; drained in {drained:.0} s; {rate_limited} × 429; {failed} invocations failed",
                lines.len()
            ),
            "all delivered".into(),
        ));
        assert_eq!(
            lines.len(),
            o.burst,
            "every burst event got its thread line"
        );
    }

    println!("| measure | result | target |");
    println!("|---|---|---|");
    for (what, value, target) in rows {
        println!("| {what} | {value} | {target} |");
    }
}
