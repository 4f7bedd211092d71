//! `make bench`: the release `privwatch` binary under a local Lambda Runtime API, against the
//! Slack sandbox with a latency per call, the way Lambda runs it. Prints a Markdown table.
//!
//! usage: privwatch-bench BINARY FIXTURES_DIR [--latency-ms 50] [--runs 15] [--events 100]
//!        [--cpu-events 1000] [--burst 100] [--zip PATH] [--secret-arn ARN --aws-endpoint URL]

use serde_json::{json, Value};
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
    /// A burst by one person: this many uses within a minute (with the archive).
    person_burst: usize,
    /// A flood: this many uses by `flood_people` people in `flood_accounts` accounts within
    /// `flood_seconds` (with the archive).
    flood_events: usize,
    flood_people: usize,
    flood_accounts: usize,
    flood_seconds: f64,
    /// `--show-burst N --port P`: only a burst of N uses by one person within 20 s, then the
    /// sandbox page stays open on port P (the browser test's screenshot of a flooded thread).
    show_burst: usize,
    port: u16,
    /// `--heartbeats-only N`: only N heartbeats arriving together at a hub (one table row).
    heartbeats_only: usize,
    /// An admin session's burst: this many write calls within a minute (with the archive).
    session_calls: usize,
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
        person_burst: 500,
        flood_events: 10_000,
        flood_people: 100,
        flood_accounts: 10,
        flood_seconds: 300.0,
        show_burst: 0,
        port: 0,
        heartbeats_only: 0,
        session_calls: 500,
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
            "--person-burst" => o.person_burst = value.parse().unwrap(),
            "--flood-events" => o.flood_events = value.parse().unwrap(),
            "--flood-people" => o.flood_people = value.parse().unwrap(),
            "--flood-accounts" => o.flood_accounts = value.parse().unwrap(),
            "--flood-seconds" => o.flood_seconds = value.parse().unwrap(),
            "--show-burst" => o.show_burst = value.parse().unwrap(),
            "--port" => o.port = value.parse().unwrap(),
            "--heartbeats-only" => o.heartbeats_only = value.parse().unwrap(),
            "--session-calls" => o.session_calls = value.parse().unwrap(),
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

