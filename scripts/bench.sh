#!/usr/bin/env bash
# make bench: cold start, per-event cost, memory, Slack round trips, zip size and a rate-limited
# burst, measured on the release binary (bench/src/main.rs), and
# written into docs/performance.md between the bench markers.
set -euo pipefail
cd "$(dirname "$0")/.."
LATENCY_MS="${LATENCY_MS:-50}" RUNS="${RUNS:-15}" EVENTS="${EVENTS:-100}" CPU_EVENTS="${CPU_EVENTS:-1000}" BURST="${BURST:-100}"

echo "==> building the release binary and the bench"
cargo build --quiet --release --bin privwatch
cargo build --quiet --release -p privwatch-bench

run() {
  local arn
  arn=$(aws secretsmanager create-secret --name "privwatch-bench-$$" \
    --secret-string '{"bot_token":"xoxb-sandbox-demo-token"}' --query ARN --output text)
  local bucket="privwatch-bench-archive-$$"
  aws s3api create-bucket --bucket "$bucket" >/dev/null
  target/release/privwatch-bench target/release/privwatch fixtures --archive-bucket "$bucket" \
    --latency-ms "$LATENCY_MS" --runs "$RUNS" --events "$EVENTS" --cpu-events "$CPU_EVENTS" --burst "$BURST" \
    --zip target/lambda/arm64/privwatch/bootstrap.zip \
    --secret-arn "$arn" --aws-endpoint "$AWS_ENDPOINT_URL"
}
export -f run
export LATENCY_MS RUNS EVENTS CPU_EVENTS BURST
scripts/with-moto.sh bash -c run | tee target/bench.md

python3 - <<'PY'
import pathlib, platform, subprocess
readme = pathlib.Path("docs/performance.md")
text = readme.read_text()
start, end = "<!-- bench:start -->", "<!-- bench:end -->"
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
table = pathlib.Path("target/bench.md").read_text().strip()
block = f"{start}\nMeasured with `make bench` on {platform.machine()} ({cpu}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores):\n\n{table}\n{end}"
if start in text:
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    readme.write_text(before + block + after)
    print("docs/performance.md: bench table updated")
PY
