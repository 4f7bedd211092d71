"""Every documented setting deploys, and the checks that stop a deploy AWS would roll back.

`make deploy` and `make deploy-org` run against moto twice each: once with every optional
setting the account and organization files document switched on — with values that hold
quotes, apostrophes, `$`, spaces and `<…>` — and once with every one off. Each run exits 0 and
prints its next steps whole, and the AWS API is asked whether each setting took effect. Where
moto does not apply a property from a template (Object Lock, a permission's
InvokedViaFunctionUrl), the stack's parameters and the template that was deployed are read.

A setting documented later in infra/accounts/example.env or infra/orgs/example.env without a
value here fails `test_every_documented_setting_is_in_the_all_on_run`.
"""

import json
import os
import pathlib
import sys
import urllib.request

import pytest

from test_infra import ROOT, client, make, policy_document

sys.path.insert(0, str(ROOT / "scripts"))
import settings  # noqa: E402

# A value that must arrive exactly as written, in each way a user writes one.
ACCOUNT_NAME = 'prod "blue" $HOME & <eu>'
ESCALATION = "<!subteam^S0SEC|sec's team>"
OIDC = "repo:acme/$infra:*=<!subteam^S0PLATFORM>"
TICKET = r"https://[a-z0-9-]+\.atlassian\.net/browse/[A-Z]+-[0-9]+"
DEPLOY_ROLE = "arn:aws:iam::123456789012:role/privwatch-deployer"


def documented(path):
    text = (ROOT / path).read_text()
    keys = [line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#") and "=" in line]
    return settings.parse(text, set(keys), path)


def account_all_on(secret_arn, kms_arn):
    return "\n".join([
        "# every optional setting on",
        "AWS_PROFILE=example-admin",
        "HOME_REGION=eu-west-1",
        "FORWARDER_REGIONS=\"ap-northeast-1\"   # us-east-1 is added by the deploy",
        "SLACK_CHANNEL_ID=C0ALLON",
        f"ACCOUNT_NAME='{ACCOUNT_NAME}'",
        'ADMIN_ROLE_ARNS="arn:aws:iam::111122223333:role/GoogleWorkspaceAdmin"',
        "ADMIN_ROLE_PATTERNS='*AWSReservedSSO_AdministratorAccess_*'",
        "WATCH_ROOT_API_ACTIVITY=true",
        "WATCH_ADMIN_ASSUME_ROLE=true",
        "IAM_USER_SIGN_IN=notice",
        'ADMIN_PERMISSION_SETS="AdministratorAccess arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-0123456789abcdef"',
        "IDENTITY_CENTER_REGION=eu-west-1",
        "SESSION_ACTIVITY=on",
        f"EXISTING_SECRET_ARN={secret_arn}",
        f"SECRET_KMS_KEY_ARN={kms_arn}",
        "MESSAGE_LANGUAGE=ja",
        "FALLBACK_MENTION=<!channel>",
        "COALESCE_MINUTES=20",
        "ESCALATE_AFTER_MINUTES=45",
        f'ESCALATION_MENTION="{ESCALATION}"',
        f"DEPLOY_ROLE_ARN={DEPLOY_ROLE}",
        f'OIDC_OWNERS="{OIDC}"',
        "ENABLE_ARCHIVE=true",
        "ARCHIVE_OBJECT_LOCK_DAYS=7",
        f"TICKET_URL_PATTERN='{TICKET}'",
        "ENABLE_JUSTIFY_BUTTON=true",
        "JUSTIFY_USERGROUP=S0SECURITY",
        "ALARM_EMAIL=security+alarms@example.com",
        "DEPLOY_BUCKET=pw-on-deploy-bucket",
        "FUNCTION_NAME=pw-on",
    ]) + "\n"


ACCOUNT_ALL_OFF = "\n".join([
    "HOME_REGION=us-east-1",
    "SLACK_CHANNEL_ID=C0ALLOFF",
    "ADMIN_ROLE_PATTERNS=*AWSReservedSSO_AdministratorAccess_*",
    "WATCH_ROOT_API_ACTIVITY=false",
    "WATCH_ADMIN_ASSUME_ROLE=false",
    "IAM_USER_SIGN_IN=off",
    "SESSION_ACTIVITY=off",
    "ENABLE_ARCHIVE=false",
    "ENABLE_JUSTIFY_BUTTON=false",
    "FUNCTION_NAME=pw-off",
]) + "\n"


def statements_of(role_arn):
    iam = client("iam")
    role = role_arn.split("/")[-1]
    return [
        s
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
        for s in policy_document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])["Statement"]
        if s is not None
    ]


