#!/usr/bin/env python3
"""Writes kiln's tokenizer parity fixtures from Hugging Face `tokenizers` (the reference).

For each tokenizer directory NAME under TOKENIZERS_ROOT (holding tokenizer.json or
tokenizer.json.gz) it writes OUT_DIR/NAME.jsonl:
  line 1: a header {"tokenizer", "hf_tokenizers", "corpus_sha256", "strings", "random"}
  one line per corpus string, in corpus order:
    "ids":  encode(text, add_special_tokens=False).ids, as base64 of LEB128 varints
    "sp":   [prefix, suffix] when encode(text, add_special_tokens=True) is prefix + ids + suffix,
            else "ids_sp": that encoding in full (base64 varints)
    "d":    decode(ids_sp, skip_special_tokens=False), "ds": the same with True; each is left
            out when equal to the text, {"p": P} when it is P + text, {"s": S} when text + S,
            else the decoded string itself
  then lines {"rand": base64 ids, "d": ..., "ds": ...}: decodes of seeded random id sequences
  (byte-fallback runs, special tokens, out-of-range ids), always as full strings.

usage: tools/make_tokenizer_fixtures.py CORPUS TOKENIZERS_ROOT OUT_DIR [NAME...]
e.g.   tools/make_tokenizer_fixtures.py tests/fixtures/tokenizers/corpus.jsonl tok/ tests/fixtures/tokenizers
"""
import base64
import gzip
import hashlib
import json
import random
import sys
from pathlib import Path

import tokenizers

NAMES = ["llama3", "qwen3", "gemma3", "llama2", "deepseek_v3", "gptoss"]
RANDOM_SEQUENCES = 400


def varints(ids):
    out = bytearray()
    for v in ids:
        if v < 0:
            raise ValueError(f"negative id {v}")
        while True:
            b = v & 0x7F
            v >>= 7
            if v:
                out.append(b | 0x80)
            else:
                out.append(b)
                break
    return base64.b64encode(bytes(out)).decode("ascii")


def coded(decoded, text):
    if decoded == text:
        return None
    if decoded.endswith(text) and text:
        return {"p": decoded[: len(decoded) - len(text)]}
    if decoded.startswith(text) and text:
        return {"s": decoded[len(text):]}
    return decoded


def load(root, name):
    d = Path(root) / name
    if (d / "tokenizer.json").exists():
        return tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    with gzip.open(d / "tokenizer.json.gz", "rt", encoding="utf-8") as f:
        return tokenizers.Tokenizer.from_str(f.read())


def random_ids(rng, tok, corpus_ids):
    vocab = tok.get_vocab(with_added_tokens=True)
    size = tok.get_vocab_size(with_added_tokens=True)
    byte_ids = sorted(v for k, v in vocab.items() if len(k) == 6 and k.startswith("<0x") and k.endswith(">"))
    added = sorted(tok.get_added_tokens_decoder().keys())
    seq = []
    for _ in range(rng.randint(1, 40)):
        r = rng.random()
        if r < 0.35:
            seq.append(rng.randrange(size))
        elif r < 0.6 and byte_ids:
            # runs of byte tokens: valid and invalid UTF-8
            seq.extend(rng.choice(byte_ids) for _ in range(rng.randint(1, 4)))
        elif r < 0.72 and added:
            seq.append(rng.choice(added))
        elif r < 0.97:
            ids = rng.choice(corpus_ids)
            if ids:
                i = rng.randrange(len(ids))
                seq.extend(ids[i:i + rng.randint(1, 6)])
        else:
            seq.append(size + rng.randrange(1000))  # out of range: dropped by decode
    return seq


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        sys.exit(2)
    corpus_path, root, out_dir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    names = sys.argv[4:] or NAMES
    raw = Path(corpus_path).read_bytes()
    texts = [json.loads(line)["text"] for line in raw.decode("utf-8").split("\n") if line.strip()]
    sha = hashlib.sha256(raw).hexdigest()
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        tok = load(root, name)
        lines = [json.dumps({"tokenizer": name, "hf_tokenizers": tokenizers.__version__, "corpus_sha256": sha,
                             "strings": len(texts), "random": RANDOM_SEQUENCES})]
        corpus_ids = []
        for text in texts:
            ids = tok.encode(text, add_special_tokens=False).ids
            ids_sp = tok.encode(text, add_special_tokens=True).ids
            corpus_ids.append(ids)
            rec = {"ids": varints(ids)}
            found = False
            for start in range(len(ids_sp) - len(ids) + 1):
                if ids_sp[start:start + len(ids)] == ids:
                    rec["sp"] = [ids_sp[:start], ids_sp[start + len(ids):]]
                    found = True
                    break
            if not found:
                rec["ids_sp"] = varints(ids_sp)
            for key, skip in (("d", False), ("ds", True)):
                c = coded(tok.decode(ids_sp, skip_special_tokens=skip), text)
                if c is not None:
                    rec[key] = c
            lines.append(json.dumps(rec, ensure_ascii=False))
        rng = random.Random(f"kiln-decode-{name}")
        for _ in range(RANDOM_SEQUENCES):
            seq = random_ids(rng, tok, corpus_ids)
            lines.append(json.dumps({"rand": varints(seq), "d": tok.decode(seq, skip_special_tokens=False),
                                     "ds": tok.decode(seq, skip_special_tokens=True)}, ensure_ascii=False))
        path = out_dir / f"{name}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{path}: {len(texts)} strings, {sum(len(i) for i in corpus_ids)} tokens, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
