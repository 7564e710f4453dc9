// The search state of one source: greedy search, sampling or beam search
// with its own options, advanced one decoder step at a time. Sequences with
// different options share decoder steps (continuous batching), and a
// sequence can start at any step: its result does not depend on the others.
#ifndef TRANSFORMER_SERVING_CORE_DECODING_SEQUENCE_SEARCH_H_
#define TRANSFORMER_SERVING_CORE_DECODING_SEQUENCE_SEARCH_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "core/decoding/options.h"
#include "core/decoding/sampling.h"
#include "core/decoding/search.h"

namespace ts::core {

// The most tokens, the decoder start included, that a hypothesis of a source
// of `source_length` tokens (</s> included) gets: options.max_length, or
// ceil(options.max_length_factor x source_length) + 10 generated tokens + the
// decoder start if that is less (Marian's --max-length-factor). A factor <= 0
// or a source_length <= 0 sets no bound.
int MaxLengthFactorLimit(const TranslationOptions& options, int source_length);

// One source's search, as MarianMTModel.generate runs it for a batch of one
// (transformers 4.30): greedy (beam_size 1), sampling (do_sample:
// num_hypotheses samples), or beam search with early_stopping=False. It owns
// rows() rows of the decoder: one at the first step, then one per live
// sample or beam_size per live beam set. Each step:
//   1. the caller feeds tokens() to its rows and hands each row's logits
//      [vocab] to ScoreRow (rows may be scored in parallel);
//   2. optionally RecordAttention with the step's cross-attention;
//   3. Advance, which names each next-step row's parent among this step's
//      rows; the caller reorders the decoder rows to match.
// Not thread-safe apart from ScoreRow on distinct rows.
class SequenceSearch {
 public:
  // `options` must be resolved. `sample_source`: the random streams when
  // options.do_sample. `attention_length` > 0 records the cross-attention
  // over that many source tokens for each hypothesis (return_attention).
  // `source_length`: the source's tokens (</s> included), which
  // options.max_length_factor scales; 0 = no such bound.
  SequenceSearch(const SearchRules& rules, const TranslationOptions& options,
                 SampleSource sample_source = {}, int attention_length = 0,
                 int source_length = 0);

  // Rows of the coming step and their input tokens (empty once done).
  const std::vector<int>& tokens() const { return tokens_; }
  int rows() const { return static_cast<int>(tokens_.size()); }
  bool done() const { return done_; }
  // Tokens counted so far, the decoder start included.
  int cur_len() const { return cur_len_; }
  // The most tokens a hypothesis gets, the decoder start included:
  // options.max_length, or less by options.max_length_factor
  // (MaxLengthFactorLimit).
  int length_limit() const { return length_limit_; }
  // Whether each step adds one token to the only hypothesis (greedy, or one
  // sample), so tokens can be streamed as they come (last_token).
  bool streams() const { return !beam_ && samples_ == 1; }
  // With streams(): the token the last Advance chose (eos included), or -1.
  int last_token() const { return last_token_; }
  bool records_attention() const { return attention_length_ > 0; }
  int attention_layer() const { return options_.attention_layer; }

  // Phase 1: scores row r's logits [vocab] (the search rules are applied in
  // place; the row must stay valid until Advance).
  void ScoreRow(int r, float* logits);
  // Phase 2 (recording only): this step's cross-attention probabilities
  // [rows(), num_heads, stride] (MarianDecoder::RecordCrossAttention).
  void RecordAttention(const float* probs, int num_heads, int stride);
  // Phase 3: picks the continuations; appends to `parents` the parent (an
  // index among this step's rows) of each row of the next step.
  void Advance(std::vector<int>* parents);

  // The hypotheses, once done: samples in order, or the best beams by score.
  TranslationResult TakeResult();

 private:
  struct Finished {
    double score;
    std::vector<int> ids;  // without eos
    bool eos;
    int64_t mark;  // attention mark, or -1
  };
  struct Sample {
    std::vector<int> ids;
    double sum_logprobs = 0.0;
    int row = 0;  // its row in this step; -1 once ended
    uint64_t stream_key = 0;
    Hypothesis result;
  };

  void AdvanceSamples(std::vector<int>* parents);
  void AdvanceBeams(std::vector<int>* parents);
  void AddFinished(std::vector<int> ids, double sum_logprobs, bool eos,
                   int64_t mark);
  bool BeamsDone(double best_sum_logprobs) const;
  // Generated ids (no decoder start) of the hypothesis on row r.
  const std::vector<int>& RowIds(int r) const;
  Hypothesis MakeHypothesis(const std::vector<int>& ids, bool eos, double score,
                            int64_t mark) const;
  // Attention handles: row `row` of the last recorded step.
  int64_t Mark(int row) const;
  std::vector<float> AttentionRows(int64_t mark) const;

  const SearchRules& rules_;
  const TranslationOptions options_;
  const bool beam_;
  const int samples_;  // sequences when not beam: num_hypotheses or 1
  const int top_;      // candidates per row: 2 * beam_size, or 1
  const int length_limit_;
  std::vector<int> tokens_;
  int cur_len_ = 1;
  bool done_ = false;
  int last_token_ = -1;
  // Per row of this step: its best candidates (log-prob, token), or for
  // sampling its normalizer, forced token and logits.
  std::vector<std::pair<float, int>> row_best_;  // [rows, top_]
  struct RowScores {
    float max = 0.0f;
    float log_sum = 0.0f;
    int forced = -1;
    const float* logits = nullptr;
    // (token, logit) of the tokens repetition_penalty changed, with their
    // logits before it: greedy and sampling score the model's log-probs.
    std::vector<std::pair<int, float>> penalized;
    // The model's logit of `token`: before repetition_penalty.
    float ModelLogit(int token) const {
      for (const auto& [id, logit] : penalized) {
        if (id == token) return logit;
      }
      return logits[token];
    }
  };
  std::vector<RowScores> row_scores_;
  // no_repeat_ngram_size and repetition_penalty on row r's logits, in place
  // (scores: its normalizer, taken before; penalized is filled).
  void ApplyRepetitionRules(int r, float* logits, RowScores* scores) const;
  // Greedy and sampling.
  std::vector<Sample> sample_state_;
  // Beam search: live rows' ids and scores, the kept finished hypotheses.
  std::vector<std::vector<int>> beam_ids_;
  std::vector<float> beam_scores_;
  std::vector<Finished> finished_;
  double worst_score_ = 1e9;
  // Attention: per recorded step, the head-averaged rows [rows, length] and
  // each row's parent row in the step before.
  struct AttentionStep {
    std::vector<float> mean;
    std::vector<int> parents;
  };
  const int attention_length_;
  std::vector<AttentionStep> attention_;
  std::vector<int> pending_parents_;  // parents from the last Advance
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_DECODING_SEQUENCE_SEARCH_H_
