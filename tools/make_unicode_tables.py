#!/usr/bin/env python3
"""Generates src/kiln/text/unicode_tables.cpp (and a conformance sample for the tests) from the
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

usage: tools/make_unicode_tables.py [UCD_DIR]   (then commit the outputs)
"""
import bz2
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UCD = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/usr/share/unicode")
OUT = ROOT / "src/kiln/text/unicode_tables.cpp"
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

    o = []
    o.append(f"// Generated by tools/make_unicode_tables.py from the Unicode Character Database {version}")
    o.append("// (Debian's unicode-data package). Do not edit by hand; run the script and commit its output.")
    o.append('#include "kiln/text/unicode_tables.h"\n')
    o.append("namespace kiln::text::unicode {\n")
    o.append(f'const char kUnicodeVersion[] = "{version}";\n')

    def emit_ranges(name, rs):
        o.append(f"const CodeRange {name}[] = {{")
        for i in range(0, len(rs), 6):
            o.append("  " + " ".join(f"{{0x{a:X}, 0x{b:X}}}," for a, b in rs[i:i + 6]))
        o.append("};")
        o.append(f"const size_t {name}Size = sizeof({name}) / sizeof({name}[0]);\n")

    cc = sorted(ccc.items())
    o.append("const CombiningClassRange kCombiningClass[] = {")
    runs = []
    for cp, v in cc:
        if runs and runs[-1][1] == cp - 1 and runs[-1][2] == v:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp, v])
    for i in range(0, len(runs), 5):
        o.append("  " + " ".join(f"{{0x{a:X}, 0x{b:X}, {v}}}," for a, b, v in runs[i:i + 5]))
    o.append("};")
    o.append("const size_t kCombiningClassSize = sizeof(kCombiningClass) / sizeof(kCombiningClass[0]);\n")

    o.append("const uint32_t kDecompPool[] = {")
    for i in range(0, len(pool), 10):
        o.append("  " + " ".join(f"0x{x:X}," for x in pool[i:i + 10]))
    o.append("};\n")
    o.append("const DecompEntry kDecomp[] = {")
    for i in range(0, len(rows), 4):
        o.append("  " + " ".join(f"{{0x{a:X}, {b}, {c}, {d}, {e}}}," for a, b, c, d, e in rows[i:i + 4]))
    o.append("};")
    o.append("const size_t kDecompSize = sizeof(kDecomp) / sizeof(kDecomp[0]);\n")

    o.append("const ComposeEntry kCompose[] = {")
    items = sorted(compose.items())
    for i in range(0, len(items), 4):
        o.append("  " + " ".join(f"{{0x{a:X}, 0x{b:X}, 0x{c:X}}}," for (a, b), c in items[i:i + 4]))
    o.append("};")
    o.append("const size_t kComposeSize = sizeof(kCompose) / sizeof(kCompose[0]);\n")

    emit_ranges("kNfcUnstable", ranges(nfc_unstable))
    emit_ranges("kNfkcUnstable", ranges(nfkc_unstable))
    emit_ranges("kWordRanges", ranges(word))
    o.append("}  // namespace kiln::text::unicode")
    OUT.write_text("\n".join(o) + "\n")
    print(f"{OUT}: Unicode {version}, {len(runs)} ccc ranges, {len(rows)} decompositions, {len(compose)} compositions")

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
