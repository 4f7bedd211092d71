"""The infra, proven before anyone deploys it.

`make deploy ACCOUNT=example` runs against a local moto server (AWS_ENDPOINT_URL, set by
scripts/with-moto.sh); then the AWS API is asked what was created. The rules' event patterns
are read back from the deployed rules (not copied here) and checked against every fixture with
moto's EventBridge pattern matcher, the real one behind PutEvents.

moto limits, said where they matter: it skips AWS::SecretsManager::Secret (so the deploy that
creates the secret leaves SLACK_TOKEN_SECRET_ARN empty; a second deploy uses an existing secret
and checks the wiring), it reads Architectures back as x86_64, it cannot run the function
(no Docker), and CloudWatch alarms, KMS keys and SNS are created but not exercised.
"""

import json
import os
import pathlib
import shutil
import subprocess

import boto3
import pytest
from moto.events.models import EventPattern

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
HOME = "us-east-1"
FORWARDER = "ap-northeast-1"
# The rules as src/kind.rs declares them (infra/rules.json, rendered from that table; a unit test
# keeps it current). Nothing about the rules is written down here.
RULES = json.loads((ROOT / "infra/rules.json").read_text())["rules"]
RULE_SUFFIXES = {r["id"]: r["name"] for r in RULES}
KINDS_OF_RULE = {r["id"]: r["kind"] for r in RULES}


