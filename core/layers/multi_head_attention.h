// Multi-head attention of "Attention Is All You Need", as MarianAttention in
// transformers: q, k, v and out projections with biases, q scaled by
// head_dim^-0.5, softmax over keys, padding and (for the decoder) future
// positions masked.
#ifndef TRANSFORMER_SERVING_CORE_LAYERS_MULTI_HEAD_ATTENTION_H_
#define TRANSFORMER_SERVING_CORE_LAYERS_MULTI_HEAD_ATTENTION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/layers/linear.h"

namespace ts::core {

// Keys and values of one attention layer: the decoder's self-attention KV
// cache (grown one position per step) or the cross-attention keys/values of
// the encoder output (computed once per source). Storage is
// [num_slots, num_heads, capacity, head_dim]; row n reads position p from slot
// slots[n * capacity + p]. A beam reorder only rewrites that map (as
// CTranslate2 and transformers copy the whole cache instead), so keys are
// written once and never moved.
struct KeyValueCache {
  std::vector<float> keys;
  std::vector<float> values;
  std::vector<int> slots;  // [rows, capacity]
  int64_t rows = 0;
  int64_t num_slots = 0;
  int64_t num_heads = 0;
  int64_t capacity = 0;  // positions allocated per slot and head
  int64_t head_dim = 0;

  // Empties the cache for `rows` rows; row n owns slot n.
  void Resize(int64_t rows, int64_t num_heads, int64_t capacity,
              int64_t head_dim);
  // Row i continues old row parents[i] (beam reordering, finished rows
  // leaving) over positions [0, length); rows = parents.size(). Positions from
  // `length` on go to row i's own slot i, which no row reads there yet. Adds
  // slots (keeping their contents) when rows grow.
  void Reorder(const std::vector<int>& parents, int64_t length);

  // Where position p of row n (head h) is: head_dim floats.
  float* Key(int64_t n, int64_t h, int64_t p) {
    return keys.data() + Offset(n, h, p);
  }
  float* Value(int64_t n, int64_t h, int64_t p) {
    return values.data() + Offset(n, h, p);
  }
  int64_t Offset(int64_t n, int64_t h, int64_t p) const {
    return ((slots[n * capacity + p] * num_heads + h) * capacity + p) *
           head_dim;
  }

 private:
  std::vector<int> old_slots_;  // scratch of Reorder
};

// Buffers of one attention call, reused across calls.
struct AttentionScratch {
  std::vector<float> projected;  // [rows * len, 3 * d_model] q|k|v
  std::vector<float> context;    // [rows * len, d_model]
};

// Which calls a MultiHeadAttention serves: self-attention projects q, k and v
// of one input in one matmul; cross-attention projects q of the decoder and k,
// v of the encoder output in two. Packing only the needed matrices saves
// their memory.
enum class AttentionUse { kSelf, kCross, kBoth };

class MultiHeadAttention {
 public:
  // Loads `prefix`.{q,k,v,out}_proj (e.g. "model.encoder.layers.0.self_attn")
  // and packs q, k, v into one [3 * d_model, d_model] matrix with the q rows
  // (and bias) pre-multiplied by head_dim^-0.5, so one matmul projects all
  // three. Errors: InvalidArgument naming a missing or misshapen tensor.
  static absl::StatusOr<MultiHeadAttention> Load(const Weights& weights,
                                                 const std::string& prefix,
                                                 int64_t d_model,
                                                 int64_t num_heads);

  // Self-attention over hidden[rows, len, d_model] at positions
  // [past, past + len): their keys/values go into `cache` (which holds the
  // earlier ones), then hidden += out_proj(attention). key_lengths[n] bounds
  // the keys of row n (padding); with `causal`, query t also sees only keys
  // up to past + t.
  void SelfAttention(ExecutionContext& ctx, float* hidden, int64_t rows,
                     int64_t len, int64_t past, KeyValueCache* cache,
                     const int* key_lengths, bool causal,
                     AttentionScratch* scratch) const;

  // Projects memory[rows, len, d_model] (the encoder output) to the keys and
  // values of cross-attention, once per source.
  void ProjectKeyValues(ExecutionContext& ctx, const float* memory,
                        int64_t rows, int64_t len, KeyValueCache* cache,
                        AttentionScratch* scratch) const;

  // Cross-attention: hidden[rows, len, d_model] += out_proj(attention(q,
  // cache)) where row n reads cache row kv_rows[n] with key_lengths[kv_rows[n]]
  // keys. If `probs` is set it also receives the attention probabilities,
  // [rows, len, num_heads, cache.capacity] (0 beyond a row's keys).
  void CrossAttention(ExecutionContext& ctx, float* hidden, int64_t rows,
                      int64_t len, const KeyValueCache& cache,
                      const int* key_lengths, const int* kv_rows,
                      AttentionScratch* scratch, float* probs = nullptr) const;

  // Packs the projections that `use` needs for `compute_type` (Linear::Pack)
  // and frees the fp32 q|k|v copy; needed before the calls above.
  void Pack(ops::ComputeType compute_type, AttentionUse use);

  int64_t num_heads() const { return num_heads_; }
  int64_t head_dim() const { return head_dim_; }
  // Bytes of the packed projections and the fused q|k|v bias.
  int64_t PackedBytes() const;

 private:
  // Copies k and v of projected[rows, len, stride] (at column k_offset) into
  // the cache at positions [offset, offset + len).
  void StoreKeyValues(const float* projected, int64_t stride, int64_t k_offset,
                      int64_t rows, int64_t len, int64_t offset,
                      KeyValueCache* cache) const;

  // q|k|v weights [3D, D] (q rows scaled) until Pack, and their bias [3D].
  std::shared_ptr<const std::vector<float>> qkv_weight_;
  std::shared_ptr<const std::vector<float>> qkv_bias_;
  Linear qkv_proj_;  // all 3D rows
  Linear q_proj_;    // the first D rows
  Linear kv_proj_;   // the last 2D rows
  Linear out_proj_;
  int64_t num_heads_ = 0;
  int64_t head_dim_ = 0;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_LAYERS_MULTI_HEAD_ATTENTION_H_
