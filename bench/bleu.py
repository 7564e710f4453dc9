#!/usr/bin/python3
"""Corpus BLEU as sacreBLEU 2.x computes it by default (13a tokenization,
mixed case, 4-grams, exp smoothing, one reference). Debian 12 has no
sacrebleu package, so this follows its published definition; the golden
README of the demo model names the same scorer.

usage: bleu.py HYPOTHESES REFERENCES  (one sentence per line each)
"""
import collections
import math
import re
import sys

_RULES = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]


def tokenize_13a(line):
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = (line.replace("&quot;", '"').replace("&amp;", "&")
                .replace("&lt;", "<").replace("&gt;", ">"))
    line = f" {line} "
    for pattern, repl in _RULES:
        line = pattern.sub(repl, line)
    return line.split()


def ngrams(tokens, n):
    return collections.Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(hypotheses, references, max_n=4):
    correct = [0] * max_n
    total = [0] * max_n
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references):
        h, r = tokenize_13a(hyp), tokenize_13a(ref)
        hyp_len += len(h)
        ref_len += len(r)
        for n in range(1, max_n + 1):
            hn, rn = ngrams(h, n), ngrams(r, n)
            correct[n - 1] += sum(min(c, rn[g]) for g, c in hn.items())
            total[n - 1] += max(0, len(h) - n + 1)
    if hyp_len == 0:
        return 0.0
    log_precision = 0.0
    smooth = 1.0
    for n in range(max_n):
        if total[n] == 0:
            return 0.0
        if correct[n] == 0:
            smooth *= 2
            precision = 100.0 / (smooth * total[n])
        else:
            precision = 100.0 * correct[n] / total[n]
        log_precision += math.log(precision) / max_n
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return bp * math.exp(log_precision)


def main():
    hyps = open(sys.argv[1], encoding="utf-8").read().splitlines()
    refs = open(sys.argv[2], encoding="utf-8").read().splitlines()
    if len(hyps) != len(refs):
        sys.exit(f"{len(hyps)} hypotheses but {len(refs)} references")
    print(f"{corpus_bleu(hyps, refs):.2f}")


if __name__ == "__main__":
    main()
