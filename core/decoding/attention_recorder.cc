#include "core/decoding/attention_recorder.h"

#include <algorithm>
#include <numeric>
#include <utility>

namespace ts::core {

AttentionRecorder::AttentionRecorder(StepModel& model,
                                     std::vector<int> src_lengths, int src_len,
                                     int num_heads)
    : model_(model),
      src_lengths_(std::move(src_lengths)),
      src_len_(src_len),
      num_heads_(num_heads) {}

void AttentionRecorder::Step(const std::vector<int>& tokens, float* logits) {
  model_.Step(tokens, logits);
  const int rows = static_cast<int>(tokens.size());
  StepRows step;
  if (steps_.empty()) {
    step.parents.assign(rows, -1);
  } else if (pending_.empty()) {
    step.parents.resize(rows);
    std::iota(step.parents.begin(), step.parents.end(), 0);
  } else {
    step.parents = std::move(pending_);
  }
  pending_.clear();
  // [rows, heads, src_len] -> [rows, src_len]: the mean over heads, as
  // transformers' cross_attentions averaged with torch.mean(dim=heads).
  step.mean.assign(static_cast<size_t>(rows) * src_len_, 0.0f);
  const float inv_heads = 1.0f / static_cast<float>(num_heads_);
  for (int r = 0; r < rows; ++r) {
    float* mean = step.mean.data() + static_cast<size_t>(r) * src_len_;
    for (int h = 0; h < num_heads_; ++h) {
      const float* probs = step_probs_.data() +
                           (static_cast<size_t>(r) * num_heads_ + h) * src_len_;
      for (int j = 0; j < src_len_; ++j) mean[j] += probs[j];
    }
    for (int j = 0; j < src_len_; ++j) mean[j] *= inv_heads;
  }
  steps_.push_back(std::move(step));
}

void AttentionRecorder::Reorder(const std::vector<int>& parents) {
  // Compose with any earlier reorder since the last step.
  std::vector<int> composed(parents.size());
  for (size_t i = 0; i < parents.size(); ++i) {
    composed[i] = pending_.empty() ? parents[i] : pending_[parents[i]];
  }
  pending_ = std::move(composed);
  model_.Reorder(parents);
}

int64_t AttentionRecorder::Mark(int row) const {
  const int last_row = pending_.empty() ? row : pending_[row];
  return (static_cast<int64_t>(steps_.size()) - 1) << 32 | last_row;
}

std::vector<float> AttentionRecorder::Rows(int64_t mark, int source) const {
  const int length = src_lengths_[source];
  int step = static_cast<int>(mark >> 32);
  int row = static_cast<int>(mark & 0xffffffff);
  std::vector<float> rows(static_cast<size_t>(step + 1) * length);
  for (; step >= 0; --step) {
    const StepRows& s = steps_[step];
    std::copy_n(s.mean.data() + static_cast<size_t>(row) * src_len_, length,
                rows.data() + static_cast<size_t>(step) * length);
    row = s.parents[row];
  }
  return rows;
}

}  // namespace ts::core