def stack_parameters(stack, region):
    described = client("cloudformation", region).describe_stacks(StackName=stack)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}


@pytest.fixture(scope="module")
def all_on(tmp_path_factory):
    assert "AWS_ENDPOINT_URL" in os.environ, "run under scripts/with-moto.sh (make test does)"
    secret_arn = client("secretsmanager", "eu-west-1").create_secret(
        Name="pw-on-token", SecretString='{"bot_token":"xoxb-x"}')["ARN"]
    kms_arn = client("kms", "eu-west-1").create_key(Description="pw-on token key")["KeyMetadata"]["Arn"]
    client("iam").create_role(RoleName="privwatch-deployer", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "cloudformation.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }))
    path = tmp_path_factory.mktemp("on") / "on.env"
    path.write_text(account_all_on(secret_arn, kms_arn))
    result = make("deploy", "ACCOUNT=on", env_extra={"ACCOUNT_FILE": str(path)})
    assert result.returncode == 0, result.stderr
    return {"result": result, "secret": secret_arn, "kms": kms_arn, "file": path}


def test_every_documented_setting_is_in_the_all_on_run():
    on = settings.parse(account_all_on("arn:x", "arn:y"), set(documented("infra/accounts/example.env")) | {"FUNCTION_NAME"})
    for key in documented("infra/accounts/example.env"):
        assert on.get(key), f"{key} is documented in infra/accounts/example.env but not switched on in the all-on deploy"
    org_on = settings.parse(org_all_on("r-root", "ou-x", "arn:z"), set(documented("infra/orgs/example.env")) | {"FUNCTION_NAME", "MANAGEMENT_ACCOUNT_PROFILE"})
    for key in documented("infra/orgs/example.env"):
        assert org_on.get(key), f"{key} is documented in infra/orgs/example.env but not switched on in the all-on deploy"


def test_all_on_exits_0_and_prints_its_next_steps_whole(all_on):
    out = all_on["result"].stdout
    assert "Put the bot token in the secret" in out
    assert "4. The Justify button" in out
    assert "bad substitution" not in all_on["result"].stderr
    url = client("lambda", "eu-west-1").get_function_url_config(FunctionName="pw-on-justify")["FunctionUrl"]
    assert url in out, "the Justify URL the Slack app needs is printed"


def test_all_on_settings_reach_the_function_as_written(all_on):
    env = client("lambda", "eu-west-1").get_function(FunctionName="pw-on")["Configuration"]["Environment"]["Variables"]
    assert env["ACCOUNT_NAME"] == ACCOUNT_NAME
    assert env["ESCALATION_MENTION"] == ESCALATION
    assert env["OIDC_OWNERS"] == OIDC
    assert env["TICKET_URL_PATTERN"] == TICKET
    assert env["FALLBACK_MENTION"] == "<!channel>"
    assert env["MESSAGE_LANGUAGE"] == "ja"
    assert env["JUSTIFY_BUTTON"] == "true"
    assert env["JUSTIFY_USERGROUP"] == "S0SECURITY"
    assert env["DEPLOY_ROLE_ARN"] == DEPLOY_ROLE
    assert env["SLACK_TOKEN_SECRET_ARN"] == all_on["secret"]
    assert str(env["COALESCE_MINUTES"]) == "20" and str(env["ESCALATE_AFTER_MINUTES"]) == "45"
    assert env["ARCHIVE_BUCKET"]


def test_all_on_the_role_reads_the_existing_secret_with_its_key(all_on):
    role = client("lambda", "eu-west-1").get_function(FunctionName="pw-on")["Configuration"]["Role"]
    statements = statements_of(role)
    reads = [s for s in statements if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])]
    assert [s["Resource"] for s in reads] == [all_on["secret"]]
    decrypt = [s for s in statements if "kms:Decrypt" in json.dumps(s["Action"])]
    assert len(decrypt) == 1 and decrypt[0]["Resource"] == all_on["kms"]


