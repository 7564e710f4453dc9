#!/usr/bin/python3
"""The PyTorch baseline of transformer-bench: the same MarianMT forward pass,
greedy and beam search with a KV cache, in plain eager PyTorch (Debian's
python3-torch; run with /usr/bin/python3). Same flags and JSON fields as
transformer-bench, so scripts/bench.sh can put the two side by side.

It follows MarianMTModel in transformers: post-LayerNorm layers, embeddings
scaled by sqrt(d_model), sinusoidal positions (sin half, cos half), q scaled
by head_dim^-0.5, swish/relu/gelu, tied lm_head + final_logits_bias, pad
banned before log_softmax.
"""
import argparse
import json
import math
import os
import resource
import statistics
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    dtypes = {"F32": np.float32, "F16": np.float16}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        if info["dtype"] == "BF16":
            raw = np.frombuffer(data[begin:end], dtype=np.uint16).astype(np.uint32) << 16
            array = raw.view(np.float32)
        else:
            array = np.frombuffer(data[begin:end], dtype=dtypes[info["dtype"]])
        tensors[name] = torch.from_numpy(array.astype(np.float32).reshape(info["shape"]))
    return tensors


def synthesize(config, seed):
    """Random weights of the config's shapes (N(0, 0.02), LN 1, biases 0)."""
    g = torch.Generator().manual_seed(seed)
    d = config["d_model"]
    w = {}

    def rand(name, *shape):
        w[name] = torch.randn(*shape, generator=g) * 0.02

    def linear(p, i, o):
        rand(p + ".weight", o, i)
        w[p + ".bias"] = torch.zeros(o)

    def norm(p):
        w[p + ".weight"] = torch.ones(d)
        w[p + ".bias"] = torch.zeros(d)

    rand("model.shared.weight", config["vocab_size"], d)
    for side in ("encoder", "decoder"):
        for i in range(config[side + "_layers"]):
            p = f"model.{side}.layers.{i}"
            attns = ["self_attn"] + (["encoder_attn"] if side == "decoder" else [])
            for a in attns:
                for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                    linear(f"{p}.{a}.{proj}", d, d)
                norm(f"{p}.{a}_layer_norm")
            linear(p + ".fc1", d, config[side + "_ffn_dim"])
            linear(p + ".fc2", config[side + "_ffn_dim"], d)
            norm(p + ".final_layer_norm")
    w["final_logits_bias"] = torch.zeros(1, config["vocab_size"])
    return w


def sinusoidal(n_pos, dim):
    position = np.array([[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)]
                         for pos in range(n_pos)])
    out = torch.zeros(n_pos, dim)
    sentinel = dim // 2 if dim % 2 == 0 else dim // 2 + 1
    out[:, :sentinel] = torch.FloatTensor(np.sin(position[:, 0::2]))
    out[:, sentinel:] = torch.FloatTensor(np.cos(position[:, 1::2]))
    return out


