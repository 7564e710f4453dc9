// Encoder and decoder layers of MarianMT (post-LayerNorm), as
// MarianEncoderLayer and MarianDecoderLayer in transformers.
#ifndef TRANSFORMER_SERVING_CORE_LAYERS_TRANSFORMER_LAYERS_H_
#define TRANSFORMER_SERVING_CORE_LAYERS_TRANSFORMER_LAYERS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/layers/feed_forward.h"
#include "core/layers/multi_head_attention.h"
#include "core/model/config.h"

namespace ts::core {

// Scratch buffers reused across layers and steps (owned by a Translator).
struct LayerScratch {
  AttentionScratch attention;
  std::vector<float> ffn;
  KeyValueCache self_kv;  // encoder self-attention keys/values
};

// h = LN(h + SelfAttn(h)); h = LN(h + FFN(h)).
class EncoderLayer {
 public:
  // Loads `prefix` = "model.encoder.layers.i".
  static absl::StatusOr<EncoderLayer> Load(const Weights& weights,
                                           const std::string& prefix,
                                           const ModelConfig& config);

  // hidden: [batch, src_len, d_model], updated in place; lengths[b] = real
  // tokens of sentence b (the rest is padding, masked as keys).
  void Forward(ExecutionContext& ctx, float* hidden, int64_t batch,
               int64_t src_len, const int* lengths,
               LayerScratch* scratch) const;

  // Packs every projection for `compute_type`; needed before Forward.
  void Pack(ops::ComputeType compute_type) {
    self_attn_.Pack(compute_type, AttentionUse::kSelf);
    ffn_.Pack(compute_type);
  }
  // Bytes of the packed projections (after Pack).
  int64_t PackedBytes() const {
    return self_attn_.PackedBytes() + ffn_.PackedBytes();
  }

 private:
  MultiHeadAttention self_attn_;
  LayerNormLayer self_attn_layer_norm_;
  FeedForward ffn_;
  LayerNormLayer final_layer_norm_;
};

// h = LN(h + MaskedSelfAttn(h)); h = LN(h + CrossAttn(h, encoder));
// h = LN(h + FFN(h)).
class DecoderLayer {
 public:
  // Loads `prefix` = "model.decoder.layers.i".
  static absl::StatusOr<DecoderLayer> Load(const Weights& weights,
                                           const std::string& prefix,
                                           const ModelConfig& config);

  // Computes cross-attention keys/values of encoder_output [batch, src_len,
  // d_model] once per source, stored through `cross_kv` (row b: source b).
  void ComputeCrossKeyValues(ExecutionContext& ctx, const float* encoder_output,
                             int64_t batch, int64_t src_len,
                             const KeyValueView& cross_kv,
                             LayerScratch* scratch) const;

  // hidden: [rows, len, d_model] for decoder positions [past[n], past[n] +
  // len) of row n (past nullptr: 0; len > 1 needs every row at the same
  // position), updated in place; `self_kv` receives their keys/values and
  // holds the earlier ones; row n attends to self_lengths[n] keys (past[n] +
  // len), causally. Row n attends to the cross keys/values of kv row
  // kv_rows[n], of src_lengths[kv_rows[n]] real tokens. If `cross_probs` is
  // set it receives the cross-attention probabilities, [rows, len, num_heads,
  // probs_stride] (MultiHeadAttention::CrossAttention).
  void Forward(ExecutionContext& ctx, float* hidden, int64_t rows, int64_t len,
               const int* past, const KeyValueView& self_kv,
               const int* self_lengths, const KeyValueView& cross_kv,
               const int* src_lengths, const int* kv_rows,
               LayerScratch* scratch, float* cross_probs = nullptr,
               int64_t probs_stride = 0) const;

  // Packs every projection for `compute_type`; needed before any step.
  void Pack(ops::ComputeType compute_type) {
    self_attn_.Pack(compute_type, AttentionUse::kSelf);
    encoder_attn_.Pack(compute_type, AttentionUse::kCross);
    ffn_.Pack(compute_type);
  }

  // Bytes of the packed projections (after Pack).
  int64_t PackedBytes() const {
    return self_attn_.PackedBytes() + encoder_attn_.PackedBytes() +
           ffn_.PackedBytes();
  }

  int64_t num_heads() const { return self_attn_.num_heads(); }
  int64_t head_dim() const { return self_attn_.head_dim(); }

 private:
  MultiHeadAttention self_attn_;
  LayerNormLayer self_attn_layer_norm_;
  MultiHeadAttention encoder_attn_;
  LayerNormLayer encoder_attn_layer_norm_;
  FeedForward ffn_;
  LayerNormLayer final_layer_norm_;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_LAYERS_TRANSFORMER_LAYERS_H_
