// Greedy and beam search over a step model, with the decoding rules of
// `generate` in transformers 4.30 for MarianMTModel.
#ifndef TRANSFORMER_SERVING_CORE_DECODING_SEARCH_H_
#define TRANSFORMER_SERVING_CORE_DECODING_SEARCH_H_

#include <functional>
#include <vector>

#include "core/decoding/options.h"
#include "core/decoding/sampling.h"

namespace ts::core {

// The model seen by a search: it keeps one decoder state per row.
class StepModel {
 public:
  virtual ~StepModel() = default;
  // Feeds tokens[rows] at the next position and writes the logits of the
  // next token, [rows, vocab], after the model's own adjustments (MarianMT
  // bans <pad>: -inf). The search takes the log_softmax itself, fused with
  // its argmax or top-k, so the log-probs are never written out.
  virtual void Step(const std::vector<int>& tokens, float* logits) = 0;
  // Row i of the new state is row parents[i] of the old one; the number of
  // rows becomes parents.size(). Removes finished rows and reorders beams.
  virtual void Reorder(const std::vector<int>& parents) = 0;
};

// Token rules of the model (from config.json / generation_config.json).
struct SearchRules {
  int vocab_size = 0;
  int eos_id = 0;
  int pad_id = 0;  // never generated
  int decoder_start_id = 0;
  int forced_eos_id = -1;          // forced at the last position; -1: none
  std::vector<int> bad_words_ids;  // never generated
};

// The cross-attention a search records (return_attention): after each Step
// the model has written (*layers)[l] [rows, num_heads, stride] for the
// decoder layers that sequences ask for (MarianDecoder::RecordCrossAttention;
// a sequence reads layer options.attention_layer, negative counting from
// the end); src_lengths[b]: real tokens of source b (Search only).
struct AttentionFeed {
  const std::vector<std::vector<float>>* layers = nullptr;
  int num_heads = 1;
  int stride = 0;
  std::vector<int> src_lengths;
};

class SequenceSearch;

// One decoder step for `sequences`, whose rows are the model's rows in this
// order: feeds their tokens, scores each row, advances each sequence and
// reorders the model's rows to the next step's (done sequences give theirs
// up). `logits` is scratch.
void DecodeStep(StepModel& model, const std::vector<SequenceSearch*>& sequences,
                int vocab, const AttentionFeed* attention,
                std::vector<float>* logits);

// Decodes `batch` sources whose state rows the model holds (row b = source
// b), each with a SequenceSearch: greedy search when options.beam_size == 1,
// sampling when options.do_sample (num_hypotheses samples per source,
// returned in sample order), else beam search. Options must be resolved.
// With `attention`, each hypothesis gets its attention rows
// (Hypothesis::attention). `sample_sources` [batch]: the random streams of
// each source when sampling; empty means {options.seed, b} for source b.
// `on_token`: streamed tokens (TokenCallback in options.h). The model's
// sources are unknown here, so options.max_length_factor bounds nothing
// (Generator applies it).
std::vector<TranslationResult> Search(
    StepModel& model, int batch, const SearchRules& rules,
    const TranslationOptions& options, const AttentionFeed* attention = nullptr,
    const std::vector<SampleSource>& sample_sources = {},
    const TokenCallback& on_token = {});

// The logits processors of `generate` for one row of scores [vocab] at
// cur_len (counting the decoder start token): bad words, and eos while
// cur_len < min_length, become -inf in place. Returns the token forced at
// this position (the forced eos at cur_len == max_length - 1: log-prob 0,
// every other token -inf; the scores are then left as they are), or -1.
// In generate these run after log_softmax, so a banned token keeps its share
// of the normalizer: take it before calling this.
int ApplySearchRules(float* scores, const SearchRules& rules,
                     const TranslationOptions& options, int cur_len);

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_DECODING_SEARCH_H_
