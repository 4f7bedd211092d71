#!/usr/bin/env python3
"""The crate's module graph, checked: one direction, no module that imports one that imports it back.

Reads every file of the library crate under src/ (the binary's main.rs and cli.rs sit above it and
are left out), follows each `crate::…`, `super::…` path to the file module it names, and fails

  * when two file modules reach each other (a cycle, at any length), or
  * when a top-level module imports one that LAYERS puts above it (the direction in the crate doc:
    handler → jobs → channel → app → slack/aws, with event/ and message/ pure underneath).

A parent's `mod x;` / `pub use x::…` lines are containment, not dependency: a `mod.rs` is a map.
Usage: scripts/modgraph.py [--dot]   (prints the top-level graph; exits 1 on a violation)
"""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
BIN_ONLY = {"main.rs", "cli.rs"}

# Lower index = lower layer. A module may use modules of a lower layer, and its own.
LAYERS = [
    ["encoding"],
    ["slack", "event"],
    ["message"],
    ["config"],
    ["token", "aws"],
    ["error"],
    ["app"],
    ["channel"],
    ["notify", "chase", "coverage", "audit", "smoke", "admins"],
    ["handler"],
    ["lib"],
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}


def module_of(path: Path) -> tuple:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts == ["lib"]:
        return ()
    return tuple(parts)


def files():
    for p in sorted(SRC.rglob("*.rs")):
        if p.parent == SRC and p.name in BIN_ONLY:
            continue
        yield p


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] if "//" in line and '"' not in line.split("//")[0] else line
                     for line in text.splitlines())


def group_items(text: str, start: int) -> list:
    """The first-level paths of a `{…}` group starting at text[start] == '{'."""
    depth, item, items = 0, "", []
    for ch in text[start:]:
        if ch == "{":
            depth += 1
            if depth == 1:
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                items.append(item)
                break
        if depth == 1 and ch == ",":
            items.append(item)
            item = ""
        else:
            item += ch
    return [re.sub(r"\s+", "", i) for i in items if i.strip()]


def paths_in(text: str):
    """Every path after `crate::` or `super::` (groups expanded), as ('crate'|'super'*n, [segments])."""
    for m in re.finditer(r"\b((?:super::)+|crate::)", text):
        prefix = m.group(1)
        rest_at = m.end()
        base = "crate" if prefix == "crate::" else prefix.count("super::")
        if rest_at < len(text) and text[rest_at] == "{":
            for item in group_items(text, rest_at):
                yield base, re.split(r"::", item.split("{")[0])
        else:
            seg = re.match(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*", text[rest_at:])
            if seg:
                yield base, seg.group(0).split("::")


def resolve(modules: set, here: tuple, base, segments) -> tuple:
    # `super::` (n times) is the module n levels up, in x/mod.rs as in x/y.rs.
    start = () if base == "crate" else here[: len(here) - base]
    best = start
    for seg in segments:
        cand = best + (seg,)
        if cand in modules:
            best = cand
        else:
            break
    return best


def main() -> int:
    all_files = list(files())
    modules = {module_of(p) for p in all_files}
    edges = {}
    for p in all_files:
        here = module_of(p)
        text = strip_comments(p.read_text())
        # containment lines of a parent are not dependencies
        text = re.sub(r"^\s*(pub(\([a-z]+\))?\s+)?(mod\s+\w+;|use\s+self::.*?;)", "", text, flags=re.M)
        for base, segs in paths_in(text):
            target = resolve(modules, here, base, segs)
            if target == here or target[: len(here)] == here and here != ():
                continue  # itself or its own children
            edges.setdefault(here, set()).add(target)
    errors = []
    # file-level cycles (Tarjan)
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            strong(v)
    name = lambda m: "::".join(m) or "crate"
    for comp in sccs:
        errors.append("cycle: " + " ↔ ".join(sorted(name(m) for m in comp)))
    top = {}
    for a, targets in edges.items():
        for b in targets:
            ta, tb = (a[0] if a else "lib"), (b[0] if b else "lib")
            if ta != tb:
                top.setdefault(ta, set()).add(tb)
    for a, targets in sorted(top.items()):
        if a not in RANK:
            errors.append(f"{a}: not placed in a layer (scripts/modgraph.py LAYERS)")
            continue
        for b in sorted(targets):
            if b not in RANK:
                errors.append(f"{b}: not placed in a layer (scripts/modgraph.py LAYERS)")
            elif RANK[b] >= RANK[a]:
                errors.append(f"{a} → {b}: against the direction ({b} is not below {a})")
    if "--dot" in sys.argv:
        for a, targets in sorted(top.items()):
            print(f"{a} -> {', '.join(sorted(targets))}")
    for e in errors:
        print("modgraph:", e, file=sys.stderr)
    if not errors:
        print(f"modgraph: {len(modules)} modules, {sum(len(t) for t in edges.values())} imports, one direction, no cycle")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