def test_all_on_the_function_url_has_both_of_its_permissions(all_on):
    """The URL is the Justify function's (never the one-at-a-time notifier's: Slack waits 3 s).
    Since October 2025 a public URL needs lambda:InvokeFunctionUrl and lambda:InvokeFunction
    (the latter only via the URL); moto keeps the statements but drops InvokedViaFunctionUrl, so
    that is read from the deployed template."""
    lam = client("lambda", "eu-west-1")
    config = lam.get_function_url_config(FunctionName="pw-on-justify")
    assert config["AuthType"] == "NONE"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName="pw-on")
    policy = json.loads(lam.get_policy(FunctionName="pw-on-justify")["Policy"])
    public = [s for s in policy["Statement"] if s["Principal"] in ("*", {"AWS": "*"})]
    assert sorted(s["Action"] for s in public) == ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"], public
    notifier_policy = json.loads(lam.get_policy(FunctionName="pw-on")["Policy"])
    assert all(s["Principal"] == {"Service": "events.amazonaws.com"} for s in notifier_policy["Statement"])
    front = lam.get_function(FunctionName="pw-on-justify")
    assert front["Configuration"]["Environment"]["Variables"]["NOTIFIER_FUNCTION"] == "pw-on"
    assert "ReservedConcurrentExecutions" not in front.get("Concurrency", {})
    invoke = [s for s in statements_of(front["Configuration"]["Role"]) if s["Action"] == "lambda:InvokeFunction"]
    notifier_arn = lam.get_function(FunctionName="pw-on")["Configuration"]["FunctionArn"]
    assert [s["Resource"] for s in invoke] == [notifier_arn]
    from test_infra import cfn_template

    template = cfn_template(ROOT / "target/infra/notifier.yaml")
    permission = template["Resources"]["JustifyUrlInvokePermission"]
    assert permission["Properties"]["InvokedViaFunctionUrl"] is True
    assert permission["Condition"] == template["Resources"]["JustifyUrl"]["Condition"]


def test_all_on_archive_with_object_lock(all_on):
    params = stack_parameters("pw-on-notifier", "eu-west-1")
    assert params["EnableArchive"] == "true" and params["ArchiveObjectLockDays"] == "7"
    bucket = client("lambda", "eu-west-1").get_function(FunctionName="pw-on")["Configuration"]["Environment"]["Variables"]["ARCHIVE_BUCKET"]
    client("s3", "eu-west-1").head_bucket(Bucket=bucket)
    from test_infra import cfn_template

    # Object Lock on the bucket without a default retention: the function locks each record for
    # ARCHIVE_LOCK_DAYS (tests/archive.rs), the working state stays unlocked.
    props = cfn_template(ROOT / "target/infra/notifier.yaml")["Resources"]["ArchiveBucket"]["Properties"]
    lock = props["ObjectLockConfiguration"]["Fn::If"]
    assert lock[0] == "ArchiveLocked" and lock[1] == {"ObjectLockEnabled": "Enabled"}
    env = client("lambda", "eu-west-1").get_function(FunctionName="pw-on")["Configuration"]["Environment"]["Variables"]
    assert str(env["ARCHIVE_LOCK_DAYS"]) == "7"
    role = client("lambda", "eu-west-1").get_function(FunctionName="pw-on")["Configuration"]["Role"]
    retention = [s for s in statements_of(role) if "s3:PutObjectRetention" in json.dumps(s["Action"])]
    # Records alone: uses, justifications and admin sessions' calls (not the working states).
    assert len(retention) == 1 and sorted(retention[0]["Resource"]) == [
        f"arn:aws:s3:::{bucket}/activity/*", f"arn:aws:s3:::{bucket}/justifications/*", f"arn:aws:s3:::{bucket}/uses/*"]