class Marian:
    def __init__(self, config, w):
        self.c = config
        self.w = w
        self.d = config["d_model"]
        self.heads = config["encoder_attention_heads"]
        self.hd = self.d // self.heads
        self.emb = w["model.shared.weight"]
        self.scale = math.sqrt(self.d) if config.get("scale_embedding", True) else 1.0
        self.pos = sinusoidal(config["max_position_embeddings"], self.d)
        self.bias = w.get("final_logits_bias", torch.zeros(1, config["vocab_size"]))[0]
        act = config.get("activation_function", "swish")
        self.act = {"swish": F.silu, "silu": F.silu, "relu": F.relu, "gelu": F.gelu}[act]

    def lin(self, p, x):
        return F.linear(x, self.w[p + ".weight"], self.w[p + ".bias"])

    def ln(self, p, x):
        return F.layer_norm(x, (self.d,), self.w[p + ".weight"], self.w[p + ".bias"], 1e-5)

    def split(self, x):  # [B, T, D] -> [B, H, T, hd]
        return x.view(x.shape[0], x.shape[1], self.heads, self.hd).transpose(1, 2)

    def attend(self, q, k, v, mask):
        scores = torch.matmul(q, k.transpose(-1, -2))
        if mask is not None:
            scores = scores + mask
        ctx = torch.matmul(torch.softmax(scores, -1), v)
        return ctx.transpose(1, 2).reshape(q.shape[0], -1, self.d)

    def encode(self, ids, mask):
        x = self.emb[ids] * self.scale + self.pos[: ids.shape[1]]
        add_mask = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for i in range(self.c["encoder_layers"]):
            p = f"model.encoder.layers.{i}"
            q = self.split(self.lin(p + ".self_attn.q_proj", x) * self.hd ** -0.5)
            k = self.split(self.lin(p + ".self_attn.k_proj", x))
            v = self.split(self.lin(p + ".self_attn.v_proj", x))
            x = self.ln(p + ".self_attn_layer_norm",
                        x + self.lin(p + ".self_attn.out_proj", self.attend(q, k, v, add_mask)))
            h = self.lin(p + ".fc2", self.act(self.lin(p + ".fc1", x)))
            x = self.ln(p + ".final_layer_norm", x + h)
        return x, add_mask

    def cross_kv(self, memory):
        kv = []
        for i in range(self.c["decoder_layers"]):
            p = f"model.decoder.layers.{i}.encoder_attn"
            kv.append((self.split(self.lin(p + ".k_proj", memory)),
                       self.split(self.lin(p + ".v_proj", memory))))
        return kv

    def step(self, tokens, t, cache, cross, add_mask):
        x = self.emb[tokens][:, None, :] * self.scale + self.pos[t]
        for i in range(self.c["decoder_layers"]):
            p = f"model.decoder.layers.{i}"
            q = self.split(self.lin(p + ".self_attn.q_proj", x) * self.hd ** -0.5)
            k = self.split(self.lin(p + ".self_attn.k_proj", x))
            v = self.split(self.lin(p + ".self_attn.v_proj", x))
            if cache[i] is not None:
                k = torch.cat([cache[i][0], k], 2)
                v = torch.cat([cache[i][1], v], 2)
            cache[i] = (k, v)
            x = self.ln(p + ".self_attn_layer_norm",
                        x + self.lin(p + ".self_attn.out_proj", self.attend(q, k, v, None)))
            q = self.split(self.lin(p + ".encoder_attn.q_proj", x) * self.hd ** -0.5)
            ck, cv = cross[i]
            x = self.ln(p + ".encoder_attn_layer_norm",
                        x + self.lin(p + ".encoder_attn.out_proj", self.attend(q, ck, cv, add_mask)))
            h = self.lin(p + ".fc2", self.act(self.lin(p + ".fc1", x)))
            x = self.ln(p + ".final_layer_norm", x + h)
        logits = F.linear(x[:, 0], self.emb, self.bias)
        logits[:, self.c["pad_token_id"]] = -math.inf
        return torch.log_softmax(logits, -1)


def process(lp, config, cur_len, min_length, max_length):
    for bad in config.get("bad_words_ids") or []:
        if len(bad) == 1:
            lp[:, bad[0]] = -math.inf
    eos = config["eos_token_id"]
    if cur_len < min_length:
        lp[:, eos] = -math.inf
    forced = config.get("forced_eos_token_id")
    if forced is not None and cur_len == max_length - 1:
        lp[:] = -math.inf
        lp[:, forced] = 0
    return lp


