#!/usr/bin/env python3
"""Writes kiln's fidelity fixtures: logits of small random checkpoints computed by Hugging Face
transformers in float32, which tests/unit/runtime/fidelity_test.cpp compares kiln against.

For each preset, the checkpoint is made by `kiln make-model` (the same bytes kiln's test remakes
from the seed), loaded by transformers in float32 on the CPU with eager attention, and run on fixed
prompt token ids:
  prompt_logits       [12, vocab] F32  the whole prompt in one forward pass
  incremental_logits  [12, vocab] F32  one token per forward pass through a DynamicCache
  greedy_tokens       [32]        I32  32 greedy tokens after the prompt (argmax, lowest id on ties)
plus <preset>.json with the seed, the ids and the versions used.

Run on a machine with torch, transformers, safetensors and numpy (no network needed):
  python3 tools/make_fidelity_fixtures.py --kiln build/release/apps/kiln/kiln
or for some presets only, into another directory (docs/models.md):
  python3 tools/make_fidelity_fixtures.py --kiln KILN --out DIR --presets tiny-qwen3-moe,tiny-mixtral,tiny-gemma3
or from checkpoints made beforehand with `kiln make-model --preset P --seed S --vocab-size 2048
--allow-small-vocab --dtype f32 --out DIR/P` (the seeds below):
  python3 tools/make_fidelity_fixtures.py --checkpoints DIR --presets tiny-gemma3

transformers reads the mixture-of-experts checkpoints' per-expert tensors (the names the published
checkpoints use) and Gemma 3's layer_types / rope_local_base_freq config as kiln writes them; the
JSON records which version of transformers did, and which class it instantiated.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

PRESETS = {"tiny-llama": 101, "tiny-mistral": 102, "tiny-qwen2": 103, "tiny-qwen3": 104,
           "tiny-qwen3-moe": 105, "tiny-mixtral": 106, "tiny-gemma3": 107}
VOCAB = 2048
PROMPT = [17, 1042, 5, 733, 2047, 88, 1500, 301, 9, 1999, 640, 256]
GREEDY_TOKENS = 32


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kiln", help="the kiln binary (runs `kiln make-model`)")
    parser.add_argument("--checkpoints", help="read DIR/<preset> instead of running kiln make-model (made beforehand "
                        "with the same command, e.g. on another machine; tokenizer files are not needed)")
    parser.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "fidelity"))
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated subset")
    args = parser.parse_args()
    if not args.kiln and not args.checkpoints:
        parser.error("give --kiln or --checkpoints")

    import numpy as np
    import torch
    import transformers
    from safetensors.numpy import save_file
    from transformers import AutoModelForCausalLM, DynamicCache

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    for preset in args.presets.split(","):
        if preset not in PRESETS:
            parser.error(f"unknown preset {preset!r}; fixtures exist for {', '.join(PRESETS)}")
        seed = PRESETS[preset]
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = os.path.join(args.checkpoints or tmp, preset)
            if not args.checkpoints:
                subprocess.run([args.kiln, "make-model", "--preset", preset, "--seed", str(seed), "--vocab-size",
                                str(VOCAB), "--allow-small-vocab", "--dtype", "f32", "--out", model_dir], check=True)
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                         attn_implementation="eager")
            model.eval()
            model_class = type(model).__name__
            ids = torch.tensor([PROMPT], dtype=torch.long)
            with torch.no_grad():
                whole = model(input_ids=ids).logits[0].float().numpy()

                cache = DynamicCache()
                rows = []
                for i in range(len(PROMPT)):
                    out = model(input_ids=ids[:, i:i + 1], past_key_values=cache, use_cache=True,
                                position_ids=torch.tensor([[i]]))
                    cache = out.past_key_values
                    rows.append(out.logits[0, -1].float().numpy())
                incremental = np.stack(rows)

                # Greedy continuation, one token at a time through the cache.
                tokens = []
                next_token = int(np.argmax(rows[-1]))
                position = len(PROMPT)
                while True:
                    tokens.append(next_token)
                    if len(tokens) == GREEDY_TOKENS:
                        break
                    out = model(input_ids=torch.tensor([[next_token]]), past_key_values=cache, use_cache=True,
                                position_ids=torch.tensor([[position]]))
                    cache = out.past_key_values
                    position += 1
                    next_token = int(torch.argmax(out.logits[0, -1]).item())

                # transformers' own bf16 error on the prompt (weights and activations in bf16),
                # measured as kiln's tests measure theirs: per row, max|bf16 - f32| / max|f32|. A
                # bf16 engine is held to a bound set from it (tests/unit/runtime/cuda_fidelity_test.cpp).
                half = model.to(torch.bfloat16)
                whole_bf16 = half(input_ids=ids).logits[0].float().numpy()
                bf16_error = float(np.max(np.max(np.abs(whole_bf16 - whole), axis=1) /
                                          np.max(np.abs(whole), axis=1)))

        tensors = {
            "prompt_logits": np.ascontiguousarray(whole, dtype=np.float32),
            "incremental_logits": np.ascontiguousarray(incremental, dtype=np.float32),
            "greedy_tokens": np.array(tokens, dtype=np.int32),
        }
        save_file(tensors, os.path.join(args.out, preset + ".safetensors"))
        info = {
            "preset": preset,
            "seed": seed,
            "vocab_size": VOCAB,
            "dtype": "f32",
            "prompt_ids": PROMPT,
            "greedy_tokens": tokens,
            "hf_bf16_prompt_rel_error": bf16_error,
            "model_class": model_class,
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
            "command": f"python3 tools/make_fidelity_fixtures.py --kiln KILN --presets {preset}",
        }
        with open(os.path.join(args.out, preset + ".json"), "w") as f:
            json.dump(info, f, indent=2)
            f.write("\n")
        print(f"{preset}: seed {seed}, greedy {tokens[:8]}...", file=sys.stderr)


if __name__ == "__main__":
    main()