/// 200 heartbeats in one minute (the spokes of one StackSet operation fire together) into a hub:
/// how long the one-at-a-time function takes to drain them, and the Slack calls they cost,
/// against a sandbox enforcing Slack's Tier 3 limit.
async fn heartbeats(o: &Options, latency: Duration, spokes: usize) -> (f64, usize, usize) {
    let sandbox = Sandbox::start(
        SandboxConfig {
            latency,
            tier3_per_minute: 50,
            ..SandboxConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let runtime = RuntimeApi::start(Duration::from_secs(60)).await.unwrap();
    let mut command = function_command(o, &runtime, &sandbox.api_url());
    command
        .env("ORGANIZATION_ID", "o-bench00000")
        .env(
            "SPOKE_REGIONS",
            "us-east-1,eu-west-1,ap-northeast-1,us-west-2",
        )
        .env("HEARTBEAT_MINUTES", "60")
        // No Organizations here: the hub falls back to ACCOUNT_NAMES for names.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing");
    let _child = command.spawn().expect("start the privwatch binary");
    let regions = ["us-east-1", "eu-west-1", "ap-northeast-1", "us-west-2"];
    let now = unix_now() as i64;
    let event = |i: usize, at: i64| {
        let (account, region) = (
            format!("{:012}", 100_000_000_000u64 + (i / 4) as u64),
            regions[i % 4],
        );
        serde_json::to_vec(&json!({
            "version": "0", "id": format!("hb-{i}-{at}"), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": account, "time": rfc3339(at), "region": region,
            "resources": [format!("arn:aws:events:{region}:{account}:rule/privwatch-heartbeat")],
            "detail": {}
        }))
        .unwrap()
    };
    // The spokes were heard an hour ago; now their heartbeats arrive together.
    for i in 0..spokes {
        assert!(runtime.invoke(event(i, now - 3600)).await.is_ok());
    }
    sandbox.reset_calls();
    let started = Instant::now();
    for i in 0..spokes {
        let answer = runtime.invoke(event(i, now)).await;
        assert!(answer.is_ok(), "heartbeat {i}: {answer:?}");
    }
    let calls = sandbox.calls();
    let limited = calls
        .iter()
        .filter(|c| c.status == 429 || c.error.as_deref() == Some("ratelimited"))
        .count();
    (started.elapsed().as_secs_f64(), calls.len(), limited)
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
    if o.show_burst > 0 {
        let (r, sandbox) = flood(
            &o,
            o.show_burst,
            1,
            1,
            20.0,
            Duration::from_secs(300),
            o.port,
        )
        .await;
        println!(
            "flooded thread: {} notice counting {}, {} lines and {} summary line, settled {}; page at http://{}/",
            r.notices, r.counted, r.max_lines, r.summaries, settled(r.settled_s), sandbox.addr
        );
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
    if o.heartbeats_only > 0 {
        let (drained, calls, limited) = heartbeats(&o, o.latency, o.heartbeats_only).await;
        println!(
            "| {} heartbeats arriving together at a warm hub, the round after the spokes were first heard ({} ms per Slack call, Tier 3 at 50/min): drained in, Slack calls, rate-limited answers | {drained:.1} s, {calls} calls, {limited} × 429 | no 429 |",
            o.heartbeats_only,
            o.latency.as_millis()
        );
        return;
    }
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
            format!("per event with the S3 archive on a local moto: handler wall time (median, {latency_ms} ms per Slack call; the fixtures repeat, and a repeat is counted in S3 only)"),
            format!("{wall_archived:.1} ms"),
            "—".into(),
        ));
        rows.push((
            "per event with the S3 archive: sequential Slack round trips on the critical path (median)"
                .into(),
            format!("{}", (wall_archived / latency_ms as f64).round()),
            format!("≤ {sequential} (a new series), 0 (a repeat)"),
        ));
    }
    eprintln!("bench: 200 heartbeats in one minute into a hub, {latency_ms} ms per Slack call…");
    let (drained, hb_calls, hb_limited) = heartbeats(&o, o.latency, 200).await;
    rows.push((
        format!("200 heartbeats arriving together at a warm hub, the round after the spokes were first heard ({latency_ms} ms per Slack call, Tier 3 at 50/min): drained in, Slack calls, rate-limited answers"),
        format!("{drained:.1} s, {hb_calls} calls, {hb_limited} × 429"),
        "no 429".into(),
    ));
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

    if o.archive_bucket.is_some() && o.person_burst > 0 {
        eprintln!(
            "bench: a burst of {} uses by one person within a minute, with the archive…",
            o.person_burst
        );
        let (r, _) = flood(&o, o.person_burst, 1, 1, 60.0, Duration::from_secs(600), 0).await;
        rows.push((
            format!("burst by one person: {} uses within 60 s (archive on; Slack at 1 post/s/channel and Tier 3 at 50/min, {latency_ms} ms per call)", o.person_burst),
            format!(
                "{} notice counting {}; {} own thread line(s) (the ask first) + {} rolling summary line; settled {} after the last use; {} × 429 (each waited out); {} invocations failed once, {} for good",
                r.notices, r.counted, r.max_lines, r.summaries, settled(r.settled_s), r.rate_limited, r.failed_once, r.failed_for_good
            ),
            "1 notice; settled ≤ 120 s".into(),
        ));
        if o.session_calls > 0 {
            eprintln!(
                "bench: an admin session making {} write calls within a minute, with the archive…",
                o.session_calls
            );
            let r = session_burst(&o, o.session_calls, 60.0, Duration::from_secs(600)).await;
            rows.push((
                format!("admin session: {} write calls within 60 s after its SAML start (archive on; same limits)", o.session_calls),
                format!(
                    "{} notice, {} activity line counting {}; line current {} after the last call; {} posts and {} updates in all; {} × 429 (each waited out); {} invocations failed once, {} for good",
                    r.notices, r.lines, r.counted, settled(r.settled_s), r.posts, r.updates, r.rate_limited, r.failed_once, r.failed_for_good
                ),
                "1 notice, 1 line; current ≤ 120 s".into(),
            ));
        }
        eprintln!(
            "bench: a flood of {} uses by {} people in {} accounts within {} s, with the archive…",
            o.flood_events, o.flood_people, o.flood_accounts, o.flood_seconds
        );
        let (r, _) = flood(
            &o,
            o.flood_events,
            o.flood_people,
            o.flood_accounts,
            o.flood_seconds,
            Duration::from_secs(1200),
            0,
        )
        .await;
        rows.push((
            format!("flood: {} uses by {} people in {} accounts within {:.0} s, one channel (same limits)", o.flood_events, o.flood_people, o.flood_accounts, o.flood_seconds),
            format!(
                "{} notices counting {}; each person's notice {:.0} s (median) / {:.0} s (worst) after their first use; settled {} after the last use; {} × 429 (each waited out); {} invocations failed once, {} for good",
                r.notices, r.counted, r.median_notice_s, r.worst_notice_s, settled(r.settled_s), r.rate_limited, r.failed_once, r.failed_for_good
            ),
            "notice ≤ ~120 s; settled ≤ 15 min; 0 failed for good".into(),
        ));
    }

    println!("| measure | result | target |");
    println!("|---|---|---|");
    for (what, value, target) in rows {
        println!("| {what} | {value} | {target} |");
    }
}

