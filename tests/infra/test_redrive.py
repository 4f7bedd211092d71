"""`make redrive` with AWS CLI v2 and a busy function.

moto cannot run the function (no Docker), so `lambda invoke` is answered by a stand-in `aws` on
PATH that behaves as AWS CLI v2 against a function that runs one invocation at a time: it
refuses a `--payload` not marked raw (v2 reads it as base64 unless told `--cli-binary-format
raw-in-base64-out`, "Invoke a Lambda function synchronously", AWS Lambda Developer Guide), and
throttles the first invocations (`TooManyRequestsException`) as a busy function does. Every other
call goes to the real AWS CLI against moto: the queues, the messages, their deletion.
"""

import json
import os
import shutil
import stat
import subprocess

from test_infra import ROOT, client

SHIM = r"""#!/usr/bin/env bash
# AWS CLI v2 as far as `make redrive` can tell; `lambda invoke` answered as a busy function would.
if [ "${1:-}" = --version ]; then echo "aws-cli/2.17.60 Python/3.12.6 Linux/6.1 exe/x86_64"; exit 0; fi
if [ "${1:-}" = lambda ] && [ "${2:-}" = invoke ]; then
  args=" $* "
  case "$args" in *" --cli-binary-format raw-in-base64-out "*) ;; *)
    echo "Invalid base64: the payload is not base64 (AWS CLI v2)" >&2; exit 252 ;; esac
  n=$(( $(cat "$SHIM_STATE/calls" 2>/dev/null || echo 0) + 1 )); echo "$n" >"$SHIM_STATE/calls"
  if [ "$n" -le 3 ]; then
    echo "An error occurred (TooManyRequestsException) when calling the Invoke operation (reached max retries: 2): Rate Exceeded." >&2
    exit 254
  fi
  payload=""; prev=""
  for a in "$@"; do [ "$prev" = --payload ] && payload="$a"; prev="$a"; done
  echo "$payload" >>"$SHIM_STATE/payloads"
  for a in "$@"; do last="$a"; done
  echo '{"outcome":"delivered"}' >"$last"
  echo None
  exit 0
fi
exec "$REAL_AWS" "$@"
"""


def test_redrive_with_cli_v2_outlasts_a_busy_function(tmp_path):
    assert "AWS_ENDPOINT_URL" in os.environ, "run under scripts/with-moto.sh (make test does)"
    sqs = client("sqs")
    event = json.loads((ROOT / "fixtures/root-signin-success-mfa.json").read_text())
    failures = sqs.create_queue(QueueName="pw-redrive-failures")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="pw-redrive-rule-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=failures, MessageBody=json.dumps(
        {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": event}))
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(event))

    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    shim = shim_dir / "aws"
    shim.write_text(SHIM)
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    state = tmp_path / "state"
    state.mkdir()
    account = tmp_path / "redrive.env"
    account.write_text("HOME_REGION=us-east-1\nSLACK_CHANNEL_ID=C0PRIVWATCH\n"
                       "ADMIN_ROLE_PATTERNS=*AWSReservedSSO_AdministratorAccess_*\nFUNCTION_NAME=pw-redrive\n")
    env = dict(os.environ, ACCOUNT_FILE=str(account), SHIM_STATE=str(state),
               REAL_AWS=shutil.which("aws"), PATH=f"{shim_dir}:{os.environ['PATH']}")
    result = subprocess.run(["scripts/deploy.sh", "redrive", "redrive"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr
    assert "redrive: 2 delivered and deleted, 0 kept in the queues" in result.stdout
    invoked = [json.loads(line) for line in (state / "payloads").read_text().splitlines()]
    assert invoked == [event, event], "the event itself, unwrapped from the destination record"
    for url in (failures, dlq):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0"
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
