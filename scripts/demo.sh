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
  --env-var "ACCOUNT_NAMES=111122223333=demo-prod,444455556666=demo-dev,222233334444=demo-member" \
  --env-var "MESSAGE_LANGUAGE=${MESSAGE_LANGUAGE:-en}" \
  --env-var "OIDC_OWNERS=repo:example-org/infra:*=<!subteam^S0PLATFORM>" \
  --env-var "JUSTIFY_BUTTON=true" \
  --env-var "ADMIN_PERMISSION_SET_ARNS=arn:aws:sso:::permissionSet/ssoins-72233af8ea2d1f14/ps-ae5d1fa1f80b684e" \
  --env-var "SLACK_SIGNING_SECRET=demo-signing-secret" \
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
  # A near miss that no rule delivers (the admin roles are the rules' decision) never reaches
  # the function: say so instead of invoking it.
  why=$(python3 -c 'import json,sys; e=json.load(open("fixtures/expected.json"))["fixtures"].get(sys.argv[1]); print(e["why"] if e and e.get("rule") is None else "")' "$name")
  if [ -n "$why" ]; then
    echo "  – $name → no rule delivers it ($why)"
    continue
  fi
  if answer=$(cargo lambda invoke privwatch --data-file "$file" -A 127.0.0.1 -P "$WATCH_PORT" 2>&1); then
    case "$file" in
      fixtures/malformed/*) echo "  ✗ $name was accepted but should have been rejected"; failures=$((failures + 1)) ;;
      *) echo "  ✓ $name → $(sed -n 's/.*"outcome":"\([a-z_]*\).*/\1/p' <<<"$answer" | head -1)" ;;
    esac
  else
    case "$file" in
      fixtures/malformed/*) echo "  ✓ $name → rejected: $(grep -m1 -o '×.*' <<<"$answer" | sed 's/^× *//' | cut -c1-150)…" ;;
      *) echo "  ✗ $name failed: $answer"; failures=$((failures + 1)) ;;
    esac
  fi
done

echo
echo "==> the justification loop: alice uses the admin role twice more, bob answers in his thread"
echo "    (purpose and ticket), alice in hers (no ticket), dave with the Justify button, 31 minutes"
echo "    pass, and the scheduled sweep runs"
for n in 1 2; do
  python3 - "$n" >"$LOG_DIR/alice-again-$n.json" <<'PY'
import json, sys
n = int(sys.argv[1])
e = json.load(open("fixtures/saml-google-workspace-admin.json"))
t = f"2026-11-01T10:{2 + 4 * n:02d}:11Z"
e["time"] = t; e["detail"]["eventTime"] = t
e["detail"]["eventID"] = f"4d1e7a10-5c2b-4b7e-8f1a-2c3d4e5f6b0{n}"
print(json.dumps(e))
PY
  answer=$(cargo lambda invoke privwatch --data-file "$LOG_DIR/alice-again-$n.json" -A 127.0.0.1 -P "$WATCH_PORT" 2>&1) \
    || { echo "  ✗ alice's use #$((n + 1)) failed: $answer"; failures=$((failures + 1)); }
  echo "  ✓ alice's use #$((n + 1)) → $(sed -n 's/.*"outcome":"\([a-z_]*\).*/\1/p' <<<"$answer" | head -1)"
done
# The ts of PRINCIPAL's SAML notice, and a reply in its thread as USER.
saml_notice_of() {
  curl -fsS "http://127.0.0.1:$SANDBOX_PORT/_sandbox/state" | python3 -c '
import json, sys
for m in json.load(sys.stdin)["channels"]["C0PRIVWATCH"]:
    p = (m.get("metadata") or {}).get("event_payload", {})
    if m["thread_ts"] is None and p.get("principal") == sys.argv[1] and p.get("kind") == "admin_role_via_saml":
        print(m["ts"]); break' "$1"
}
reply_as() { # user thread_ts text
  curl -fsS -X POST -H 'content-type: application/json' "http://127.0.0.1:$SANDBOX_PORT/_sandbox/post_as_user" \
    -d "$(python3 -c 'import json, sys; print(json.dumps({"user": sys.argv[1], "thread_ts": sys.argv[2], "text": sys.argv[3]}))' "$@")" >/dev/null
}
reply_as U02BOB "$(saml_notice_of bob@example.com)" "Rotating the KMS keys for INC-7: <https://tickets.example/INC-7>"
echo "  ✓ bob answered in his thread"
reply_as U01ALICE "$(saml_notice_of alice@example.com)" "ok, that was me"
echo "  ✓ alice answered in hers, without a ticket"
# dave presses Justify on his notice and submits the modal: Slack's signed requests, through the
# function URL `cargo lambda watch` serves.
python3 - "$SANDBOX_PORT" "$WATCH_PORT" <<'PY' || { echo "  ✗ the Justify button did not work"; failures=$((failures + 1)); }
import hashlib, hmac, json, sys, time, urllib.parse, urllib.request
sandbox, watch = sys.argv[1], sys.argv[2]
state = lambda: json.load(urllib.request.urlopen(f"http://127.0.0.1:{sandbox}/_sandbox/state"))
dave = next(m for m in state()["channels"]["C0PRIVWATCH"]
            if m["thread_ts"] is None and (m.get("metadata") or {}).get("event_payload", {}).get("principal") == "dave@example.com")
