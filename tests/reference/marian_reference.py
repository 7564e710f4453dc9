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
  marian_reference.py repetition MODEL_DIR OUT_FILE
      For each of REPETITION_SOURCES, the ids of greedy and beam search (4 beams)
      with generate's no_repeat_ngram_size and repetition_penalty
      (transformers 4.30: greedy_search runs the logits processors on the
      raw logits, beam_search on their log_softmax; the decoder input_ids
      they look at start with the decoder start token), max_length 48, one
      JSON line per case (REPETITION_CASES): models/marian-en-de-multi30k/
      golden/repetition.jsonl. Float64 takes minutes (no KV cache).

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


class Reference:
    """The network of one model folder: encode() a text, logits() of the next
    token after a decoder prefix (the whole prefix is run again each step)."""

    def __init__(self, model_dir, target_vocab="target_vocab.json"):
        self.config = json.load(open(os.path.join(model_dir, "config.json")))
        self.w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.d = self.config["d_model"]
        self.heads = self.config["encoder_attention_heads"]
        self.pos = sinusoidal(self.config["max_position_embeddings"], self.d)
        self.vocab = json.load(open(os.path.join(model_dir, "vocab.json"), encoding="utf-8"))
        self.spm = sentencepiece.SentencePieceProcessor(model_file=os.path.join(model_dir, "source.spm"))
        target = json.load(open(os.path.join(model_dir, target_vocab), encoding="utf-8"))
        self.target_pieces = {i: p for p, i in target.items()}
        self.target_spm = sentencepiece.SentencePieceProcessor(model_file=os.path.join(model_dir, "target.spm"))

    def lin(self, x, p):
        return x @ self.w[p + ".weight"].T + self.w[p + ".bias"]

    def ln(self, x, p):
        return torch.nn.functional.layer_norm(x, (self.d,), self.w[p + ".weight"], self.w[p + ".bias"], 1e-5)

    def attention(self, x, mem, p, causal):
        hd = self.d // self.heads
        q = self.lin(x, p + ".q_proj") * hd ** -0.5
        k, v = self.lin(mem, p + ".k_proj"), self.lin(mem, p + ".v_proj")
        split = lambda t: t.view(t.shape[0], self.heads, hd).transpose(0, 1)
        scores = split(q) @ split(k).transpose(1, 2)
        if causal:
            scores = scores + torch.triu(torch.full(scores.shape[1:], -math.inf, dtype=torch.float64), 1)
        out = torch.softmax(scores, -1) @ split(v)
        return self.lin(out.transpose(0, 1).reshape(x.shape[0], self.d), p + ".out_proj")

    def ffn(self, x, p):
        return self.lin(torch.nn.functional.silu(self.lin(x, p + ".fc1")), p + ".fc2")

    def source_ids(self, text):
        pieces = self.spm.encode(text, out_type=str)
        return [self.vocab.get(piece, self.vocab["<unk>"]) for piece in pieces] + [self.config["eos_token_id"]]

    def encode(self, src):
        h = self.w["model.encoder.embed_tokens.weight"][src] * math.sqrt(self.d) + self.pos[:len(src)]
        for i in range(self.config["encoder_layers"]):
            p = f"model.encoder.layers.{i}"
            h = self.ln(h + self.attention(h, h, p + ".self_attn", False), p + ".self_attn_layer_norm")
            h = self.ln(h + self.ffn(h, p), p + ".final_layer_norm")
        return h

    def logits(self, tokens, memory):
        """Logits [vocab] after decoder input `tokens` (start token first),
        <pad> at -inf (MarianMTModel's own adjustment)."""
        x = self.w["model.decoder.embed_tokens.weight"][tokens] * math.sqrt(self.d) + self.pos[:len(tokens)]
        for i in range(self.config["decoder_layers"]):
            p = f"model.decoder.layers.{i}"
            x = self.ln(x + self.attention(x, x, p + ".self_attn", True), p + ".self_attn_layer_norm")
            x = self.ln(x + self.attention(x, memory, p + ".encoder_attn", False), p + ".encoder_attn_layer_norm")
            x = self.ln(x + self.ffn(x, p), p + ".final_layer_norm")
        logits = x[-1] @ self.w["lm_head.weight"].T + self.w["final_logits_bias"][0]
        logits[self.config["pad_token_id"]] = -math.inf
        return logits

    def decode_text(self, ids):
        drop = (self.config["eos_token_id"], self.config["pad_token_id"])
        return self.target_spm.decode_pieces([self.target_pieces[i] for i in ids if i not in drop])


def translate(model_dir, text):
    ref = Reference(model_dir)
    config = ref.config
    src = ref.source_ids(text)
    memory = ref.encode(src)
    tokens = [config["decoder_start_token_id"]]
    generated = []
    while len(tokens) < config["max_length"]:
        logits = ref.logits(tokens, memory)
        for bad in config.get("bad_words_ids", []):
            logits[bad[0]] = -math.inf
        nxt = int(torch.argmax(logits))
        generated.append(nxt)
        tokens.append(nxt)
        if nxt == config["eos_token_id"]:
            break
    print(" ".join(map(str, src)))
    print(" ".join(map(str, generated)))
    print(ref.decode_text(generated))


# generate's logits processors (transformers 4.30, generation/logits_process.py),
# in the order _get_logits_processor builds them, on one row of scores whose
# hypothesis is `tokens` (decoder input_ids: the start token first).
def repetition_penalty(tokens, scores, penalty):
    """RepetitionPenaltyLogitsProcessor: gather, then where(score < 0,
    score * penalty, score / penalty), scattered back (a repeated id once)."""
    for t in set(tokens):
        scores[t] = scores[t] * penalty if scores[t] < 0 else scores[t] / penalty


