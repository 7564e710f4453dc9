// Translator: batches of source ids in, hypotheses or encoder vectors out.
#ifndef TRANSFORMER_SERVING_CORE_TRANSLATOR_H_
#define TRANSFORMER_SERVING_CORE_TRANSLATOR_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/decoding/options.h"
#include "core/decoding/sampling.h"
#include "core/decoding/search.h"
#include "core/model/marian_model.h"

namespace ts::core {

class Generator;
struct TranslatorState;

// Runs a MarianModel on the CPU through oneDNN. One Translator per worker
// thread: it owns its oneDNN stream, primitive cache and scratch memory and is
// not thread-safe; the model (weights) is shared. Sentences of a batch are
// padded and masked, so a sentence gives the same output alone or in a batch.
class Translator {
 public:
  // `intra_threads`: OpenMP threads used by this translator's calls (set with
  // omp_set_num_threads on the calling thread); 0 keeps the OpenMP default.
  explicit Translator(std::shared_ptr<const MarianModel> model,
                      int intra_threads = 0);
  ~Translator();

  const MarianModel& model() const;

  // A Generator (continuous batching) on this translator's model and
  // scratch memory: while it exists, call no method of this translator but
  // Encode between its calls. The translator must outlive it.
  std::unique_ptr<Generator> NewGenerator();

  // Translates `source_ids` (each from MarianTokenizer::EncodeSource, </s>
  // included) with greedy search (beam_size 1), sampling (do_sample) or beam
  // search, as MarianMTModel.generate. `options` must be resolved
  // (MarianModel::ResolveOptions). `sample_sources`: empty, or one per source
  // (its random streams when sampling; empty = {options.seed, index}).
  // `on_token`: streams each source's tokens as they are chosen (source =
  // index in `source_ids`) for greedy search and single-sample sampling;
  // never called for beam search or several samples (see TokenCallback).
  // Returns one result per source, in order.
  // With options.return_attention each hypothesis also carries the
  // cross-attention of decoder layer options.attention_layer, [ids,
  // source tokens] (as generate(output_attentions=True) averaged over heads).
  // Errors: InvalidArgument for an empty source, an id outside the
  // vocabulary, a source longer than max_position_embeddings, an
  // attention_layer outside [-decoder_layers, decoder_layers), sample_sources
  // of the wrong size, max_length outside [2, max_position_embeddings + 1]
  // (naming both) or beam_size < 1.
  absl::StatusOr<std::vector<TranslationResult>> Translate(
      const std::vector<std::vector<int>>& source_ids,
      const TranslationOptions& options,
      const std::vector<SampleSource>& sample_sources = {},
      const TokenCallback& on_token = {});

  // Encoder last hidden states of `source_ids`, pooled as `options` says.
  // Errors: as Translate.
  absl::StatusOr<std::vector<EncodeResult>> Encode(
      const std::vector<std::vector<int>>& source_ids,
      const EncodeOptions& options);

  // Teacher-forced log-probabilities: for each pair, log_softmax over the full
  // vocabulary (nothing banned) of each token of `target_ids[i]`, given the
  // decoder input [decoder_start] + target_ids[i][:-1]. Errors: as Translate.
  absl::StatusOr<std::vector<std::vector<float>>> ScoreTargets(
      const std::vector<std::vector<int>>& source_ids,
      const std::vector<std::vector<int>>& target_ids);

  // Encoder last hidden states, [src_len_i, d_model] row-major per source.
  absl::StatusOr<std::vector<std::vector<float>>> EncoderHiddenStates(
      const std::vector<std::vector<int>>& source_ids);

 private:
  // The model, intra_threads and scratch memory (shared with Generators).
  std::unique_ptr<TranslatorState> state_;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_TRANSLATOR_H_
