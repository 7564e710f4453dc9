#include "core/model/marian_network.h"

#include <cmath>
#include <functional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ts::core {

namespace {

// Releases the 2-D ".weight" tensors whose names start with `prefix`: the
// matmul weights of a layer once it is packed.
void ReleaseMatrices(Weights& weights, const std::string& prefix) {
  for (const std::string& name : weights.Names()) {
    if (!name.starts_with(prefix) || !name.ends_with(".weight")) continue;
    if (weights.Find(name)->shape.size() == 2) weights.Release(name);
  }
}

}  // namespace

absl::StatusOr<MarianNetwork> MarianNetwork::Build(
    const ModelConfig& config, Weights& weights,
    ops::ComputeType compute_type) {
  if (compute_type == ops::ComputeType::kBFloat16 &&
      !ops::BFloat16MatmulSupported()) {
    return absl::UnimplementedError(
        "compute_type bf16: oneDNN cannot run bf16 matmuls on this CPU");
  }
  MarianNetwork network;
  const int64_t d = config.d_model;
  const bool separate = !config.share_encoder_decoder_embeddings;
  const int64_t target_vocab = config.decoder_vocab_size;
  // The output projection's matrix: model.shared (tied), or with separate
  // vocabularies lm_head.weight, else the decoder table it is tied to.
  const char* head_name = "model.shared.weight";
  if (separate) {
    head_name = weights.Find("lm_head.weight") != nullptr
                    ? "lm_head.weight"
                    : "model.decoder.embed_tokens.weight";
  }
  auto shared = FindTensor(weights, head_name, {target_vocab, d});
  if (!shared.ok()) return shared.status();
  auto bias = FindTensor(weights, "final_logits_bias", {1, target_vocab});
  if (!bias.ok()) return bias.status();
  const float scale =
      config.scale_embedding ? std::sqrt(static_cast<float>(d)) : 1.0f;
  for (auto [side, embeddings] :
       {std::pair{"encoder", &network.encoder_embeddings},
        std::pair{"decoder", &network.decoder_embeddings}}) {
    auto positions = FindTensor(
        weights, absl::StrCat("model.", side, ".embed_positions.weight"),
        {config.max_position_embeddings, d});
    if (!positions.ok()) return positions.status();
    embeddings->positions = (*positions)->data;
    embeddings->dim = d;
    embeddings->scale = scale;
  }
  // Each matrix is packed and its fp32 tensor released before the next is
  // read, so the fp32 and packed copies of the model are never resident
  // together (peak RSS). The output projection goes first: packing it holds
  // its fp32 original, a converted temporary and the result at once, the
  // largest set of the load, while no layer is resident yet.
  try {
    // bf16 keeps the output projection in fp32: rounding it flipped the
    // argmax of near ties and cost the demo model 0.21 BLEU on the golden
    // sentences (0.19 with fp32 here; bench/README.md).
    const ops::ComputeType lm_head_type =
        compute_type == ops::ComputeType::kBFloat16 ? ops::ComputeType::kFloat32
                                                    : compute_type;
    network.lm_head =
        Linear::View((*shared)->data, (*bias)->data, d, target_vocab);
    // The largest matrix: its fp32 rows go block by block as they are
    // converted, so the fp32 and converted copies are never both resident.
    // (A decoder table tied to lm_head is released once both are packed.)
    const bool head_is_decoder_table =
        std::string_view(head_name) == "model.decoder.embed_tokens.weight";
    auto release_rows = [&](const char* name, int64_t total) {
      return [&weights, name, total](int64_t rows) {
        if (rows < total) {
          weights.ReleaseRows(name, rows);
        } else {
          weights.Release(name);
        }
      };
    };
    network.lm_head.Pack(lm_head_type,
                         head_is_decoder_table
                             ? std::function<void(int64_t)>()
                             : std::function<void(int64_t)>(
                                   release_rows(head_name, target_vocab)));
    // The embeddings read the output projection's packed rows (MarianMT ties
    // them): fp32 exactly, int8 dequantized as CTranslate2 does; one table.
    // Separate vocabularies: each side packs its own table the same way.
    for (Embeddings* embeddings :
         {&network.encoder_embeddings, &network.decoder_embeddings}) {
      embeddings->tokens = network.lm_head.packed;
    }
    if (separate) {
      auto encoder_table = FindTensor(
          weights, "model.encoder.embed_tokens.weight", {config.vocab_size, d});
      if (!encoder_table.ok()) return encoder_table.status();
      network.encoder_embeddings.tokens = ops::PackedWeights::Pack(
          (*encoder_table)->data, config.vocab_size, d, lm_head_type,
          release_rows("model.encoder.embed_tokens.weight", config.vocab_size));
      if (head_is_decoder_table) {
        weights.Release("model.decoder.embed_tokens.weight");
      } else {
        auto decoder_table = FindTensor(
            weights, "model.decoder.embed_tokens.weight", {target_vocab, d});
        if (!decoder_table.ok()) return decoder_table.status();
        network.decoder_embeddings.tokens = ops::PackedWeights::Pack(
            (*decoder_table)->data, target_vocab, d, lm_head_type,
            release_rows("model.decoder.embed_tokens.weight", target_vocab));
      }
    }
    for (int i = 0; i < config.encoder_layers; ++i) {
      const std::string prefix = absl::StrCat("model.encoder.layers.", i);
      auto layer = EncoderLayer::Load(weights, prefix, config);
      if (!layer.ok()) return layer.status();
      layer->Pack(compute_type);
      ReleaseMatrices(weights, prefix + ".");
      network.encoder_layers.push_back(*std::move(layer));
    }
    for (int i = 0; i < config.decoder_layers; ++i) {
      const std::string prefix = absl::StrCat("model.decoder.layers.", i);
      auto layer = DecoderLayer::Load(weights, prefix, config);
      if (!layer.ok()) return layer.status();
      layer->Pack(compute_type);
      ReleaseMatrices(weights, prefix + ".");
      network.decoder_layers.push_back(*std::move(layer));
    }
  } catch (const dnnl::error& error) {
    return absl::InternalError(
        absl::StrCat("oneDNN cannot pack the weights: ", error.what()));
  }
  return network;
}

int64_t MarianNetwork::PackedBytes() const {
  int64_t bytes = lm_head.packed ? lm_head.packed->bytes() : 0;
  if (encoder_embeddings.tokens &&
      encoder_embeddings.tokens != lm_head.packed) {
    bytes += encoder_embeddings.tokens->bytes();
  }
  if (decoder_embeddings.tokens &&
      decoder_embeddings.tokens != lm_head.packed &&
      decoder_embeddings.tokens != encoder_embeddings.tokens) {
    bytes += decoder_embeddings.tokens->bytes();
  }
  for (const EncoderLayer& layer : encoder_layers) bytes += layer.PackedBytes();
  for (const DecoderLayer& layer : decoder_layers) bytes += layer.PackedBytes();
  return bytes;
}

}  // namespace ts::core
