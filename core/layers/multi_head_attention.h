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

// Where one attention layer's keys and values are: storage [blocks,
// num_heads, block_size, head_dim] for each; position p of row n is in block
// table[n * stride + p / block_size] (block n when table is null) at
// p % block_size. The decoder's KeyValueBlocks and the encoder's
// KeyValueCache both hand out views.
struct KeyValueView {
  float* keys = nullptr;
  float* values = nullptr;
  const int* table = nullptr;  // [rows, stride] block ids, or nullptr
  int64_t stride = 0;
  int64_t block_size = 0;  // positions per block
  int64_t num_heads = 0;
  int64_t head_dim = 0;

  // Where position p of row n (head h) is: head_dim floats.
  int64_t Offset(int64_t n, int64_t h, int64_t p) const {
    const int64_t block =
        table != nullptr ? table[n * stride + p / block_size] : n;
    return ((block * num_heads + h) * block_size + p % block_size) * head_dim;
  }
};

// Keys and values of `rows` rows of at most `capacity` positions each,
// [rows, num_heads, capacity, head_dim]: the encoder's self-attention (one
// block per row).
struct KeyValueCache {
  std::vector<float> keys;
  std::vector<float> values;
  int64_t rows = 0;
  int64_t num_heads = 0;
  int64_t capacity = 0;  // positions allocated per row and head
  int64_t head_dim = 0;

  // Makes room for `rows` rows (contents are not kept).
  void Resize(int64_t rows, int64_t num_heads, int64_t capacity,
              int64_t head_dim);
  KeyValueView View();
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

  // Self-attention over hidden[rows, len, d_model]: row n's positions
  // [past[n], past[n] + len) (past nullptr: all 0) get their keys/values
  // stored through `kv`, which holds the earlier ones; then hidden +=
  // out_proj(attention). key_lengths[n] bounds the keys of row n (padding, or
  // past[n] + len); with `causal` (every row at the same position past[0]),
  // query t also sees only keys up to past[0] + t.
  void SelfAttention(ExecutionContext& ctx, float* hidden, int64_t rows,
                     int64_t len, const int* past, const KeyValueView& kv,
                     const int* key_lengths, bool causal,
                     AttentionScratch* scratch) const;
  // The same over a KeyValueCache, every row at position `past`.
  void SelfAttention(ExecutionContext& ctx, float* hidden, int64_t rows,
                     int64_t len, int64_t past, KeyValueCache* cache,
                     const int* key_lengths, bool causal,
                     AttentionScratch* scratch) const;

  // Projects memory[rows, len, d_model] (the encoder output) to the keys and
  // values of cross-attention, once per source, stored through `kv`.
  void ProjectKeyValues(ExecutionContext& ctx, const float* memory,
                        int64_t rows, int64_t len, const KeyValueView& kv,
                        AttentionScratch* scratch) const;
  void ProjectKeyValues(ExecutionContext& ctx, const float* memory,
                        int64_t rows, int64_t len, KeyValueCache* cache,
                        AttentionScratch* scratch) const;

  // Cross-attention: hidden[rows, len, d_model] += out_proj(attention(q,
  // kv)) where row n reads kv row kv_rows[n] (n if nullptr) with
  // key_lengths[kv_rows[n]] keys. If `probs` is set it also receives the
  // attention probabilities, [rows, len, num_heads, probs_stride] (0 beyond a
  // row's keys; probs_stride >= every key length).
  void CrossAttention(ExecutionContext& ctx, float* hidden, int64_t rows,
                      int64_t len, const KeyValueView& kv,
                      const int* key_lengths, const int* kv_rows,
                      AttentionScratch* scratch, float* probs = nullptr,
                      int64_t probs_stride = 0) const;
  void CrossAttention(ExecutionContext& ctx, float* hidden, int64_t rows,
                      int64_t len, KeyValueCache& cache, const int* key_lengths,
                      const int* kv_rows, AttentionScratch* scratch,
                      float* probs = nullptr) const {
    CrossAttention(ctx, hidden, rows, len, cache.View(), key_lengths, kv_rows,
                   scratch, probs, cache.capacity);
  }

  // Packs the projections that `use` needs for `compute_type` (Linear::Pack)
  // and frees the fp32 q|k|v copy; needed before the calls above.
  void Pack(ops::ComputeType compute_type, AttentionUse use);

  int64_t num_heads() const { return num_heads_; }
  int64_t head_dim() const { return head_dim_; }
  // Bytes of the packed projections and the fused q|k|v bias.
  int64_t PackedBytes() const;

 private:
  // Copies k and v of projected[rows, len, stride] (at column k_offset) to
  // positions [past[n], past[n] + len) of each row n through `kv`.
  void StoreKeyValues(const float* projected, int64_t stride, int64_t k_offset,
                      int64_t rows, int64_t len, const int* past,
                      const KeyValueView& kv) const;

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
