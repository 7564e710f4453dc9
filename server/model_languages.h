// The languages a model folder translates between, as its files name them.
#ifndef TRANSFORMER_SERVING_SERVER_MODEL_LANGUAGES_H_
#define TRANSFORMER_SERVING_SERVER_MODEL_LANGUAGES_H_

#include <string>
#include <vector>

namespace ts::server {

struct ModelLanguages {
  std::string source;  // e.g. "en"; "" if the folder does not say
  std::string target;  // e.g. "de"; "" if the folder does not say
  // A multi-target model's `>>xxx<<` tokens (vocab.json), each naming one
  // target the model translates into when the source starts with it
  // (">>deu<<"); empty for a one-target model.
  std::vector<std::string> target_tokens;
};

// From `model_dir`/tokenizer_config.json (`source_lang`, `target_lang`, as
// transformers' MarianTokenizer writes them), else metadata.json (OPUS-MT's:
// `src_alpha2`/`tgt_alpha2`, else `src_alpha3`/`tgt_alpha3`), else a folder
// named opus-mt-SRC-TGT (Helsinki-NLP's naming); the target tokens from
// vocab.json. Never fails: what cannot be read is "" (or empty).
ModelLanguages ReadModelLanguages(const std::string& model_dir);

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_MODEL_LANGUAGES_H_
