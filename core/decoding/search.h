// Greedy and beam search over a step model, with the decoding rules of
// `generate` in transformers 4.30 for MarianMTModel.
#ifndef TRANSFORMER_SERVING_CORE_DECODING_SEARCH_H_
#define TRANSFORMER_SERVING_CORE_DECODING_SEARCH_H_

#include <vector>

#include "core/decoding/options.h"

namespace ts::core {

// The model seen by a search: it keeps one decoder state per row.
class StepModel {
 public:
  virtual ~StepModel() = default;
  // Feeds tokens[rows] at the next position and writes the log-probs of the
  // next token, [rows, vocab]: log_softmax over the vocabulary after the
  // model's own logit adjustments (MarianMT bans <pad> first).
  virtual void Step(const std::vector<int>& tokens, float* log_probs) = 0;
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

// Decodes `batch` sources whose state rows the model holds (row b = source
// b). Greedy search when options.beam_size == 1, else beam search (the model
// first gets Reorder to beam_size rows per source). Options must be resolved.
std::vector<TranslationResult> Search(StepModel& model, int batch,
                                      const SearchRules& rules,
                                      const TranslationOptions& options);

// Applies the logits processors of `generate` to log_probs [vocab] of one
// row, in place: bad words -inf, eos -inf while cur_len < min_length, and at
// cur_len == max_length - 1 every token but the forced eos -inf (eos 0).
// cur_len counts the decoder start token.
void ApplySearchRules(float* log_probs, const SearchRules& rules,
                      const TranslationOptions& options, int cur_len);

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_DECODING_SEARCH_H_
