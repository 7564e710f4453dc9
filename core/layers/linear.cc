#include "core/layers/linear.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ts::core {

absl::StatusOr<const TensorView*> FindTensor(
    const Weights& weights, const std::string& name,
    const std::vector<int64_t>& shape) {
  const TensorView* tensor = weights.Find(name);
  if (tensor == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("the checkpoint has no tensor ", name));
  }
  if (tensor->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor ", name, " has shape ", ShapeToString(tensor->shape),
        ", config.json implies ", ShapeToString(shape)));
  }
  return tensor;
}

absl::StatusOr<Linear> Linear::Load(const Weights& weights,
                                    const std::string& prefix,
                                    int64_t in_features, int64_t out_features,
                                    bool with_bias) {
  Linear linear;
  linear.in_features = in_features;
  linear.out_features = out_features;
  auto weight =
      FindTensor(weights, prefix + ".weight", {out_features, in_features});
  if (!weight.ok()) return weight.status();
  linear.weight = (*weight)->data;
  if (with_bias) {
    auto bias = FindTensor(weights, prefix + ".bias", {out_features});
    if (!bias.ok()) return bias.status();
    linear.bias = (*bias)->data;
  }
  return linear;
}

void Linear::Pack(ops::ComputeType compute_type,
                  const std::function<void(int64_t rows)>& source_done) {
  packed = ops::PackedWeights::Pack(weight, out_features, in_features,
                                    compute_type, source_done);
  weight = nullptr;
}

absl::StatusOr<LayerNormLayer> LayerNormLayer::Load(const Weights& weights,
                                                    const std::string& prefix,
                                                    int64_t dim, float eps) {
  LayerNormLayer norm;
  norm.dim = dim;
  norm.eps = eps;
  auto gamma = FindTensor(weights, prefix + ".weight", {dim});
  if (!gamma.ok()) return gamma.status();
  auto beta = FindTensor(weights, prefix + ".bias", {dim});
  if (!beta.ok()) return beta.status();
  norm.gamma = (*gamma)->data;
  norm.beta = (*beta)->data;
  return norm;
}

}  // namespace ts::core
