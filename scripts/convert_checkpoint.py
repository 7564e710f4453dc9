#!/usr/bin/python3
"""Converts a Hugging Face MarianMT folder that ships only pytorch_model.bin
(or a sharded pytorch_model.bin.index.json) into one the server loads:
model.safetensors plus the config and tokenizer files.

    /usr/bin/python3 scripts/convert_checkpoint.py IN_DIR OUT_DIR

- The checkpoint is read with torch.load(..., weights_only=True): tensors and
  plain containers only, no pickled code runs (Debian's python3-torch).
- Tensors are written contiguous, in their dtype (F32, F16, BF16, ...), in the
  safetensors layout (8-byte little-endian header size, JSON header, data).
- Tensors that share storage (tied embeddings: model.shared.weight,
  model.encoder/decoder.embed_tokens.weight, lm_head.weight) are stored once,
  as transformers' save_pretrained does: the shared table keeps its name and
  the tied aliases are dropped (the server derives them).
- config.json, generation_config.json and the tokenizer files are copied.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import torch

# Copied when present (MarianTokenizer's files, the configs, the model card).
COPIED_FILES = [
    "config.json", "generation_config.json", "vocab.json", "target_vocab.json",
    "source.spm", "target.spm", "tokenizer_config.json",
    "special_tokens_map.json", "README.md",
]
# The names a tied alias may have, most preferred to keep first.
TIED_PREFERENCE = [
    "model.shared.weight", "model.decoder.embed_tokens.weight",
    "model.encoder.embed_tokens.weight", "lm_head.weight",
]
DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
    torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}


def load_state_dict(in_dir):
    """The checkpoint's tensors by name, from one file or the shards."""
    single = os.path.join(in_dir, "pytorch_model.bin")
    index = os.path.join(in_dir, "pytorch_model.bin.index.json")
    if os.path.exists(single):
        files = [single]
    elif os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        files = [os.path.join(in_dir, name) for name in sorted(set(weight_map.values()))]
    else:
        sys.exit(f"convert_checkpoint: no pytorch_model.bin (or .index.json) in {in_dir}")
    state = {}
    for path in files:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(loaded, dict):
            sys.exit(f"convert_checkpoint: {path} holds a {type(loaded).__name__}, not a state dict")
        for name, value in loaded.items():
            if not isinstance(value, torch.Tensor):
                sys.exit(f"convert_checkpoint: {path}: {name} is not a tensor")
            state[name] = value
    return state


def storage_key(tensor):
    """Equal for tensors that are views of the same memory with one layout."""
    return (tensor.untyped_storage().data_ptr() if hasattr(tensor, "untyped_storage")
            else tensor.storage().data_ptr(),
            tensor.storage_offset(), tuple(tensor.shape), tuple(tensor.stride()),
            tensor.dtype)


def drop_tied_copies(state):
    """Keeps one name per group of tensors sharing storage; returns the
    dropped names. Non-alias names win; among aliases TIED_PREFERENCE order."""
    groups = {}
    for name, tensor in state.items():
        groups.setdefault(storage_key(tensor), []).append(name)
    dropped = []
    for names in groups.values():
        if len(names) < 2:
            continue
        def rank(name):
            return (TIED_PREFERENCE.index(name) if name in TIED_PREFERENCE else -1, name)
        keep = min(names, key=rank)
        for name in names:
            if name != keep:
                dropped.append(name)
                del state[name]
    return sorted(dropped)


def tensor_bytes(tensor):
    tensor = tensor.detach().contiguous()
    if tensor.numel() == 0:
        return b""
    return tensor.reshape(-1).view(torch.uint8).numpy().tobytes()


def write_safetensors(state, path):
    header = {"__metadata__": {"format": "pt"}}
    chunks, offset = [], 0
    for name in sorted(state):
        tensor = state[name]
        if tensor.dtype not in DTYPES:
            sys.exit(f"convert_checkpoint: {name} has dtype {tensor.dtype}, not supported")
        data = tensor_bytes(tensor)
        header[name] = {"dtype": DTYPES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in chunks:
            f.write(data)
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("in_dir", help="Hugging Face MarianMT folder with pytorch_model.bin")
    parser.add_argument("out_dir", help="folder to write (created if absent)")
    args = parser.parse_args()
    if sys.byteorder != "little":
        sys.exit("convert_checkpoint: safetensors is little-endian; run on a little-endian CPU")
    state = load_state_dict(args.in_dir)
    dropped = drop_tied_copies(state)
    os.makedirs(args.out_dir, exist_ok=True)
    write_safetensors(state, os.path.join(args.out_dir, "model.safetensors"))
    copied = []
    for name in COPIED_FILES:
        source = os.path.join(args.in_dir, name)
        if os.path.exists(source):
            shutil.copyfile(source, os.path.join(args.out_dir, name))
            copied.append(name)
    print(f"convert_checkpoint: {len(state)} tensors to "
          f"{os.path.join(args.out_dir, 'model.safetensors')}"
          + (f"; tied copies stored once, dropped: {', '.join(dropped)}" if dropped else "")
          + f"; copied {', '.join(copied)}")


if __name__ == "__main__":
    main()
