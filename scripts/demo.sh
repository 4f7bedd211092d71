#!/usr/bin/env bash
# make demo: privwatch end to end on this machine, with no AWS account and no Slack workspace.
# Starts the Slack sandbox and `cargo lambda watch`, invokes the function with every fixture
# through `cargo lambda invoke --data-file`, prints the channel transcript, and stops both.
# KEEP_OPEN=1 leaves the sandbox page up afterwards (make sandbox).
set -euo pipefail
cd "$(dirname "$0")/.."

SANDBOX_PORT="${SANDBOX_PORT:-3030}"
WATCH_PORT="${WATCH_PORT:-9000}"
LOG_DIR="${LOG_DIR:-target/demo}"
mkdir -p "$LOG_DIR"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_for_port() { # host port what seconds
  for _ in $(seq 1 $(( $4 * 10 ))); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "demo: $3 did not start on $1:$2 (see $LOG_DIR)" >&2
  return 1
}

echo "==> building privwatch and the Slack sandbox"
cargo build --quiet --workspace --bins

echo "==> starting the Slack sandbox on http://127.0.0.1:$SANDBOX_PORT/"
target/debug/slack-sandbox --port "$SANDBOX_PORT" --quiet >"$LOG_DIR/sandbox.log" 2>&1 &
pids+=($!)
wait_for_port 127.0.0.1 "$SANDBOX_PORT" "the Slack sandbox" 20

echo "==> starting cargo lambda watch on 127.0.0.1:$WATCH_PORT"
cargo lambda watch --quiet --ignore-changes -A 127.0.0.1 -P "$WATCH_PORT" \
  --env-var "SLACK_CHANNEL_ID=C0PRIVWATCH" \
  --env-var "SLACK_BOT_TOKEN=xoxb-sandbox-demo-token" \
  --env-var "SLACK_API_URL=http://127.0.0.1:$SANDBOX_PORT/api" \
  --env-var "ACCOUNT_NAME=${ACCOUNT_NAME:-demo-prod}" \
  --env-var "MESSAGE_LANGUAGE=${MESSAGE_LANGUAGE:-en}" \
  --env-var "AWS_LAMBDA_LOG_FORMAT=JSON" \
  --env-var "AWS_LAMBDA_LOG_LEVEL=${AWS_LAMBDA_LOG_LEVEL:-info}" \
  >"$LOG_DIR/watch.log" 2>&1 &
pids+=($!)
wait_for_port 127.0.0.1 "$WATCH_PORT" "cargo lambda watch" 120

echo "==> invoking privwatch with every fixture"
failures=0
for file in fixtures/*.json fixtures/malformed/*.json; do
  [ "$(basename "$file")" = expected.json ] && continue
  name="${file#fixtures/}"
  if answer=$(cargo lambda invoke privwatch --data-file "$file" -A 127.0.0.1 -P "$WATCH_PORT" 2>&1); then
    case "$file" in
      fixtures/malformed/*) echo "  ✗ $name was accepted but should have been rejected"; failures=$((failures + 1)) ;;
      *) echo "  ✓ $name → $(sed -n 's/.*"outcome":"\([A-Za-z]*\).*/\1/p' <<<"$answer" | head -1)" ;;
    esac
  else
    case "$file" in
      fixtures/malformed/*) echo "  ✓ $name → rejected: $(tr '\n' ' ' <<<"$answer" | grep -o 'errorMessage[^,}]*' | head -1 | cut -c1-140)" ;;
      *) echo "  ✗ $name failed: $answer"; failures=$((failures + 1)) ;;
    esac
  fi
done

echo
echo "==> the Slack channel #C0PRIVWATCH, as a reader sees it"
curl -fsS "http://127.0.0.1:$SANDBOX_PORT/_sandbox/transcript?links=1"
curl -fsS "http://127.0.0.1:$SANDBOX_PORT/_sandbox/state" >"$LOG_DIR/state.json"
curl -fsS "http://127.0.0.1:$SANDBOX_PORT/" >"$LOG_DIR/channel.html"
echo "(function logs: $LOG_DIR/watch.log; channel page saved to $LOG_DIR/channel.html)"

if [ "$failures" -ne 0 ]; then
  echo "demo: $failures fixture(s) did not behave as expected" >&2
  exit 1
fi
if [ "${KEEP_OPEN:-0}" = 1 ]; then
  echo
  echo "The channel page stays at http://127.0.0.1:$SANDBOX_PORT/ — press Ctrl-C to stop."
  wait "${pids[0]}"
fi
