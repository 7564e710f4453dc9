#include "core/model/marian_network.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ts::core {

absl::StatusOr<MarianNetwork> MarianNetwork::Build(
    const ModelConfig& config, const Weights& weights,
    ops::ComputeType compute_type) {
  MarianNetwork network;
  const int64_t d = config.d_model;
  auto shared =
      FindTensor(weights, "model.shared.weight", {config.vocab_size, d});
  if (!shared.ok()) return shared.status();
  const float scale =
      config.scale_embedding ? std::sqrt(static_cast<float>(d)) : 1.0f;
  for (auto [side, embeddings] :
       {std::pair{"encoder", &network.encoder_embeddings},
        std::pair{"decoder", &network.decoder_embeddings}}) {
    auto positions = FindTensor(
        weights, absl::StrCat("model.", side, ".embed_positions.weight"),
        {config.max_position_embeddings, d});
    if (!positions.ok()) return positions.status();
    *embeddings = Embeddings{(*shared)->data, (*positions)->data, d, scale};
  }
  for (int i = 0; i < config.encoder_layers; ++i) {
    auto layer = EncoderLayer::Load(
        weights, absl::StrCat("model.encoder.layers.", i), config);
    if (!layer.ok()) return layer.status();
    network.encoder_layers.push_back(*layer);
  }
  for (int i = 0; i < config.decoder_layers; ++i) {
    auto layer = DecoderLayer::Load(
        weights, absl::StrCat("model.decoder.layers.", i), config);
    if (!layer.ok()) return layer.status();
    network.decoder_layers.push_back(*layer);
  }
  auto bias = FindTensor(weights, "final_logits_bias", {1, config.vocab_size});
  if (!bias.ok()) return bias.status();
  network.lm_head =
      Linear::View((*shared)->data, (*bias)->data, d, config.vocab_size);
  if (compute_type == ops::ComputeType::kBFloat16 &&
      !ops::BFloat16MatmulSupported()) {
    return absl::UnimplementedError(
        "compute_type bf16: oneDNN cannot run bf16 matmuls on this CPU");
  }
  if (compute_type != ops::ComputeType::kFloat32) {
    for (EncoderLayer& layer : network.encoder_layers)
      layer.ConvertTo(compute_type);
    for (DecoderLayer& layer : network.decoder_layers)
      layer.ConvertTo(compute_type);
    network.lm_head.ConvertTo(compute_type);
  }
  return network;
}

}  // namespace ts::core
