#!/usr/bin/env python3
"""Generates the Unicode tables of src/kiln/text/ (and a conformance sample for the tests) from the
Unicode Character Database that Debian's `unicode-data` package installs in /usr/share/unicode.

kiln derives its normalization tables from the UCD files rather than linking ICU: the tables are a
few tens of kilobytes, the text layer stays free of a large runtime dependency, and the Unicode
version is pinned by the committed output instead of by whatever ICU a machine has.

Tables written (all sorted by code point, searched by binary search):
  kCombiningClass  ranges of code points with a nonzero canonical combining class
  kDecomp          code point -> full (recursive) canonical and compatibility decompositions
  kCompose         (starter, combining) -> primary composite, for canonical composition
  kNfcUnstable     code points near which NFC may change text (quick check No/Maybe or ccc != 0)
  kNfkcUnstable    the same for NFKC
  kWordRanges      Unicode word characters (Alphabetic, M, Nd, Pc, Join_Control), as `\\w` in
                   Rust's regex crate, which Hugging Face uses for single_word added tokens

Files written (declared in unicode_tables.h; FILES below says which table goes where):
  unicode_tables.cpp          kUnicodeVersion, kCombiningClass, kCompose
  unicode_tables_decomp.cpp   kDecompPool, kDecomp
  unicode_tables_ranges.cpp   kNfcUnstable, kNfkcUnstable, kWordRanges
A table of more than MAX_LINES lines of data keeps its definition in its .cpp and its data in
fragments of at most MAX_LINES lines, unicode_tables_<table>_<n>.inc (kDecomp: ..._decomp_1.inc),
that the definition #includes in order, so that no file is thousands of lines long; the other
tables hold their data inline.
tools/split_unicode_tables.py reads the checked-in tables back and writes them through
write_tables() below: the layout has one writer, and `--check` there proves the files match it.

usage: tools/make_unicode_tables.py [UCD_DIR]   (then commit the outputs)
"""
import bz2
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UCD = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/usr/share/unicode")
OUT_DIR = ROOT / "src/kiln/text"
# Each generated .cpp and the tables it defines, in order (kUnicodeVersion is written first).
FILES = [
    ("unicode_tables", ["kCombiningClass", "kCompose"]),
    ("unicode_tables_decomp", ["kDecompPool", "kDecomp"]),
    ("unicode_tables_ranges", ["kNfcUnstable", "kNfkcUnstable", "kWordRanges"]),
]
MAX_LINES = 400  # lines of data a table keeps inline, and the most a fragment holds
TEST_OUT = ROOT / "tests/fixtures/tokenizers/unicode_normalization_sample.txt"

S_BASE, L_BASE, V_BASE, T_BASE = 0xAC00, 0x1100, 0x1161, 0x11A7
L_COUNT, V_COUNT, T_COUNT = 19, 21, 28
N_COUNT = V_COUNT * T_COUNT
S_COUNT = L_COUNT * N_COUNT


def read_unicode_data():
    ccc, decomp, compat, cats = {}, {}, set(), {}
    lines = (UCD / "UnicodeData.txt").read_text().splitlines()
    i = 0
    while i < len(lines):
        f = lines[i].split(";")
        cp = int(f[0], 16)
        if f[1].endswith(", First>"):
            last = int(lines[i + 1].split(";")[0], 16)
            for c in range(cp, last + 1):
                cats[c] = f[2]
            i += 2
            continue
        cats[cp] = f[2]
        if int(f[3]):
            ccc[cp] = int(f[3])
        if f[5]:
            parts = f[5].split()
            if parts[0].startswith("<"):
                compat.add(cp)
                parts = parts[1:]
            decomp[cp] = [int(p, 16) for p in parts]
        i += 1
    return ccc, decomp, compat, cats


