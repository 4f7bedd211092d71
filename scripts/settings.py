#!/usr/bin/env python3
"""Reads an account or organization file (infra/accounts/*.env, infra/orgs/*.env) as the user
wrote it, for the deploy scripts.

Each line is `KEY=value`, `# a comment` or blank. A value in matching double or single quotes is
taken between them, character for character: no `$` expansion, no backslash escapes, no word
splitting, so `FALLBACK_MENTION=<!subteam^S0123|sec>`, an apostrophe inside double quotes and
a regular expression with `\\.` all arrive as written. An unquoted value ends at ` #` (a comment).
The file is never run as shell code, and only the settings the deploy knows are accepted: a
misspelt key is an error naming the line, not a setting silently ignored.

usage: settings.py FILE KEY [KEY…]
prints `KEY<NUL>value<NUL>` for every KEY the file sets, for `read -d ''` in bash.
"""

import re
import sys

LINE = re.compile(r"^(?:export\s+)?([A-Z][A-Z0-9_]*)=(.*)$")


def parse(text: str, known: set[str], name: str = "the file") -> dict[str, str]:
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        if not m:
            raise ValueError(f"{name}:{number}: not a KEY=value line: {raw!r}")
        key, value = m.group(1), m.group(2)
        if key not in known:
            raise ValueError(f"{name}:{number}: {key} is not a privwatch setting (known: {', '.join(sorted(known))})")
        if value[:1] in ("'", '"'):
            quote = value[0]
            end = value.find(quote, 1)
            if end < 0:
                raise ValueError(f"{name}:{number}: {key}: the value's closing {quote} is missing")
            rest = value[end + 1:].strip()
            if rest and not rest.startswith("#"):
                raise ValueError(f"{name}:{number}: {key}: text after the closing {quote}: {rest!r}")
            value = value[1:end]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        out[key] = value
    return out


def main() -> None:
    path, keys = sys.argv[1], sys.argv[2:]
    try:
        with open(path, encoding="utf-8") as f:
            settings = parse(f.read(), set(keys), path)
    except (OSError, ValueError) as e:
        sys.exit(f"settings: {e}")
    for key, value in settings.items():
        if "\0" in value:
            sys.exit(f"settings: {path}: {key} holds a NUL character")
        sys.stdout.write(f"{key}\0{value}\0")


if __name__ == "__main__":
    main()
