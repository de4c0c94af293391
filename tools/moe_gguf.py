"""A GGUF of a kiln-made Qwen3-MoE checkpoint (kiln make-model --preset qwen3-30b-a3b), for running
llama.cpp on the very weights kiln runs (docs/models.md, "Side by side with llama.cpp").

Projections, embeddings and experts stay bf16 (GGUF type BF16); norms and the router are written
f32, as llama.cpp's own converter writes them. Each layer's experts are stacked into the
[experts, rows, cols] tensors llama.cpp reads (ffn_{gate,up,down}_exps). Qwen3 uses NeoX RoPE in
llama.cpp, so q/k rows are copied as they are. The tokenizer comes from llama.cpp's vocab-only
GGUF of the same BPE vocabulary (models/ggml-vocab-qwen2.gguf, 151,936 tokens, as Qwen3's).
Tensors are streamed one at a time (one layer's experts in memory at most).

Needs numpy and llama.cpp's gguf-py (PYTHONPATH=LLAMA_CPP_DIR/gguf-py); no torch, no transformers.
usage: python3 tools/moe_gguf.py MODEL_DIR VOCAB_GGUF OUT.gguf
"""
import json
import os
import struct
import sys

import numpy as np
import gguf


def open_checkpoint(model_dir):
    """name -> (numpy dtype, shape, file, offset) over model.safetensors or its shards."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    tensors = {}
    for name in files:
        path = os.path.join(model_dir, name)
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
        for key, meta in header.items():
            if key == "__metadata__":
                continue
            dtype = {"BF16": np.uint16, "F32": np.float32}.get(meta["dtype"])
            if dtype is None:
                sys.exit(f"moe_gguf: {key} is {meta['dtype']}; only BF16 and F32 checkpoints are read")
            tensors[key] = (dtype, tuple(meta["shape"]), path, 8 + n + meta["data_offsets"][0])
    return tensors


def reader(tensors):
    def load(name):
        dtype, shape, path, offset = tensors[name]
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    return load


def as_f32(a):
    return (a.astype(np.uint32) << 16).view(np.float32) if a.dtype == np.uint16 else np.asarray(a, np.float32)


def as_bf16(a):  # bf16 bits; f32 checkpoints are rounded to nearest even
    if a.dtype == np.uint16:
        return np.asarray(a)
    bits = np.asarray(a, np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def start_writer(out, arch, model_dir, c):
    """A GGUFWriter with the metadata every decoder shares, from config.json `c`."""
    w = gguf.GGUFWriter(out, arch)
    w.add_name(os.path.basename(os.path.normpath(model_dir)))
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_block_count(c["num_hidden_layers"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(c["num_attention_heads"])
    w.add_head_count_kv(c["num_key_value_heads"])
    w.add_rope_freq_base(c["rope_theta"])
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    return w


def copy_tokenizer(w, vocab_path):
    for f in gguf.GGUFReader(vocab_path).fields.values():
        if not f.name.startswith("tokenizer."):
            continue
        kind = f.types[0]
        if kind == gguf.GGUFValueType.ARRAY:
            items = [f.parts[i] for i in f.data]
            if f.types[1] == gguf.GGUFValueType.STRING:
                w.add_array(f.name, [bytes(x).decode("utf-8", "replace") for x in items])
            else:
                w.add_array(f.name, [x.tolist()[0] for x in items])
        elif kind == gguf.GGUFValueType.STRING:
            w.add_string(f.name, bytes(f.parts[f.data[0]]).decode())
        elif kind == gguf.GGUFValueType.BOOL:
            w.add_bool(f.name, bool(f.parts[f.data[0]][0]))
        else:
            w.add_uint32(f.name, int(f.parts[f.data[0]][0]))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model_dir, vocab_path, out = sys.argv[1:]
    c = json.load(open(os.path.join(model_dir, "config.json")))
    if c.get("model_type") != "qwen3_moe":
        sys.exit(f"moe_gguf: model_type {c.get('model_type')!r}; this writes qwen3_moe checkpoints")
    tensors = open_checkpoint(model_dir)
    load = reader(tensors)
    h, layers, experts = c["hidden_size"], c["num_hidden_layers"], c["num_experts"]
    head_dim = c.get("head_dim", h // c["num_attention_heads"])
    mlp_only = set(c.get("mlp_only_layers", []))
    if mlp_only or c.get("decoder_sparse_step", 1) != 1:
        sys.exit("moe_gguf: dense layers (mlp_only_layers, decoder_sparse_step) are not written")

    w = start_writer(out, "qwen3moe", model_dir, c)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_expert_count(experts)
    w.add_expert_used_count(c["num_experts_per_tok"])
    w.add_expert_feed_forward_length(c["moe_intermediate_size"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    copy_tokenizer(w, vocab_path)

    # (GGUF name, a function giving the array, f32?) in file order.
    plan = []

    def plain(gguf_name, hf_name, f32=False):
        _, shape, _, _ = tensors[hf_name]
        plan.append((gguf_name, shape, f32, lambda: as_f32(load(hf_name)) if f32 else as_bf16(load(hf_name))))

    def stacked(gguf_name, i, proj):
        names = [f"model.layers.{i}.mlp.experts.{e}.{proj}.weight" for e in range(experts)]
        shape = (experts,) + tensors[names[0]][1]
        plan.append((gguf_name, shape, False, lambda: np.stack([as_bf16(load(n)) for n in names])))

    plain("token_embd.weight", "model.embed_tokens.weight")
    plain("output_norm.weight", "model.norm.weight", True)
    plain("output.weight", "lm_head.weight" if "lm_head.weight" in tensors else "model.embed_tokens.weight")
    for i in range(layers):
        p = f"model.layers.{i}."
        plain(f"blk.{i}.attn_norm.weight", p + "input_layernorm.weight", True)
        for src, dst in (("q_proj", "attn_q"), ("k_proj", "attn_k"), ("v_proj", "attn_v"), ("o_proj", "attn_output")):
            plain(f"blk.{i}.{dst}.weight", p + f"self_attn.{src}.weight")
        plain(f"blk.{i}.attn_q_norm.weight", p + "self_attn.q_norm.weight", True)
        plain(f"blk.{i}.attn_k_norm.weight", p + "self_attn.k_norm.weight", True)
        plain(f"blk.{i}.ffn_norm.weight", p + "post_attention_layernorm.weight", True)
        plain(f"blk.{i}.ffn_gate_inp.weight", p + "mlp.gate.weight", True)
        stacked(f"blk.{i}.ffn_gate_exps.weight", i, "gate_proj")
        stacked(f"blk.{i}.ffn_up_exps.weight", i, "up_proj")
        stacked(f"blk.{i}.ffn_down_exps.weight", i, "down_proj")

    for name, shape, f32, _ in plan:
        count = int(np.prod(shape))
        if f32:
            w.add_tensor_info(name, shape, np.dtype(np.float32), count * 4)
        else:
            w.add_tensor_info(name, shape, np.dtype(np.uint16), count * 2, raw_dtype=gguf.GGMLQuantizationType.BF16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, shape, _, make in plan:
        a = make()
        assert a.shape == tuple(shape), (name, a.shape, shape)
        w.write_tensor_data(np.ascontiguousarray(a))
    w.close()
    print(f"wrote {out}: {len(plan)} tensors, {layers} layers, {experts} experts")


if __name__ == "__main__":
    main()
