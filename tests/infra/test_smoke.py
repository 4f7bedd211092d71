"""`make smoke` against moto and the Slack sandbox (its HTTP server), each failure provoked once.

A deployment is made with `make deploy` (the Justify button on, an existing secret holding the
sandbox's token), a multi-region trail is started in moto, and the sandbox server answers for
Slack. moto plays EventBridge (the smoke's PutEvents, matched against the deployed rules); it
cannot run a Lambda function (no Docker), so it keeps what it would hand to Lambda
(scripts/moto_server.py) and the test plays Lambda: it runs the real binary (`privwatch invoke`)
on each such event, with the function's environment as deployed. Then `make smoke` runs on the
healthy deployment, where every check passes, end to end; and on a deployment broken in every
way the smoke checks, where each check prints its own failure and what to do.

The Justify URL: moto's URLs answer nothing, so SMOKE_JUSTIFY_URL points the check at a local
stand-in for Lambda's front door answering as Lambda does — privwatch's 401 when the function
runs (the function's own 401 is tested in tests/interact.rs), 403 when the resource policy lacks
a permission.
"""

import http.server
import json
import urllib.request
import os
import pathlib
import socket
import subprocess
import threading
import time

import pytest

from test_infra import ROOT, client, make

NAME = "pw-smoke"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sandbox(*args):
    subprocess.run(["cargo", "build", "--quiet", "-p", "slack-sandbox", "--bin", "slack-sandbox"], cwd=ROOT, check=True)
    port = free_port()
    process = subprocess.Popen([str(ROOT / "target/debug/slack-sandbox"), "--port", str(port), "--quiet", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return process, f"http://127.0.0.1:{port}/api"


def lambda_front_door(status, body):
    """Answers every POST as Lambda's Function URL front door would."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", 0)))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/"


class Lambda:
    """Runs the real binary on every event moto handed to `function`, as Lambda would."""

    def __init__(self, function, slack_api):
        subprocess.run(["cargo", "build", "--quiet", "--bin", "privwatch"], cwd=ROOT, check=True)
        config = client("lambda").get_function(FunctionName=function)["Configuration"]
        self.env = {k: str(v) for k, v in config["Environment"]["Variables"].items()}
        self.env.update({
            "AWS_LAMBDA_FUNCTION_NAME": function, "SLACK_API_URL": slack_api,
            "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"], "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "PATH": os.environ["PATH"],
        })
        if not self.env.get("SLACK_TOKEN_SECRET_ARN"):
            # moto skips AWS::SecretsManager::Secret, so a stack-made secret's ARN reads back
            # empty: the secret of that name (the stack's) stands in.
            self.env["SLACK_TOKEN_SECRET_ARN"] = client("secretsmanager").describe_secret(
                SecretId=f"{function}/slack-bot-token")["ARN"]
        self.arn = config["FunctionArn"]
        self.seen = len(self.deliveries())
        self.runs = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @staticmethod
    def deliveries():
        url = os.environ["AWS_ENDPOINT_URL"] + "/privwatch-moto/lambda-deliveries"
        return json.load(urllib.request.urlopen(url))

    def serve(self):
        while not self.stop.is_set():
            new = self.deliveries()[self.seen:]
            self.seen += len(new)
            for delivery in new:
                if delivery["function"] != self.arn:
                    continue
                run = subprocess.run([str(ROOT / "target/debug/privwatch"), "invoke"], input=json.dumps(delivery["event"]),
                                     env=self.env, capture_output=True, text=True, timeout=60)
                self.runs.append((delivery["rule"], run.returncode, run.stdout + run.stderr))
            time.sleep(0.3)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=10)


def account_file(tmp, secret_arn, channel="C0PRIVWATCH", forwarders=""):
    path = tmp / f"smoke-{channel}-{forwarders or 'none'}.env"
    path.write_text("\n".join([
        "HOME_REGION=us-east-1",
        f'FORWARDER_REGIONS="{forwarders}"',
        f"SLACK_CHANNEL_ID={channel}",
        "ADMIN_ROLE_PATTERNS=*AWSReservedSSO_AdministratorAccess_*",
        f"EXISTING_SECRET_ARN={secret_arn}",
        "ENABLE_JUSTIFY_BUTTON=true",
        f"FUNCTION_NAME={NAME}",
    ]) + "\n")
    return path


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    assert "AWS_ENDPOINT_URL" in os.environ, "run under scripts/with-moto.sh (make test does)"
    tmp = tmp_path_factory.mktemp("smoke")
    secrets = client("secretsmanager")
    good = secrets.create_secret(Name="pw-smoke-token", SecretString='{"bot_token":"xoxb-sandbox-demo-token"}')["ARN"]
    placeholder = secrets.create_secret(Name="pw-smoke-placeholder",
                                        SecretString='{"bot_token":"REPLACE-ME-after-deploy"}')["ARN"]
    path = account_file(tmp, good)
    assert make("deploy", "ACCOUNT=smoke", env_extra={"ACCOUNT_FILE": str(path)}).returncode == 0
    s3 = client("s3")
    s3.create_bucket(Bucket="pw-smoke-trail")
    trail = client("cloudtrail")
    trail.create_trail(Name="org-trail", S3BucketName="pw-smoke-trail", IsMultiRegionTrail=True)
    trail.start_logging(Name="org-trail")
    return {"tmp": tmp, "good": good, "placeholder": placeholder, "file": path}


def smoke(env):
    result = make("smoke", "ACCOUNT=smoke", env_extra=env)
    return result.returncode, result.stdout


def test_a_healthy_deployment_passes_every_check_end_to_end(deployed):
    sandbox, api = start_sandbox()
    door, url = lambda_front_door(401, {"error": "unauthorized"})
    function = Lambda(NAME, api)
    try:
        code, out = smoke({"ACCOUNT_FILE": str(deployed["file"]), "SLACK_API_URL": api,
                           "SMOKE_JUSTIFY_URL": url, "SMOKE_WAIT_SECONDS": "30"})
    finally:
        function.close()
        sandbox.kill()
        door.shutdown()
    for line in [
        "ok    pw-smoke runs one invocation at a time",
        "ok    stack pw-smoke-notifier in us-east-1",
        "rules in us-east-1 enabled and targeting the function",
        "ok    a trail records management events in us-east-1",
        "ok    the Justify URL answers an unsigned request with privwatch's 401",
        "ok    the token has every scope of slack/manifest.yaml",
        "ok    the bot is in C0PRIVWATCH",
        "ok    a test event went EventBridge → function → C0PRIVWATCH",
        "smoke: every check passed",
    ]:
        assert line in out, f"{line!r} not in:\n{out}\n{function.runs}"
    assert code == 0
    assert [(rule, rc) for rule, rc, _ in function.runs] == [(f"{NAME}-smoke", 0)], function.runs


def test_each_broken_part_is_one_line_saying_what_to_do(deployed):
    lam, events, trail = client("lambda"), client("events"), client("cloudtrail")
    lam.put_function_concurrency(FunctionName=NAME, ReservedConcurrentExecutions=5)
    events.disable_rule(Name=f"{NAME}-root-console-sign-in")
    trail.stop_logging(Name="org-trail")
    sandbox, api = start_sandbox("--scopes", "chat:write,users:read,users:read.email,channels:history",
                                 "--uninvited", "C0UNINVITED")
    door, url = lambda_front_door(403, {"Message": "Forbidden. For troubleshooting Function URL authorization issues…"})
    try:
        broken = account_file(deployed["tmp"], deployed["good"], channel="C0UNINVITED", forwarders="eu-west-2")
        code, out = smoke({"ACCOUNT_FILE": str(broken), "SLACK_API_URL": api, "SMOKE_JUSTIFY_URL": url,
                           "SMOKE_WAIT_SECONDS": "1"})
        no_token = account_file(deployed["tmp"], deployed["placeholder"], channel="C0PRIVWATCH", forwarders="")
        _, out_no_token = smoke({"ACCOUNT_FILE": str(no_token), "SLACK_API_URL": api, "SMOKE_JUSTIFY_URL": url})
    finally:
        sandbox.kill()
        door.shutdown()
        lam.put_function_concurrency(FunctionName=NAME, ReservedConcurrentExecutions=1)
        events.enable_rule(Name=f"{NAME}-root-console-sign-in")
        trail.start_logging(Name="org-trail")
    assert code != 0
    for failure in [
        "FAIL  pw-smoke reserves 5 concurrent executions, not 1",
        "FAIL  stack pw-smoke-forwarder in eu-west-2 does not exist",
        "pw-smoke-root-console-sign-in is DISABLED",
        "FAIL  no logging trail records all management events",
        "FAIL  the Justify URL answers 403",
        "FAIL  the token lacks the scopes groups:history, pins:read, pins:write, reactions:write, usergroups:read",
        "FAIL  the bot is not in C0UNINVITED — /invite @privwatch in C0UNINVITED",
    ]:
        assert failure in out, f"{failure!r} not in:\n{out}"
    assert "FAIL  the token secret holds no bot token yet — aws secretsmanager put-secret-value" in out_no_token, out_no_token


def test_an_organization_is_smoke_tested_from_the_hub():
    """The committed organization example, as test_org.py deployed it (the hub `privwatch`)."""
    try:
        client("cloudformation").describe_stacks(StackName="privwatch-hub")
    except Exception:  # test_org.py did not run first: deploy the example here
        orgs = client("organizations")
        try:
            orgs.describe_organization()
        except orgs.exceptions.AWSOrganizationsNotInUseException:
            orgs.create_organization(FeatureSet="ALL")
        assert make("deploy-org", "ORG=example").returncode == 0
    secrets = client("secretsmanager")
    try:
        secrets.create_secret(Name="privwatch/slack-bot-token", SecretString='{"bot_token":"xoxb-sandbox-demo-token"}')
    except secrets.exceptions.ResourceExistsException:
        pass
    sandbox, api = start_sandbox()
    function = Lambda("privwatch", api)
    try:
        result = make("smoke", "ORG=example", env_extra={"SLACK_API_URL": api, "SMOKE_WAIT_SECONDS": "30"})
    finally:
        function.close()
        sandbox.kill()
    out = result.stdout
    for line in [
        "ok    privwatch runs one invocation at a time",
        "ok    stack privwatch-hub in us-east-1",
        "rules in us-east-1 enabled and on the hub bus",
        "spoke instances of privwatch-spokes are current",
        "ok    stack privwatch-spoke in eu-west-1",
        "ok    the bot is in C0PRIVWATCH",
        "ok    a test event went EventBridge → function → C0PRIVWATCH",
    ]:
        assert line in out, f"{line!r} not in:\n{out}\n{function.runs}"