def test_all_on_alarm_mail_is_subscribed(all_on):
    sns = client("sns", "eu-west-1")
    topic = [t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":pw-on-alarms")]
    assert topic, "the alarm topic"
    subs = sns.list_subscriptions_by_topic(TopicArn=topic[0])["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("email", "security+alarms@example.com")]


def test_all_on_the_deploy_role_is_spared_in_the_tampering_patterns(all_on):
    events = client("events", "eu-west-1")
    rule = events.describe_rule(Name="pw-on-alarm-rules")
    spared = json.loads(rule["EventPattern"])["detail"]["$or"][0]
    roles = spared["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"][0]["anything-but"]["wildcard"]
    assert roles == [DEPLOY_ROLE], "a per-account deployment has no StackSets to spare"


def test_all_on_covers_us_east_1_and_uses_its_deploy_bucket(all_on):
    assert "adding us-east-1" in all_on["result"].stderr
    for region in ("ap-northeast-1", "us-east-1"):
        stack = client("cloudformation", region).describe_stacks(StackName="pw-on-forwarder")["Stacks"][0]
        assert stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    client("s3", "eu-west-1").head_bucket(Bucket="pw-on-deploy-bucket")


def test_all_on_watches_root_api_and_assume_role(all_on):
    names = {r["Name"] for r in [r for page in client("events", "eu-west-1").get_paginator("list_rules").paginate(NamePrefix="pw-on-") for r in page["Rules"]]}
    assert {"pw-on-root-api-activity", "pw-on-admin-role-via-assume-role", "pw-on-catchup", "pw-on-iam-user-sign-in",
            "pw-on-admin-session-activity", "pw-on-sso-admin-assignment", "pw-on-canaries"} <= names


def test_all_off_exits_0_and_makes_none_of_the_optional_parts(tmp_path):
    path = tmp_path / "off.env"
    path.write_text(ACCOUNT_ALL_OFF)
    env = {"ACCOUNT_FILE": str(path)}
    result = make("deploy", "ACCOUNT=off", env_extra=env)
    try:
        assert result.returncode == 0, result.stderr
        assert "Put the bot token in the secret" in result.stdout
        assert "Justify" not in result.stdout
        lam = client("lambda")
        env_vars = lam.get_function(FunctionName="pw-off")["Configuration"]["Environment"]["Variables"]
        for absent in ["ARCHIVE_BUCKET", "JUSTIFY_BUTTON", "DEPLOY_ROLE_ARN", "OIDC_OWNERS", "TICKET_URL_PATTERN", "ACCOUNT_NAME"]:
            assert absent not in env_vars, absent
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.get_function(FunctionName="pw-off-justify")
        names = {r["Name"] for r in [r for page in client("events").get_paginator("list_rules").paginate(NamePrefix="pw-off-") for r in page["Rules"]]}
        assert "pw-off-root-api-activity" not in names and "pw-off-admin-role-via-assume-role" not in names
        assert "pw-off-iam-user-sign-in" not in names
        assert "pw-off-admin-session-activity" not in names
        # No ADMIN_PERMISSION_SETS: no assignment rule (EventBridge takes no empty matcher list).
        assert "pw-off-sso-admin-assignment" not in names
        assert "pw-off-catchup" not in names
        sns = client("sns")
        topic = [t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":pw-off-alarms")]
        assert sns.list_subscriptions_by_topic(TopicArn=topic[0])["Subscriptions"] == []
    finally:
        assert make("destroy", "ACCOUNT=off", env_extra=env).returncode == 0


def set_lambda_quota(value):
    url = os.environ["AWS_ENDPOINT_URL"] + "/privwatch-moto/lambda-quota"
    request = urllib.request.Request(url, data=None if value is None else str(value).encode(),
                                     method="DELETE" if value is None else "POST")
    urllib.request.urlopen(request).read()


def test_a_low_concurrency_quota_stops_the_deploy_before_anything_is_made(tmp_path):
    """A new or Control Tower vended account often has a quota of 10: reserving 1 would leave 9
    unreserved, below the minimum (the whole quota when it is under 100), and AWS rolls the stack
    back. The deploy reads get-account-settings first and says what to request."""
    path = tmp_path / "low.env"
    path.write_text(ACCOUNT_ALL_OFF.replace("pw-off", "pw-low"))
    set_lambda_quota(10)
    try:
        result = make("deploy", "ACCOUNT=low", env_extra={"ACCOUNT_FILE": str(path)})
    finally:
        set_lambda_quota(None)
    assert result.returncode != 0
    assert "quota" in result.stderr and "L-B99A9384" in result.stderr and "Service Quotas" in result.stderr
    cfn = client("cloudformation")
    with pytest.raises(cfn.exceptions.ClientError):
        cfn.describe_stacks(StackName="pw-low-notifier")


