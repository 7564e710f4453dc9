// MarianMT model configuration, read from a Hugging Face model folder.
#ifndef TRANSFORMER_SERVING_CORE_MODEL_CONFIG_H_
#define TRANSFORMER_SERVING_CORE_MODEL_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ts::core {

// Architecture and generation defaults, as MarianConfig in transformers reads
// config.json, with generation_config.json (when present) overriding the
// generation fields, as `generate` does.
struct ModelConfig {
  std::string name;  // "_name_or_path", else the folder name
  int d_model = 0;   // hidden size
  int encoder_layers = 0;
  int decoder_layers = 0;
  int encoder_attention_heads = 0;
  int decoder_attention_heads = 0;
  int encoder_ffn_dim = 0;
  int decoder_ffn_dim = 0;
  int vocab_size = 0;  // source vocabulary: rows of the encoder embeddings
  // Target vocabulary: rows of the decoder embeddings, lm_head and
  // final_logits_bias; equals vocab_size unless the vocabularies are separate.
  int decoder_vocab_size = 0;
  // false: separate source and target vocabularies (vocab.json and
  // target_vocab.json) with model.encoder.embed_tokens [vocab_size, d_model]
  // and model.decoder.embed_tokens [decoder_vocab_size, d_model] instead of
  // one model.shared table.
  bool share_encoder_decoder_embeddings = true;
  // false: lm_head.weight is a matrix of its own, not the decoder embeddings.
  bool tie_word_embeddings = true;
  int max_position_embeddings = 0;  // rows of the sinusoidal position tables
  std::string activation_function = "swish";  // swish | silu | relu | gelu
  bool scale_embedding = true;  // multiply embeddings by sqrt(d_model)
  float layer_norm_eps = 1e-5f;

  int pad_token_id = 0;
  int eos_token_id = 0;
  int decoder_start_token_id = 0;
  int forced_eos_token_id = -1;    // -1: none
  std::vector<int> bad_words_ids;  // single-token bad words only
  int num_beams = 1;               // default beam_size
  int max_length = 512;            // default max_length, counts the start token
  float length_penalty = 1.0f;

  // Parses `config_json` (and `generation_config_json` if not empty). Errors:
  // InvalidArgument on malformed JSON, a missing or non-positive dimension,
  // d_model not divisible by the number of heads, or an unknown activation.
  static absl::StatusOr<ModelConfig> Parse(
      const std::string& config_json,
      const std::string& generation_config_json = "");

  // Reads config.json and generation_config.json from `model_dir`.
  // Errors: NotFound if config.json is missing, else as Parse.
  static absl::StatusOr<ModelConfig> Load(const std::string& model_dir);
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_MODEL_CONFIG_H_
