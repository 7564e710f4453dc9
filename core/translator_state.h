// The model, scratch memory and encoder of one Translator, shared with the
// Generators it makes. Both Translator and Generator build on this; neither
// includes the other's internals (Translator makes Generators, one way).
#ifndef TRANSFORMER_SERVING_CORE_TRANSLATOR_STATE_H_
#define TRANSFORMER_SERVING_CORE_TRANSLATOR_STATE_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "core/decoding/options.h"
#include "core/decoding/sampling.h"
#include "core/layers/transformer_layers.h"
#include "core/model/marian_decoder.h"
#include "core/model/marian_model.h"
#include "core/ops/execution_context.h"

namespace ts::core {

// Reused across calls, so steady-state decoding allocates nothing new. Not
// thread-safe: one per worker thread.
struct TranslatorState {
  std::shared_ptr<const MarianModel> model;
  // OpenMP threads of this state's calls (omp_set_num_threads on the
  // calling thread); 0 keeps the OpenMP default.
  int intra_threads = 0;
  ExecutionContext ctx;
  std::vector<float> encoder_hidden;  // [batch, src_len, d_model]
  LayerScratch layer;
  DecoderWorkspace decoder;
  std::vector<float> logits;

  // The checks of Translator::Translate, without running anything.
  // Errors: InvalidArgument as Translator::Translate lists them.
  absl::Status CheckTranslate(
      const std::vector<std::vector<int>>& source_ids,
      const TranslationOptions& options,
      const std::vector<SampleSource>& sample_sources) const;

  // Runs the encoder on right-padded `sources` (checked) into
  // encoder_hidden [batch, src_len, d_model]; returns src_len (the longest
  // source) and each source's length in `lengths`.
  int RunEncoder(const std::vector<std::vector<int>>& sources,
                 std::vector<int>* lengths);
};

// Ids must be non-empty rows of at most max_position_embeddings ids below
// `vocab_size` (the source vocabulary's, or the target's for teacher-forced
// targets). Errors: InvalidArgument naming the row and the limit.
absl::Status CheckTokenIds(const std::vector<std::vector<int>>& sources,
                           const ModelConfig& config, int vocab_size);

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_TRANSLATOR_STATE_H_