def test_a_settings_file_is_never_run_and_a_misspelt_key_is_an_error(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "bad.env"
    path.write_text(ACCOUNT_ALL_OFF + f"ACCOUNT_NAME=$(touch {marker})\nSLACK_CHANEL_ID=C0TYPO\n")
    result = make("deploy", "ACCOUNT=bad", env_extra={"ACCOUNT_FILE": str(path)})
    assert result.returncode != 0
    assert "SLACK_CHANEL_ID is not a privwatch setting" in result.stderr
    assert not marker.exists(), "the file is read, never run"


# --- organization mode -------------------------------------------------------------------------

def org_all_on(root, ou, read_role, org_id="o-exampleorgid"):
    return "\n".join([
        "HUB_PROFILE=security-admin",
        "MANAGEMENT_PROFILE=delegated-admin",
        "MANAGEMENT_ACCOUNT_PROFILE=management-admin",
        "CALL_AS=DELEGATED_ADMIN",
        "HUB_REGION=us-east-1",
        f"ORGANIZATION_ID={org_id}",
        f"TARGET_OUS={root}",
        'REGIONS="eu-west-1"',
        "SLACK_CHANNEL_ID=C0ORGON",
        f'CHANNEL_ROUTES="{ou}=C0DATA"',
        "ACCOUNT_NAMES='111122223333=prod \"blue\"'",
        f"ORG_READ_ROLE_ARN={read_role}",
        "IAM_USER_SIGN_IN=notice",
        'ADMIN_PERMISSION_SETS="arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-0123456789abcdef"',
        "IDENTITY_CENTER_REGION=us-east-1",
        "SESSION_ACTIVITY=on",
        'ADMIN_ROLE_ARNS="arn:aws:iam::111122223333:role/GoogleWorkspaceAdmin"',
        "ADMIN_ROLE_PATTERNS='*AWSReservedSSO_AdministratorAccess_*'",
        f'OU_ADMIN_ROLE_PATTERNS="{ou}=*DataPlatformAdmin*"',
        "HEARTBEAT_MINUTES=30",
        "MESSAGE_LANGUAGE=ja",
        "FALLBACK_MENTION=<!channel>",
        f'ESCALATION_MENTION="{ESCALATION}"',
        f'OIDC_OWNERS="{OIDC}"',
        "EXISTING_SECRET_ARN=arn:aws:secretsmanager:us-east-1:123456789012:secret:pworgon-token-AbCdEf",
        f"DEPLOY_ROLE_ARN={DEPLOY_ROLE}",
        "ALARM_EMAIL=security+org@example.com",
        "FUNCTION_NAME=pworgon",
    ]) + "\n"


@pytest.fixture(scope="module")
def organization():
    orgs = client("organizations")
    try:
        org = orgs.describe_organization()["Organization"]
    except orgs.exceptions.AWSOrganizationsNotInUseException:
        org = orgs.create_organization(FeatureSet="ALL")["Organization"]
    root = orgs.list_roots()["Roots"][0]["Id"]
    ou = orgs.create_organizational_unit(ParentId=root, Name="settings")["OrganizationalUnit"]["Id"]
    member = orgs.create_account(AccountName="delegated", Email="aws+delegated@example.com")["CreateAccountStatus"]["AccountId"]
    return {"id": org["Id"], "root": root, "ou": ou, "member": member}


def test_org_all_on_exits_0_and_every_setting_takes_effect(organization, tmp_path):
    path = tmp_path / "org-on.env"
    path.write_text(org_all_on(organization["root"], organization["ou"], "arn:aws:iam::123456789012:role/privwatch-org-read",
                               organization["id"]))
    result = make("deploy-org", "ORG=on", env_extra={"ORG_FILE": str(path)})
    assert result.returncode == 0, result.stderr
    assert "privwatch coverage" in result.stdout
    assert "adding us-east-1" in result.stderr
    env = client("lambda").get_function(FunctionName="pworgon")["Configuration"]["Environment"]["Variables"]
    assert env["CHANNEL_ROUTES"] == f"{organization['ou']}=C0DATA"
    assert env["ACCOUNT_NAMES"] == '111122223333=prod "blue"'
    assert env["ORG_READ_ROLE_ARN"] == "arn:aws:iam::123456789012:role/privwatch-org-read"
    assert env["ESCALATION_MENTION"] == ESCALATION and env["OIDC_OWNERS"] == OIDC
    assert env["MESSAGE_LANGUAGE"] == "ja" and str(env["HEARTBEAT_MINUTES"]) == "30"
    assert env["SPOKE_REGIONS"] == "eu-west-1,us-east-1"
    # The spokes spare the StackSets execution roles (and the deploy role) through CloudFormation.
    from test_infra import cfn_template

    spoke = cfn_template(ROOT / "target/infra/org-on/spoke.yaml")["Resources"]["AlarmTamperingRulesRule"]
    spared = spoke["Properties"]["EventPattern"]["detail"]["$or"][0]
    roles = spared["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"][0]["anything-but"]["wildcard"]
    assert roles == ["arn:aws*:iam::*:role/stacksets-exec-*", DEPLOY_ROLE], roles
    cfn = client("cloudformation")
    sets = {s["StackSetName"] for s in cfn.list_stack_sets()["Summaries"]}
    assert {"pworgon-spokes", f"pworgon-spokes-{organization['ou']}"} <= sets
    for region in ("eu-west-1", "us-east-1"):
        stack = client("cloudformation", region).describe_stacks(StackName="pworgon-spoke")["Stacks"][0]
        assert stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")


def test_a_delegated_admin_without_the_management_accounts_own_profile_is_refused(tmp_path):
    path = tmp_path / "org-da.env"
    text = org_all_on("root", "ou-none", "").replace("MANAGEMENT_ACCOUNT_PROFILE=management-admin\n", "")
    path.write_text(text.replace("FUNCTION_NAME=pworgon", "FUNCTION_NAME=pworgda"))
    result = make("deploy-org", "ORG=da", env_extra={"ORG_FILE": str(path)})
    assert result.returncode == 2
    assert "MANAGEMENT_ACCOUNT_PROFILE" in result.stderr


def test_the_management_spoke_is_never_deployed_with_a_member_accounts_credentials(organization, tmp_path):
    """With a delegated administrator, the caller is a member account: its identity is not the
    management account's. The deploy reads the management account from describe-organization and
    refuses credentials of any other account for the plain spokes, before creating anything."""
    creds = client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{organization['member']}:role/OrganizationAccountAccessRole",
        RoleSessionName="privwatch-test")["Credentials"]
    config = tmp_path / "config"
    config.write_text("[profile member-admin]\nregion = us-east-1\n")
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[member-admin]\n"
        f"aws_access_key_id = {creds['AccessKeyId']}\n"
        f"aws_secret_access_key = {creds['SecretAccessKey']}\n"
        f"aws_session_token = {creds['SessionToken']}\n"
    )
    path = tmp_path / "org-wrong.env"
    text = org_all_on(organization["root"], organization["ou"], "", organization["id"])
    text = text.replace("MANAGEMENT_ACCOUNT_PROFILE=management-admin", "MANAGEMENT_ACCOUNT_PROFILE=member-admin")
    path.write_text(text.replace("FUNCTION_NAME=pworgon", "FUNCTION_NAME=pworgwrong"))
    result = make("deploy-org", "ORG=wrong", env_extra={
        "ORG_FILE": str(path), "AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials)})
    assert result.returncode == 2, result.stderr
    assert f"of account {organization['member']}, not of the organization's management account 123456789012" in result.stderr
    cfn = client("cloudformation")
    with pytest.raises(cfn.exceptions.ClientError):
        cfn.describe_stacks(StackName="pworgwrong-hub")


def test_stacksets_without_trusted_access_are_refused_before_anything_is_made(organization, tmp_path):
    """Service-managed StackSets need trusted access with Organizations; without it the hub would
    be deployed and the StackSet refused. The deploy reads describe-organizations-access first."""
    url = os.environ["AWS_ENDPOINT_URL"] + "/privwatch-moto/stacksets-access"
    path = tmp_path / "org-noaccess.env"
    text = org_all_on(organization["root"], organization["ou"], "", organization["id"])
    path.write_text(text.replace("FUNCTION_NAME=pworgon", "FUNCTION_NAME=pworgnoaccess"))
    urllib.request.urlopen(urllib.request.Request(url, data=b"DISABLED", method="POST"))
    try:
        result = make("deploy-org", "ORG=noaccess", env_extra={"ORG_FILE": str(path)})
    finally:
        urllib.request.urlopen(urllib.request.Request(url, data=b"ENABLED", method="POST"))
    assert result.returncode == 2, result.stderr
    assert "trusted access with AWS Organizations is DISABLED" in result.stderr
    assert "activate-organizations-access" in result.stderr
    cfn = client("cloudformation")
    with pytest.raises(cfn.exceptions.ClientError):
        cfn.describe_stacks(StackName="pworgnoaccess-hub")
