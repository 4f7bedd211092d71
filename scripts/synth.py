#!/usr/bin/env python3
"""Renders a template under infra/ for one account, like `cdk synth`.

The line `# privwatch:rules target=function|home-bus` becomes one EventBridge rule per entry of
infra/rules.json (rendered from src/kind.rs: the same patterns the function classifies with),
each targeting the function (with its invoke permission) or the home region's bus. Placeholders
in the patterns get the account's values:
  "$ADMIN_ROLE_ARNS"      roleArn matchers: exact ARNs as strings, patterns as {"wildcard": …}
  "$ADMIN_ROLE_SESSIONS"  the same roles as assumed-role session ARNs (console SwitchRole)
  "$TOKEN_SECRET_IDS"     the names the token secret goes by
  "$ADMIN_PERMISSION_SETS" permission-set ARNs (ADMIN_PERMISSION_SET_ARNS, resolved from
                          ADMIN_PERMISSION_SETS by `privwatch admins`); with none, the rule is left out
  ${FunctionName}         inside a string: Fn::Sub
and, with DEPLOY_ROLE_ARN set, the rules that spare the deployer leave its changes out. The line
marked `# privwatch:code` gets the absolute path of the function's zip.

AWS's size limits are checked here, before anything is deployed, each with the setting behind it
and the way out: an event pattern holds at most 2,048 characters ("Event pattern size", Amazon
EventBridge quotas) — a rule whose admin-role list outgrows it is split into several rules
(`<name>`, `<name>-2`, …) with the same target; a rule name at most 64 ("Rule", EventBridge API
Reference); a template passed inline (a StackSet's, the management spokes') at most 51,200 bytes,
one through S3 at most 460,800 ("CloudFormation quotas").

usage: synth.py TEMPLATE OUTPUT "ARN ARN…" "PATTERN PATTERN…" [--admin-roles-only] [--inline]
(--admin-roles-only: only the rules that match admin roles — an OU's additional roles;
 --inline: the template goes to CloudFormation inline, not through S3.)
(EXISTING_SECRET_ARN, DEPLOY_ROLE_ARN, FUNCTION_NAME and ADMIN_PERMISSION_SET_ARNS are read from the environment.)
"""

import json
import os
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
RETRY = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
PATTERN_LIMIT = 2048
RULE_NAME_LIMIT = 64
INLINE_TEMPLATE_LIMIT = 51_200
S3_TEMPLATE_LIMIT = 460_800
SPLITTABLE = ("$ADMIN_ROLE_ARNS", "$ADMIN_ROLE_SESSIONS", "$ADMIN_PERMISSION_SETS")


class LimitError(SystemExit):
    """A limit AWS would enforce at deploy, found at synth."""


def resolved(node, function_name: str):
    """The pattern as EventBridge receives it: CloudFormation's Fn::Sub of ${FunctionName} done."""
    if isinstance(node, dict) and set(node) == {"Fn::Sub"}:
        return node["Fn::Sub"].replace("${FunctionName}", function_name)
    if isinstance(node, dict):
        return {k: resolved(v, function_name) for k, v in node.items()}
    if isinstance(node, list):
        return [resolved(v, function_name) for v in node]
    return node


def pattern_size(pattern, function_name: str) -> int:
    return len(json.dumps(resolved(pattern, function_name), separators=(",", ":"), ensure_ascii=False))


def split_patterns(rule: dict, values: dict, deploy_role: str, function_name: str, stacksets: bool = False) -> list:
    """The rule's pattern, or — when its admin-role list makes it longer than EventBridge takes —
    one pattern per share of that list, each within the limit (together they match the same)."""

    def render(vals):
        pattern = expand(rule["pattern"], vals)
        exemption = rollout_exemption(deploy_role, stacksets) if rule["spares_deployer"] else None
        if exemption:
            pattern["detail"]["$or"] = exemption
        return pattern

    whole = render(values)
    if pattern_size(whole, function_name) <= PATTERN_LIMIT:
        return [whole]
    text = json.dumps(rule["pattern"])
    placeholder = next((p for p in SPLITTABLE if p in text), None)
    if placeholder is None:
        raise LimitError(
            f"synth: the rule {rule['name']} renders an event pattern of {pattern_size(whole, function_name)} "
            f"characters; EventBridge takes {PATTERN_LIMIT} (\"Event pattern size\", Amazon EventBridge quotas)")
    parts, share = [], []
    for matcher in values[placeholder]:
        trial = render({**values, placeholder: share + [matcher]})
        if share and pattern_size(trial, function_name) > PATTERN_LIMIT:
            parts.append(render({**values, placeholder: share}))
            share = [matcher]
        else:
            share.append(matcher)
    parts.append(render({**values, placeholder: share}))
    for part in parts:
        if pattern_size(part, function_name) > PATTERN_LIMIT:
            raise LimitError(
                f"synth: one admin role entry alone makes the rule {rule['name']} longer than EventBridge's "
                f"{PATTERN_LIMIT} characters: shorten that entry of ADMIN_ROLE_ARNS / ADMIN_ROLE_PATTERNS")
    return parts


