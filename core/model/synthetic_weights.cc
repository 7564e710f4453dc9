#include "core/model/synthetic_weights.h"

#include <random>
#include <string>

#include "absl/strings/str_cat.h"

namespace ts::core {

Weights SynthesizeWeights(const ModelConfig& config, uint32_t seed) {
  Weights weights;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  auto random = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> values(n);
    for (float& v : values) v = normal(rng);
    weights.Add(name, std::move(values), std::move(shape));
  };
  auto constant = [&](const std::string& name, int64_t n, float value) {
    weights.Add(name, std::vector<float>(n, value), {n});
  };
  const int64_t d = config.d_model;
  auto linear = [&](const std::string& prefix, int64_t in, int64_t out) {
    random(prefix + ".weight", {out, in});
    constant(prefix + ".bias", out, 0.0f);
  };
  auto layer_norm = [&](const std::string& prefix) {
    constant(prefix + ".weight", d, 1.0f);
    constant(prefix + ".bias", d, 0.0f);
  };
  auto attention = [&](const std::string& prefix) {
    for (const char* proj : {".q_proj", ".k_proj", ".v_proj", ".out_proj"}) {
      linear(prefix + proj, d, d);
    }
  };
  random("model.shared.weight", {config.vocab_size, d});
  for (int i = 0; i < config.encoder_layers; ++i) {
    const std::string p = absl::StrCat("model.encoder.layers.", i);
    attention(p + ".self_attn");
    layer_norm(p + ".self_attn_layer_norm");
    linear(p + ".fc1", d, config.encoder_ffn_dim);
    linear(p + ".fc2", config.encoder_ffn_dim, d);
    layer_norm(p + ".final_layer_norm");
  }
  for (int i = 0; i < config.decoder_layers; ++i) {
    const std::string p = absl::StrCat("model.decoder.layers.", i);
    attention(p + ".self_attn");
    layer_norm(p + ".self_attn_layer_norm");
    attention(p + ".encoder_attn");
    layer_norm(p + ".encoder_attn_layer_norm");
    linear(p + ".fc1", d, config.decoder_ffn_dim);
    linear(p + ".fc2", config.decoder_ffn_dim, d);
    layer_norm(p + ".final_layer_norm");
  }
  weights.Add("final_logits_bias", std::vector<float>(config.vocab_size, 0.0f),
              {1, config.vocab_size});
  return weights;
}

}  // namespace ts::core
