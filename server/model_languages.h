// The languages a model folder translates between, as its files name them.
#ifndef TRANSFORMER_SERVING_SERVER_MODEL_LANGUAGES_H_
#define TRANSFORMER_SERVING_SERVER_MODEL_LANGUAGES_H_

#include <string>

namespace ts::server {

struct ModelLanguages {
  std::string source;  // e.g. "en"; "" if the folder does not say
  std::string target;  // e.g. "de"; "" if the folder does not say
};

// From `model_dir`/tokenizer_config.json (`source_lang`, `target_lang`, as
// transformers' MarianTokenizer writes them), else from a folder named
// opus-mt-SRC-TGT (Helsinki-NLP's naming). Never fails: what cannot be read
// is "".
ModelLanguages ReadModelLanguages(const std::string& model_dir);

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_MODEL_LANGUAGES_H_
