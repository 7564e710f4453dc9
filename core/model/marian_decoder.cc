#include "core/model/marian_decoder.h"

#include <limits>
#include <numeric>

#include "core/ops/ops.h"

namespace ts::core {

MarianDecoder::MarianDecoder(const MarianNetwork& network,
                             const ModelConfig& config, ExecutionContext& ctx,
                             const float* encoder_output, int batch,
                             int src_len, const std::vector<int>& src_lengths,
                             int capacity, DecoderWorkspace* workspace)
    : network_(network),
      config_(config),
      ctx_(ctx),
      ws_(workspace),
      src_lengths_(src_lengths),
      row_source_(batch),
      src_len_(src_len),
      capacity_(capacity) {
  std::iota(row_source_.begin(), row_source_.end(), 0);
  const size_t layers = network.decoder_layers.size();
  ws_->self_kv.resize(layers);
  ws_->cross_kv.resize(layers);
  for (size_t i = 0; i < layers; ++i) {
    const DecoderLayer& layer = network.decoder_layers[i];
    layer.ComputeCrossKeyValues(ctx, encoder_output, batch, src_len,
                                &ws_->cross_kv[i], &ws_->layer);
    ws_->self_kv[i].Resize(batch, layer.num_heads(), capacity,
                           layer.head_dim());
  }
}

void MarianDecoder::RunLayers(const int* tokens, int len, float* logits) {
  const int rows = static_cast<int>(row_source_.size());
  const int64_t d = config_.d_model;
  ws_->hidden.resize(static_cast<size_t>(rows) * len * d);
  network_.decoder_embeddings.Forward(tokens, rows, len, past_,
                                      ws_->hidden.data());
  for (size_t i = 0; i < network_.decoder_layers.size(); ++i) {
    const DecoderLayer& layer = network_.decoder_layers[i];
    float* probs = nullptr;
    if (probs_ != nullptr && static_cast<int>(i) == probs_layer_) {
      probs_->resize(static_cast<size_t>(rows) * len * layer.num_heads() *
                     src_len_);
      probs = probs_->data();
    }
    layer.Forward(ctx_, ws_->hidden.data(), rows, len, past_, &ws_->self_kv[i],
                  ws_->cross_kv[i], src_lengths_.data(), row_source_.data(),
                  &ws_->layer, probs);
  }
  past_ += len;
  network_.lm_head(ctx_, ws_->hidden.data(), static_cast<int64_t>(rows) * len,
                   logits);
}

void MarianDecoder::Step(const std::vector<int>& tokens, float* logits) {
  const int64_t rows = static_cast<int64_t>(tokens.size());
  const int64_t vocab = config_.decoder_vocab_size;
  RunLayers(tokens.data(), 1, logits);
  // MarianMTModel.adjust_logits_during_generation: <pad> is never generated,
  // and it is banned before the softmax, so it takes no probability mass.
  for (int64_t r = 0; r < rows; ++r) {
    logits[r * vocab + config_.pad_token_id] =
        -std::numeric_limits<float>::infinity();
  }
}

void MarianDecoder::RecordCrossAttention(int layer, std::vector<float>* probs) {
  probs_layer_ = layer;
  probs_ = probs;
}

int MarianDecoder::num_heads() const { return config_.decoder_attention_heads; }

void MarianDecoder::Forward(const std::vector<int>& tokens, int len,
                            float* logits) {
  RunLayers(tokens.data(), len, logits);
}

void MarianDecoder::Reorder(const std::vector<int>& parents) {
  std::vector<int> sources(parents.size());
  for (size_t i = 0; i < parents.size(); ++i) {
    sources[i] = row_source_[parents[i]];
  }
  for (KeyValueCache& cache : ws_->self_kv) cache.Reorder(parents, past_);
  row_source_ = std::move(sources);
}

}  // namespace ts::core
