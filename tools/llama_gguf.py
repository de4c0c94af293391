"""A GGUF of a kiln-made dense llama checkpoint (kiln make-model --preset llama-3.1-8b and kin), in
bf16 or llama.cpp's Q8_0, for running llama.cpp on the very weights kiln runs: Q8_0 is llama.cpp's
8-bit format, the reference point for kiln's FP8 weights (docs/fp8.md).

Q8_0 is what llama.cpp's own converter writes with --outtype q8_0: every 2-D weight (embeddings,
projections, output head) in blocks of 32 with one f16 scale, the norms f32. Blocks are quantized
as llama.cpp's reference quantize_row_q8_0 does (scale = amax / 127, codes round(x / scale)), in
numpy over all cores (gguf-py's own routine would take 20 minutes for an 8B model). q/k rows are copied as they are, not permuted to GGUF's RoPE
layout, so the text differs from kiln's; the work per token is the same (a speed-only file). The
tokenizer comes from llama.cpp's vocab-only GGUF of the same vocabulary
(models/ggml-vocab-llama-bpe.gguf for the llama3 tokenizer, 128,256 tokens).

Needs numpy and llama.cpp's gguf-py (PYTHONPATH=LLAMA_CPP_DIR/gguf-py); no torch, no transformers.
usage: python3 tools/llama_gguf.py MODEL_DIR VOCAB_GGUF OUT.gguf [q8_0|bf16]
"""
import json
import multiprocessing
import os
import sys

import numpy as np
import gguf

from moe_gguf import as_bf16, as_f32, copy_tokenizer, open_checkpoint, reader, start_writer


def q8_0(a):
    """Rows of f32 -> Q8_0 bytes: per 32 values an f16 scale, then 32 int8 codes."""
    blocks = a.reshape(-1, 32)
    d = np.abs(blocks).max(axis=1, keepdims=True) / 127
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    x = blocks * inv  # |x| <= 127
    ax = np.abs(x)
    whole = np.floor(ax)
    codes = (np.sign(x) * (whole + np.floor(2 * (ax - whole)))).astype(np.int8)  # C's roundf: halves away from 0
    out = np.concatenate([d.astype(np.float16).view(np.uint8), codes.view(np.uint8)], axis=1)
    return out.reshape(a.shape[0], -1)


TENSORS = None


def encode(job):
    """One tensor's bytes (a worker process reads the checkpoint itself, through a memmap)."""
    src, norm, kind = job
    a = reader(TENSORS)(src)
    if norm:
        return as_f32(a)
    if kind == "bf16":
        return as_bf16(a)
    rows = max(1, (64 << 20) // (a.shape[1] * 4))  # an 8B model's head is 2 GB in f32
    return np.concatenate([q8_0(as_f32(a[r:r + rows])) for r in range(0, a.shape[0], rows)])


def main():
    global TENSORS
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    model_dir, vocab_path, out = sys.argv[1:4]
    kind = sys.argv[4] if len(sys.argv) == 5 else "q8_0"
    if kind not in ("q8_0", "bf16"):
        sys.exit(f"llama_gguf: type {kind!r}; q8_0 or bf16")
    c = json.load(open(os.path.join(model_dir, "config.json")))
    if c.get("model_type") != "llama":
        sys.exit(f"llama_gguf: model_type {c.get('model_type')!r}; this writes llama checkpoints")
    tensors = TENSORS = open_checkpoint(model_dir)
    h, layers = c["hidden_size"], c["num_hidden_layers"]

    w = start_writer(out, "llama", model_dir, c)
    w.add_rope_dimension_count(c.get("head_dim", h // c["num_attention_heads"]))
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if kind == "q8_0" else gguf.LlamaFileType.MOSTLY_BF16)
    copy_tokenizer(w, vocab_path)

    plan = []  # (GGUF name, HF name, f32 norm?) in file order
    plan.append(("token_embd.weight", "model.embed_tokens.weight", False))
    plan.append(("output_norm.weight", "model.norm.weight", True))
    plan.append(("output.weight", "lm_head.weight" if "lm_head.weight" in tensors else "model.embed_tokens.weight", False))
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for i in range(layers):
        for src, dst in names.items():
            plan.append((f"blk.{i}.{dst}.weight", f"model.layers.{i}.{src}.weight", dst.endswith("norm")))

    q8 = gguf.GGMLQuantizationType.Q8_0
    for name, src, norm in plan:
        shape = tensors[src][1]
        count = int(np.prod(shape))
        if norm:
            w.add_tensor_info(name, shape, np.dtype(np.float32), count * 4)
        elif kind == "bf16":
            w.add_tensor_info(name, shape, np.dtype(np.uint16), count * 2, raw_dtype=gguf.GGMLQuantizationType.BF16)
        else:
            byte_shape = gguf.quant_shape_to_byte_shape(shape, q8)
            w.add_tensor_info(name, byte_shape, np.dtype(np.uint8), int(np.prod(byte_shape)), raw_dtype=q8)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    with multiprocessing.get_context("fork").Pool(min(8, os.cpu_count() or 1)) as pool:
        for data in pool.imap(encode, [(src, norm, kind) for _, src, norm in plan]):
            w.write_tensor_data(np.ascontiguousarray(data))
    w.close()
    print(f"wrote {out}: {len(plan)} tensors, {layers} layers, {kind}")


if __name__ == "__main__":
    main()
