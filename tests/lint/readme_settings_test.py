#!/usr/bin/env python3
"""The README's settings table says what `kiln serve --help` says: the same flags, each with the
same environment variable, default and meaning, so that no documented setting is missing, stale
or undocumented.

usage: readme_settings_test.py KILN_BINARY README"""
import re
import subprocess
import sys


def readme_rows(readme: str) -> dict:
    rows = {}
    for line in readme.splitlines():
        m = re.match(r"^\| `(--[a-z0-9-]+)` \| (`(KILN_[A-Z0-9_]+)`|—) \| (.*?) \| (.*) \|$", line)
        if m:
            default = m.group(4).strip()
            rows[m.group(1)] = {"env": m.group(3), "default": default.strip("`"), "meaning": m.group(5).strip()}
    return rows


def help_rows(binary: str) -> dict:
    out = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, check=True).stdout
    rows = {}
    # CLI11 prints "  --flag TYPE=DEFAULT (Env:NAME)" (TYPE, DEFAULT and Env each optional) and the
    # description indented below it or beside it, possibly wrapped onto following lines.
    entries = re.split(r"\n(?=  (?:-[a-z],)?--[a-z])", out)
    for e in entries:
        m = re.match(r"\s*(?:-[a-z],)?(--[a-z0-9-]+)((?: [A-Z]+(?:=\S*)?)?(?: \.\.\.)?)(?: \(Env:(KILN_[A-Z0-9_]+)\))?(.*)", e, re.S)
        if not m:
            continue
        flag, spec, env, meaning = m.group(1), m.group(2), m.group(3), " ".join(m.group(4).split())
        default = spec.split("=", 1)[1].removesuffix(" ...") if "=" in spec else None
        if default in ("", "[]"):
            default = None  # an empty list or text: the README writes —
        rows[flag] = {"env": env, "default": default, "meaning": meaning}
    return rows


def main() -> int:
    binary, readme_path = sys.argv[1], sys.argv[2]
    doc = readme_rows(open(readme_path, encoding="utf-8").read())
    cli = help_rows(binary)
    cli.pop("--help", None)
    problems = []
    for flag in sorted(set(doc) | set(cli)):
        if flag not in doc:
            problems.append(f"{flag}: in `kiln serve --help` but not in the README's settings table")
            continue
        if flag not in cli:
            problems.append(f"{flag}: in the README's settings table but not a flag of `kiln serve`")
            continue
        d, c = doc[flag], cli[flag]
        if d["env"] != c["env"]:
            problems.append(f"{flag}: README says environment {d['env']}, --help says {c['env']}")
        if c["default"] is not None and d["default"] != c["default"]:
            problems.append(f"{flag}: README says default {d['default']!r}, --help says {c['default']!r}")
        if c["default"] is None and d["default"] != "—" and not d["default"].startswith(("cores", "the ")):
            problems.append(f"{flag}: README gives default {d['default']!r}, --help shows none")
        if d["meaning"] != c["meaning"]:
            problems.append(f"{flag}: README says {d['meaning']!r}, --help says {c['meaning']!r}")
    for p in problems:
        print(p)
    print(f"readme settings: {len(doc)} rows, {len(cli)} flags, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