def translate(model, batch, beam, min_length, max_length):
    c = model.c
    pad, eos = c["pad_token_id"], c["eos_token_id"]
    n = len(batch)
    src_len = max(len(s) for s in batch)
    ids = torch.full((n, src_len), pad, dtype=torch.long)
    mask = torch.zeros(n, src_len, dtype=torch.bool)
    for i, s in enumerate(batch):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = True
    memory, add_mask = model.encode(ids, mask)
    if beam > 1:
        memory = memory.repeat_interleave(beam, 0)
        add_mask = add_mask.repeat_interleave(beam, 0)
    cross = model.cross_kv(memory)
    rows = n * beam
    cache = [None] * c["decoder_layers"]
    tokens = torch.full((rows,), c["decoder_start_token_id"], dtype=torch.long)
    outputs = [[] for _ in range(rows)]
    done = torch.zeros(rows, dtype=torch.bool)
    scores = torch.zeros(n, beam)
    scores[:, 1:] = -1e9
    scores = scores.view(-1)
    for cur_len in range(1, max_length):
        lp = process(model.step(tokens, cur_len - 1, cache, cross, add_mask),
                     c, cur_len, min_length, max_length)
        if beam == 1:
            tokens = lp.argmax(-1)
            tokens[done] = pad
        else:
            vocab = lp.shape[-1]
            total = (lp + scores[:, None]).view(n, beam * vocab)
            top, idx = total.topk(2 * beam, -1)
            # Simplified beam bookkeeping (speed baseline): keep the best
            # `beam` continuations per sentence, eos included.
            top, idx = top[:, :beam], idx[:, :beam]
            parent = (idx // vocab + torch.arange(n)[:, None] * beam).view(-1)
            tokens = (idx % vocab).view(-1)
            scores = top.reshape(-1)
            cache = [(k[parent], v[parent]) for k, v in cache]
            outputs = [list(outputs[p]) for p in parent.tolist()]
            done = done[parent]
        for r, tok in enumerate(tokens.tolist()):
            if not done[r]:
                outputs[r].append(tok)
        done |= tokens == eos
        if bool(done.all()):
            break
    return [outputs[i * beam] for i in range(n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model_dir", required=True)
    ap.add_argument("--synthetic_weights", action="store_true")
    ap.add_argument("--input", default="")
    ap.add_argument("--source_length", type=int, default=20)
    ap.add_argument("--num_sentences", type=int, default=0)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--beam_size", type=int, default=1)
    ap.add_argument("--output_length", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--output", default="")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    config = json.load(open(os.path.join(a.model_dir, "config.json")))
    gen_path = os.path.join(a.model_dir, "generation_config.json")
    if os.path.exists(gen_path):
        config.update(json.load(open(gen_path)))
    if a.synthetic_weights:
        weights = synthesize(config, 1234)
    else:
        weights = load_safetensors(os.path.join(a.model_dir, "model.safetensors"))
    model = Marian(config, weights)

    vocab = json.load(open(os.path.join(a.model_dir, "vocab.json")))
    pieces = {v: k for k, v in vocab.items()}
    sp_target = None
    if a.input:
        import sentencepiece
        sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(a.model_dir, "source.spm"))
        sp_target = sentencepiece.SentencePieceProcessor(model_file=os.path.join(a.model_dir, "target.spm"))
        sources = [[vocab.get(p, vocab["<unk>"]) for p in sp.encode(line.rstrip("\n"), out_type=str)]
                   + [config["eos_token_id"]] for line in open(a.input)]
    else:
        g = np.random.default_rng(42)
        n = a.num_sentences or a.batch_size
        sources = []
        for _ in range(n):
            ids = []
            while len(ids) < a.source_length - 1:
                v = int(g.integers(2, config["vocab_size"] - 1))
                if v not in (config["pad_token_id"], config["eos_token_id"]):
                    ids.append(v)
            sources.append(ids + [config["eos_token_id"]])
    if a.num_sentences:
        sources = sources[: a.num_sentences]
    if a.output_length:
        max_length, min_length = a.output_length + 1, a.output_length
    else:
        max_length, min_length = min(128, config.get("max_length", 512)), 0
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    results = [None] * len(sources)

    def run():
        tokens = 0
        for start in range(0, len(order), a.batch_size):
            idx = order[start: start + a.batch_size]
            outs = translate(model, [sources[i] for i in idx], a.beam_size, min_length, max_length)
            for i, out in zip(idx, outs):
                results[i] = out
                tokens += len(out)
        return tokens

    run()  # warm-up
    times = []
    for _ in range(max(1, a.repeat)):
        t0 = time.perf_counter()
        tokens = run()
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    report = {
        "engine": "pytorch", "torch": torch.__version__, "threads": a.threads,
        "batch_size": a.batch_size, "beam_size": a.beam_size, "sentences": len(sources),
        "target_tokens": tokens, "seconds": seconds,
        "target_tokens_per_second": tokens / seconds,
        "sentences_per_second": len(sources) / seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "repeat": len(times),
    }
    print(json.dumps(report, indent=2))
    if a.json:
        json.dump(report, open(a.json, "w"), indent=2)
    if a.output and sp_target is not None:
        with open(a.output, "w") as f:
            for out in results:
                f.write(sp_target.decode([pieces[t] for t in out
                                          if t not in (config["eos_token_id"], config["pad_token_id"])]) + "\n")


if __name__ == "__main__":
    main()