def client(service, region=HOME):
    return boto3.client(service, region_name=region, endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def make(*args, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    result = subprocess.run(["make", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    print(result.stdout[-4000:], result.stderr[-4000:])
    return result


@pytest.fixture(scope="module")
def deployed():
    assert "AWS_ENDPOINT_URL" in os.environ, "run under scripts/with-moto.sh (make test does)"
    result = make("deploy", "ACCOUNT=example")
    assert result.returncode == 0, result.stderr
    assert "Put the bot token in the secret" in result.stdout
    yield result
    assert make("destroy", "ACCOUNT=example").returncode == 0


def cfn_template(path):
    from cfnlint.decode import decode

    template, matches = decode(str(path))
    assert not matches, matches
    return template


def policy_document(document):
    if isinstance(document, dict):
        return document
    try:
        return json.loads(document)
    except json.JSONDecodeError:
        import ast

        return ast.literal_eval(document)


def expected_fixtures():
    return json.loads((FIXTURES / "expected.json").read_text())["fixtures"]


def deployed_rules(region):
    events = client("events", region)
    rules = [r for page in events.get_paginator("list_rules").paginate(NamePrefix="privwatch-") for r in page["Rules"]]
    return {r["Name"]: r for r in rules}


def test_the_stacks_exist_in_the_home_and_forwarder_regions(deployed):
    for region, stack in [(HOME, "privwatch-notifier"), (FORWARDER, "privwatch-forwarder")]:
        stacks = client("cloudformation", region).describe_stacks(StackName=stack)["Stacks"]
        assert stacks[0]["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), stacks[0]


def test_every_fixture_matches_exactly_the_rule_meant_for_it(deployed):
    rules = deployed_rules(HOME)
    patterns = {
        name: EventPattern.load(rules[f"privwatch-{suffix}"]["EventPattern"])
        for name, suffix in RULE_SUFFIXES.items()
    }
    checked = 0
    for file, expected in expected_fixtures().items():
        event = json.loads((FIXTURES / file).read_text())
        matched = sorted(name for name, p in patterns.items() if p.matches_event(event))
        want = [] if expected is None or expected["rule"] is None else sorted([expected["rule"], *expected.get("also", [])])
        assert matched == want, f"{file}: matched {matched}, expected {want}"
        if want and expected["kind"] is not None:
            assert KINDS_OF_RULE[expected["rule"]] == expected["kind"], file
        checked += 1
    assert checked >= 30
    # Every rule is exercised by at least one fixture.
    meant = {e["rule"] for e in expected_fixtures().values() if e and e["rule"]}
    assert meant == set(RULE_SUFFIXES), set(RULE_SUFFIXES) - meant


def test_the_deployed_patterns_are_the_declared_ones(deployed):
    """What EventBridge holds is src/kind.rs's pattern with the account's values filled in
    (synth.py), and CloudFormation's Fn::Sub resolved inside the pattern."""
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    import synth

    env = {}
    for line in (ROOT / "infra/accounts/example.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value.strip('"')
    values = {
        "$ADMIN_ROLE_ARNS": env["ADMIN_ROLE_ARNS"].split() + [{"wildcard": p} for p in env["ADMIN_ROLE_PATTERNS"].split()],
        "$ADMIN_ROLE_SESSIONS": synth.session_matchers(env["ADMIN_ROLE_ARNS"].split(), env["ADMIN_ROLE_PATTERNS"].split()),
        "$TOKEN_SECRET_IDS": synth.secret_ids(""),
        # The names are resolved by `privwatch admins` (moto's Identity Center has none of them).
        "$ADMIN_PERMISSION_SETS": [a for a in env["ADMIN_PERMISSION_SETS"].split() if a.startswith("arn:")],
    }

    def resolve(node):
        if isinstance(node, dict) and set(node) == {"Fn::Sub"}:
            return node["Fn::Sub"].replace("${FunctionName}", "privwatch")
        if isinstance(node, dict):
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    rules = deployed_rules(HOME)
    for rule in RULES:
        deployed_pattern = json.loads(rules[f"privwatch-{rule['name']}"]["EventPattern"])
        declared = synth.expand(rule["pattern"], values)
        # (with DEPLOY_ROLE_ARN, privwatch's own rollouts are spared: synth.rollout_exemption; the
        # example sets none, and a per-account deployment has no StackSets)
        assert synth.rollout_exemption("") is None
        assert deployed_pattern == resolve(declared), rule["id"]
        assert rules[f"privwatch-{rule['name']}"]["State"] == rule["state"], rule["id"]


def test_the_tampering_rule_names_the_function_role(deployed):
    """The role rule matches roleName by the prefix CloudFormation gives an unnamed role of the
    notifier stack (`<stack>-<logical id>-<suffix>`; moto names it the same way)."""
    role_arn = client("lambda").get_function(FunctionName="privwatch")["Configuration"]["Role"]
    role_name = role_arn.split("/")[-1]
    (rule,) = [r for r in RULES if r["id"] == "AlarmTamperingRole"]
    prefix = rule["pattern"]["detail"]["requestParameters"]["roleName"][0]["prefix"].replace("${FunctionName}", "privwatch")
    assert role_name.startswith(prefix), (role_name, prefix)


def test_read_only_records_have_rules_that_receive_them(deployed):
    """AssumeRoleWithSAML and AssumeRole records are readOnly: true. EventBridge hands those only
    to rules in state ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS: a plain ENABLED rule would
    never fire for them."""
    rules = deployed_rules(HOME)
    for file, expected in expected_fixtures().items():
        if expected is None or expected["rule"] is None:
            continue
        event = json.loads((FIXTURES / file).read_text())
        rule = rules[f"privwatch-{RULE_SUFFIXES[expected['rule']]}"]
        if event["detail"].get("readOnly") is True:
            assert rule["State"] == "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS", (file, rule["Name"])
        else:
            assert rule["State"] in ("ENABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"), rule


def test_rules_target_the_function_with_retries_and_a_dead_letter_queue(deployed):
    events = client("events")
    function_arn = client("lambda").get_function(FunctionName="privwatch")["Configuration"]["FunctionArn"]
    for suffix in RULE_SUFFIXES.values():
        targets = events.list_targets_by_rule(Rule=f"privwatch-{suffix}")["Targets"]
        assert len(targets) == 1, suffix
        target = targets[0]
        assert target["Arn"] == function_arn
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert target["DeadLetterConfig"]["Arn"].endswith(":privwatch-rule-dlq")


def test_forwarder_rules_send_to_the_home_bus(deployed):
    rules = deployed_rules(FORWARDER)
    home_patterns = deployed_rules(HOME)
    events = client("events", FORWARDER)
    for suffix in RULE_SUFFIXES.values():
        name = f"privwatch-{suffix}"
        assert json.loads(rules[name]["EventPattern"]) == json.loads(home_patterns[name]["EventPattern"])
        assert rules[name]["State"] == home_patterns[name]["State"]
        target = events.list_targets_by_rule(Rule=name)["Targets"][0]
        assert target["Arn"].startswith(f"arn:aws:events:{HOME}:") and target["Arn"].endswith(":event-bus/default")
        assert "RoleArn" in target


def test_function_configuration(deployed):
    config = client("lambda").get_function(FunctionName="privwatch")["Configuration"]
    assert config["Runtime"] == "provided.al2023"
    assert config["Handler"] == "bootstrap"
    assert config["MemorySize"] == 128
    assert config["Timeout"] >= 30
    env = config["Environment"]["Variables"]
    assert env["SLACK_CHANNEL_ID"] == "C0PRIVWATCH"
    assert env["ACCOUNT_NAME"] == "example-prod"
    assert env["MESSAGE_LANGUAGE"] == "en"
    assert env["FALLBACK_MENTION"] == "<!here>"
    assert "SLACK_BOT_TOKEN" not in env, "the token never goes into the environment"
    # ADMIN_PERMISSION_SETS resolved by `privwatch admins` at deploy (the name is in no Identity
    # Center moto knows; the ARN is passed through): the function checks assignments as the rule does.
    assert env["ADMIN_PERMISSION_SET_ARNS"] == "arn:aws:sso:::permissionSet/ssoins-72233af8ea2d1f14/ps-ae5d1fa1f80b684e"
    assert env["TRAIL_CANARY"] == "on"
    # moto skips AWS::SecretsManager::Secret, so the ARN of the secret this deploy creates reads
    # back empty; test_an_existing_secret_is_wired_… checks SLACK_TOKEN_SECRET_ARN.


def test_invoke_permissions_are_scoped_to_each_rule(deployed):
    policy = json.loads(client("lambda").get_policy(FunctionName="privwatch")["Policy"])
    rules = deployed_rules(HOME)
    statements = policy["Statement"]
    assert len(statements) == len(RULE_SUFFIXES) + 4  # and the sweep's, the catch-up's, the canary's and make smoke's
    sources = set()
    for statement in statements:
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Action"] == "lambda:InvokeFunction"
        sources.add(statement["Condition"]["ArnLike"]["AWS:SourceArn"])
    assert sources == {rules[f"privwatch-{s}"]["Arn"] for s in [*RULE_SUFFIXES.values(), "sweep", "catchup", "canaries", "smoke"]}


def test_long_series_catch_up_every_minute_with_the_archive(deployed):
    """ENABLE_ARCHIVE=true: the catch-up schedule brings long series' notices up to the
    archive's count (docs/performance.md, "Floods")."""
    rule = deployed_rules(HOME)["privwatch-catchup"]
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert rule["State"] == "ENABLED"
    target = client("events").list_targets_by_rule(Rule="privwatch-catchup")["Targets"][0]
    assert target["Arn"] == client("lambda").get_function(FunctionName="privwatch")["Configuration"]["FunctionArn"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0


def test_the_chase_runs_every_five_minutes(deployed):
    rule = deployed_rules(HOME)["privwatch-sweep"]
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    assert rule["State"] == "ENABLED"
    function_arn = client("lambda").get_function(FunctionName="privwatch")["Configuration"]["FunctionArn"]
    target = client("events").list_targets_by_rule(Rule="privwatch-sweep")["Targets"][0]
    assert target["Arn"] == function_arn
    env = client("lambda").get_function(FunctionName="privwatch")["Configuration"]["Environment"]["Variables"]
    # (moto keeps a Number parameter as a number here; Lambda stores strings)
    assert str(env["COALESCE_MINUTES"]) == "15"
    assert str(env["ESCALATE_AFTER_MINUTES"]) == "30"
    assert env["ESCALATION_MENTION"] == "<!here>"


def test_failure_path_keeps_events(deployed):
    sqs = client("sqs")
    for queue in ["privwatch-failures", "privwatch-rule-dlq"]:
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["MessageRetentionPeriod"] == "1209600", queue
        assert attributes.get("SqsManagedSseEnabled") == "true", queue
    # moto does not create AWS::Lambda::EventInvokeConfig from a template: check the rendered
    # template that was deployed instead.
    template = cfn_template(ROOT / "target/infra/notifier.yaml")
    invoke_config = template["Resources"]["InvokeConfig"]
    assert invoke_config["Type"] == "AWS::Lambda::EventInvokeConfig"
    destination = invoke_config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": ["FailureQueue", "Arn"]}
    # Alarms: moto does not create AWS::CloudWatch::Alarm from a template either.
    alarms = {
        name: r["Properties"] for name, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    watched = {a.get("MetricName") for a in alarms.values()}
    assert watched == {"Errors", "ApproximateNumberOfMessagesVisible"}
    assert len(alarms) == 3
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    topic = template["Resources"]["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}, "the alarm topic is encrypted"


# What moto 5.2 does not create from a template (it skips them with a log line). Everything
# else in the notifier stack exists after the deploy; these are checked in the rendered template.
MOTO_SKIPS = {
    "AWS::SecretsManager::Secret",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::CloudWatch::Alarm",
    # The canary's schedule: test_the_canary_writes_its_parameter_and_its_record_reaches_the_function
    "AWS::Scheduler::Schedule",
}


def test_every_other_resource_was_created(deployed):
    template = cfn_template(ROOT / "target/infra/notifier.yaml")
    resources = client("cloudformation").list_stack_resources(StackName="privwatch-notifier")
    created = {r["LogicalResourceId"] for r in resources["StackResourceSummaries"] if r.get("LogicalResourceId")}
    for name, resource in template["Resources"].items():
        if "Condition" in resource and name not in created:
            continue
        if resource["Type"] in MOTO_SKIPS:
            continue
        assert name in created, f"{name} ({resource['Type']}) was not created"


def test_an_existing_secret_is_wired_into_the_function_and_its_policy(tmp_path):
    secrets = client("secretsmanager")
    arn = secrets.create_secret(Name="existing-privwatch-token", SecretString='{"bot_token":"xoxb-x"}')["ARN"]
    account_file = tmp_path / "moto.env"
    text = (ROOT / "infra/accounts/example.env").read_text()
    account_file.write_text(text.replace("EXISTING_SECRET_ARN=\n", f"EXISTING_SECRET_ARN={arn}\n").replace(
        'FORWARDER_REGIONS="ap-northeast-1 eu-west-1"', 'FORWARDER_REGIONS=""') + "FUNCTION_NAME=pw-existing\n")
    env = {"ACCOUNT_FILE": str(account_file)}
    assert make("deploy", "ACCOUNT=moto", env_extra=env).returncode == 0
    try:
        config = client("lambda").get_function(FunctionName="pw-existing")["Configuration"]
        assert config["Environment"]["Variables"]["SLACK_TOKEN_SECRET_ARN"] == arn
        role_name = config["Role"].split("/")[-1]
        iam = client("iam")
        documents = [
            iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
            for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        ]
        # moto hands inline policies from a template back as a Python literal string.
        documents = [policy_document(d) for d in documents]
        # (moto also leaves AWS::NoValue in a list as None, where CloudFormation drops it.)
        statements = [s for d in documents for s in d["Statement"] if s is not None]
        assert not any("kms:Decrypt" in json.dumps(s) for s in statements), "no KMS key, no kms:Decrypt"
        secret_statements = [s for s in statements if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])]
        assert len(secret_statements) == 1 and secret_statements[0]["Resource"] == arn
        for statement in statements:
            assert statement["Resource"] != "*", statement
    finally:
        assert make("destroy", "ACCOUNT=moto", env_extra=env).returncode == 0


def test_a_missing_setting_fails_clearly(tmp_path):
    account_file = tmp_path / "broken.env"
    account_file.write_text("HOME_REGION=us-east-1\nADMIN_ROLE_PATTERNS=x\n")
    result = make("deploy", "ACCOUNT=broken", env_extra={"ACCOUNT_FILE": str(account_file)})
    assert result.returncode != 0
    assert "SLACK_CHANNEL_ID is not set" in result.stderr


def test_the_archive_bucket_is_private_versioned_encrypted_and_the_functions_alone(deployed):
    """ENABLE_ARCHIVE=true in the example: the stack makes the bucket and hands it to the
    function. moto applies only a bucket's encryption from a template (read back here); its
    versioning, public access block, lifecycle and Object Lock are checked in the deployed
    template (and held by cfn-guard); moto does not encrypt with KMS."""
    config = client("lambda").get_function(FunctionName="privwatch")["Configuration"]
    env = config["Environment"]["Variables"]
    bucket = env["ARCHIVE_BUCKET"]
    assert env["TICKET_URL_PATTERN"] == r"https://[a-z0-9-]+\.atlassian\.net/browse/[A-Z]+-[0-9]+"
    s3 = client("s3")
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    template = cfn_template(ROOT / "target/infra/notifier.yaml")
    props = template["Resources"]["ArchiveBucket"]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    block = props["PublicAccessBlockConfiguration"]
    assert all(block[k] is True for k in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"])
    # No transition: S3 does not move objects under 128 KB, and the records are a few KB.
    assert all("Transitions" not in rule for rule in props["LifecycleConfiguration"]["Rules"])
    tls = template["Resources"]["ArchiveBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # The role: put/get on the bucket's objects and list on the bucket, nothing else in S3.
    role = config["Role"].split("/")[-1]
    iam = client("iam")
    statements = [
        s
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
        for s in policy_document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])["Statement"]
        if s is not None and "s3:" in json.dumps(s["Action"])
    ]
    assert len(statements) == 3, statements
    for statement in statements:
        if statement["Action"] in ("s3:DeleteObject", ["s3:DeleteObject"]):
            # The one delete: the catch-up markers.
            assert statement["Resource"] == f"arn:aws:s3:::{bucket}/behind/*", statement
            continue
        assert statement["Resource"] in (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"), statement


def test_the_canary_writes_its_parameter_and_its_record_reaches_the_function(deployed):
    """The CloudTrail canary per account. moto's CloudFormation does not create an
    AWS::Scheduler::Schedule, and moto neither runs schedules nor records CloudTrail: so the
    schedule is read from the rendered template, its Input is sent as the universal target would
    send it (ssm:PutParameter, checked against the SSM API model by botocore and carried out by
    moto), the role is checked to allow exactly that write, and the write's CloudTrail record (a
    real PutParameter record's shape) must reach the function by the deployed rule and no other."""
    template = cfn_template(ROOT / "target/infra/notifier.yaml")
    canary = template["Resources"]["Canary"]["Properties"]
    assert canary["Target"]["Arn"] == {"Fn::Sub": "arn:${AWS::Partition}:scheduler:::aws-sdk:ssm:putParameter"}
    assert canary["ScheduleExpression"] == {"Fn::Sub": "rate(${HeartbeatMinutes} minutes)"}
    request = json.loads(canary["Target"]["Input"]["Fn::Sub"].replace("${FunctionName}", "privwatch"))
    ssm = client("ssm")
    for _ in range(2):  # on every schedule: the second write overwrites
        assert ssm.put_parameter(**request)["Version"] >= 1
    assert ssm.get_parameter(Name="/privwatch/canary")["Parameter"]["Value"] == request["Value"]
    # The role may make exactly that write.
    account = client("sts").get_caller_identity()["Account"]
    (policy,) = template["Resources"]["CanaryRole"]["Properties"]["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    resource = statement["Resource"]["Fn::Sub"].replace("${AWS::Partition}", "aws").replace(
        "${AWS::Region}", HOME).replace("${AWS::AccountId}", account).replace("${FunctionName}", "privwatch")
    assert (statement["Action"], resource) == ("ssm:PutParameter", f"arn:aws:ssm:{HOME}:{account}:parameter/privwatch/canary")
    # Its record reaches the function through the canary rule alone.
    env = client("lambda").get_function(FunctionName="privwatch")["Configuration"]["Environment"]["Variables"]
    assert env["TRAIL_CANARY"] == "on"
    record = {
        "version": "0", "id": "c1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ssm",
        "account": account, "time": "2026-12-03T10:00:00Z", "region": HOME, "resources": [],
        "detail": {"eventSource": "ssm.amazonaws.com", "eventName": "PutParameter", "awsRegion": HOME,
                   "userIdentity": {"type": "AssumedRole", "invokedBy": "scheduler.amazonaws.com"},
                   "requestParameters": {"name": request["Name"], "value": "HIDDEN_DUE_TO_SECURITY_REASONS",
                                         "type": "String", "overwrite": True},
                   "responseElements": {"version": 2, "tier": "Standard"}, "readOnly": False,
                   "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account},
    }
    rules = deployed_rules(HOME)
    matched = [n for n, r in rules.items() if "EventPattern" in r and EventPattern.load(r["EventPattern"]).matches_event(record)]
    assert matched == ["privwatch-canaries"], matched
    function_arn = client("lambda").get_function(FunctionName="privwatch")["Configuration"]["FunctionArn"]
    targets = client("events").list_targets_by_rule(Rule="privwatch-canaries")["Targets"]
    assert [t["Arn"] for t in targets] == [function_arn]
    other = json.loads(json.dumps(record))
    other["detail"]["requestParameters"]["name"] = "/app/config"
    assert not any("EventPattern" in r and EventPattern.load(r["EventPattern"]).matches_event(other) for r in rules.values())
