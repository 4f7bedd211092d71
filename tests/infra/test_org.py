"""Organization mode, proven against moto as far as moto goes.

An organization of a management account and 3 member accounts (one in an OU with its own admin
roles) is made in moto; `make deploy-org ORG=example` (the committed example file) deploys the
hub, the StackSets and the management account's spokes in 2 regions; then the AWS API is asked
what was made. The spokes' rules are read back from the management account's deployed spoke
stacks and matched against every fixture with moto's EventBridge matcher.

Where moto stops (said in docs/organization.md too): it keeps a StackSet's permission model and makes one
stack instance per account × region, but does not return AutoDeployment, does not create the
instances' resources in the member accounts, and does not deliver events across accounts; the
bus policy set by the template is dropped by moto (the deploy script also sets it through the
API against an emulator, and cfn-guard checks the template's). Those are checked in the rendered
templates with cfn-lint and cfn-guard (scripts/test-infra.sh), with failing cases of their own.
"""

import json
import os
import pathlib

import boto3
import pytest
from moto.events.models import EventPattern

from test_infra import FIXTURES, RULES, client, expected_fixtures, make

ROOT = pathlib.Path(__file__).resolve().parents[2]
REGIONS = ["us-east-1", "eu-west-1"]
NAME = "pworg"


@pytest.fixture(scope="module")
def organization():
    assert "AWS_ENDPOINT_URL" in os.environ, "run under scripts/with-moto.sh (make test does)"
    orgs = client("organizations")
    try:
        org = orgs.describe_organization()["Organization"]
    except orgs.exceptions.AWSOrganizationsNotInUseException:
        org = orgs.create_organization(FeatureSet="ALL")["Organization"]
    root = orgs.list_roots()["Roots"][0]["Id"]
    ou = orgs.create_organizational_unit(ParentId=root, Name="data")["OrganizationalUnit"]["Id"]
    accounts = []
    for name in ["prod", "dev", "data"]:
        status = orgs.create_account(AccountName=name, Email=f"aws+{name}@example.com")["CreateAccountStatus"]
        accounts.append(status["AccountId"])
    orgs.move_account(AccountId=accounts[2], SourceParentId=root, DestinationParentId=ou)
    return {"id": org["Id"], "root": root, "ou": ou, "accounts": accounts}


@pytest.fixture(scope="module")
def deployed(organization, tmp_path_factory):
    # The committed example, with one OU's own admin roles added.
    text = (ROOT / "infra/orgs/example.env").read_text()
    org_file = tmp_path_factory.mktemp("org") / "moto.env"
    org_file.write_text(
        text.replace("OU_ADMIN_ROLE_PATTERNS=\n", f'OU_ADMIN_ROLE_PATTERNS="{organization["ou"]}=*DataPlatformAdmin*"\n')
        + f"FUNCTION_NAME={NAME}\n"
        # The admin roles fixtures/expected.json is written for (the account example's).
        + "".join(
            line + "\n"
            for line in (ROOT / "infra/accounts/example.env").read_text().splitlines()
            if line.startswith(("ADMIN_ROLE_ARNS=", "ADMIN_ROLE_PATTERNS="))
        )
    )
    # The committed example as it is, from a fresh clone: it completes.
    plain = make("deploy-org", "ORG=example")
    assert plain.returncode == 0, plain.stderr
    assert "privwatch coverage" in plain.stdout
    # (moto cannot update a stack in place, so the checked deployment has its own names.)
    extended = make("deploy-org", "ORG=moto", env_extra={"ORG_FILE": str(org_file)})
    assert extended.returncode == 0, extended.stderr
    # `make destroy-org` is not run here: moto, unlike AWS, also instantiates a service-managed
    # StackSet in the management account, where its resources collide with the management
    # account's own spoke stack, and then cannot delete either (docs/organization.md).
    return organization


