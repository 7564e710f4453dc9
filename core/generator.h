// Continuous batching for one Translator: sequences join and leave the
// decoder between steps, each with its own options, as iteration-level
// scheduling in Orca and vLLM does for decoder-only models (TGI does it for
// seq2seq by concatenating batches).
#ifndef TRANSFORMER_SERVING_CORE_GENERATOR_H_
#define TRANSFORMER_SERVING_CORE_GENERATOR_H_

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/decoding/options.h"
#include "core/decoding/sampling.h"
#include "core/decoding/search.h"
#include "core/model/marian_decoder.h"

namespace ts::core {

class SequenceSearch;
struct TranslatorState;

// Decodes any number of sequences together, one decoder step per Step call;
// a sequence gives the same hypotheses whenever it joins (rows are computed
// independently). Made by Translator::NewGenerator; uses that translator's
// scratch memory and KV block pool: while a Generator exists, call no
// Translator method but Encode (whose encoder scratch Admit uses only while
// it runs). Not thread-safe.
class Generator {
 public:
  // `state` (a Translator's) must outlive the generator.
  explicit Generator(TranslatorState* state);
  ~Generator();

  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  // Runs the encoder on `source_ids` (each from EncodeSource, </s> included)
  // and adds one sequence per source that decodes with `options` (resolved)
  // from the next Step. `sample_sources`: empty or one per source (as
  // Translator::Translate). Returns the sequences' ids, in order.
  // Errors (nothing is added): InvalidArgument as Translator::Translate.
  absl::StatusOr<std::vector<int64_t>> Admit(
      const std::vector<std::vector<int>>& source_ids,
      const TranslationOptions& options,
      const std::vector<SampleSource>& sample_sources = {});

  // One decoder step for every active sequence. Then finished() holds the
  // sequences that ended in it and streamed() the tokens it chose for the
  // streaming ones (greedy, or one sample).
  void Step();

  // Removes a sequence before the next step (a cancelled request): its rows
  // and KV blocks are freed at once; it never appears in finished().
  void Cancel(int64_t id);

  // (id, hypotheses) of the sequences that ended in the last Step; moved
  // out by the call.
  std::vector<std::pair<int64_t, TranslationResult>> TakeFinished();
  // (id, token) chosen in the last Step, eos included, for streaming
  // sequences (SequenceSearch::streams).
  const std::vector<std::pair<int64_t, int>>& streamed() const {
    return streamed_;
  }

  int active_sequences() const { return static_cast<int>(active_.size()); }
  // Decoder rows of the next step (beams count beam_size each).
  int active_rows() const { return decoder_.rows(); }
  // Bytes of KV cache blocks in use: self-attention of every row and the
  // cross-attention of every active source (all layers).
  int64_t kv_bytes() const { return decoder_.kv_bytes(); }
  // Bytes Admit would add for `source_ids` before their first step: their
  // cross-attention blocks and one self-attention block each.
  int64_t AdmissionBytes(const std::vector<std::vector<int>>& source_ids) const;

 private:
  struct Active;

  TranslatorState* state_;
  SearchRules rules_;
  MarianDecoder decoder_;
  std::vector<std::unique_ptr<Active>> active_;  // in decoder row order
  std::vector<std::pair<int64_t, TranslationResult>> finished_;
  std::vector<std::pair<int64_t, int>> streamed_;
  std::vector<std::vector<float>> probs_;  // recorded cross-attention
  std::vector<float> logits_;
  int64_t next_id_ = 0;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_GENERATOR_H_
