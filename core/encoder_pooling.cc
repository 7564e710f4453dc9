#include "core/encoder_pooling.h"

#include <cmath>

namespace ts::core {
namespace {

void NormalizeL2(float* v, int dim) {
  double sum = 0.0;
  for (int i = 0; i < dim; ++i) sum += static_cast<double>(v[i]) * v[i];
  if (sum <= 0.0) return;
  const float inv = static_cast<float>(1.0 / std::sqrt(sum));
  for (int i = 0; i < dim; ++i) v[i] *= inv;
}

}  // namespace

EncodeResult PoolEncoderStates(const float* hidden, int num_tokens, int dim,
                               const EncodeOptions& options) {
  EncodeResult result;
  result.num_tokens = num_tokens;
  result.dim = dim;
  switch (options.pooling) {
    case Pooling::kMean: {
      std::vector<double> sum(dim, 0.0);
      for (int t = 0; t < num_tokens; ++t) {
        for (int c = 0; c < dim; ++c) sum[c] += hidden[t * dim + c];
      }
      result.values.resize(dim);
      for (int c = 0; c < dim; ++c) {
        result.values[c] = static_cast<float>(sum[c] / num_tokens);
      }
      break;
    }
    case Pooling::kFirst:
      result.values.assign(hidden, hidden + dim);
      break;
    case Pooling::kTokens:
      result.values.assign(hidden,
                           hidden + static_cast<size_t>(num_tokens) * dim);
      break;
  }
  if (options.normalize) {
    for (size_t offset = 0; offset < result.values.size(); offset += dim) {
      NormalizeL2(result.values.data() + offset, dim);
    }
  }
  return result;
}

}  // namespace ts::core
