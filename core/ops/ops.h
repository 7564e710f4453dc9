// Stateless operators on fp32 row-major buffers, run with oneDNN primitives
// (layer normalization, log-softmax; matmuls are in matmul.h) or plain loops
// (attention). Each takes its inputs and writes its output; shapes are given
// as arguments and never checked at run time (the layers own them).
#ifndef TRANSFORMER_SERVING_CORE_OPS_OPS_H_
#define TRANSFORMER_SERVING_CORE_OPS_OPS_H_

#include <cstdint>
#include <vector>

#include "core/ops/execution_context.h"

namespace ts::core::ops {

// Elements below which an element-wise loop runs on one thread: a parallel
// region costs a few microseconds (much more when cores are oversubscribed),
// more than such a loop takes.
inline constexpr int64_t kMinParallelWork = 1 << 16;

// Element-wise function applied after a matmul, fused as a oneDNN post-op.
enum class Activation {
  kNone,
  kSwish,  // x * sigmoid(x), "swish"/"silu" in transformers
  kRelu,
  kGelu,  // exact (erf) GELU, "gelu" in transformers
};

// Precision of the matmuls (matmul.h): weights are converted once at load;
// activations stay fp32 between ops and are converted on the fly.
enum class ComputeType {
  kFloat32,
  kBFloat16,  // bf16 weights and matmul inputs, fp32 accumulation and output
              // (the output projection stays fp32: it decides the argmax)
  kInt8,      // int8 weights (per output channel scales), int8 inputs
              // (per row scales, computed on the fly), int32 accumulation
};

// In-place layer normalization over the last dimension of x[M, D]:
// (x - mean) / sqrt(var + eps) * gamma + beta, as torch.nn.LayerNorm.
void LayerNorm(ExecutionContext& ctx, float* x, int64_t m, int64_t d,
               const float* gamma, const float* beta, float eps);

// y[M, N] = log_softmax(x[M, N]) over the last dimension.
void LogSoftmax(ExecutionContext& ctx, const float* x, int64_t m, int64_t n,
                float* y);

// Scaled dot-product attention of "Attention Is All You Need" over a key/value
// cache, per head: softmax(q k^T + mask) v. `q` is [N, Tq, q_stride] with the
// H * head_dim query columns first (already multiplied by head_dim^-0.5);
// `k` and `v` are [N_kv, H, capacity, head_dim], with row n of q reading kv
// row kv_rows[n] (identity if nullptr; beams of one source share its
// cross-attention keys). With a block table they are [blocks, H, block_size,
// head_dim] instead, and key j of kv row r is in block block_table[r *
// table_stride + j / block_size] (the decoder's KeyValueBlocks: beams share
// their parents' history).
// Query t of row n sees keys j < key_lengths[kv row] and, if causal, j <= past
// + t; masked keys get weight 0, as the additive finfo.min mask of transformers
// gives. `out` is [N, Tq, H * head_dim].
struct AttentionShape {
  int64_t batch = 0;      // N, rows of q
  int64_t query_len = 1;  // Tq
  int64_t num_heads = 0;  // H
  int64_t head_dim = 0;
  int64_t capacity = 0;          // positions per kv row; the probs stride
  int64_t q_stride = 0;          // elements between consecutive query vectors
  const int* kv_rows = nullptr;  // [N] kv row of each query row
  const int* block_table = nullptr;  // [N_kv, table_stride] or nullptr
  int64_t table_stride = 0;
  int64_t block_size = 0;
  bool causal = false;
  int64_t past = 0;  // position of query 0 (causal only)
  // If set, also receives the softmax weights, [N, Tq, H, capacity]: key j of
  // query t of row n, head h at ((n * Tq + t) * H + h) * capacity + j; masked
  // keys get 0. Only cross-attention recording sets it (nullptr: no cost).
  float* probs = nullptr;
};
void Attention(const AttentionShape& shape, const float* q, const float* k,
               const float* v, const int* key_lengths, float* out);

}  // namespace ts::core::ops

#endif  // TRANSFORMER_SERVING_CORE_OPS_OPS_H_
