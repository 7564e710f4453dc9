// Position-wise feed-forward network: fc2(activation(fc1(x))).
#ifndef TRANSFORMER_SERVING_CORE_LAYERS_FEED_FORWARD_H_
#define TRANSFORMER_SERVING_CORE_LAYERS_FEED_FORWARD_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/layers/linear.h"

namespace ts::core {

class FeedForward {
 public:
  // Loads `prefix`.fc1 [ffn_dim, d_model] and `prefix`.fc2 [d_model, ffn_dim].
  static absl::StatusOr<FeedForward> Load(const Weights& weights,
                                          const std::string& prefix,
                                          int64_t d_model, int64_t ffn_dim,
                                          ops::Activation activation);

  // hidden[rows, d_model] += fc2(activation(fc1(hidden))); the activation
  // and the residual add are fused as oneDNN post-ops.
  void Forward(ExecutionContext& ctx, float* hidden, int64_t rows,
               std::vector<float>* scratch) const;

  // Packs fc1 and fc2 for `compute_type` (Linear::Pack); needed before
  // Forward.
  void Pack(ops::ComputeType compute_type) {
    fc1_.Pack(compute_type);
    fc2_.Pack(compute_type);
  }
  // Bytes of the packed fc1 and fc2.
  int64_t PackedBytes() const {
    return (fc1_.packed ? fc1_.packed->bytes() : 0) +
           (fc2_.packed ? fc2_.packed->bytes() : 0);
  }

 private:
  Linear fc1_, fc2_;
  ops::Activation activation_ = ops::Activation::kSwish;
};

// The activation named by config.json's activation_function.
ops::Activation ActivationFromName(const std::string& name);

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_LAYERS_FEED_FORWARD_H_