def read_property(path, name):
    out = set()
    for line in (UCD / path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        rng, prop = [x.strip() for x in line.split(";")[:2]]
        if prop != name:
            continue
        a, _, b = rng.partition("..")
        out.update(range(int(a, 16), int(b or a, 16) + 1))
    return out


def full_decomp(cp, decomp, compat, allow_compat):
    if S_BASE <= cp < S_BASE + S_COUNT:
        s = cp - S_BASE
        r = [L_BASE + s // N_COUNT, V_BASE + (s % N_COUNT) // T_COUNT]
        if s % T_COUNT:
            r.append(T_BASE + s % T_COUNT)
        return r
    if cp not in decomp or (cp in compat and not allow_compat):
        return [cp]
    out = []
    for c in decomp[cp]:
        out.extend(full_decomp(c, decomp, compat, allow_compat))
    return out


def ranges(cps):
    out = []
    for c in sorted(cps):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def unstable_set(ccc, decomp, compat, compose_seconds, exclusions, allow_compat):
    out = set(ccc)
    out.update(compose_seconds)
    for cp in decomp:
        if cp in compat and not allow_compat:
            continue
        d = decomp[cp]
        # a character changes under NFC/NFKC unless it is its own recomposition
        if cp in compat or len(d) == 1 or cp in exclusions or ccc.get(d[0], 0) != 0:
            out.add(cp)
        elif allow_compat and any(x in compat for x in full_decomp(cp, decomp, compat, False)):
            out.add(cp)
    out.update(range(V_BASE, V_BASE + V_COUNT))
    out.update(range(T_BASE + 1, T_BASE + T_COUNT))
    return out


class Table:
    """One array of unicode_tables.h: its element type, its data lines as written, and whether a
    `<name>Size` constant goes with it."""

    def __init__(self, name, ctype, lines, sized):
        self.name, self.ctype, self.lines, self.sized = name, ctype, lines, sized


def render_tables(version, tables):
    """{file name: text} of the files FILES lays out, from `tables` ({name: Table})."""
    out = {}
    for stem, names in FILES:
        o = [f"// Generated by tools/make_unicode_tables.py from the Unicode Character Database {version}",
             "// (Debian's unicode-data package). Do not edit by hand; run the script and commit its output.",
             '#include "kiln/text/unicode_tables.h"\n',
             "namespace kiln::text::unicode {\n"]
        if stem == FILES[0][0]:
            o.append(f'const char kUnicodeVersion[] = "{version}";\n')
        for name in names:
            t = tables[name]
            o.append(f"const {t.ctype} {name}[] = {{")
            if len(t.lines) <= MAX_LINES:
                o.extend(t.lines)
            else:
                parts = [t.lines[i:i + MAX_LINES] for i in range(0, len(t.lines), MAX_LINES)]
                for n, part in enumerate(parts, 1):
                    inc = f"unicode_tables_{snake(name)}_{n}.inc"
                    o.append(f'#include "kiln/text/{inc}"')
                    head = [f"// Generated by tools/make_unicode_tables.py: the data of {name}, part {n} of {len(parts)},",
                            f"// #included by {stem}.cpp. Do not edit by hand."]
                    out[inc] = "\n".join(head + part) + "\n"
            o.append("};")
            if t.sized:
                o.append(f"const size_t {name}Size = sizeof({name}) / sizeof({name}[0]);")
            o.append("")
        o.append("}  // namespace kiln::text::unicode")
        out[f"{stem}.cpp"] = "\n".join(o) + "\n"
    return out


def snake(name):
    """kDecompPool -> decomp_pool."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name[1:]).lstrip("_")


def generated_files(out_dir=OUT_DIR):
    """The files a previous write_tables() left in out_dir."""
    return sorted([*out_dir.glob("unicode_tables*.cpp"), *out_dir.glob("unicode_tables*.inc")])


def write_tables(version, tables, out_dir=OUT_DIR):
    """Writes the files of render_tables() into out_dir, removes generated files it no longer
    lays out, and returns the paths written."""
    files = render_tables(version, tables)
    for old in generated_files(out_dir):
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (out_dir / name).write_text(text)
    return [out_dir / name for name in files]


def main():
    ccc, decomp, compat, cats = read_unicode_data()
    exclusions = read_property("DerivedNormalizationProps.txt", "Full_Composition_Exclusion")
    alphabetic = read_property("DerivedCoreProperties.txt", "Alphabetic")
    version = (UCD / "ReadMe.txt").read_text().split("Version ")[1].split()[0] if (UCD / "ReadMe.txt").exists() else "?"

    compose = {}
    for cp, d in decomp.items():
        if cp in compat or len(d) != 2 or cp in exclusions:
            continue
        compose[(d[0], d[1])] = cp
    compose_seconds = {b for (_, b) in compose}

    entries = []  # (cp, canon list, compat list)
    for cp in sorted(decomp):
        canon = full_decomp(cp, decomp, compat, False)
        comp = full_decomp(cp, decomp, compat, True)
        entries.append((cp, canon, comp))

    pool, index = [], {}

    def intern(seq):
        key = tuple(seq)
        if key not in index:
            index[key] = len(pool)
            pool.extend(seq)
        return index[key]

    rows = []
    for cp, canon, comp in entries:
        c_off = intern(canon) if canon != [cp] else 0
        c_len = len(canon) if canon != [cp] else 0
        k_off = intern(comp)
        rows.append((cp, c_off, c_len, k_off, len(comp)))

    word = set(alphabetic)
    word.update(c for c, cat in cats.items() if cat[0] == "M" or cat in ("Nd", "Pc"))
    word.update((0x200C, 0x200D))

    nfc_unstable = unstable_set(ccc, decomp, compat, compose_seconds, exclusions, False)
    nfkc_unstable = unstable_set(ccc, decomp, compat, compose_seconds, exclusions, True)

    tables = {}

    def add(name, ctype, items, per_line, fmt, sized=True):
        lines = ["  " + " ".join(fmt(x) for x in items[i:i + per_line]) for i in range(0, len(items), per_line)]
        tables[name] = Table(name, ctype, lines, sized)

    cc = sorted(ccc.items())
    runs = []
    for cp, v in cc:
        if runs and runs[-1][1] == cp - 1 and runs[-1][2] == v:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp, v])
    add("kCombiningClass", "CombiningClassRange", runs, 5, lambda r: f"{{0x{r[0]:X}, 0x{r[1]:X}, {r[2]}}},")
    add("kDecompPool", "uint32_t", pool, 10, lambda x: f"0x{x:X},", sized=False)
    add("kDecomp", "DecompEntry", rows, 4, lambda r: "{{0x{:X}, {}, {}, {}, {}}},".format(*r))
    add("kCompose", "ComposeEntry", sorted(compose.items()), 4,
        lambda it: f"{{0x{it[0][0]:X}, 0x{it[0][1]:X}, 0x{it[1]:X}}},")
    for name, cps in (("kNfcUnstable", nfc_unstable), ("kNfkcUnstable", nfkc_unstable), ("kWordRanges", word)):
        add(name, "CodeRange", ranges(cps), 6, lambda r: f"{{0x{r[0]:X}, 0x{r[1]:X}}},")
    for path in write_tables(version, tables):
        print(path)
    print(f"Unicode {version}: {len(runs)} ccc ranges, {len(rows)} decompositions, {len(compose)} compositions")

    # A deterministic sample of the UCD conformance test, for tests/unit/text/unicode_*.
    src = UCD / "NormalizationTest.txt.bz2"
    if src.exists():
        lines = bz2.decompress(src.read_bytes()).decode().splitlines()
        data = [ln for ln in lines if ln and not ln.startswith("#") and not ln.startswith("@")]
        rng = random.Random(7)
        keep = [ln for ln in data if rng.random() < 0.12]
        keep = [ln.split("#")[0].strip() for ln in keep]
        TEST_OUT.write_text("# c1;c2;c3;c4;c5 (source;NFC;NFD;NFKC;NFKD), a sample of the UCD's "
                            f"NormalizationTest.txt {version}, written by tools/make_unicode_tables.py\n" +
                            "\n".join(keep) + "\n")
        print(f"{TEST_OUT}: {len(keep)} lines")


if __name__ == "__main__":
    main()
