#include "core/model/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace ts::core {
namespace {

using nlohmann::json;

absl::StatusOr<json> ParseObject(const std::string& text,
                                 const std::string& what) {
  json parsed = json::parse(text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not a valid JSON object"));
  }
  return parsed;
}

// Reads an integer field if present; type errors name the field.
absl::Status ReadInt(const json& object, const char* key, int* out,
                     const std::string& what) {
  if (!object.contains(key) || object[key].is_null()) return absl::OkStatus();
  const json& value = object[key];
  if (!value.is_number_integer() ||
      value.get<int64_t>() < std::numeric_limits<int>::min() ||
      value.get<int64_t>() > std::numeric_limits<int>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": \"", key, "\" must be an integer that fits in 32 bits"));
  }
  *out = value.get<int>();
  return absl::OkStatus();
}

absl::Status ReadGeneration(const json& object, ModelConfig* config,
                            const std::string& what) {
  for (auto [key, field] :
       {std::pair{"pad_token_id", &config->pad_token_id},
        std::pair{"eos_token_id", &config->eos_token_id},
        std::pair{"decoder_start_token_id", &config->decoder_start_token_id},
        std::pair{"forced_eos_token_id", &config->forced_eos_token_id},
        std::pair{"num_beams", &config->num_beams},
        std::pair{"max_length", &config->max_length}}) {
    absl::Status status = ReadInt(object, key, field, what);
    if (!status.ok()) return status;
  }
  if (object.contains("length_penalty") &&
      object["length_penalty"].is_number()) {
    config->length_penalty = object["length_penalty"].get<float>();
  }
  if (object.contains("bad_words_ids") && !object["bad_words_ids"].is_null()) {
    const json& bad = object["bad_words_ids"];
    if (!bad.is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": \"bad_words_ids\" must be a list of lists"));
    }
    config->bad_words_ids.clear();
    for (const json& word : bad) {
      // Only single-token bad words are banned; multi-token sequences are
      // not used by MarianMT checkpoints.
      if (word.is_array() && word.size() == 1 && word[0].is_number_integer()) {
        config->bad_words_ids.push_back(word[0].get<int>());
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ModelConfig::Parse(
    const std::string& config_json, const std::string& generation_config_json) {
  absl::StatusOr<json> parsed = ParseObject(config_json, "config.json");
  if (!parsed.ok()) return parsed.status();
  const json& c = *parsed;
  ModelConfig config;
  if (c.contains("model_type") && c["model_type"].is_string() &&
      c["model_type"].get<std::string>() != "marian") {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.json: model_type \"", c["model_type"].get<std::string>(),
        "\" is not supported (only \"marian\")"));
  }
  if (c.contains("_name_or_path") && c["_name_or_path"].is_string()) {
    config.name = c["_name_or_path"].get<std::string>();
  }
  const std::string what = "config.json";
  for (auto [key, field] :
       {std::pair{"d_model", &config.d_model},
        std::pair{"encoder_layers", &config.encoder_layers},
        std::pair{"decoder_layers", &config.decoder_layers},
        std::pair{"encoder_attention_heads", &config.encoder_attention_heads},
        std::pair{"decoder_attention_heads", &config.decoder_attention_heads},
        std::pair{"encoder_ffn_dim", &config.encoder_ffn_dim},
        std::pair{"decoder_ffn_dim", &config.decoder_ffn_dim},
        std::pair{"vocab_size", &config.vocab_size},
        std::pair{"max_position_embeddings",
                  &config.max_position_embeddings}}) {
    absl::Status status = ReadInt(c, key, field, what);
    if (!status.ok()) return status;
    if (*field <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": \"", key, "\" must be a positive integer, got ", *field));
    }
  }
  if (c.contains("activation_function") &&
      c["activation_function"].is_string()) {
    config.activation_function = c["activation_function"].get<std::string>();
  }
  const std::string& act = config.activation_function;
  if (act != "swish" && act != "silu" && act != "relu" && act != "gelu") {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": activation_function \"", act,
                     "\" is not supported (swish, silu, relu, gelu)"));
  }
  // As MarianConfig: decoder_vocab_size defaults to vocab_size, and only
  // separate vocabularies (share_encoder_decoder_embeddings false) use it.
  for (auto [key, field] :
       {std::pair{"share_encoder_decoder_embeddings",
                  &config.share_encoder_decoder_embeddings},
        std::pair{"tie_word_embeddings", &config.tie_word_embeddings}}) {
    if (c.contains(key) && c[key].is_boolean()) *field = c[key].get<bool>();
  }
  config.decoder_vocab_size = config.vocab_size;
  if (!config.share_encoder_decoder_embeddings &&
      c.contains("decoder_vocab_size") && !c["decoder_vocab_size"].is_null()) {
    absl::Status status =
        ReadInt(c, "decoder_vocab_size", &config.decoder_vocab_size, what);
    if (!status.ok()) return status;
    if (config.decoder_vocab_size <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": \"decoder_vocab_size\" must be a positive integer, got ",
          config.decoder_vocab_size));
    }
  }
  if (c.contains("scale_embedding") && c["scale_embedding"].is_boolean()) {
    config.scale_embedding = c["scale_embedding"].get<bool>();
  }
  if (c.contains("normalize_before") && c["normalize_before"].is_boolean() &&
      c["normalize_before"].get<bool>()) {
    return absl::InvalidArgumentError(
        "config.json: normalize_before=true (pre-LayerNorm) is not MarianMT");
  }
  if (config.d_model % config.encoder_attention_heads != 0 ||
      config.d_model % config.decoder_attention_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": d_model ", config.d_model,
                     " is not divisible by the number of attention heads"));
  }
  absl::Status status = ReadGeneration(c, &config, what);
  if (!status.ok()) return status;
  if (!generation_config_json.empty()) {
    absl::StatusOr<json> generation =
        ParseObject(generation_config_json, "generation_config.json");
    if (!generation.ok()) return generation.status();
    status = ReadGeneration(*generation, &config, "generation_config.json");
    if (!status.ok()) return status;
  }
  // pad is in both vocabularies; eos and the decoder start in the target's.
  const int both = std::min(config.vocab_size, config.decoder_vocab_size);
  for (auto [key, id, size] :
       {std::tuple{"pad_token_id", config.pad_token_id, both},
        std::tuple{"eos_token_id", config.eos_token_id,
                   config.decoder_vocab_size},
        std::tuple{"decoder_start_token_id", config.decoder_start_token_id,
                   config.decoder_vocab_size}}) {
    if (id < 0 || id >= size) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": ", key, " ", id,
                       " is outside the vocabulary [0, ", size, ")"));
    }
  }
  if (config.num_beams < 1) config.num_beams = 1;
  if (config.max_length < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": max_length ", config.max_length, " must be >= 2"));
  }
  return config;
}

absl::StatusOr<ModelConfig> ModelConfig::Load(const std::string& model_dir) {
  namespace fs = std::filesystem;
  auto read = [](const fs::path& path) {
    std::ifstream in(path);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
  };
  const fs::path config_path = fs::path(model_dir) / "config.json";
  if (!fs::exists(config_path)) {
    return absl::NotFoundError(
        absl::StrCat("no config.json in model folder ", model_dir));
  }
  const fs::path generation_path =
      fs::path(model_dir) / "generation_config.json";
  absl::StatusOr<ModelConfig> config = Parse(
      read(config_path),
      fs::exists(generation_path) ? read(generation_path) : std::string());
  if (!config.ok()) {
    return absl::Status(
        config.status().code(),
        absl::StrCat(model_dir, "/", config.status().message()));
  }
  if (config->name.empty()) {
    config->name = fs::path(model_dir).lexically_normal().filename().string();
    if (config->name.empty()) {
      config->name =
          fs::path(model_dir).lexically_normal().parent_path().filename();
    }
  }
  return config;
}

}  // namespace ts::core
