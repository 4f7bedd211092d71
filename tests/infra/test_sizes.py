"""The sizes AWS enforces and moto does not, checked where privwatch renders and deploys.

An event pattern holds at most 2,048 characters ("Event pattern size", Amazon EventBridge
quotas), a rule name 64 ("Rule", EventBridge API Reference), a template passed inline 51,200
bytes ("CloudFormation quotas"), a function's environment 4 KB ("Lambda quotas"). moto checks
none of them: here they are checked on what scripts/synth.py renders — at the sizes real
organizations reach (25 admin role ARNs, OU IDs of full length, a few hundred accounts) — and
against what the deploy scripts refuse.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from moto.events.models import EventPattern

from test_infra import FIXTURES, ROOT, expected_fixtures, make

sys.path.insert(0, str(ROOT / "scripts"))
import synth  # noqa: E402

EXAMPLE_ARNS = [
    "arn:aws:iam::111122223333:role/GoogleWorkspaceAdmin",
    "arn:aws:iam::111122223333:role/OrganizationAccountAccessRole",
    "arn:aws:iam::111122223333:role/CiDeployAdmin",
]
PATTERNS = ["*AWSReservedSSO_AdministratorAccess_*", "*AWSReservedSSO_PowerUserAccess_*"]
EXAMPLE_PERMISSION_SET = "arn:aws:sso:::permissionSet/ssoins-72233af8ea2d1f14/ps-ae5d1fa1f80b684e"
# 25 admin role ARNs, as an organization with a role per team and account has.
MANY_ARNS = EXAMPLE_ARNS + [
    f"arn:aws:iam::{100000000000 + i * 7919:012d}:role/platform/team-{i:02d}/BreakGlassAdministrator"
    for i in range(22)
]


def rendered_rules(arns, patterns, function_name="privwatch", template="notifier"):
    text = synth.synth((ROOT / f"infra/{template}.yaml").read_text(), arns, patterns, pathlib.Path("/x.zip"),
                       env={"FUNCTION_NAME": function_name,
                            # As `make deploy` resolves the example's ADMIN_PERMISSION_SETS.
                            "ADMIN_PERMISSION_SET_ARNS": EXAMPLE_PERMISSION_SET})
    from cfnlint.decode import decode_str

    doc, matches = decode_str(text)
    assert not matches, matches
    return text, {name: r for name, r in doc["Resources"].items()
                  if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]}


def test_25_admin_roles_split_the_rules_that_would_outgrow_2048_characters():
    _, rules = rendered_rules(MANY_ARNS, PATTERNS)
    names = []
    for logical, rule in rules.items():
        props = rule["Properties"]
        name = props["Name"]["Fn::Sub"].replace("${FunctionName}", "privwatch")
        names.append(name)
        assert len(name) <= 64, name
        size = synth.pattern_size(props["EventPattern"], "privwatch")
        assert size <= 2048, (logical, size)
    assert len(names) == len(set(names)), "rule names are unique"
    split = [n for n in names if n.startswith("privwatch-admin-role-via-switch-role")]
    assert len(split) >= 2, f"the Switch Role rule is split: {split}"
    # Unsplit, the Switch Role pattern would be past the limit (the reason for the split).
    rule = next(r for r in json.loads((ROOT / "infra/rules.json").read_text())["rules"] if r["id"] == "AdminRoleViaSwitchRole")
    whole = synth.expand(rule["pattern"], {"$ADMIN_ROLE_SESSIONS": synth.session_matchers(MANY_ARNS, PATTERNS)})
    assert synth.pattern_size(whole, "privwatch") > 2048


def test_the_split_rules_match_together_what_the_whole_would():
    """Every fixture meets exactly the rule (or one share of it) meant for it, with 25 ARNs."""
    _, rules = rendered_rules(MANY_ARNS, PATTERNS)
    compiled = {
        logical: EventPattern.load(json.dumps(synth.resolved(r["Properties"]["EventPattern"], "privwatch")))
        for logical, r in rules.items()
    }
    for file, expected in expected_fixtures().items():
        event = json.loads((FIXTURES / file).read_text())
        matched = sorted(name for name, p in compiled.items() if p.matches_event(event))
        want = [] if expected is None or expected["rule"] is None else sorted([expected["rule"], *expected.get("also", [])])
        # A share of a split rule is `<Id>Part<n>Rule`.
        assert sorted(m.split("Part")[0].removesuffix("Rule") for m in matched) == want, (file, matched)


def test_a_function_name_that_makes_rule_names_too_long_is_refused():
    with pytest.raises(SystemExit, match="shorten FUNCTION_NAME"):
        rendered_rules(EXAMPLE_ARNS, PATTERNS, function_name="privwatch-" + "x" * 40)


def test_a_spoke_template_past_51200_bytes_inline_is_refused_and_through_s3_it_is_not():
    arns = MANY_ARNS * 8  # 200 entries
    text, _ = rendered_rules(arns, PATTERNS, template="spoke")
    assert len(text.encode()) > 51_200
    with pytest.raises(SystemExit, match="51200"):
        synth.check_template_size(text, inline=True)
    synth.check_template_size(text, inline=False)


def test_an_ou_of_full_length_gets_rule_names_within_64_characters():
    ou = "ou-" + "a" * 32 + "-" + "b" * 32
    script = f'FUNCTION_NAME=privwatch; source <(sed -n "/^ou_function_name()/,/^}}/p" scripts/deploy-org.sh); ou_function_name {ou}'
    name = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert name.startswith("privwatch-ou") and len(name) <= 34, name
    short = subprocess.run(["bash", "-c", script.replace(ou, "ou-ab12-cdef3456")], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert short == "privwatch-ou-ab12-cdef3456", "a usual OU keeps its readable name"
    longest = max(r["name"] for r in json.loads((ROOT / "infra/rules.json").read_text())["rules"])
    _, rules = rendered_rules([], ["*DataAdmin*"], function_name=name, template="spoke")
    for rule in rules.values():
        assert len(rule["Properties"]["Name"]["Fn::Sub"].replace("${FunctionName}", name)) <= 64, longest


def test_settings_past_4kb_of_environment_are_refused_before_anything_is_made(tmp_path):
    assert "AWS_ENDPOINT_URL" in os.environ, "run under scripts/with-moto.sh (make test does)"
    names = ",".join(f"{100000000000 + i:012d}=team-{i:03d}-production" for i in range(300))
    path = tmp_path / "big.env"
    path.write_text("\n".join([
        "HUB_REGION=us-east-1", 'REGIONS="us-east-1"', "SLACK_CHANNEL_ID=C0BIG",
        "ADMIN_ROLE_PATTERNS=*AWSReservedSSO_AdministratorAccess_*", f"ACCOUNT_NAMES={names}",
        "FUNCTION_NAME=pwbig",
    ]) + "\n")
    result = make("deploy-org", "ORG=big", env_extra={"ORG_FILE": str(path)})
    assert result.returncode == 2, result.stderr
    assert "4 KB" in result.stderr and "ACCOUNT_NAMES" in result.stderr
    assert "Organizations" in result.stderr, "the way out"
    import boto3

    cfn = boto3.client("cloudformation", region_name="us-east-1", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    with pytest.raises(cfn.exceptions.ClientError):
        cfn.describe_stacks(StackName="pwbig-hub")