def session_matchers(arns: list[str], patterns: list[str]) -> list:
    """Admin roles as the ARNs of their console sessions (`arn:aws:sts::<acct>:assumed-role/<name>/<session>`:
    the role's path is not in it)."""
    out = []
    for arn in arns:
        m = re.fullmatch(r"arn:([^:]+):iam::(\d+):role/(?:.*/)?([^/]+)", arn)
        if m:
            out.append({"wildcard": f"arn:{m.group(1)}:sts::{m.group(2)}:assumed-role/{m.group(3)}/*"})
    for pattern in patterns:
        if ":role/" in pattern:
            head, name = pattern.split(":role/", 1)
            session = head.replace(":iam::", ":sts::") + ":assumed-role/" + name.rsplit("/", 1)[-1]
            out.append({"wildcard": session if session.endswith("*") else session + "/*"})
        else:
            out.append({"wildcard": pattern})
    return out


def secret_ids(existing_arn: str) -> list:
    ids = [{"wildcard": "*${FunctionName}/slack-bot-token*"}]
    m = re.search(r":secret:(.+?)(-[A-Za-z0-9]{6})?$", existing_arn or "")
    if m:
        ids.append({"wildcard": f"*{m.group(1)}*"})
    return ids


# A service-managed StackSet acts in each member account through the role it creates there,
# `stacksets-exec-*` ("Configure a custom execution role template for StackSets", AWS
# CloudFormation User Guide); privwatch's own deploys through DEPLOY_ROLE_ARN. Their changes to
# privwatch's rules, made through CloudFormation, are its rollout, not tampering. The same
# sessions used by hand still match. src/detect.rs applies the same exemption.
STACKSETS_EXECUTION_ROLES = "arn:aws*:iam::*:role/stacksets-exec-*"
CLOUDFORMATION = "cloudformation.amazonaws.com"


def rollout_exemption(deploy_role: str, stacksets: bool = False):
    """The `$or` that lets through everything but a rollout: an issuer that is none of the rollout
    roles, no issuer at all, or a call not made through CloudFormation (`None`: no rollout role to
    spare). The StackSets execution roles are rollout roles only in a spoke (organization mode):
    elsewhere a role of that name is anybody's."""
    issuer = lambda m: {"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": [m]}}}}  # noqa: E731
    roles = ([STACKSETS_EXECUTION_ROLES] if stacksets else []) + ([deploy_role.replace("*", "\\*")] if deploy_role else [])
    if not roles:
        return None
    return [
        issuer({"anything-but": {"wildcard": roles}}),
        issuer({"exists": False}),
        {"sourceIPAddress": [{"anything-but": CLOUDFORMATION}]},
    ]


def expand(node, values: dict):
    """Placeholders → the account's matchers; strings naming ${FunctionName} → Fn::Sub."""
    if isinstance(node, dict):
        return {k: expand(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [expand(v, values) for v in node]
    if isinstance(node, str) and node in values:
        return [expand(v, values) for v in values[node]]
    if isinstance(node, str) and "${" in node:
        return {"Fn::Sub": node}
    return node


def rule_resources(rules: list, target: str, values: dict, deploy_role: str, function_name: str = "privwatch") -> dict:
    resources = {}
    for rule in rules:
        stacksets = target == "org-bus"
        for part, pattern in enumerate(split_patterns(rule, values, deploy_role, function_name, stacksets), 1):
            suffix = "" if part == 1 else f"-{part}"
            resources.update(rule_resource(rule, pattern, target, suffix, function_name))
    return resources


def rule_resource(rule: dict, pattern, target: str, suffix: str, function_name: str) -> dict:
    """One rule (one share of a split one: `suffix` `-2`, …) and, for the function, its permission."""
    name = f"{function_name}-{rule['name']}{suffix}"
    if len(name) > RULE_NAME_LIMIT:
        raise LimitError(
            f"synth: the rule name {name} is {len(name)} characters; EventBridge allows {RULE_NAME_LIMIT} "
            f"(\"Rule\", Amazon EventBridge API Reference): shorten FUNCTION_NAME")
    logical = rule["id"] + suffix.replace("-", "Part")
    resources = {}
    if target == "function":
        targets = [{
            "Id": "privwatch",
            "Arn": {"Fn::GetAtt": ["Function", "Arn"]},
            "RetryPolicy": RETRY,
            "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["RuleDeadLetterQueue", "Arn"]}},
        }]
    elif target == "org-bus":
        targets = [{
            "Id": "hub-bus",
            "Arn": {"Ref": "HubBusArn"},
            "RoleArn": {"Fn::GetAtt": ["ForwardRole", "Arn"]},
            "RetryPolicy": RETRY,
            "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}},
        }]
    else:
        targets = [{
            "Id": "home-bus",
            "Arn": {"Fn::Sub": "arn:${AWS::Partition}:events:${HomeRegion}:${AWS::AccountId}:event-bus/default"},
            "RoleArn": {"Fn::GetAtt": ["ForwardRole", "Arn"]},
            "RetryPolicy": RETRY,
            "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}},
        }]
    resource = {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "Name": {"Fn::Sub": "${FunctionName}-" + rule["name"] + suffix},
            "Description": f"[{rule['kind']}] {rule['description']}",
            "State": rule["state"],
            "EventPattern": pattern,
            "Targets": targets,
        },
    }
    if rule["switch"]:
        resource["Condition"] = rule["switch"]
    if target == "function":
        # A hub's rules are on its organization bus; a per-account notifier's on the default bus.
        resource["Properties"]["EventBusName"] = {
            "Fn::If": ["IsHub", {"Fn::GetAtt": ["HubBus", "Name"]}, {"Ref": "AWS::NoValue"}]}
    resources[logical + "Rule"] = resource
    if target == "function":
        permission = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "FunctionName": {"Ref": "Function"},
                "Action": "lambda:InvokeFunction",
                "Principal": "events.amazonaws.com",
                "SourceArn": {"Fn::GetAtt": [logical + "Rule", "Arn"]},
            },
        }
        if rule["switch"]:
            permission["Condition"] = rule["switch"]
        resources[logical + "Permission"] = permission
    return resources


