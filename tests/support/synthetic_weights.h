// Seeded random weights for a MarianMT config, for benchmarks and tests of
// model shapes whose real checkpoints are not available here.
#ifndef TRANSFORMER_SERVING_TESTS_SUPPORT_SYNTHETIC_WEIGHTS_H_
#define TRANSFORMER_SERVING_TESTS_SUPPORT_SYNTHETIC_WEIGHTS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "core/model/config.h"
#include "core/model/weights.h"

namespace ts::core {

// Every tensor that MarianMTModel in transformers stores for `config`, under
// its Hugging Face name and shape (only model.shared.weight for the tied
// embeddings, as newer OPUS-MT checkpoints): matrices ~ N(0, 0.02^2),
// layer-norm gains 1, biases 0. The same seed gives the same weights.
Weights SynthesizeWeights(const ModelConfig& config, uint32_t seed);

// The same tensors and values as a model.safetensors file at `path` (F32),
// written one tensor at a time: loading it (Weights::Load, memory-mapped)
// then holds no more than a real checkpoint does, which peak-RSS figures
// need. Errors: Internal if the file cannot be written.
absl::Status WriteSyntheticSafetensors(const ModelConfig& config, uint32_t seed,
                                       const std::string& path);

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_TESTS_SUPPORT_SYNTHETIC_WEIGHTS_H_
