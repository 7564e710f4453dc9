// The layers of a MarianMT model, bound to its weights.
#ifndef TRANSFORMER_SERVING_CORE_MODEL_MARIAN_NETWORK_H_
#define TRANSFORMER_SERVING_CORE_MODEL_MARIAN_NETWORK_H_

#include <vector>

#include "absl/status/statusor.h"
#include "core/layers/embeddings.h"
#include "core/layers/linear.h"
#include "core/layers/transformer_layers.h"
#include "core/model/config.h"
#include "core/model/weights.h"

namespace ts::core {

// Encoder and decoder stacks of MarianMTModel. Tied embeddings: the encoder
// and decoder embed with model.shared.weight and the output projection
// (lm_head) is the same matrix plus final_logits_bias. Separate vocabularies
// (share_encoder_decoder_embeddings false): model.encoder.embed_tokens
// [vocab_size, d_model], model.decoder.embed_tokens [decoder_vocab_size,
// d_model] and lm_head.weight (or the decoder table when absent).
struct MarianNetwork {
  Embeddings encoder_embeddings;
  Embeddings decoder_embeddings;
  std::vector<EncoderLayer> encoder_layers;
  std::vector<DecoderLayer> decoder_layers;
  // [decoder_vocab_size, d_model] + final_logits_bias [decoder_vocab_size]
  Linear lm_head;

  // Binds every layer to `weights`, which must hold model.shared.weight,
  // model.{encoder,decoder}.embed_positions.weight and final_logits_bias
  // (MarianModel derives absent ones). Errors: InvalidArgument naming the
  // missing tensor or the wrong shape.
  // Every matmul weight is packed (ops::PackedWeights) in `compute_type`
  // (the output projection in fp32 for bf16) and its fp32 tensor released
  // from `weights` (Weights::Release), matrix by matrix; attention, layer
  // norms and positions stay fp32. The token embeddings read the packed
  // output projection, so model.shared.weight is released too. Errors also:
  // Unimplemented if this CPU cannot run bf16 matmuls; Internal if oneDNN
  // fails to pack.
  static absl::StatusOr<MarianNetwork> Build(
      const ModelConfig& config, Weights& weights,
      ops::ComputeType compute_type = ops::ComputeType::kFloat32);

  // Bytes of every packed matrix (each counted once) and the fused biases.
  int64_t PackedBytes() const;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_MODEL_MARIAN_NETWORK_H_