def synth(template: str, arns: list[str], patterns: list[str], code: pathlib.Path, env=os.environ,
          admin_roles_only=False) -> str:
    rules = json.loads((ROOT / "infra/rules.json").read_text())["rules"]
    if admin_roles_only:
        rules = [r for r in rules if "$ADMIN_ROLE" in json.dumps(r["pattern"])]
    values = {
        "$ADMIN_ROLE_ARNS": arns + [{"wildcard": p} for p in patterns],
        "$ADMIN_ROLE_SESSIONS": session_matchers(arns, patterns),
        "$TOKEN_SECRET_IDS": secret_ids(env.get("EXISTING_SECRET_ARN", "")),
        "$ADMIN_PERMISSION_SETS": env.get("ADMIN_PERMISSION_SET_ARNS", "").split(),
    }
    # A placeholder with nothing to match (no admin permission set here) leaves its rule out:
    # EventBridge refuses an empty matcher list.
    rules = [r for r in rules if all(values[p] for p in values if p in json.dumps(r["pattern"]))]
    marker = re.compile(r"^(\s*)# privwatch:rules target=(function|home-bus|org-bus)\s*$", re.M)
    found = marker.search(template)
    if not found:
        raise SystemExit("synth: no `# privwatch:rules target=…` line in the template")
    indent, target = found.group(1), found.group(2)
    resources = rule_resources(rules, target, values, env.get("DEPLOY_ROLE_ARN", ""),
                               env.get("FUNCTION_NAME") or "privwatch")
    # JSON is YAML: each resource as one flow mapping under Resources.
    lines = [f"{indent}# Rendered from infra/rules.json (src/kind.rs) by scripts/synth.py."]
    lines += [f"{indent}{name}: {json.dumps(body, ensure_ascii=False)}" for name, body in resources.items()]
    out = template[: found.start()] + "\n".join(lines) + template[found.end():]
    out = re.sub(r"^(\s*Code: ).*(# privwatch:code)$", lambda m: f"{m.group(1)}{code} {m.group(2)}", out, flags=re.M)
    return out


def check_template_size(text: str, inline: bool) -> None:
    size, limit = len(text.encode()), (INLINE_TEMPLATE_LIMIT if inline else S3_TEMPLATE_LIMIT)
    if size > limit:
        how = "passed inline (a StackSet's, the management spokes')" if inline else "through S3"
        raise LimitError(
            f"synth: the rendered template is {size} bytes; CloudFormation takes {limit} for a template {how} "
            f"(\"CloudFormation quotas\"): use fewer, broader ADMIN_ROLE_PATTERNS instead of many ADMIN_ROLE_ARNS")


def main() -> None:
    template, output, arns, patterns = sys.argv[1:5]
    admin_roles_only = "--admin-roles-only" in sys.argv[5:]
    inline = "--inline" in sys.argv[5:]
    if not (arns.split() or patterns.split()):
        raise SystemExit("synth: no admin roles: set ADMIN_ROLE_ARNS and/or ADMIN_ROLE_PATTERNS")
    code = ROOT / "target/lambda/arm64/privwatch/bootstrap.zip"
    text = synth(pathlib.Path(template).read_text(), arns.split(), patterns.split(), code,
                 admin_roles_only=admin_roles_only)
    check_template_size(text, inline)
    pathlib.Path(output).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(output).write_text(text)


if __name__ == "__main__":
    main()
