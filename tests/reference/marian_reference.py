#!/usr/bin/python3
"""A small MarianMT in plain PyTorch (no transformers), for checking the engine
on checkpoint layouts the demo model does not have.

  marian_reference.py make DEMO_DIR OUT_DIR
      A tiny random model with separate vocabularies, as transformers'
      MarianMTModel stores one when share_encoder_decoder_embeddings is false:
      model.encoder.embed_tokens [8001, 32], model.decoder.embed_tokens
      [9001, 32] and lm_head.weight [9001, 32] all distinct
      (tie_word_embeddings false), config.json with decoder_vocab_size 9001,
      vocab.json (the demo's) and target_vocab.json (the demo's pieces in
      another order plus 1000 more, <pad> at the same id), the demo's
      SentencePiece models.
  marian_reference.py translate MODEL_DIR TEXT
      Prints the reference's source ids, greedy target ids (max_length from
      config.json, <pad> banned, as MarianMTModel.generate) and the text the
      target ids give through target_vocab.json, one per line.

The network follows transformers' modeling_marian.py: post-LayerNorm layers,
embeddings x sqrt(d_model), sinusoidal positions (sin in the first half of
the dimensions, cos in the second), q scaled by head_dim^-0.5, swish, logits
+ final_logits_bias; computed in float64 without a KV cache (each step runs
the whole prefix), so it shares no code or shortcut with the engine.
"""
import json
import math
import os
import random
import shutil
import struct
import sys

import sentencepiece
import torch

D, LAYERS, HEADS, FFN, MAX_POS = 32, 2, 4, 64, 64
SRC_VOCAB, TGT_VOCAB, PAD, EOS = 8001, 9001, 8000, 0


def write_safetensors(tensors, path):
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        data = tensors[name].to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def read_safetensors(path):
    blob = open(path, "rb").read()
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + size])
    tensors = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = bytearray(blob[8 + size + b:8 + size + end])
        tensors[name] = torch.frombuffer(raw, dtype=torch.float32).reshape(e["shape"]).double()
    return tensors


