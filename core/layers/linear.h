// Fully connected and layer-norm weights found by Hugging Face name.
#ifndef TRANSFORMER_SERVING_CORE_LAYERS_LINEAR_H_
#define TRANSFORMER_SERVING_CORE_LAYERS_LINEAR_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model/weights.h"
#include "core/ops/matmul.h"
#include "core/ops/ops.h"

namespace ts::core {

// torch.nn.Linear: y[M, out] = x[M, in] * weight[out, in]^T + bias[out].
// Loaded as a view of the checkpoint's fp32 weight, then packed once
// (ops::PackedWeights) for the compute type; only the packed copy is used.
struct Linear {
  // fp32 [out_features, in_features] owned elsewhere; nullptr once packed
  // (the owner may then release it).
  const float* weight = nullptr;
  const float* bias = nullptr;  // [out_features], may be nullptr
  int64_t in_features = 0;
  int64_t out_features = 0;
  std::shared_ptr<const ops::PackedWeights> packed;  // set by Pack

  // A view of fp32 weights [out_features, in_features] and bias owned
  // elsewhere.
  static Linear View(const float* weight, const float* bias,
                     int64_t in_features, int64_t out_features) {
    Linear linear;
    linear.weight = weight;
    linear.bias = bias;
    linear.in_features = in_features;
    linear.out_features = out_features;
    return linear;
  }

  // Converts and reorders the weights for `compute_type` and drops the view;
  // `source_done` as in ops::PackedWeights::Pack. Throws dnnl::error if
  // oneDNN cannot run the type on this CPU.
  void Pack(ops::ComputeType compute_type,
            const std::function<void(int64_t rows)>& source_done = nullptr);

  // Finds `prefix`.weight and `prefix`.bias and checks their shapes.
  // Errors: InvalidArgument naming the tensor, its shape and the expected one.
  static absl::StatusOr<Linear> Load(const Weights& weights,
                                     const std::string& prefix,
                                     int64_t in_features, int64_t out_features,
                                     bool with_bias = true);

  // y = activation((x W^T + b) * scale) (+ y if accumulate), for m rows.
  // Pack() first.
  void operator()(ExecutionContext& ctx, const float* x, int64_t m, float* y,
                  ops::Activation activation = ops::Activation::kNone,
                  float scale = 1.0f, bool accumulate = false) const {
    ops::Linear(ctx, x, m, *packed, bias, y, activation, scale, accumulate);
  }
};

// torch.nn.LayerNorm over the last dimension (d_model).
struct LayerNormLayer {
  const float* gamma = nullptr;
  const float* beta = nullptr;
  int64_t dim = 0;
  float eps = 1e-5f;

  static absl::StatusOr<LayerNormLayer> Load(const Weights& weights,
                                             const std::string& prefix,
                                             int64_t dim, float eps);

  // In place over x[m, dim].
  void operator()(ExecutionContext& ctx, float* x, int64_t m) const {
    ops::LayerNorm(ctx, x, m, dim, gamma, beta, eps);
  }
};

// Finds `name` and checks that its shape is `shape`. Errors: InvalidArgument
// ("tensor X has shape [..], config.json implies [..]") or NotFound.
absl::StatusOr<const TensorView*> FindTensor(const Weights& weights,
                                             const std::string& name,
                                             const std::vector<int64_t>& shape);

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_LAYERS_LINEAR_H_
