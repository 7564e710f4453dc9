#include "core/decoding/search.h"

#include <limits>
#include <memory>
#include <utility>

#include "core/decoding/sequence_search.h"

namespace ts::core {

int ApplySearchRules(float* scores, const SearchRules& rules,
                     const TranslationOptions& options, int cur_len) {
  if (rules.forced_eos_id >= 0 && cur_len == options.max_length - 1) {
    return rules.forced_eos_id;
  }
  const int vocab = rules.vocab_size;
  for (int id : rules.bad_words_ids) {
    if (id >= 0 && id < vocab) {
      scores[id] = -std::numeric_limits<float>::infinity();
    }
  }
  if (cur_len < options.min_length) {
    scores[rules.eos_id] = -std::numeric_limits<float>::infinity();
  }
  return -1;
}

void DecodeStep(StepModel& model, const std::vector<SequenceSearch*>& sequences,
                int vocab, const AttentionFeed* attention,
                std::vector<float>* logits) {
  std::vector<int> tokens;
  // Row owners: (sequence, row within it).
  std::vector<std::pair<SequenceSearch*, int>> owners;
  for (SequenceSearch* sequence : sequences) {
    for (int r = 0; r < sequence->rows(); ++r) {
      tokens.push_back(sequence->tokens()[r]);
      owners.push_back({sequence, r});
    }
  }
  const int rows = static_cast<int>(tokens.size());
  if (rows == 0) return;
  logits->resize(static_cast<size_t>(rows) * vocab);
  model.Step(tokens, logits->data());
#pragma omp parallel for schedule(static) if (rows * vocab >= (1 << 18))
  for (int r = 0; r < rows; ++r) {
    owners[r].first->ScoreRow(owners[r].second,
                              logits->data() + static_cast<size_t>(r) * vocab);
  }
  std::vector<int> parents;
  int offset = 0;
  for (SequenceSearch* sequence : sequences) {
    const int own_rows = sequence->rows();
    if (own_rows == 0) continue;
    if (attention != nullptr && sequence->records_attention()) {
      const int layers = static_cast<int>(attention->layers->size());
      int layer = sequence->attention_layer();
      if (layer < 0) layer += layers;
      sequence->RecordAttention(
          (*attention->layers)[layer].data() + static_cast<size_t>(offset) *
                                                   attention->num_heads *
                                                   attention->stride,
          attention->num_heads, attention->stride);
    }
    const size_t first = parents.size();
    sequence->Advance(&parents);
    for (size_t i = first; i < parents.size(); ++i) parents[i] += offset;
    offset += own_rows;
  }
  bool same_rows = static_cast<int>(parents.size()) == rows;
  for (int i = 0; same_rows && i < rows; ++i) same_rows = parents[i] == i;
  if (!same_rows) model.Reorder(parents);
}

std::vector<TranslationResult> Search(
    StepModel& model, int batch, const SearchRules& rules,
    const TranslationOptions& options, const AttentionFeed* attention,
    const std::vector<SampleSource>& sample_sources,
    const TokenCallback& on_token) {
  std::vector<std::unique_ptr<SequenceSearch>> owned;
  std::vector<SequenceSearch*> sequences;
  for (int b = 0; b < batch; ++b) {
    const SampleSource source = sample_sources.empty()
                                    ? SampleSource{options.seed, b}
                                    : sample_sources[b];
    owned.push_back(std::make_unique<SequenceSearch>(
        rules, options, source,
        attention != nullptr ? attention->src_lengths[b] : 0));
    sequences.push_back(owned.back().get());
  }
  std::vector<float> logits;
  while (true) {
    std::vector<SequenceSearch*> live;
    std::vector<int> live_sources;
    for (int b = 0; b < batch; ++b) {
      if (sequences[b]->done()) continue;
      live.push_back(sequences[b]);
      live_sources.push_back(b);
    }
    if (live.empty()) break;
    DecodeStep(model, live, rules.vocab_size, attention, &logits);
    for (size_t i = 0; on_token && i < live.size(); ++i) {
      if (live[i]->streams()) on_token(live_sources[i], live[i]->last_token());
    }
  }
  std::vector<TranslationResult> results;
  for (SequenceSearch* sequence : sequences) {
    results.push_back(sequence->TakeResult());
  }
  return results;
}

}  // namespace ts::core
