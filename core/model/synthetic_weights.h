// Seeded random weights for a MarianMT config, for benchmarks and tests of
// model shapes whose real checkpoints are not available here.
#ifndef TRANSFORMER_SERVING_CORE_MODEL_SYNTHETIC_WEIGHTS_H_
#define TRANSFORMER_SERVING_CORE_MODEL_SYNTHETIC_WEIGHTS_H_

#include <cstdint>

#include "core/model/config.h"
#include "core/model/weights.h"

namespace ts::core {

// Every tensor that MarianMTModel in transformers stores for `config`, under
// its Hugging Face name and shape (only model.shared.weight for the tied
// embeddings, as newer OPUS-MT checkpoints): matrices ~ N(0, 0.02^2),
// layer-norm gains 1, biases 0. The same seed gives the same weights.
Weights SynthesizeWeights(const ModelConfig& config, uint32_t seed);

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_MODEL_SYNTHETIC_WEIGHTS_H_
