#include "core/model/model_memory.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ts::core {
namespace {

// Bytes of a packed [n, k] matmul weight.
int64_t MatrixBytes(int64_t n, int64_t k, ops::ComputeType type) {
  switch (type) {
    case ops::ComputeType::kFloat32:
      return n * k * 4;
    case ops::ComputeType::kBFloat16:
      return n * k * 2;
    case ops::ComputeType::kInt8:
      return n * k + n * 4;  // values + per-row scales
  }
  return n * k * 4;
}

}  // namespace

int64_t WeightBytes(const ModelConfig& config, ops::ComputeType compute_type) {
  const int64_t d = config.d_model;
  const int64_t vocab = config.decoder_vocab_size;
  int64_t bytes = 0;
  // Attention: fused q|k|v [3D, D] (self) or q [D, D] + k|v [2D, D] (cross),
  // and out [D, D]; biases in the checkpoint (4 x D) plus the fused copy
  // (3 x D).
  const int64_t attention = MatrixBytes(3 * d, d, compute_type) +
                            MatrixBytes(d, d, compute_type) + 7 * d * 4;
  auto ffn = [&](int64_t f) {
    return MatrixBytes(f, d, compute_type) + MatrixBytes(d, f, compute_type) +
           (f + d) * 4;
  };
  const int64_t layer_norm = 2 * d * 4;
  bytes += config.encoder_layers *
           (attention + ffn(config.encoder_ffn_dim) + 2 * layer_norm);
  bytes += config.decoder_layers *
           (2 * attention + ffn(config.decoder_ffn_dim) + 3 * layer_norm);
  // Output projection, also the token embeddings (tied), + final_logits_bias.
  const ops::ComputeType lm_head_type =
      compute_type == ops::ComputeType::kBFloat16 ? ops::ComputeType::kFloat32
                                                  : compute_type;
  bytes += MatrixBytes(vocab, d, lm_head_type) + vocab * 4;
  // Separate vocabularies: the encoder's table, and the decoder's unless it
  // is lm_head (tied), in the output projection's type.
  if (!config.share_encoder_decoder_embeddings) {
    bytes += MatrixBytes(config.vocab_size, d, lm_head_type);
    if (!config.tie_word_embeddings) {
      bytes += MatrixBytes(vocab, d, lm_head_type);
    }
  }
  // Encoder and decoder position tables.
  bytes += 2 * int64_t{config.max_position_embeddings} * d * 4;
  return bytes;
}

int64_t KvCacheBytesPerToken(const ModelConfig& config) {
  return 2 * int64_t{config.decoder_layers} * config.d_model * 4;
}

int64_t CrossKvBytesPerSourceToken(const ModelConfig& config) {
  return 2 * int64_t{config.decoder_layers} * config.d_model * 4;
}

std::string FormatBytes(int64_t bytes) {
  return absl::StrFormat("%.1f MiB (%d bytes)",
                         static_cast<double>(bytes) / (1 << 20), bytes);
}

}  // namespace ts::core
