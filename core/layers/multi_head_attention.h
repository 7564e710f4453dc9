// Multi-head attention of "Attention Is All You Need", as MarianAttention in
// transformers: q, k, v and out projections with biases, q scaled by
// head_dim^-0.5, softmax over keys, padding and (for the decoder) future
// positions masked.
#ifndef TRANSFORMER_SERVING_CORE_LAYERS_MULTI_HEAD_ATTENTION_H_
#define TRANSFORMER_SERVING_CORE_LAYERS_MULTI_HEAD_ATTENTION_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/layers/linear.h"

namespace ts::core {

// Keys and values of one attention layer, [rows, num_heads, capacity,
// head_dim] each: the decoder's self-attention KV cache (grown one position
// per step) or the cross-attention keys/values of the encoder output
// (computed once per source).
struct KeyValueCache {
  std::vector<float> keys;
  std::vector<float> values;
  int64_t rows = 0;
  int64_t capacity = 0;  // positions allocated per row and head

  void Resize(int64_t rows, int64_t num_heads, int64_t capacity,
              int64_t head_dim);
  // Makes row i a copy of row parents[i] (beam search reordering), for the
  // first `length` positions.
  void Gather(const std::vector<int>& parents, int64_t num_heads,
              int64_t head_dim, int64_t length, KeyValueCache* scratch);
};

class MultiHeadAttention {
 public:
  // Loads `prefix`.{q,k,v,out}_proj (e.g. "model.encoder.layers.0.self_attn").
  static absl::StatusOr<MultiHeadAttention> Load(const Weights& weights,
                                                 const std::string& prefix,
                                                 int64_t d_model,
                                                 int64_t num_heads);

  // Projects x[rows, len, d_model] to keys and values and stores them at
  // positions [offset, offset + len) of `cache`.
  void ProjectKeyValues(ExecutionContext& ctx, const float* x, int64_t rows,
                        int64_t len, int64_t offset, KeyValueCache* cache,
                        std::vector<float>* scratch) const;

  // hidden[rows, len, d_model] += out_proj(attention(q_proj(query_input),
  // cache)); the residual add is fused into out_proj. `key_lengths` has one
  // entry per cache row; row n reads cache row kv_rows[n] (identity if null). With `causal`,
  // query t sees keys up to past + t. `probs` as in ops::Attention.
  void Attend(ExecutionContext& ctx, const float* query_input, int64_t rows,
              int64_t len, const KeyValueCache& cache,
              const int* key_lengths, const int* kv_rows, bool causal,
              int64_t past, float* hidden, std::vector<float>* q_scratch,
              std::vector<float>* context_scratch,
              float* probs = nullptr, int64_t probs_stride = 0) const;

  int64_t num_heads() const { return num_heads_; }
  int64_t head_dim() const { return head_dim_; }

 private:
  Linear q_proj_, k_proj_, v_proj_, out_proj_;
  int64_t num_heads_ = 0;
  int64_t head_dim_ = 0;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_LAYERS_MULTI_HEAD_ATTENTION_H_