def make(demo_dir, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    g = torch.Generator().manual_seed(15)

    def normal(*shape, std=0.3):
        return torch.randn(*shape, generator=g) * std

    w = {"model.encoder.embed_tokens.weight": normal(SRC_VOCAB, D),
         "model.decoder.embed_tokens.weight": normal(TGT_VOCAB, D),
         "lm_head.weight": normal(TGT_VOCAB, D),
         "final_logits_bias": normal(1, TGT_VOCAB, std=0.1)}

    def linear(prefix, n_in, n_out):
        w[prefix + ".weight"] = normal(n_out, n_in, std=1.0 / math.sqrt(n_in))
        w[prefix + ".bias"] = normal(n_out, std=0.05)

    def norm(prefix):
        w[prefix + ".weight"] = 1.0 + normal(D, std=0.1)
        w[prefix + ".bias"] = normal(D, std=0.1)

    for side, attns in (("encoder", ["self_attn"]), ("decoder", ["self_attn", "encoder_attn"])):
        for i in range(LAYERS):
            p = f"model.{side}.layers.{i}"
            for a in attns:
                for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                    linear(f"{p}.{a}.{proj}", D, D)
                norm(f"{p}.{a}_layer_norm")
            linear(f"{p}.fc1", D, FFN)
            linear(f"{p}.fc2", FFN, D)
            norm(f"{p}.final_layer_norm")
    write_safetensors(w, os.path.join(out_dir, "model.safetensors"))
    config = {
        "model_type": "marian", "architectures": ["MarianMTModel"], "d_model": D,
        "encoder_layers": LAYERS, "decoder_layers": LAYERS,
        "encoder_attention_heads": HEADS, "decoder_attention_heads": HEADS,
        "encoder_ffn_dim": FFN, "decoder_ffn_dim": FFN, "vocab_size": SRC_VOCAB,
        "decoder_vocab_size": TGT_VOCAB, "share_encoder_decoder_embeddings": False,
        "tie_word_embeddings": False, "max_position_embeddings": MAX_POS,
        "activation_function": "swish", "scale_embedding": True,
        "pad_token_id": PAD, "eos_token_id": EOS, "decoder_start_token_id": PAD,
        "bad_words_ids": [[PAD]], "num_beams": 1, "max_length": MAX_POS,
        "static_position_embeddings": True, "normalize_before": False}
    json.dump(config, open(os.path.join(out_dir, "config.json"), "w"), indent=1)
    vocab = json.load(open(os.path.join(demo_dir, "vocab.json"), encoding="utf-8"))
    json.dump(vocab, open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8"), ensure_ascii=False)
    # Target: the demo's pieces, ids 2..7999 shuffled; </s>, <unk>, <pad> kept;
    # 1000 more pieces after <pad>.
    by_id = {i: p for p, i in vocab.items()}
    middle = [by_id[i] for i in range(2, PAD)]
    random.Random(15).shuffle(middle)
    target = {by_id[0]: 0, by_id[1]: 1, "<pad>": PAD}
    for i, piece in enumerate(middle):
        target[piece] = 2 + i
    for i in range(PAD + 1, TGT_VOCAB):
        target[f"▁extra{i}"] = i
    json.dump(target, open(os.path.join(out_dir, "target_vocab.json"), "w", encoding="utf-8"), ensure_ascii=False)
    for f in ("source.spm", "target.spm"):
        shutil.copyfile(os.path.join(demo_dir, f), os.path.join(out_dir, f))
    json.dump({"separate_vocabs": True}, open(os.path.join(out_dir, "tokenizer_config.json"), "w"))


def sinusoidal(n, d):
    table = torch.zeros(n, d, dtype=torch.float64)
    for p in range(n):
        for j in range(d // 2):
            angle = p / (10000 ** (2 * j / d))
            table[p, j] = math.sin(angle)
            table[p, d // 2 + j] = math.cos(angle)
    return table


def translate(model_dir, text):
    config = json.load(open(os.path.join(model_dir, "config.json")))
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    d, heads = config["d_model"], config["encoder_attention_heads"]
    hd = d // heads
    pos = sinusoidal(config["max_position_embeddings"], d)

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    def ln(x, p):
        return torch.nn.functional.layer_norm(x, (d,), w[p + ".weight"], w[p + ".bias"], 1e-5)

    def attention(x, mem, p, causal):
        q = lin(x, p + ".q_proj") * hd ** -0.5
        k, v = lin(mem, p + ".k_proj"), lin(mem, p + ".v_proj")
        split = lambda t: t.view(t.shape[0], heads, hd).transpose(0, 1)
        scores = split(q) @ split(k).transpose(1, 2)
        if causal:
            scores = scores + torch.triu(torch.full(scores.shape[1:], -math.inf, dtype=torch.float64), 1)
        out = torch.softmax(scores, -1) @ split(v)
        return lin(out.transpose(0, 1).reshape(x.shape[0], d), p + ".out_proj")

    def ffn(x, p):
        return lin(torch.nn.functional.silu(lin(x, p + ".fc1")), p + ".fc2")

    vocab = json.load(open(os.path.join(model_dir, "vocab.json"), encoding="utf-8"))
    spm = sentencepiece.SentencePieceProcessor(model_file=os.path.join(model_dir, "source.spm"))
    src = [vocab.get(piece, vocab["<unk>"]) for piece in spm.encode(text, out_type=str)] + [config["eos_token_id"]]
    scale = math.sqrt(d)
    h = w["model.encoder.embed_tokens.weight"][src] * scale + pos[:len(src)]
    for i in range(config["encoder_layers"]):
        p = f"model.encoder.layers.{i}"
        h = ln(h + attention(h, h, p + ".self_attn", False), p + ".self_attn_layer_norm")
        h = ln(h + ffn(h, p), p + ".final_layer_norm")
    memory = h
    tokens = [config["decoder_start_token_id"]]
    generated = []
    while len(tokens) < config["max_length"]:
        x = w["model.decoder.embed_tokens.weight"][tokens] * scale + pos[:len(tokens)]
        for i in range(config["decoder_layers"]):
            p = f"model.decoder.layers.{i}"
            x = ln(x + attention(x, x, p + ".self_attn", True), p + ".self_attn_layer_norm")
            x = ln(x + attention(x, memory, p + ".encoder_attn", False), p + ".encoder_attn_layer_norm")
            x = ln(x + ffn(x, p), p + ".final_layer_norm")
        logits = x[-1] @ w["lm_head.weight"].T + w["final_logits_bias"][0]
        logits[config["pad_token_id"]] = -math.inf
        for bad in config.get("bad_words_ids", []):
            logits[bad[0]] = -math.inf
        nxt = int(torch.argmax(logits))
        generated.append(nxt)
        tokens.append(nxt)
        if nxt == config["eos_token_id"]:
            break
    target = json.load(open(os.path.join(model_dir, "target_vocab.json"), encoding="utf-8"))
    by_id = {i: p for p, i in target.items()}
    pieces = [by_id[i] for i in generated if i not in (config["eos_token_id"], config["pad_token_id"])]
    tspm = sentencepiece.SentencePieceProcessor(model_file=os.path.join(model_dir, "target.spm"))
    print(" ".join(map(str, src)))
    print(" ".join(map(str, generated)))
    print(tspm.decode_pieces(pieces))


if __name__ == "__main__":
    {"make": make, "translate": translate}[sys.argv[1]](sys.argv[2], sys.argv[3])
