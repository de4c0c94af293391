#!/usr/bin/env python3
"""Writes kiln's embedding and rerank fidelity fixtures: what sentence-transformers and transformers
compute in float32 for the tiny Qwen3-Embedding and Qwen3-Reranker checkpoints `kiln make-model`
writes (presets tiny-qwen3-embedding and tiny-qwen3-reranker), for kiln's /v1/embeddings and
/v1/rerank to be compared against (cosine >= 0.99999 for embeddings, |score difference| <= 1e-5).

  tests/fixtures/fidelity/tiny-qwen3-embedding.json
      seed, texts, their token ids (the checkpoint's tokenizer, <|endoftext|> appended), and the
      embeddings SentenceTransformer(model_dir).encode(texts) returns (last-token pooling, then
      Normalize, as the checkpoint's modules.json says), plus the same cut to 16 dimensions and
      renormalised (truncate_dim=16, normalize_embeddings=True).
  tests/fixtures/fidelity/tiny-qwen3-reranker.json
      seed, query, documents, the prompt token ids and P(yes) per document, computed as the
      Qwen3-Reranker model card does (AutoModelForCausalLM, softmax over the "no"/"yes" logits of
      the last token of prefix + "<Instruct>: ...\\n<Query>: ...\\n<Document>: ..." + suffix).

Run on a machine with torch, transformers and sentence-transformers (no network needed):
  python3 tools/make_embedding_fixtures.py --kiln build/release/apps/kiln/kiln
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

EMBED_SEED = 201
RERANK_SEED = 202
TEXTS = ["The cat sat on the mat.", "Ein Hund bellt im Garten.", "猫が好きです。",
         "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: what do cats eat?",
         "a " * 40]
QUERY = "What do cats eat?"
DOCUMENTS = ["Cats eat meat.", "The stock market closed higher.", "Kittens drink milk.", "Paris is in France."]
INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
PREFIX = ("<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
          "provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n")
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def make(kiln, preset, seed, out):
    subprocess.run([kiln, "make-model", "--preset", preset, "--seed", str(seed), "--dtype", "f32", "--out", out],
                   check=True)


def versions():
    import torch
    import transformers
    out = {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()}
    try:
        import sentence_transformers
        out["sentence_transformers"] = sentence_transformers.__version__
    except ImportError:
        pass
    return out


def encode_with_transformers(model_dir, tok, dims=None):
    """What SentenceTransformer.encode does for this checkpoint, from transformers alone (for machines
    without sentence-transformers): the pooling and Normalize modules its modules.json lists."""
    import torch
    from transformers import AutoModel
    modules = json.load(open(os.path.join(model_dir, "modules.json")))
    pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
    pooling = json.load(open(os.path.join(model_dir, pooling_dir, "config.json")))
    normalize = any(m["type"].endswith("Normalize") for m in modules)
    model = AutoModel.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager").eval()
    rows = []
    for text in TEXTS:
        with torch.no_grad():
            hidden = model(input_ids=torch.tensor([tok(text)["input_ids"]])).last_hidden_state[0]
        v = hidden[-1] if pooling.get("pooling_mode_lasttoken") else hidden.mean(dim=0)
        if normalize:
            v = torch.nn.functional.normalize(v, dim=0)
        if dims:
            v = torch.nn.functional.normalize(v[:dims], dim=0)
        rows.append(v.numpy())
    import numpy
    return numpy.stack(rows), "transformers AutoModel + modules.json pooling"


def embedding_fixture(kiln, tmp):
    from transformers import AutoTokenizer
    model_dir = os.path.join(tmp, "emb")
    make(kiln, "tiny-qwen3-embedding", EMBED_SEED, model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    try:
        from sentence_transformers import SentenceTransformer
        model = SentenceTransformer(model_dir, device="cpu", model_kwargs={"torch_dtype": "float32"})
        full = model.encode(TEXTS, convert_to_numpy=True, batch_size=1)
        cut = model.encode(TEXTS, convert_to_numpy=True, batch_size=1, truncate_dim=16, normalize_embeddings=True)
        reference = "sentence-transformers"
    except ImportError:
        full, reference = encode_with_transformers(model_dir, tok)
        cut, _ = encode_with_transformers(model_dir, tok, dims=16)
    return {
        "preset": "tiny-qwen3-embedding",
        "reference": reference,
        "seed": EMBED_SEED,
        "texts": TEXTS,
        "token_ids": [tok(t)["input_ids"] for t in TEXTS],
        "embeddings": full.astype("float32").tolist(),
        "dimensions": 16,
        "embeddings_16": cut.astype("float32").tolist(),
    }


def rerank_fixture(kiln, tmp):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model_dir = os.path.join(tmp, "rerank")
    make(kiln, "tiny-qwen3-reranker", RERANK_SEED, model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager").eval()
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    prefix = tok.encode(PREFIX, add_special_tokens=False)
    suffix = tok.encode(SUFFIX, add_special_tokens=False)
    prompts, scores = [], []
    for doc in DOCUMENTS:
        body = f"<Instruct>: {INSTRUCTION}\n<Query>: {QUERY}\n<Document>: {doc}"
        ids = prefix + tok.encode(body, add_special_tokens=False) + suffix
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        pair = torch.stack([logits[no], logits[yes]]).log_softmax(dim=0)
        prompts.append(ids)
        scores.append(float(pair[1].exp()))
    return {"preset": "tiny-qwen3-reranker", "seed": RERANK_SEED, "query": QUERY, "documents": DOCUMENTS,
            "instruction": INSTRUCTION, "prompt_ids": prompts, "scores": scores}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kiln", required=True, help="the kiln binary (runs `kiln make-model`)")
    parser.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "fidelity"))
    args = parser.parse_args()
    import torch
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for fixture in (embedding_fixture(args.kiln, tmp), rerank_fixture(args.kiln, tmp)):
            fixture["versions"] = versions()
            fixture["command"] = "python3 tools/make_embedding_fixtures.py --kiln KILN"
            path = os.path.join(args.out, fixture["preset"] + ".json")
            with open(path, "w") as f:
                json.dump(fixture, f, indent=1)
                f.write("\n")
            print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
