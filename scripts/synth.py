#!/usr/bin/env python3
"""Renders a template under infra/ for one account, like `cdk synth`: the lines marked
`# privwatch:admin-role-matchers` get the account's roleArn matchers (exact ARNs as strings,
patterns as {"wildcard": …}), and the line marked `# privwatch:code` the absolute path of the
function's zip (so `aws cloudformation package` finds it from target/infra/).

usage: synth.py TEMPLATE OUTPUT "ARN ARN…" "PATTERN PATTERN…"
"""

import json
import pathlib
import re
import sys


def synth(template: str, arns: list[str], patterns: list[str], code: pathlib.Path) -> str:
    matchers = json.dumps(arns + [{"wildcard": p} for p in patterns])
    marked = re.compile(r"^(\s*roleArn: ).*(# privwatch:admin-role-matchers)$", re.M)
    out, count = marked.subn(lambda m: f"{m.group(1)}{matchers} {m.group(2)}", template)
    if count == 0:
        raise SystemExit("synth: no `# privwatch:admin-role-matchers` line in the template")
    out = re.sub(r"^(\s*Code: ).*(# privwatch:code)$", lambda m: f"{m.group(1)}{code} {m.group(2)}", out, flags=re.M)
    return out


def main() -> None:
    template, output, arns, patterns = sys.argv[1:5]
    if not (arns.split() or patterns.split()):
        raise SystemExit("synth: no admin roles: set ADMIN_ROLE_ARNS and/or ADMIN_ROLE_PATTERNS")
    root = pathlib.Path(__file__).resolve().parents[1]
    code = root / "target/lambda/arm64/privwatch/bootstrap.zip"
    text = synth(pathlib.Path(template).read_text(), arns.split(), patterns.split(), code)
    pathlib.Path(output).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(output).write_text(text)


if __name__ == "__main__":
    main()