def slack(payload):
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(b"demo-signing-secret", b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"http://127.0.0.1:{watch}/lambda-url/privwatch/", data=body, method="POST", headers={
        "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": ts, "x-slack-signature": sig})
    return urllib.request.urlopen(req, timeout=120).status
trigger = json.load(urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{sandbox}/_sandbox/trigger", data=b"", method="POST")))["trigger_id"]
slack({"type": "block_actions", "user": {"id": "U04DAVE"}, "trigger_id": trigger, "channel": {"id": "C0PRIVWATCH"},
       "container": {"type": "message", "message_ts": dave["ts"]}, "actions": [{"action_id": "privwatch_justify"}]})
view = state()["views"][-1]
status = slack({"type": "view_submission", "user": {"id": "U04DAVE"}, "view": {
    "callback_id": view["callback_id"], "private_metadata": view["private_metadata"], "state": {"values": {
        "purpose": {"purpose": {"value": "Restoring the prod database snapshot for INC-12"}},
        "ticket": {"ticket": {"value": "https://tickets.example/INC-12"}}}}}})
assert status == 200, status
print("  ✓ dave justified his with the Justify button (signed requests through the function URL)")
PY
curl -fsS -X POST -H 'content-type: application/json' "http://127.0.0.1:$SANDBOX_PORT/_sandbox/age" -d '{"secs":1860}'
# A sweep acts on at most 20 threads (bounded Slack writes); the schedule runs it every 5
# minutes, so two runs reach every thread of the demo.
for run in 1 2; do
  answer=$(cargo lambda invoke privwatch --data-file fixtures/schedule/sweep.json -A 127.0.0.1 -P "$WATCH_PORT" 2>&1) \
    || { echo "  ✗ the sweep failed: $answer"; failures=$((failures + 1)); }
  echo "  ✓ sweep #$run → $(python3 -c 'import json,sys; d=json.loads(sys.stdin.read())["detail"]; print("looked at %(looked_at)s, justified %(justified)s, escalated %(escalated)s" % d)' <<<"$answer" 2>/dev/null || echo "$answer")"
done

echo
echo "==> the Slack channel #C0PRIVWATCH, as a reader sees it"
curl -fsS "http://127.0.0.1:$SANDBOX_PORT/_sandbox/transcript"
# Each notice's Block Kit Builder preview (a link thousands of characters long) goes to a file.
curl -fsS "http://127.0.0.1:$SANDBOX_PORT/_sandbox/transcript?links=1" \
  | grep -E '^  == |Preview in Block Kit Builder' >"$LOG_DIR/block-kit-links.txt" || true
curl -fsS "http://127.0.0.1:$SANDBOX_PORT/_sandbox/state" >"$LOG_DIR/state.json"
curl -fsS "http://127.0.0.1:$SANDBOX_PORT/" >"$LOG_DIR/channel.html"
echo "(function logs: $LOG_DIR/watch.log; channel page: $LOG_DIR/channel.html;"
echo " Block Kit Builder previews of the notices: $LOG_DIR/block-kit-links.txt)"

if [ "$failures" -ne 0 ]; then
  echo "demo: $failures fixture(s) did not behave as expected" >&2
  exit 1
fi
if [ "${KEEP_OPEN:-0}" = 1 ]; then
  echo
  echo "The channel page stays at http://127.0.0.1:$SANDBOX_PORT/ — press Ctrl-C to stop."
  wait "${pids[0]}"
fi
