// The matmul of every linear layer: weights converted to the compute type and
// reordered once, at load, into the layout oneDNN's matmul picks for this CPU,
// then multiplied with fp32 activations converted on the fly.
#ifndef TRANSFORMER_SERVING_CORE_OPS_MATMUL_H_
#define TRANSFORMER_SERVING_CORE_OPS_MATMUL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/ops/execution_context.h"
#include "core/ops/ops.h"

namespace ts::core::ops {

// The weight matrix of a torch.nn.Linear, weight[N, K] ([out_features,
// in_features]), held as the [K, N] matmul weights in the layout oneDNN's
// matmul chooses with format "any" for this CPU and data type (e.g. BA16a64b
// for fp32 on AVX-512, BA16a64b4a plus compensation for int8 on VNNI). A
// matmul then streams them without reordering: about 3x faster than the plain
// layout at batch 1 (bench/README.md). Immutable; shared by worker threads.
class PackedWeights {
 public:
  // Converts and reorders weight[n, k] (fp32, row-major). kBFloat16 rounds
  // each value to nearest even; kInt8 quantizes each output row
  // symmetrically, weight[r][c] ~= q[r][c] * scales[r] with scales[r] =
  // max_c |weight[r][c]| / 127 (as CTranslate2's int8). Throws dnnl::error if
  // oneDNN has no matmul for the type on this CPU (see
  // BFloat16MatmulSupported). `source_done`, if given, is called with r as
  // soon as rows [0, r) of `weight` are no longer read, last with r = n:
  // bf16 and int8 convert a block of rows at a time and report each, fp32
  // reports once after the reorder. The caller can give that memory back
  // early and keep the load's peak memory down.
  static std::shared_ptr<const PackedWeights> Pack(
      const float* weight, int64_t n, int64_t k, ComputeType type,
      const std::function<void(int64_t rows)>& source_done = nullptr);

  // The same bytes in oneDNN's plain [K, N] column-major layout ("ba"): what
  // a matmul without packing reads. For tests and benchmarks.
  static std::shared_ptr<const PackedWeights> PackPlain(const float* weight,
                                                        int64_t n, int64_t k,
                                                        ComputeType type);

  ~PackedWeights();
  PackedWeights(const PackedWeights&) = delete;
  PackedWeights& operator=(const PackedWeights&) = delete;

  int64_t rows() const { return n_; }  // N, out_features
  int64_t cols() const { return k_; }  // K, in_features
  ComputeType type() const { return type_; }
  const dnnl::memory::desc& desc() const { return desc_; }  // [K, N]
  void* data() const { return data_; }
  // Per-row scales [N] for kInt8, else empty.
  const std::vector<float>& scales() const { return scales_; }
  // True in oneDNN's chosen layout, false for PackPlain.
  bool packed() const { return packed_; }
  // Bytes held (packed values, compensation and scales).
  int64_t bytes() const;

  // out[K] = row `row` of the weight as stored: the fp32 value, its bf16
  // rounding, or q * scale for int8. Lets the tied token embeddings read
  // the output projection's copy (MarianMT ties them) instead of keeping an
  // fp32 table. `row` must be in [0, N).
  void ReadRow(int64_t row, float* out) const;

 private:
  PackedWeights() = default;
  static std::shared_ptr<const PackedWeights> PackAs(
      const float* weight, int64_t n, int64_t k, ComputeType type, bool plain,
      const std::function<void(int64_t rows)>& source_done);
  // Element offset of weight[row, col] in data_, split as col_offsets_[col] +
  // RowOffset(row): a blocked layout's offset sums one term per dimension.
  int64_t RowOffset(int64_t row) const;

  int64_t n_ = 0;
  int64_t k_ = 0;
  ComputeType type_ = ComputeType::kFloat32;
  dnnl::memory::desc desc_;
  void* data_ = nullptr;  // aligned, desc_.get_size() bytes
  std::vector<float> scales_;
  std::vector<int64_t> col_offsets_;  // [K]
  float stored_scale_ = 1.0f;         // oneDNN's int8 scale adjustment, if any
  bool packed_ = false;
};

// y[M, N] = activation((x[M, K] * weight^T + bias[N]) * scale), then (if
// accumulate) + the previous y, as torch.nn.Linear with the activation
// fused. bias may be nullptr. fp32 runs one oneDNN matmul with the scale,
// activation and sum as post-ops; bf16 rounds x to bf16 first (fp32
// accumulation); int8 quantizes each row of x with its own scale (max |x| /
// 127), multiplies in int8 with int32 accumulation, then scales back and
// applies the same epilogue in fp32. Accumulating fuses the residual
// connection into the projection.
void Linear(ExecutionContext& ctx, const float* x, int64_t m,
            const PackedWeights& weight, const float* bias, float* y,
            Activation activation = Activation::kNone, float scale = 1.0f,
            bool accumulate = false);

// values rounded to bfloat16 (nearest even; NaN stays NaN).
std::vector<uint16_t> ToBFloat16(const float* values, int64_t n);

// True if oneDNN can run a bf16 matmul on this CPU (natively or emulated).
bool BFloat16MatmulSupported();

}  // namespace ts::core::ops

#endif  // TRANSFORMER_SERVING_CORE_OPS_MATMUL_H_
