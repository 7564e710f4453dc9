#include "server/model_languages.h"

#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace ts::server {
namespace {

// The JSON object in `model_dir`/`file`, or null if absent or not an object.
nlohmann::json ReadJsonObject(const std::string& model_dir, const char* file) {
  std::ifstream in(std::filesystem::path(model_dir) / file);
  if (!in) return nullptr;
  nlohmann::json json =
      nlohmann::json::parse(in, /*cb=*/nullptr, /*allow_exceptions=*/false);
  return json.is_object() ? json : nullptr;
}

// Sets `*field` from json[key] if it is empty and json[key] is a non-empty
// string.
void Fill(const nlohmann::json& json, const char* key, std::string* field) {
  if (!field->empty() || !json.is_object()) return;
  auto it = json.find(key);
  if (it != json.end() && it->is_string()) *field = it->get<std::string>();
}

}  // namespace

ModelLanguages ReadModelLanguages(const std::string& model_dir) {
  ModelLanguages languages;
  const nlohmann::json tokenizer =
      ReadJsonObject(model_dir, "tokenizer_config.json");
  Fill(tokenizer, "source_lang", &languages.source);
  Fill(tokenizer, "target_lang", &languages.target);
  const nlohmann::json metadata = ReadJsonObject(model_dir, "metadata.json");
  Fill(metadata, "src_alpha2", &languages.source);
  Fill(metadata, "tgt_alpha2", &languages.target);
  Fill(metadata, "src_alpha3", &languages.source);
  Fill(metadata, "tgt_alpha3", &languages.target);
  const nlohmann::json vocab = ReadJsonObject(model_dir, "vocab.json");
  if (vocab.is_object()) {
    for (const auto& [token, id] : vocab.items()) {
      if (token.size() > 4 && absl::StartsWith(token, ">>") &&
          absl::EndsWith(token, "<<")) {
        languages.target_tokens.push_back(token);
      }
    }
  }
  if (languages.source.empty() || languages.target.empty()) {
    std::string name =
        std::filesystem::path(model_dir).lexically_normal().filename();
    if (name.empty()) {
      name = std::filesystem::path(model_dir)
                 .lexically_normal()
                 .parent_path()
                 .filename();
    }
    if (absl::StartsWith(name, "opus-mt-")) {
      const std::vector<std::string> parts =
          absl::StrSplit(name.substr(8), '-');
      if (parts.size() >= 2) {
        if (languages.source.empty()) languages.source = parts[0];
        if (languages.target.empty()) languages.target = parts[1];
      }
    }
  }
  return languages;
}

}  // namespace ts::server