def bus_rules(bus, region="us-east-1"):
    events = client("events", region)
    return {r["Name"]: r for r in [r for page in events.get_paginator("list_rules").paginate(EventBusName=bus) for r in page["Rules"]]}


def test_the_hub_bus_admits_only_the_organization(deployed):
    events = client("events")
    bus = events.describe_event_bus(Name=f"{NAME}-hub")
    policy = json.loads(bus["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Action"] == "events:PutEvents"
    assert statement["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == deployed["id"]


def test_the_hub_rules_are_on_its_bus_and_target_the_function(deployed):
    rules = bus_rules(f"{NAME}-hub")
    function_arn = client("lambda").get_function(FunctionName=NAME)["Configuration"]["FunctionArn"]
    for rule in RULES:
        name = f"{NAME}-{rule['name']}"
        assert name in rules, name
        targets = client("events").list_targets_by_rule(Rule=name, EventBusName=f"{NAME}-hub")["Targets"]
        assert [t["Arn"] for t in targets] == [function_arn]
    assert f"{NAME}-heartbeats" in rules and f"{NAME}-canaries" in rules
    env = client("lambda").get_function(FunctionName=NAME)["Configuration"]["Environment"]["Variables"]
    assert env["ORGANIZATION_ID"] == deployed["id"]
    assert env["SPOKE_REGIONS"] == ",".join(REGIONS)
    # The hub lets in every OU's admin roles: the data OU's own pattern is in its SAML rule.
    saml = json.loads(rules[f"{NAME}-admin-role-via-saml"]["EventPattern"])
    assert {"wildcard": "*DataPlatformAdmin*"} in saml["detail"]["requestParameters"]["roleArn"]


def test_the_stack_sets_are_service_managed_and_reach_every_account_and_region(deployed):
    cfn = client("cloudformation")
    main = cfn.describe_stack_set(StackSetName=f"{NAME}-spokes")["StackSet"]
    assert main["PermissionModel"] == "SERVICE_MANAGED"
    instances = cfn.list_stack_instances(StackSetName=f"{NAME}-spokes")["Summaries"]
    reached = {(i["Account"], i["Region"]) for i in instances}
    for account in deployed["accounts"]:
        for region in REGIONS:
            assert (account, region) in reached, (account, region)
    extra = cfn.describe_stack_set(StackSetName=f"{NAME}-spokes-{deployed['ou']}")["StackSet"]
    assert extra["PermissionModel"] == "SERVICE_MANAGED"
    extra_reached = {i["Account"] for i in cfn.list_stack_instances(StackSetName=extra["StackSetName"])["Summaries"]}
    assert deployed["accounts"][2] in extra_reached, "the data OU's account gets its extra roles"
    # The StackSet's template is the rendered spoke: rules of every kind and the heartbeat.
    template = main["TemplateBody"]
    for rule in RULES:
        assert f"{rule['id']}Rule" in template, rule["id"]
    assert "HeartbeatRule" in template
    assert "CanaryRule" in template and "AWS::Scheduler::Schedule" in template


# A StackSet's execution role changing privwatch's rules through CloudFormation is the spokes'
# own rollout: a spoke spares it (a per-account deployment, which fixtures/expected.json
# describes, has no StackSets and reports it).
SPARED_IN_SPOKES = {"stacksets-rollout-put-rule.json"}


def test_management_account_spokes_match_each_fixture_with_exactly_its_rule(deployed):
    hub_bus = client("events").describe_event_bus(Name=f"{NAME}-hub")["Arn"]
    for region in REGIONS:
        rules = bus_rules("default", region)
        events = client("events", region)
        for rule in RULES:
            name = f"{NAME}-{rule['name']}"
            (target,) = events.list_targets_by_rule(Rule=name)["Targets"]
            assert target["Arn"] == hub_bus, (region, name)
            assert "RoleArn" in target and target["DeadLetterConfig"]["Arn"].endswith(f":{NAME}-spoke-dlq")
        heartbeat = rules[f"{NAME}-heartbeat"]
        assert heartbeat["ScheduleExpression"] == "rate(60 minutes)"
        assert events.list_targets_by_rule(Rule=f"{NAME}-heartbeat")["Targets"][0]["Arn"] == hub_bus
        # The canary's record goes to the hub too (its schedule: moto does not create one).
        assert events.list_targets_by_rule(Rule=f"{NAME}-canary")["Targets"][0]["Arn"] == hub_bus
        patterns = {
            r["id"]: EventPattern.load(rules[f"{NAME}-{r['name']}"]["EventPattern"]) for r in RULES
        }
        for file, expected in expected_fixtures().items():
            # The records of tampering name privwatch's own resources: here they are NAME's.
            event = json.loads((FIXTURES / file).read_text().replace("privwatch", NAME))
            matched = sorted(name for name, p in patterns.items() if p.matches_event(event))
            want = [] if expected is None or expected["rule"] is None else sorted([expected["rule"], *expected.get("also", [])])
            if file in SPARED_IN_SPOKES:
                want = []
            assert matched == want, f"{region} {file}: matched {matched}, expected {want}"


def test_a_heartbeat_event_reaches_the_hub_rule(deployed):
    """A spoke's Scheduled Event as the hub bus receives it matches the hub's heartbeat rule (and
    no privileged-use rule)."""
    rules = bus_rules(f"{NAME}-hub")
    account = deployed["accounts"][0]
    event = {
        "version": "0", "id": "hb", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": account, "time": "2026-11-01T10:00:00Z", "region": "eu-west-1",
        "resources": [f"arn:aws:events:eu-west-1:{account}:rule/{NAME}-heartbeat"], "detail": {},
    }
    matched = [n for n, r in rules.items() if EventPattern.load(r["EventPattern"]).matches_event(event)]
    assert matched == [f"{NAME}-heartbeats"]


def test_the_tampering_rule_names_the_hubs_function_role(deployed):
    role_name = client("lambda").get_function(FunctionName=NAME)["Configuration"]["Role"].split("/")[-1]
    (rule,) = [r for r in RULES if r["id"] == "AlarmTamperingRole"]
    prefixes = [m["prefix"].replace("${FunctionName}", NAME) for m in rule["pattern"]["detail"]["requestParameters"]["roleName"]]
    assert any(role_name.startswith(p) for p in prefixes), (role_name, prefixes)


def test_a_spokes_canary_record_reaches_the_hub_rule_and_no_other(deployed):
    """The canary's CloudTrail record (ssm:PutParameter on /<function>/canary, a real record's
    shape) as a spoke forwards it matches the spoke's canary rule, and on the hub bus the hub's
    canaries rule — no privileged-use rule on either."""
    account = deployed["accounts"][0]
    record = {
        "version": "0", "id": "c1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ssm",
        "account": account, "time": "2026-12-03T10:00:00Z", "region": "eu-west-1", "resources": [],
        "detail": {"eventSource": "ssm.amazonaws.com", "eventName": "PutParameter", "awsRegion": "eu-west-1",
                   "userIdentity": {"type": "AssumedRole", "invokedBy": "scheduler.amazonaws.com"},
                   "requestParameters": {"name": f"/{NAME}/canary", "value": "HIDDEN_DUE_TO_SECURITY_REASONS",
                                         "type": "String", "overwrite": True},
                   "readOnly": False, "eventType": "AwsApiCall", "recipientAccountId": account},
    }
    for bus, region, want in [("default", "eu-west-1", [f"{NAME}-canary"]), (f"{NAME}-hub", "us-east-1", [f"{NAME}-canaries"])]:
        rules = bus_rules(bus, region)
        matched = [n for n, r in rules.items() if "EventPattern" in r and EventPattern.load(r["EventPattern"]).matches_event(record)]
        assert matched == want, (bus, matched)