fn settled(s: Option<f64>) -> String {
    match s {
        Some(s) => format!("{s:.0} s"),
        None => "NOT within the limit".into(),
    }
}

/// `unix` seconds as RFC 3339 (UTC), as CloudTrail writes `eventTime`.
fn rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// An admin-role use (`assume-role-admin.json`) by `person` in `account` at `unix` seconds.
fn person_event(base: &str, account: &str, person: &str, id: &str, unix: i64) -> Vec<u8> {
    let text = base
        .replace("111122223333", account)
        .replace("dave@example.com", &format!("{person}@example.com"))
        .replace("dave-admin", &format!("{person}-admin"));
    let mut event: Value = serde_json::from_str(&text).unwrap();
    let time = rfc3339(unix);
    event["time"] = Value::String(time.clone());
    event["detail"]["eventTime"] = Value::String(time);
    event["detail"]["eventID"] = Value::String(id.to_string());
    serde_json::to_vec(&event).unwrap()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One series' view in the channel: its notice's count and its summary line's.
#[derive(Debug, Default, Clone)]
struct Shown {
    principal: String,
    notice_posted: f64,
    count: u64,
    summary: Option<u64>,
    lines: usize,
}

fn shown(sandbox: &Sandbox) -> Vec<Shown> {
    let messages = sandbox.messages(DEMO_CHANNEL);
    let mut series: Vec<(String, Shown)> = Vec::new();
    for m in messages.iter().filter(|m| m.thread_ts.is_none()) {
        let Some(md) = m
            .metadata
            .as_ref()
            .filter(|md| md["event_type"] == "privileged_use")
        else {
            continue;
        };
        let p = &md["event_payload"];
        series.push((
            m.ts.clone(),
            Shown {
                principal: p["principal"].as_str().unwrap_or_default().to_string(),
                notice_posted: m.ts.parse().unwrap_or(0.0),
                count: p["count"].as_u64().unwrap_or(0),
                ..Default::default()
            },
        ));
    }
    for m in messages.iter().filter(|m| m.thread_ts.is_some()) {
        let Some((_, s)) = series
            .iter_mut()
            .find(|(ts, _)| Some(ts) == m.thread_ts.as_ref())
        else {
            continue;
        };
        match m.metadata.as_ref().map(|md| &md["event_type"]) {
            Some(t) if t == "privileged_use_reply" => s.lines += 1,
            Some(t) if t == "privileged_use_summary" => {
                s.summary = m.metadata.as_ref().unwrap()["event_payload"]["count"].as_u64()
            }
            _ => {}
        }
    }
    series.into_iter().map(|(_, s)| s).collect()
}

/// What a flood (or a burst) came to.
struct FloodResult {
    notices: usize,
    counted: u64,
    worst_notice_s: f64,
    median_notice_s: f64,
    settled_s: Option<f64>,
    rate_limited: usize,
    failed_once: usize,
    failed_for_good: usize,
    max_lines: usize,
    summaries: usize,
}

/// `events` uses by `people` people in `accounts` accounts, spread evenly over `seconds`, person
/// p starting at about p × seconds / people; the catch-up schedule every minute; failed
/// invocations retried a minute later, twice, as Lambda does. Waits up to `settle_limit` after
/// the last event for every notice and summary line to show its full count.
async fn flood(
    o: &Options,
    events: usize,
    people: usize,
    accounts: usize,
    seconds: f64,
    settle_limit: Duration,
    port: u16,
) -> (FloodResult, Sandbox) {
    let base = std::fs::read_to_string(o.fixtures.join("assume-role-admin.json")).unwrap();
    let sandbox = Sandbox::start(
        SandboxConfig {
            latency: o.latency,
            post_rate_per_channel: 1,
            tier3_per_minute: 50,
            ..SandboxConfig::default()
        },
        port,
    )
    .await
    .unwrap();
    let runtime = RuntimeApi::start(Duration::from_secs(60)).await.unwrap();
    let child = spawn_with(o, &runtime, &sandbox, false, true);
    let tag = format!("{}-{}", std::process::id(), events);
    let start = Instant::now();
    let start_unix = unix_now();
    let spacing = seconds / events as f64;
    let mut first_sent: Vec<Option<f64>> = vec![None; people];
    let failures = std::sync::Arc::new(std::sync::Mutex::new((0usize, 0usize)));
    let mut tasks = Vec::new();
    // Person p's first use comes after about p/people of the events; then those started take turns.
    let mut plan = Vec::new();
    let mut has_begun = vec![false; people];
    for i in 0..events {
        let started = (1 + i * people / events).min(people);
        let p = if has_begun[started - 1] {
            i % started
        } else {
            started - 1
        };
        has_begun[p] = true;
        plan.push(p);
    }
    for (i, p) in plan.iter().copied().enumerate() {
        let at = Duration::from_secs_f64(i as f64 * spacing);
        let unix = start_unix + at.as_secs_f64();
        if first_sent[p].is_none() {
            first_sent[p] = Some(unix);
        }
        let account = format!(
            "{:012}",
            100_000_000_000u64 + (p % accounts) as u64 * 1_111_111
        );
        let event = person_event(
            &base,
            &account,
            &match people {
                1 => "erin".to_string(),
                _ => format!("flood{tag}-p{p:03}"),
            },
            &format!("flood-{tag}-{i:06}"),
            unix as i64,
        );
        let runtime = runtime.clone();
        let failures = failures.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until((start + at).into()).await;
            for attempt in 0..3 {
                if attempt > 0 {
                    // Lambda retries a failed asynchronous invocation a minute or more later.
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                if runtime.invoke(event.clone()).await.is_ok() {
                    return;
                }
                failures.lock().unwrap().0 += 1;
            }
            failures.lock().unwrap().1 += 1;
        }));
    }
    // The catch-up schedule (`<function>-catchup`, every minute).
    let schedule = {
        let runtime = runtime.clone();
        let event = serde_json::to_vec(&serde_json::json!({
            "version": "0", "id": "catchup", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "111122223333", "time": rfc3339(start_unix as i64), "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:111122223333:rule/privwatch-catchup"], "detail": {}
        }))
        .unwrap();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let _ = runtime.invoke(event.clone()).await;
            }
        })
    };
    let last_sent = start + Duration::from_secs_f64(seconds);
    let mut settled_s = None;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = Instant::now();
        if now < last_sent {
            continue;
        }
        let series = shown(&sandbox);
        let counted: u64 = series.iter().map(|s| s.count).sum();
        let current = series
            .iter()
            .all(|s| s.summary.is_none_or(|c| c == s.count));
        if counted == events as u64 && series.len() == people && current {
            settled_s = Some((now - last_sent).as_secs_f64());
            break;
        }
        if now - last_sent > settle_limit {
            break;
        }
    }
    schedule.abort();
    for task in tasks {
        task.abort();
    }
    let series = shown(&sandbox);
    let mut latencies: Vec<f64> = series
        .iter()
        .filter_map(|s| {
            let p: usize = s
                .principal
                .rsplit("-p")
                .next()?
                .split('@')
                .next()?
                .parse()
                .ok()?;
            Some(s.notice_posted - first_sent.get(p).copied().flatten()?)
        })
        .collect();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (failed_once, failed_for_good) = *failures.lock().unwrap();
    drop(child);
    let result = FloodResult {
        notices: series.len(),
        counted: series.iter().map(|s| s.count).sum(),
        worst_notice_s: latencies.last().copied().unwrap_or(f64::NAN),
        median_notice_s: latencies
            .get(latencies.len() / 2)
            .copied()
            .unwrap_or(f64::NAN),
        settled_s,
        rate_limited: sandbox.calls().iter().filter(|c| c.status == 429).count(),
        failed_once,
        failed_for_good,
        max_lines: series.iter().map(|s| s.lines).max().unwrap_or(0),
        summaries: series.iter().filter(|s| s.summary.is_some()).count(),
    };
    (result, sandbox)
}

