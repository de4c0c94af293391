#!/usr/bin/env python3
"""Reads the Unicode tables checked in under src/kiln/text/ and writes them again in the layout of
tools/make_unicode_tables.py (its write_tables()), without the Unicode Character Database.

The tables were once one generated file, unicode_tables.cpp; this split it into the generator's
layout on a machine without the UCD. It reads any layout the generator ever wrote (one file, or
.cpp files whose arrays #include .inc fragments), so it also checks that the checked-in files are
exactly what the generator's writer makes of their own data.

usage: tools/split_unicode_tables.py           rewrite the files in the generator's layout
       tools/split_unicode_tables.py --check   exit 1, naming them, if any file would change
       tools/split_unicode_tables.py --dump    print every table's entries (to compare layouts)
"""
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_unicode_tables as gen  # noqa: E402

ARRAY = re.compile(r"^const (\w+) (k\w+)\[\] = \{$")
SIZE = re.compile(r"^const size_t (k\w+)Size = sizeof\(\1\) / sizeof\(\1\[0\]\);$")
VERSION = re.compile(r'^const char kUnicodeVersion\[\] = "([^"]*)";$')
INCLUDE = re.compile(r'^#include "kiln/text/(unicode_tables\w*\.inc)"$')


def read_tables(out_dir=gen.OUT_DIR):
    """(version, {name: Table}) from the generated .cpp files in out_dir and their fragments."""
    version, tables = None, {}
    for path in sorted(out_dir.glob("unicode_tables*.cpp")):
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if m := VERSION.match(line):
                version = m.group(1)
            elif m := SIZE.match(line):
                tables[m.group(1)].sized = True
            elif m := ARRAY.match(line):
                data = []
                i += 1
                while lines[i] != "};":
                    if inc := INCLUDE.match(lines[i]):
                        data.extend(l for l in (out_dir / inc.group(1)).read_text().splitlines() if not l.startswith("//"))
                    else:
                        data.append(lines[i])
                    i += 1
                tables[m.group(2)] = gen.Table(m.group(2), m.group(1), data, False)
            i += 1
    expected = {name for _, names in gen.FILES for name in names}
    if version is None or set(tables) != expected:
        sys.exit(f"{out_dir}: found version {version} and tables {sorted(tables)}, expected {sorted(expected)}")
    return version, tables


def main():
    version, tables = read_tables()
    if "--dump" in sys.argv[1:]:
        print(f"version {version}")
        for name in sorted(tables):
            t = tables[name]
            entries = " ".join(t.lines).split()
            print(f"{name} {t.ctype} sized={t.sized} {' '.join(entries)}")
        return
    if "--check" in sys.argv[1:]:
        want = gen.render_tables(version, tables)
        have = {p.name: p.read_text() for p in gen.generated_files()}
        differ = sorted(n for n in set(want) | set(have) if want.get(n) != have.get(n))
        for name in differ:
            print(f"src/kiln/text/{name} does not match tools/make_unicode_tables.py's layout")
        sys.exit(1 if differ else 0)
    for path in gen.write_tables(version, tables):
        print(path)


if __name__ == "__main__":
    main()
