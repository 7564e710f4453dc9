// A loaded MarianMT model: configuration, weights and tokenizer, shared
// read-only by every worker.
#ifndef TRANSFORMER_SERVING_CORE_MODEL_MARIAN_MODEL_H_
#define TRANSFORMER_SERVING_CORE_MODEL_MARIAN_MODEL_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/decoding/options.h"
#include "core/model/config.h"
#include "core/model/marian_network.h"
#include "core/model/weights.h"
#include "core/text/tokenizer.h"

namespace ts::core {

// A Hugging Face MarianMT folder (config.json, generation_config.json,
// model.safetensors or model.safetensors.index.json, vocab.json, source.spm,
// target.spm), loaded with the semantics of MarianMTModel and
// MarianTokenizer in transformers. Immutable after Load, so any number of
// threads may use one instance.
class MarianModel {
 public:
  // Loads and checks every file. Tensors absent from the checkpoint (tied
  // embedding copies, lm_head, position tables, final_logits_bias) are derived
  // from model.shared.weight and config.json; those present are checked
  // against them. Errors: NotFound for a missing file, InvalidArgument (or
  // DataLoss for a truncated file) naming the file and tensor otherwise.
  static absl::StatusOr<std::shared_ptr<const MarianModel>> Load(
      const std::string& model_dir,
      ops::ComputeType compute_type = ops::ComputeType::kFloat32);

  // Builds a model from parts already in memory (used by tests and benchmarks
  // with synthesized weights). Errors: as Load.
  static absl::StatusOr<std::shared_ptr<const MarianModel>> FromParts(
      ModelConfig config, Weights weights, MarianTokenizer tokenizer,
      ops::ComputeType compute_type = ops::ComputeType::kFloat32);

  // Parses "fp32", "bf16" or "int8". Errors: InvalidArgument naming the
  // choices.
  static absl::StatusOr<ops::ComputeType> ParseComputeType(
      const std::string& name);

  const ModelConfig& config() const { return config_; }
  // The tensors the network still reads (biases, layer norms, positions):
  // the matmul weights and embeddings were packed and released.
  const Weights& weights() const { return weights_; }
  // fp32 bytes of the tensors the model was built from (one copy of the tied
  // embeddings), before the packed ones were released.
  int64_t weight_bytes() const { return weight_bytes_; }
  // Bytes the weights hold now, in the compute type loaded: the packed
  // matrices plus the fp32 tensors still read. WeightBytes (model_memory.h)
  // predicts it from the config.
  int64_t resident_weight_bytes() const {
    return network_.PackedBytes() + weights_.TotalBytes();
  }
  const MarianTokenizer& tokenizer() const { return tokenizer_; }
  // The layers bound to the weights.
  const MarianNetwork& network() const { return network_; }

  // Fills the 0 ("model default") fields of `options` from the config and
  // checks ranges; a negative attention_layer becomes decoder_layers + it.
  // With do_sample, beam_size 0 means 1 and num_hypotheses counts samples
  // (at most kMaxBeamSize). Errors: InvalidArgument naming the option and its
  // limit (do_sample with beam_size > 1, top_k < 0, top_p outside (0, 1],
  // temperature <= 0, no_repeat_ngram_size < 0, repetition_penalty <= 0,
  // max_length_factor < 0, ...).
  absl::StatusOr<TranslationOptions> ResolveOptions(
      const TranslationOptions& options) const;

 private:
  MarianModel() = default;

  ModelConfig config_;
  Weights weights_;
  int64_t weight_bytes_ = 0;
  MarianTokenizer tokenizer_;
  MarianNetwork network_;
};

// Largest beam_size a request may ask for.
inline constexpr int kMaxBeamSize = 16;

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_MODEL_MARIAN_MODEL_H_
