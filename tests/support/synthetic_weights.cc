#include "tests/support/synthetic_weights.h"

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace ts::core {

namespace {

enum class Init { kNormal, kOnes, kZeros };

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  Init init;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// Every tensor of MarianMTModel for `config`, in the order values are drawn.
std::vector<TensorSpec> Specs(const ModelConfig& config) {
  std::vector<TensorSpec> specs;
  const int64_t d = config.d_model;
  auto linear = [&](const std::string& prefix, int64_t in, int64_t out) {
    specs.push_back({prefix + ".weight", {out, in}, Init::kNormal});
    specs.push_back({prefix + ".bias", {out}, Init::kZeros});
  };
  auto layer_norm = [&](const std::string& prefix) {
    specs.push_back({prefix + ".weight", {d}, Init::kOnes});
    specs.push_back({prefix + ".bias", {d}, Init::kZeros});
  };
  auto attention = [&](const std::string& prefix) {
    for (const char* proj : {".q_proj", ".k_proj", ".v_proj", ".out_proj"}) {
      linear(prefix + proj, d, d);
    }
  };
  specs.push_back(
      {"model.shared.weight", {config.vocab_size, d}, Init::kNormal});
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
  specs.push_back({"final_logits_bias", {1, config.vocab_size}, Init::kZeros});
  return specs;
}

// Draws the values of each spec in turn from one seeded generator.
class ValueSource {
 public:
  explicit ValueSource(uint32_t seed) : rng_(seed) {}
  std::vector<float> Next(const TensorSpec& spec) {
    std::vector<float> values(spec.numel(),
                              spec.init == Init::kOnes ? 1.0f : 0.0f);
    if (spec.init == Init::kNormal) {
      for (float& v : values) v = normal_(rng_);
    }
    return values;
  }

 private:
  std::mt19937 rng_;
  std::normal_distribution<float> normal_{0.0f, 0.02f};
};

}  // namespace

Weights SynthesizeWeights(const ModelConfig& config, uint32_t seed) {
  Weights weights;
  ValueSource source(seed);
  for (const TensorSpec& spec : Specs(config)) {
    weights.Add(spec.name, source.Next(spec), spec.shape);
  }
  return weights;
}

absl::Status WriteSyntheticSafetensors(const ModelConfig& config, uint32_t seed,
                                       const std::string& path) {
  const std::vector<TensorSpec> specs = Specs(config);
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const TensorSpec& spec : specs) {
    const uint64_t bytes = static_cast<uint64_t>(spec.numel()) * 4;
    header[spec.name] = {{"dtype", "F32"},
                         {"shape", spec.shape},
                         {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  // Padded to 8 bytes (the format allows trailing spaces) so that the F32
  // data is aligned and can be used in place.
  text.append((8 - text.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const uint64_t header_size = text.size();
  char size_bytes[8];
  for (int i = 0; i < 8; ++i) {
    size_bytes[i] = static_cast<char>((header_size >> (8 * i)) & 0xff);
  }
  out.write(size_bytes, 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  ValueSource source(seed);
  for (const TensorSpec& spec : specs) {
    // Little-endian floats: x86-64 and aarch64 store them so.
    const std::vector<float> values = source.Next(spec);
    out.write(reinterpret_cast<const char*>(values.data()),
              static_cast<std::streamsize>(values.size() * 4));
  }
  out.close();
  if (!out) {
    return absl::InternalError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

}  // namespace ts::core