def no_repeat_ngram(tokens, scores, n):
    """NoRepeatNGramLogitsProcessor: the n-grams of tokens; the last n - 1
    tokens as a prefix ban every token that followed them."""
    cur_len = len(tokens)
    if cur_len + 1 < n:
        return
    seen = {}
    for ngram in zip(*[tokens[i:] for i in range(n)]):
        seen.setdefault(tuple(ngram[:-1]), []).append(ngram[-1])
    for t in seen.get(tuple(tokens[cur_len + 1 - n:cur_len]), []):
        scores[t] = -math.inf


def process(config, options, tokens, scores):
    if options["repetition_penalty"] != 1.0:
        repetition_penalty(tokens, scores, options["repetition_penalty"])
    if options["no_repeat_ngram_size"] > 0:
        no_repeat_ngram(tokens, scores, options["no_repeat_ngram_size"])
    for bad in config.get("bad_words_ids", []):
        scores[bad[0]] = -math.inf
    forced = config.get("forced_eos_token_id")
    if forced is not None and len(tokens) == options["max_length"] - 1:
        scores[:] = -math.inf
        scores[forced] = 0
    return scores


def greedy(ref, options, memory):
    """greedy_search: the processors on the raw logits, then argmax."""
    tokens = [ref.config["decoder_start_token_id"]]
    while len(tokens) < options["max_length"]:
        scores = process(ref.config, options, tokens, ref.logits(tokens, memory))
        nxt = int(torch.argmax(scores))
        tokens.append(nxt)
        if nxt == ref.config["eos_token_id"]:
            break
    return tokens[1:], None


def beam(ref, options, memory):
    """beam_search with BeamSearchScorer for one source (length_penalty 1.0,
    early_stopping False): the processors on log_softmax of the logits."""
    config, k = ref.config, options["beam_size"]
    eos = config["eos_token_id"]
    rows = [[config["decoder_start_token_id"]] for _ in range(k)]
    beam_scores = torch.tensor([0.0] + [-1e9] * (k - 1), dtype=torch.float64)
    finished = []  # (score, ids without the start token, eos)

    def add(ids, sum_logprobs, ended):
        score = sum_logprobs / len(ids) ** 1.0
        if len(finished) < k or score > min(f[0] for f in finished):
            finished.append((score, ids[1:] + ([eos] if ended else []), ended))
            if len(finished) > k:
                finished.remove(min(finished, key=lambda f: f[0]))

    done = False
    while True:
        cur_len = len(rows[0])
        scores = torch.stack([
            process(config, options, row, torch.log_softmax(ref.logits(row, memory), -1))
            for row in rows]) + beam_scores[:, None]
        vocab = scores.shape[1]
        top, index = torch.topk(scores.view(-1), 2 * k)
        next_rows, next_scores = [], []
        for rank in range(2 * k):
            b, t, s = int(index[rank]) // vocab, int(index[rank]) % vocab, float(top[rank])
            if t == eos:
                if rank < k:
                    add(rows[b], s, True)
            else:
                next_rows.append(rows[b] + [t])
                next_scores.append(s)
            if len(next_rows) == k:
                break
        if len(finished) >= k and min(f[0] for f in finished) >= float(top[0]) / cur_len ** 1.0:
            done = True
        rows, beam_scores = next_rows, torch.tensor(next_scores, dtype=torch.float64)
        if done or len(rows[0]) >= options["max_length"]:
            break
    if not done:
        for row, s in zip(rows, beam_scores.tolist()):
            add(row, s, False)
    best = max(finished, key=lambda f: f[0])
    return best[1], best[0]


# The repetition cases of the golden file: sources whose outputs repeat
# (golden lines 14, 76, 106, 118, 140 and an upper-case text that runs to
# max_length), and (search, no_repeat_ngram_size, repetition_penalty), each
# also without the options; max_length 48.
REPETITION_SOURCES = ["Three people sit in a cave.",
                      "Three teenagers in a subway playing around.",
                      "A man doing handstand on top of a round statue.",
                      "Man scaling wall with fire in hand",
                      "A fox terrier leaps after a ball.",
                      "TWO DOGS PLAY IN THE SNOW."]
REPETITION_CASES = [("greedy", 0, 1.0), ("greedy", 2, 1.0), ("greedy", 0, 1.5),
                    ("greedy", 3, 1.2), ("beam4", 0, 1.0), ("beam4", 2, 1.0),
                    ("beam4", 0, 1.5), ("beam4", 3, 1.2)]


def repetition(model_dir, out_file):
    """One JSON line per source and case: the ids generate gives with
    no_repeat_ngram_size and repetition_penalty (golden/repetition.jsonl)."""
    ref = Reference(model_dir, "vocab.json")
    out = open(out_file, "w", encoding="utf-8")
    for text in REPETITION_SOURCES:
        src = ref.source_ids(text)
        memory = ref.encode(src)
        for search, ngram, penalty in REPETITION_CASES:
            options = {"beam_size": 4 if search == "beam4" else 1, "max_length": 48,
                       "no_repeat_ngram_size": ngram, "repetition_penalty": penalty}
            ids, score = (beam if search == "beam4" else greedy)(ref, options, memory)
            line = {"source": text, "source_ids": src, **options, "ids": ids,
                    "text": ref.decode_text(ids)}
            if score is not None:
                line["score"] = score
            print(json.dumps(line, ensure_ascii=False), file=out, flush=True)


if __name__ == "__main__":
    {"make": make, "translate": translate, "repetition": repetition}[sys.argv[1]](sys.argv[2], sys.argv[3])
