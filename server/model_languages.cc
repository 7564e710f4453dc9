#include "server/model_languages.h"

#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace ts::server {

ModelLanguages ReadModelLanguages(const std::string& model_dir) {
  ModelLanguages languages;
  std::ifstream in(std::filesystem::path(model_dir) / "tokenizer_config.json");
  if (in) {
    const nlohmann::json config =
        nlohmann::json::parse(in, /*cb=*/nullptr, /*allow_exceptions=*/false);
    if (config.is_object()) {
      if (auto it = config.find("source_lang");
          it != config.end() && it->is_string()) {
        languages.source = it->get<std::string>();
      }
      if (auto it = config.find("target_lang");
          it != config.end() && it->is_string()) {
        languages.target = it->get<std::string>();
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
