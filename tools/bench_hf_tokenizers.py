#!/usr/bin/env python3
"""Encode throughput of Hugging Face `tokenizers` on kiln's tokenizer benchmark text.

The text is the one `kiln bench-tokenizer` builds (same rule, see make_bench_text): corpus strings
picked by a 64-bit xorshift, each followed by "\n", until 10,000,000 bytes, cut into chunks of at
least 65,536 bytes at string boundaries. Each chunk is one encode(add_special_tokens=False) call on
one thread, so both programs do the same work. Prints a table and one JSON line per tokenizer.

usage: tools/bench_hf_tokenizers.py CORPUS TOKENIZERS_ROOT [NAME...] [--repeat N]
"""
import gzip
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import tokenizers  # noqa: E402

NAMES = ["llama3", "qwen3", "gemma3", "llama2", "deepseek_v3", "gptoss"]
TOTAL_BYTES = 10_000_000
CHUNK_BYTES = 65_536
MASK = (1 << 64) - 1


def make_bench_text(texts):
    """Returns the benchmark's chunks (list of str); must match kiln's bench_text.cpp exactly."""
    x = 0x9E3779B97F4A7C15
    chunks, cur, cur_bytes, total = [], [], 0, 0
    while total < TOTAL_BYTES:
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
        s = texts[x % len(texts)] + "\n"
        n = len(s.encode("utf-8"))
        cur.append(s)
        cur_bytes += n
        total += n
        if cur_bytes >= CHUNK_BYTES:
            chunks.append("".join(cur))
            cur, cur_bytes = [], 0
    if cur:
        chunks.append("".join(cur))
    return chunks


def load(root, name):
    d = Path(root) / name
    if (d / "tokenizer.json").exists():
        return tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    with gzip.open(d / "tokenizer.json.gz", "rt", encoding="utf-8") as f:
        return tokenizers.Tokenizer.from_str(f.read())


def main():
    args = sys.argv[1:]
    repeat = 3
    if "--repeat" in args:
        i = args.index("--repeat")
        repeat = int(args[i + 1])
        del args[i:i + 2]
    if len(args) < 2:
        print(__doc__)
        sys.exit(2)
    corpus, root, names = args[0], args[1], args[2:] or NAMES
    texts = [json.loads(line)["text"] for line in Path(corpus).read_bytes().decode("utf-8").split("\n") if line.strip()]
    chunks = make_bench_text(texts)
    nbytes = sum(len(c.encode("utf-8")) for c in chunks)
    rows = []
    for name in names:
        tok = load(root, name)
        best, ntok = None, 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            ntok = 0
            for c in chunks:
                ntok += len(tok.encode(c, add_special_tokens=False).ids)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        rows.append({"impl": "hf-tokenizers " + tokenizers.__version__, "tokenizer": name, "bytes": nbytes,
                     "tokens": ntok, "seconds": round(best, 4), "mb_per_s": round(nbytes / best / 1e6, 2),
                     "tokens_per_s": round(ntok / best)})
    print(f"{'tokenizer':<14}{'MB/s':>10}{'tokens/s':>14}{'tokens':>12}{'seconds':>10}")
    for r in rows:
        print(f"{r['tokenizer']:<14}{r['mb_per_s']:>10.2f}{r['tokens_per_s']:>14}{r['tokens']:>12}{r['seconds']:>10.3f}")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