struct SessionBurst {
    notices: usize,
    lines: usize,
    counted: u64,
    settled_s: Option<f64>,
    posts: usize,
    updates: usize,
    rate_limited: usize,
    failed_once: usize,
    failed_for_good: usize,
}

/// A `terraform apply` through an admin role: the SAML session's start, then `calls` write calls
/// of that session spread over `seconds`, with the catch-up schedule every minute; until the one
/// activity line counts every call.
async fn session_burst(
    o: &Options,
    calls: usize,
    seconds: f64,
    settle_limit: Duration,
) -> SessionBurst {
    let sandbox = Sandbox::start(
        SandboxConfig {
            latency: o.latency,
            post_rate_per_channel: 1,
            tier3_per_minute: 50,
            ..SandboxConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let runtime = RuntimeApi::start(Duration::from_secs(60)).await.unwrap();
    let child = spawn_with(o, &runtime, &sandbox, false, true);
    let tag = format!("{}-{}", std::process::id(), calls);
    let start_event: Value = serde_json::from_str(
        &std::fs::read_to_string(o.fixtures.join("saml-google-workspace-admin.json")).unwrap(),
    )
    .unwrap();
    let call: Value = serde_json::from_str(
        &std::fs::read_to_string(o.fixtures.join("session-saml-create-user.json")).unwrap(),
    )
    .unwrap();
    let mut start_event = start_event;
    start_event["detail"]["eventID"] = Value::from(format!("session-start-{tag}"));
    runtime
        .invoke(serde_json::to_vec(&start_event).unwrap())
        .await
        .unwrap();
    let start = Instant::now();
    let spacing = seconds / calls as f64;
    let failures = std::sync::Arc::new(std::sync::Mutex::new((0usize, 0usize)));
    let mut tasks = Vec::new();
    for i in 0..calls {
        let at = Duration::from_secs_f64(i as f64 * spacing);
        let mut event = call.clone();
        event["detail"]["eventID"] = Value::from(format!("session-call-{tag}-{i:05}"));
        let event = serde_json::to_vec(&event).unwrap();
        let runtime = runtime.clone();
        let failures = failures.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until((start + at).into()).await;
            for attempt in 0..3 {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                if runtime.invoke(event.clone()).await.is_ok() {
                    return;
                }
                failures.lock().unwrap().0 += 1;
            }
            failures.lock().unwrap().1 += 1;
        }));
    }
    let schedule = {
        let runtime = runtime.clone();
        let event = serde_json::to_vec(&serde_json::json!({
            "version": "0", "id": "catchup", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "111122223333", "time": rfc3339(unix_now() as i64), "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:111122223333:rule/privwatch-catchup"], "detail": {}
        }))
        .unwrap();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let _ = runtime.invoke(event.clone()).await;
            }
        })
    };
    let activity = |sandbox: &Sandbox| -> Vec<u64> {
        sandbox
            .messages(DEMO_CHANNEL)
            .iter()
            .filter(|m| {
                m.metadata
                    .as_ref()
                    .is_some_and(|md| md["event_type"] == "privileged_use_activity")
            })
            .map(|m| {
                m.metadata.as_ref().unwrap()["event_payload"]["total"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .collect()
    };
    let last_sent = start + Duration::from_secs_f64(seconds);
    let mut settled_s = None;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = Instant::now();
        if now < last_sent {
            continue;
        }
        if activity(&sandbox) == [calls as u64] {
            settled_s = Some((now - last_sent).as_secs_f64());
            break;
        }
        if now - last_sent > settle_limit {
            break;
        }
    }
    schedule.abort();
    for task in tasks {
        task.abort();
    }
    let (failed_once, failed_for_good) = *failures.lock().unwrap();
    drop(child);
    let lines = activity(&sandbox);
    let all = sandbox.calls();
    SessionBurst {
        notices: sandbox.top_level(DEMO_CHANNEL).len(),
        lines: lines.len(),
        counted: lines.iter().sum(),
        settled_s,
        posts: all
            .iter()
            .filter(|c| c.method == "chat.postMessage")
            .count(),
        updates: all.iter().filter(|c| c.method == "chat.update").count(),
        rate_limited: all.iter().filter(|c| c.status == 429).count(),
        failed_once,
        failed_for_good,
    }
}
