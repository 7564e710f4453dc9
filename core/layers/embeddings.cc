#include "core/layers/embeddings.h"

#include <cmath>

namespace ts::core {

std::vector<float> SinusoidalPositions(int64_t num_positions, int64_t dim) {
  std::vector<float> table(num_positions * dim);
  // For odd dim, transformers puts ceil(dim/2) sin columns first.
  const int64_t sentinel = (dim + 1) / 2;
  for (int64_t pos = 0; pos < num_positions; ++pos) {
    for (int64_t j = 0; j < dim; ++j) {
      const double angle =
          pos / std::pow(10000.0, 2.0 * static_cast<double>(j / 2) / dim);
      // Even j feed the sin half, odd j the cos half.
      if (j % 2 == 0) {
        table[pos * dim + j / 2] = static_cast<float>(std::sin(angle));
      } else {
        table[pos * dim + sentinel + j / 2] =
            static_cast<float>(std::cos(angle));
      }
    }
  }
  return table;
}

void Embeddings::Forward(const int* ids, int64_t rows, int64_t len,
                         int64_t past, float* out) const {
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t t = 0; t < len; ++t) {
      const float* position = positions + (past + t) * dim;
      float* dst = out + (n * len + t) * dim;
      tokens->ReadRow(ids[n * len + t], dst);
      for (int64_t c = 0; c < dim; ++c) dst[c] = dst[c] * scale + position[c];
    }
  }
}

void Embeddings::ForwardAt(const int* ids, int64_t rows, const int* positions,
                           float* out) const {
  for (int64_t n = 0; n < rows; ++n)
    Forward(ids + n, 1, 1, positions[n], out + n * dim);
}

}  // namespace ts::core
