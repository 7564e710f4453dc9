// synthetic_model CONFIG_DIR OUT_DIR [SEED]: a complete MarianMT folder with
// random weights (core::WriteSyntheticSafetensors) for the config and
// tokenizer files of CONFIG_DIR, e.g. the base-size OPUS-MT skeleton in
// tests/data. Tests run the real server on it (--check, memory figures).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/model/config.h"
#include "tests/support/synthetic_weights.h"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s CONFIG_DIR OUT_DIR [SEED]\n", argv[0]);
    return 2;
  }
  const fs::path in = argv[1], out = argv[2];
  const auto seed =
      static_cast<uint32_t>(argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 1);
  auto config = ts::core::ModelConfig::Load(in.string());
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    return 1;
  }
  std::error_code error;
  fs::create_directories(out, error);
  for (const char* name : {"config.json", "generation_config.json",
                           "vocab.json", "target_vocab.json", "source.spm",
                           "target.spm", "tokenizer_config.json"}) {
    if (!fs::exists(in / name)) continue;
    fs::copy_file(in / name, out / name, fs::copy_options::overwrite_existing,
                  error);
    if (error) {
      std::fprintf(stderr, "cannot copy %s: %s\n", name,
                   error.message().c_str());
      return 1;
    }
  }
  absl::Status written = ts::core::WriteSyntheticSafetensors(
      *config, seed, (out / "model.safetensors").string());
  if (!written.ok()) {
    std::fprintf(stderr, "%s\n", written.ToString().c_str());
    return 1;
  }
  return 0;
}
