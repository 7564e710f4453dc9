#!/usr/bin/python3
"""Test helper for scripts/convert_checkpoint.py (tests/convert/convert_test.sh).

  make_and_check.py make MODEL_DIR BIN_DIR
      torch.save's the demo model's state dict as BIN_DIR/pytorch_model.bin,
      laid out as MarianMTModel.state_dict() is: the tied embeddings
      (model.shared, encoder/decoder embed_tokens, lm_head) one storage under
      four names, and one matrix non-contiguous (a transposed view); copies
      the config and tokenizer files (no model.safetensors).
  make_and_check.py check MODEL_DIR OUT_DIR
      OUT_DIR/model.safetensors holds every tensor of the original once, with
      equal values, and no tied alias.
"""
import json
import os
import shutil
import struct
import sys

import torch

TIED_ALIASES = ["model.encoder.embed_tokens.weight",
                "model.decoder.embed_tokens.weight", "lm_head.weight"]
DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def read_safetensors(path):
    """Independent reader: header via json + struct, tensors via torch."""
    with open(path, "rb") as f:
        blob = f.read()
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + size])
    data = blob[8 + size:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = bytearray(data[begin:end])
        tensors[name] = torch.frombuffer(raw, dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"]).clone()
    return header, tensors


def make(model_dir, bin_dir):
    _, tensors = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    shared = tensors["model.shared.weight"]
    state = dict(tensors)
    for alias in TIED_ALIASES:
        state[alias] = shared  # one storage, as nn.Module ties them
    name = "model.encoder.layers.0.fc1.weight"
    state[name] = tensors[name].t().contiguous().t()  # same values, strided
    assert not state[name].is_contiguous()
    os.makedirs(bin_dir, exist_ok=True)
    torch.save(state, os.path.join(bin_dir, "pytorch_model.bin"))
    for f in os.listdir(model_dir):
        if f.endswith((".json", ".spm")):
            shutil.copyfile(os.path.join(model_dir, f), os.path.join(bin_dir, f))
    print(f"make: {len(state)} names ({len(tensors)} tensors) in {bin_dir}/pytorch_model.bin")


def check(model_dir, out_dir):
    _, original = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    header, converted = read_safetensors(os.path.join(out_dir, "model.safetensors"))
    errors = []
    for alias in TIED_ALIASES:
        if alias in converted:
            errors.append(f"tied alias {alias} stored (save_pretrained stores it once)")
    expected = set(original) - set(TIED_ALIASES)
    if set(converted) != expected:
        errors.append(f"names differ: extra {sorted(set(converted) - expected)}, "
                      f"missing {sorted(expected - set(converted))}")
    for name, tensor in original.items():
        if name in expected and name in converted and not torch.equal(converted[name], tensor):
            errors.append(f"{name}: values differ")
    # Contiguous: each tensor's bytes are exactly numel x itemsize, back to back.
    end = 0
    for name, entry in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0] if kv[0] != "__metadata__" else -1):
        if name == "__metadata__":
            continue
        begin, stop = entry["data_offsets"]
        numel = 1
        for d in entry["shape"]:
            numel *= d
        if begin != end or stop - begin != numel * converted[name].element_size():
            errors.append(f"{name}: data_offsets {entry['data_offsets']} not contiguous")
        end = stop
    for f in ("config.json", "vocab.json", "source.spm", "target.spm"):
        if not os.path.exists(os.path.join(out_dir, f)):
            errors.append(f"{f} not copied")
    for e in errors:
        print("FAIL:", e)
    print(f"check: {len(converted)} tensors, {len(errors)} errors")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    {"make": make, "check": check}[sys.argv[1]](sys.argv[2], sys.argv[3])
