#!/usr/bin/env python3
"""make smoke ACCOUNT=<name> | make smoke ORG=<name>: after a deploy, against the real account(s)
and Slack, is privwatch able to do its job? Read-only, except for one clearly labelled test
notice. Each check prints one line; a failure says what to do. Exits 1 if any check failed.

Checks: the Lambda concurrency the function reserves; the stacks and their rules (state,
target); a trail recording management events in every region the rules need, us-east-1
included; the Justify URL answering an unsigned request with privwatch's own 401 (a 403 is
Lambda refusing it: a permission is missing); the bot token's scopes (`x-oauth-scopes`) against
slack/manifest.yaml, and the bot a member of every channel privwatch writes to; one test event
through EventBridge to the function to the channel (a notice that says it is a test, asks no
one and is never chased).

Honours AWS_ENDPOINT_URL (profiles then only if configured here) and SLACK_API_URL, so it runs
against moto and the Slack sandbox too; SMOKE_WAIT_SECONDS bounds the wait for the test notice
(default 90), SMOKE_JUSTIFY_URL replaces the URL read from Lambda (tests: moto's URLs answer
nothing).
"""

import json
import os
import pathlib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import boto3
import botocore.session
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import settings  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
ACCOUNT_KEYS = """AWS_PROFILE HOME_REGION FORWARDER_REGIONS SLACK_CHANNEL_ID ACCOUNT_NAME ADMIN_ROLE_ARNS
ADMIN_ROLE_PATTERNS WATCH_ROOT_API_ACTIVITY WATCH_ADMIN_ASSUME_ROLE EXISTING_SECRET_ARN SECRET_KMS_KEY_ARN IAM_USER_SIGN_IN
MESSAGE_LANGUAGE FALLBACK_MENTION ALARM_EMAIL DEPLOY_BUCKET FUNCTION_NAME COALESCE_MINUTES
ESCALATE_AFTER_MINUTES ESCALATION_MENTION DEPLOY_ROLE_ARN OIDC_OWNERS ENABLE_ARCHIVE ARCHIVE_OBJECT_LOCK_DAYS
TICKET_URL_PATTERN ENABLE_JUSTIFY_BUTTON JUSTIFY_USERGROUP ADMIN_PERMISSION_SETS IDENTITY_CENTER_REGION SESSION_ACTIVITY""".split()
ORG_KEYS = """HUB_PROFILE MANAGEMENT_PROFILE MANAGEMENT_ACCOUNT_PROFILE CALL_AS HUB_REGION ORGANIZATION_ID
TARGET_OUS REGIONS SLACK_CHANNEL_ID CHANNEL_ROUTES ACCOUNT_NAMES ORG_READ_ROLE_ARN ADMIN_ROLE_ARNS
ADMIN_ROLE_PATTERNS OU_ADMIN_ROLE_PATTERNS HEARTBEAT_MINUTES MESSAGE_LANGUAGE FALLBACK_MENTION
ESCALATION_MENTION OIDC_OWNERS EXISTING_SECRET_ARN DEPLOY_ROLE_ARN ALARM_EMAIL FUNCTION_NAME
DEPLOY_BUCKET IAM_USER_SIGN_IN ADMIN_PERMISSION_SETS IDENTITY_CENTER_REGION SESSION_ACTIVITY""".split()
RULES = json.loads((ROOT / "infra/rules.json").read_text())["rules"]


class Smoke:
    def __init__(self):
        self.failed = 0

    def ok(self, text):
        print(f"  ok    {text}")

    def fail(self, text, todo):
        self.failed += 1
        print(f"  FAIL  {text} — {todo}")


def session(profile):
    """A profile is used when given, except against an emulator where it is not configured."""
    if profile and (not os.environ.get("AWS_ENDPOINT_URL")
                    or profile in botocore.session.Session().available_profiles):
        return boto3.Session(profile_name=profile)
    return boto3.Session()


def with_us_east_1(regions):
    return regions if "us-east-1" in regions else regions + ["us-east-1"]


# --- AWS ----------------------------------------------------------------------------------------

