// Fuzzes ModelConfig::Parse: the input is config.json, optionally followed by
// '\0' and generation_config.json. A config that parses must keep the
// documented invariants (positive dimensions, heads dividing d_model, special
// ids inside the vocabulary).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string config_json = input.substr(0, split);
  const std::string generation_json =
      split == std::string::npos ? std::string() : input.substr(split + 1);
  auto config = ts::core::ModelConfig::Parse(config_json, generation_json);
  if (!config.ok()) return 0;
  const ts::core::ModelConfig& c = *config;
  if (c.d_model <= 0 || c.encoder_layers <= 0 || c.decoder_layers <= 0 ||
      c.encoder_attention_heads <= 0 || c.decoder_attention_heads <= 0 ||
      c.encoder_ffn_dim <= 0 || c.decoder_ffn_dim <= 0 || c.vocab_size <= 0 ||
      c.max_position_embeddings <= 0) {
    __builtin_trap();
  }
  if (c.d_model % c.encoder_attention_heads != 0 ||
      c.d_model % c.decoder_attention_heads != 0) {
    __builtin_trap();
  }
  for (int id : {c.pad_token_id, c.eos_token_id, c.decoder_start_token_id}) {
    if (id < 0 || id >= c.vocab_size) __builtin_trap();
  }
  if (c.num_beams < 1 || c.max_length < 2) __builtin_trap();
  return 0;
}
