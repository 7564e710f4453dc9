#include "core/layers/feed_forward.h"

namespace ts::core {

ops::Activation ActivationFromName(const std::string& name) {
  if (name == "relu") return ops::Activation::kRelu;
  if (name == "gelu") return ops::Activation::kGelu;
  return ops::Activation::kSwish;  // "swish" and "silu"
}

absl::StatusOr<FeedForward> FeedForward::Load(const Weights& weights,
                                              const std::string& prefix,
                                              int64_t d_model, int64_t ffn_dim,
                                              ops::Activation activation) {
  FeedForward ffn;
  ffn.activation_ = activation;
  auto fc1 = Linear::Load(weights, prefix + ".fc1", d_model, ffn_dim);
  if (!fc1.ok()) return fc1.status();
  auto fc2 = Linear::Load(weights, prefix + ".fc2", ffn_dim, d_model);
  if (!fc2.ok()) return fc2.status();
  ffn.fc1_ = *fc1;
  ffn.fc2_ = *fc2;
  return ffn;
}

void FeedForward::Forward(ExecutionContext& ctx, float* hidden, int64_t rows,
                          std::vector<float>* scratch) const {
  const size_t size = rows * fc1_.out_features;
  if (scratch->size() < size) scratch->resize(size);
  fc1_(ctx, hidden, rows, scratch->data(), activation_);
  fc2_(ctx, scratch->data(), rows, hidden, ops::Activation::kNone, 1.0f,
       /*accumulate=*/true);
}

}  // namespace ts::core
