// Turns encoder hidden states into sentence or token vectors for Encode.
#ifndef TRANSFORMER_SERVING_CORE_ENCODER_POOLING_H_
#define TRANSFORMER_SERVING_CORE_ENCODER_POOLING_H_

#include "core/decoding/options.h"

namespace ts::core {

// hidden: [num_tokens, dim] last hidden states of one sentence (no padding).
// kMean averages the rows, kFirst takes row 0, kTokens keeps all; with
// options.normalize each output vector is scaled to unit L2 norm (a zero
// vector stays zero).
EncodeResult PoolEncoderStates(const float* hidden, int num_tokens, int dim,
                               const EncodeOptions& options);

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_ENCODER_POOLING_H_