def check_concurrency(s, aws, region, function):
    lam = aws.client("lambda", region_name=region)
    try:
        limits = lam.get_account_settings()["AccountLimit"]
        reserved = lam.get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions")
    except Exception as e:  # noqa: BLE001 — every failure is a line, not a traceback
        return s.fail(f"Lambda concurrency of {function} in {region} cannot be read ({e})",
                      "check the profile's lambda:GetAccountSettings / lambda:GetFunctionConcurrency")
    if reserved != 1:
        return s.fail(f"{function} reserves {reserved} concurrent executions, not 1",
                      "exactly once rests on one invocation at a time: deploy again (make deploy)")
    s.ok(f"{function} runs one invocation at a time (quota {limits['ConcurrentExecutions']}, "
         f"{limits['UnreservedConcurrentExecutions']} unreserved)")


def check_stack(s, aws, region, name):
    cfn = aws.client("cloudformation", region_name=region)
    try:
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except Exception:  # noqa: BLE001
        return s.fail(f"stack {name} in {region} does not exist", "deploy it (make deploy / make deploy-org)")
    if status.endswith("_COMPLETE") and "ROLLBACK" not in status and "DELETE" not in status:
        return s.ok(f"stack {name} in {region}: {status}")
    s.fail(f"stack {name} in {region} is {status}",
           f"read its events: aws cloudformation describe-stack-events --region {region} --stack-name {name}")


def expected_rule_names(function, switched_off):
    """The rules a deployment has: all but those switched off — by a template switch, or (a
    `$PLACEHOLDER` in `switched_off`) by a setting left empty, whose rule synth.py leaves out."""
    def on(r):
        text = json.dumps(r["pattern"])
        return r["switch"] not in switched_off and not any(p in text for p in switched_off if p.startswith("$"))
    return {f"{function}-{r['name']}": r for r in RULES if on(r)}


def check_rules(s, aws, region, function, bus, target_ok, switched_off, what):
    events = aws.client("events", region_name=region)
    try:
        deployed = {r["Name"]: r for r in [r for page in events.get_paginator("list_rules").paginate(NamePrefix=f"{function}-", EventBusName=bus) for r in page["Rules"]]}
    except Exception as e:  # noqa: BLE001
        return s.fail(f"the rules in {region} cannot be read ({e})", "check the profile's events:ListRules")
    problems = []
    for name, rule in expected_rule_names(function, switched_off).items():
        parts = [n for n in deployed if n == name or (n.startswith(name + "-") and n[len(name) + 1:].isdigit())]
        if not parts:
            problems.append(f"{name} missing")
            continue
        for part in parts:
            if deployed[part]["State"] != rule["state"]:
                problems.append(f"{part} is {deployed[part]['State']}, not {rule['state']}")
            targets = events.list_targets_by_rule(Rule=part, EventBusName=bus)["Targets"]
            if len(targets) != 1 or not target_ok(targets[0]["Arn"]):
                problems.append(f"{part} targets {[t['Arn'] for t in targets]}")
    if problems:
        return s.fail(f"rules in {region}: {'; '.join(problems[:4])}",
                      "someone changed privwatch's rules (a tampering notice should be in the channel); deploy again")
    s.ok(f"{len(expected_rule_names(function, switched_off))} rules in {region} enabled and {what}")


def trail_regions(aws, region):
    """The regions whose management events some logging trail records."""
    ct = aws.client("cloudtrail", region_name=region)
    covered = set()
    for trail in ct.describe_trails(includeShadowTrails=True)["trailList"]:
        arn = trail.get("TrailARN") or trail["Name"]
        home = trail.get("HomeRegion", region)
        client = aws.client("cloudtrail", region_name=home)
        try:
            if not client.get_trail_status(Name=arn).get("IsLogging"):
                continue
            selectors = client.get_event_selectors(TrailName=arn)
        except Exception:  # noqa: BLE001
            continue
        # A trail with no selectors of its own logs every management event (CloudTrail's default).
        default = not selectors.get("EventSelectors") and not selectors.get("AdvancedEventSelectors")
        management = default or any(
            sel.get("IncludeManagementEvents", True) and sel.get("ReadWriteType", "All") == "All"
            for sel in selectors.get("EventSelectors", [])
        ) or any(
            any(f.get("Field") == "eventCategory" and "Management" in f.get("Equals", []) for f in sel.get("FieldSelectors", []))
            for sel in selectors.get("AdvancedEventSelectors", [])
        )
        if not management:
            continue
        if trail.get("IsMultiRegionTrail"):
            return {"*"}
        covered.add(home)
    return covered


