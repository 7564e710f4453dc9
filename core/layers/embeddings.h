// Token embeddings scaled by sqrt(d_model) plus sinusoidal positions.
#ifndef TRANSFORMER_SERVING_CORE_LAYERS_EMBEDDINGS_H_
#define TRANSFORMER_SERVING_CORE_LAYERS_EMBEDDINGS_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "core/ops/matmul.h"

namespace ts::core {

// The static sinusoidal position table of MarianSinusoidalPositionalEmbedding,
// [num_positions, dim]: sin(pos / 10000^(2i/dim)) in dims [0, dim/2) and the
// cos of the same angles in [dim/2, dim), positions from 0. Computed in
// double, as numpy does in transformers, then rounded to float.
std::vector<float> SinusoidalPositions(int64_t num_positions, int64_t dim);

// out[rows, len, dim] = tokens[ids] * scale + positions[past + t].
struct Embeddings {
  // [vocab_size, dim]: the tied output projection's packed weights (MarianMT
  // ties them), rows read as stored there (PackedWeights::ReadRow).
  std::shared_ptr<const ops::PackedWeights> tokens;
  const float* positions = nullptr;  // [max_positions, dim]
  int64_t dim = 0;
  float scale = 1.0f;

  // `ids` is [rows, len]; ids and positions must be in range (callers check).
  void Forward(const int* ids, int64_t rows, int64_t len, int64_t past,
               float* out) const;
  // One token per row, ids[rows], row n at position positions[n]: out [rows,
  // dim] (decoder steps of rows at different positions).
  void ForwardAt(const int* ids, int64_t rows, const int* positions,
                 float* out) const;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_LAYERS_EMBEDDINGS_H_
