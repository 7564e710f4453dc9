// Records the cross-attention of every decoding step, so each hypothesis
// gets its own rows even as beam search reorders and drops rows.
#ifndef TRANSFORMER_SERVING_CORE_DECODING_ATTENTION_RECORDER_H_
#define TRANSFORMER_SERVING_CORE_DECODING_ATTENTION_RECORDER_H_

#include <cstdint>
#include <vector>

#include "core/decoding/search.h"

namespace ts::core {

// A StepModel that forwards to `model` and, after each Step, keeps the head
// average of the per-head probabilities the model wrote into step_probs()
// ([rows, num_heads, src_len]; MarianDecoder::RecordCrossAttention). Rows are
// linked to their parents through Reorder, as beam search keeps back-pointers:
// a reorder costs O(rows), and a hypothesis's rows are read back once, when
// it ends (CTranslate2 issue #921 is what goes wrong when they do not follow
// the beams). Used only when a request asks for attention.
class AttentionRecorder final : public StepModel {
 public:
  // src_lengths[b]: real tokens of source b (</s> included); src_len: the
  // padded source length (the stride of step_probs rows); starts with one row
  // per source, as the model does.
  AttentionRecorder(StepModel& model, std::vector<int> src_lengths, int src_len,
                    int num_heads);

  // Where the model writes each step's per-head probabilities.
  std::vector<float>* step_probs() { return &step_probs_; }

  void Step(const std::vector<int>& tokens, float* logits) override;
  void Reorder(const std::vector<int>& parents) override;

  // A handle to the rows that end at the model's current row `row` (the row
  // as the next Step would see it: after any Reorder since the last Step).
  // Valid until this recorder is destroyed.
  int64_t Mark(int row) const;

  // The rows that end at `mark`, oldest first, for source `source`:
  // [steps, src_lengths[source]] row-major.
  std::vector<float> Rows(int64_t mark, int source) const;

 private:
  struct StepRows {
    std::vector<float> mean;   // [rows, src_len], head average
    std::vector<int> parents;  // [rows] row of the previous step, or -1
  };

  StepModel& model_;
  std::vector<int> src_lengths_;
  int src_len_;
  int num_heads_;
  std::vector<int> pending_;  // parents since the last Step (empty: identity)
  std::vector<float> step_probs_;
  std::vector<StepRows> steps_;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_DECODING_ATTENTION_RECORDER_H_