def check_trail(s, aws, home, regions):
    try:
        covered = trail_regions(aws, home)
    except Exception as e:  # noqa: BLE001
        return s.fail(f"the trails cannot be read ({e})", "check the profile's cloudtrail:DescribeTrails")
    missing = [r for r in regions if "*" not in covered and r not in covered]
    if missing:
        return s.fail(f"no logging trail records all management events in {', '.join(missing)}",
                      "EventBridge hears CloudTrail's management events only where a trail records them: "
                      "create a multi-region trail (IAM and root calls are recorded in us-east-1)")
    s.ok(f"a trail records management events in {', '.join(regions)}")


def check_justify_url(s, aws, region, function):
    url = os.environ.get("SMOKE_JUSTIFY_URL")
    if not url:
        try:
            url = aws.client("lambda", region_name=region).get_function_url_config(
                FunctionName=f"{function}-justify")["FunctionUrl"]
        except Exception:  # noqa: BLE001
            return s.fail(f"{function}-justify has no Function URL", "deploy again with ENABLE_JUSTIFY_BUTTON=true")
    request = urllib.request.Request(url, data=b"payload=%7B%7D", method="POST",
                                     headers={"content-type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except Exception as e:  # noqa: BLE001
        return s.fail(f"the Justify URL {url} does not answer ({e})", "check the URL in the Slack app's interactivity settings")
    if status == 401 and b"unauthorized" in body:
        return s.ok("the Justify URL answers an unsigned request with privwatch's 401")
    if status == 403:
        return s.fail("the Justify URL answers 403: Lambda refuses the call before privwatch runs",
                      "the function's resource policy needs lambda:InvokeFunctionUrl and lambda:InvokeFunction "
                      "with InvokedViaFunctionUrl (since October 2025): deploy again")
    s.fail(f"the Justify URL answers {status}", "read the Justify function's logs")


# --- Slack --------------------------------------------------------------------------------------

def slack_call(token, method, **params):
    """One Web API call; a rate limit (HTTP 429 or `ratelimited`) is waited out (Retry-After)."""
    base = os.environ.get("SLACK_API_URL", "https://slack.com/api").rstrip("/")
    data = urllib.parse.urlencode(params).encode()
    for _ in range(5):
        request = urllib.request.Request(f"{base}/{method}", data=data, headers={
            "authorization": f"Bearer {token}", "content-type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=15) as answer:
                body, scopes, wait = json.loads(answer.read()), answer.headers.get("x-oauth-scopes", ""), None
                if body.get("error") == "ratelimited":
                    wait = answer.headers.get("retry-after", "1")
        except urllib.error.HTTPError as e:
            if e.code != 429:
                raise
            body, scopes, wait = {}, "", e.headers.get("retry-after", "1")
        if wait is None:
            return body, scopes
        time.sleep(min(float(wait), 30))
    return {"ok": False, "error": "ratelimited"}, ""


def bot_token(s, aws, region, secret_id):
    try:
        value = aws.client("secretsmanager", region_name=region).get_secret_value(SecretId=secret_id)["SecretString"]
        token = json.loads(value).get("bot_token", "")
    except Exception as e:  # noqa: BLE001
        s.fail(f"the token secret {secret_id} cannot be read ({e})", "check the secret and the profile's secretsmanager:GetSecretValue")
        return None
    if not token.startswith("xoxb-"):
        s.fail("the token secret holds no bot token yet",
               f"aws secretsmanager put-secret-value --region {region} --secret-id '{secret_id}' "
               "--secret-string '{\"bot_token\":\"xoxb-…\"}'")
        return None
    return token


def check_slack(s, token, channels):
    try:
        answer, scopes = slack_call(token, "auth.test")
    except Exception as e:  # noqa: BLE001
        return s.fail(f"Slack does not answer ({e})", "check the network from here to Slack")
    if not answer.get("ok"):
        return s.fail(f"Slack refuses the token ({answer.get('error')})", "put a current bot token in the secret")
    wanted = set(yaml.safe_load((ROOT / "slack/manifest.yaml").read_text())["oauth_config"]["scopes"]["bot"])
    missing = sorted(wanted - {x.strip() for x in scopes.split(",") if x.strip()})
    if missing:
        s.fail(f"the token lacks the scopes {', '.join(missing)}",
               "add them from slack/manifest.yaml to the app and reinstall it; put the new token in the secret")
    else:
        s.ok(f"the token has every scope of slack/manifest.yaml ({len(wanted)})")
    for channel in channels:
        answer, _ = slack_call(token, "conversations.history", channel=channel, limit=1)
        if answer.get("ok"):
            s.ok(f"the bot is in {channel}")
        elif answer.get("error") == "not_in_channel":
            s.fail(f"the bot is not in {channel}", f"/invite @privwatch in {channel}")
        else:
            s.fail(f"{channel} cannot be read ({answer.get('error')})", "check the channel ID in the settings file")


def check_end_to_end(s, aws, region, bus, token, channel, account):
    nonce = f"smoke-{uuid.uuid4().hex[:12]}"
    events = aws.client("events", region_name=region)
    entry = {"Source": "privwatch.smoke", "DetailType": "privwatch smoke test",
             "Detail": json.dumps({"nonce": nonce, "channel": channel}), "EventBusName": bus}
    try:
        put = events.put_events(Entries=[entry])
    except Exception as e:  # noqa: BLE001
        return s.fail(f"EventBridge refused the test event ({e})", "check the profile's events:PutEvents on the bus")
    if put.get("FailedEntryCount"):
        return s.fail(f"EventBridge refused the test event ({put['Entries'][0].get('ErrorCode')})",
                      "check the profile's events:PutEvents on the bus")
    wait = float(os.environ.get("SMOKE_WAIT_SECONDS", "90"))
    started = time.monotonic()
    while time.monotonic() - started < wait:
        answer, _ = slack_call(token, "conversations.history", channel=channel, limit=100, include_all_metadata="true")
        for m in answer.get("messages", []):
            meta = m.get("metadata") or {}
            if meta.get("event_type") == "privwatch_smoke" and meta.get("event_payload", {}).get("nonce") == nonce:
                return s.ok(f"a test event went EventBridge → function → {channel} in {time.monotonic() - started:.0f} s "
                            "(a test notice: it asks no one and is never chased)")
        time.sleep(2)
    s.fail(f"no test notice in {channel} within {wait:.0f} s",
           f"read the function's logs (/aws/lambda/<function>) and the rule <function>-smoke in {region} "
           f"(account {account})")


# --- the two modes ------------------------------------------------------------------------------

def account_mode(name):
    path = os.environ.get("ACCOUNT_FILE") or str(ROOT / f"infra/accounts/{name}.env")
    cfg = settings.parse(pathlib.Path(path).read_text(), set(ACCOUNT_KEYS), path)
    function = cfg.get("FUNCTION_NAME") or "privwatch"
    home = cfg["HOME_REGION"]
    forwarders = [r for r in with_us_east_1([home] + cfg.get("FORWARDER_REGIONS", "").split()) if r != home]
    aws = session(cfg.get("AWS_PROFILE"))
    account = aws.client("sts", region_name=home).get_caller_identity()["Account"]
    switched_off = set()
    if cfg.get("WATCH_ROOT_API_ACTIVITY", "true") != "true":
        switched_off.add("WatchRootApi")
    if cfg.get("WATCH_ADMIN_ASSUME_ROLE", "true") != "true":
        switched_off.add("WatchAssumeRole")
    if cfg.get("IAM_USER_SIGN_IN", "off") != "notice":
        switched_off.add("WatchIamUserSignIn")
    if not cfg.get("ADMIN_PERMISSION_SETS", "").strip():
        switched_off.add("$ADMIN_PERMISSION_SETS")
    if cfg.get("SESSION_ACTIVITY", "on") != "on":
        switched_off.add("WatchSessionActivity")
    s = Smoke()
    print(f"privwatch smoke test: account {account}, {function} in {home}, forwarders {' '.join(forwarders) or 'none'}")
    check_concurrency(s, aws, home, function)
    check_stack(s, aws, home, f"{function}-notifier")
    function_arn = f"arn:aws:lambda:{home}:{account}:function:{function}"
    check_rules(s, aws, home, function, "default", lambda arn: arn == function_arn, switched_off, "targeting the function")
    for region in forwarders:
        check_stack(s, aws, region, f"{function}-forwarder")
        check_rules(s, aws, region, function, "default", lambda arn: arn.endswith(f":{home}:{account}:event-bus/default"),
                    switched_off, f"forwarding to {home}")
    check_trail(s, aws, home, [home] + forwarders)
    if cfg.get("ENABLE_JUSTIFY_BUTTON") == "true":
        check_justify_url(s, aws, home, function)
    token = bot_token(s, aws, home, cfg.get("EXISTING_SECRET_ARN") or f"{function}/slack-bot-token")
    if token:
        check_slack(s, token, [cfg["SLACK_CHANNEL_ID"]])
        check_end_to_end(s, aws, home, "default", token, cfg["SLACK_CHANNEL_ID"], account)
    return s


def org_mode(name):
    path = os.environ.get("ORG_FILE") or str(ROOT / f"infra/orgs/{name}.env")
    cfg = settings.parse(pathlib.Path(path).read_text(), set(ORG_KEYS), path)
    function = cfg.get("FUNCTION_NAME") or "privwatch"
    hub_region = cfg["HUB_REGION"]
    regions = with_us_east_1(cfg["REGIONS"].split())
    hub = session(cfg.get("HUB_PROFILE"))
    mgmt = session(cfg.get("MANAGEMENT_PROFILE"))
    spokes_in_mgmt = session(cfg.get("MANAGEMENT_ACCOUNT_PROFILE") or cfg.get("MANAGEMENT_PROFILE"))
    account = hub.client("sts", region_name=hub_region).get_caller_identity()["Account"]
    bus = f"{function}-hub"
    s = Smoke()
    print(f"privwatch smoke test: hub {account} ({hub_region}), spokes in {' '.join(regions)}")
    check_concurrency(s, hub, hub_region, function)
    check_stack(s, hub, hub_region, f"{function}-hub")
    function_arn = f"arn:aws:lambda:{hub_region}:{account}:function:{function}"
    switched_off = set() if cfg.get("IAM_USER_SIGN_IN", "off") == "notice" else {"WatchIamUserSignIn"}
    if not cfg.get("ADMIN_PERMISSION_SETS", "").strip():
        switched_off.add("$ADMIN_PERMISSION_SETS")
    if cfg.get("SESSION_ACTIVITY", "on") != "on":
        switched_off.add("WatchSessionActivity")
    check_rules(s, hub, hub_region, function, bus, lambda arn: arn == function_arn, switched_off, "on the hub bus")
    call_as = cfg.get("CALL_AS") or "SELF"
    cfn = mgmt.client("cloudformation", region_name=hub_region)
    try:
        pages = cfn.get_paginator("list_stack_instances").paginate(StackSetName=f"{function}-spokes", CallAs=call_as)
        instances = [i for page in pages for i in page["Summaries"]]
        stale = [i for i in instances if i.get("StackInstanceStatus", {}).get("DetailedStatus", i.get("Status")) not in ("SUCCEEDED", "CURRENT")]
        if not instances:
            s.fail(f"the StackSet {function}-spokes has no instances", "run make deploy-org again")
        elif stale:
            s.fail(f"{len(stale)} of {len(instances)} spoke instances are not current "
                   f"(e.g. {stale[0]['Account']} {stale[0]['Region']}: {stale[0].get('StatusReason', stale[0].get('Status'))})",
                   "read the StackSet's operations; fix and run make deploy-org again")
        else:
            s.ok(f"{len(instances)} spoke instances of {function}-spokes are current")
    except Exception as e:  # noqa: BLE001
        s.fail(f"the StackSet {function}-spokes cannot be read ({e})", "check MANAGEMENT_PROFILE and CALL_AS")
    for region in regions:
        check_stack(s, spokes_in_mgmt, region, f"{function}-spoke")
    check_trail(s, hub, hub_region, regions)
    token = bot_token(s, hub, hub_region, cfg.get("EXISTING_SECRET_ARN") or f"{function}/slack-bot-token")
    if token:
        routes = [r.split("=", 1)[1] for r in cfg.get("CHANNEL_ROUTES", "").split(",") if "=" in r]
        check_slack(s, token, [cfg["SLACK_CHANNEL_ID"], *dict.fromkeys(routes)])
        check_end_to_end(s, hub, hub_region, bus, token, cfg["SLACK_CHANNEL_ID"], account)
    return s


def main():
    mode, name = sys.argv[1], sys.argv[2]
    # As the deploy scripts: the settings file names the profiles, not the caller's environment.
    os.environ.pop("AWS_PROFILE", None)
    s = account_mode(name) if mode == "account" else org_mode(name)
    if s.failed:
        print(f"smoke: {s.failed} check(s) failed")
        sys.exit(1)
    print("smoke: every check passed")


if __name__ == "__main__":
    main()
