#include "core/layers/transformer_layers.h"

namespace ts::core {

absl::StatusOr<EncoderLayer> EncoderLayer::Load(const Weights& weights,
                                                const std::string& prefix,
                                                const ModelConfig& config) {
  EncoderLayer layer;
  const int64_t d = config.d_model;
  auto attn = MultiHeadAttention::Load(weights, prefix + ".self_attn", d,
                                       config.encoder_attention_heads);
  if (!attn.ok()) return attn.status();
  auto attn_norm = LayerNormLayer::Load(
      weights, prefix + ".self_attn_layer_norm", d, config.layer_norm_eps);
  if (!attn_norm.ok()) return attn_norm.status();
  auto ffn = FeedForward::Load(weights, prefix, d, config.encoder_ffn_dim,
                               ActivationFromName(config.activation_function));
  if (!ffn.ok()) return ffn.status();
  auto final_norm = LayerNormLayer::Load(weights, prefix + ".final_layer_norm",
                                         d, config.layer_norm_eps);
  if (!final_norm.ok()) return final_norm.status();
  layer.self_attn_ = *attn;
  layer.self_attn_layer_norm_ = *attn_norm;
  layer.ffn_ = *ffn;
  layer.final_layer_norm_ = *final_norm;
  return layer;
}

void EncoderLayer::Forward(ExecutionContext& ctx, float* hidden, int64_t batch,
                           int64_t src_len, const int* lengths,
                           LayerScratch* scratch) const {
  const int64_t rows = batch * src_len;
  scratch->self_kv.Resize(batch, self_attn_.num_heads(), src_len,
                          self_attn_.head_dim());
  self_attn_.SelfAttention(ctx, hidden, batch, src_len, /*past=*/0,
                           &scratch->self_kv, lengths, /*causal=*/false,
                           &scratch->attention);
  self_attn_layer_norm_(ctx, hidden, rows);
  ffn_.Forward(ctx, hidden, rows, &scratch->ffn);
  final_layer_norm_(ctx, hidden, rows);
}

absl::StatusOr<DecoderLayer> DecoderLayer::Load(const Weights& weights,
                                                const std::string& prefix,
                                                const ModelConfig& config) {
  DecoderLayer layer;
  const int64_t d = config.d_model;
  const int64_t heads = config.decoder_attention_heads;
  const float eps = config.layer_norm_eps;
  auto self_attn =
      MultiHeadAttention::Load(weights, prefix + ".self_attn", d, heads);
  if (!self_attn.ok()) return self_attn.status();
  auto self_norm =
      LayerNormLayer::Load(weights, prefix + ".self_attn_layer_norm", d, eps);
  if (!self_norm.ok()) return self_norm.status();
  auto cross =
      MultiHeadAttention::Load(weights, prefix + ".encoder_attn", d, heads);
  if (!cross.ok()) return cross.status();
  auto cross_norm = LayerNormLayer::Load(
      weights, prefix + ".encoder_attn_layer_norm", d, eps);
  if (!cross_norm.ok()) return cross_norm.status();
  auto ffn = FeedForward::Load(weights, prefix, d, config.decoder_ffn_dim,
                               ActivationFromName(config.activation_function));
  if (!ffn.ok()) return ffn.status();
  auto final_norm =
      LayerNormLayer::Load(weights, prefix + ".final_layer_norm", d, eps);
  if (!final_norm.ok()) return final_norm.status();
  layer.self_attn_ = *self_attn;
  layer.self_attn_layer_norm_ = *self_norm;
  layer.encoder_attn_ = *cross;
  layer.encoder_attn_layer_norm_ = *cross_norm;
  layer.ffn_ = *ffn;
  layer.final_layer_norm_ = *final_norm;
  return layer;
}

void DecoderLayer::ComputeCrossKeyValues(ExecutionContext& ctx,
                                         const float* encoder_output,
                                         int64_t batch, int64_t src_len,
                                         const KeyValueView& cross_kv,
                                         LayerScratch* scratch) const {
  encoder_attn_.ProjectKeyValues(ctx, encoder_output, batch, src_len, cross_kv,
                                 &scratch->attention);
}

void DecoderLayer::Forward(ExecutionContext& ctx, float* hidden, int64_t rows,
                           int64_t len, const int* past,
                           const KeyValueView& self_kv, const int* self_lengths,
                           const KeyValueView& cross_kv, const int* src_lengths,
                           const int* kv_rows, LayerScratch* scratch,
                           float* cross_probs, int64_t probs_stride) const {
  const int64_t n = rows * len;
  // One position per row needs no causal mask: self_lengths bound the keys.
  self_attn_.SelfAttention(ctx, hidden, rows, len, past, self_kv, self_lengths,
                           /*causal=*/len > 1, &scratch->attention);
  self_attn_layer_norm_(ctx, hidden, n);
  encoder_attn_.CrossAttention(ctx, hidden, rows, len, cross_kv, src_lengths,
                               kv_rows, &scratch->attention, cross_probs,
                               probs_stride);
  encoder_attn_layer_norm_(ctx, hidden, n);
  ffn_.Forward(ctx, hidden, n, &scratch->ffn);
  final_layer_norm_(ctx, hidden, n);
}

}  // namespace ts::core
