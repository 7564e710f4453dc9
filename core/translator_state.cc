#include "core/translator_state.h"

#include <omp.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ts::core {

namespace {

// The decoder reads positions 0 .. max_length - 2, so max_length may be at
// most max_position_embeddings + 1 (as MarianModel::ResolveOptions checks;
// checked here too for callers that skip it). Also the other ranges the
// search relies on.
absl::Status CheckTranslationOptions(const TranslationOptions& options,
                                     const ModelConfig& config) {
  const int max_length_limit = config.max_position_embeddings + 1;
  if (options.max_length < 2 || options.max_length > max_length_limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_length ", options.max_length, " is out of range [2, ",
        max_length_limit, "]: max_position_embeddings ",
        config.max_position_embeddings, " + 1 (resolve options first)"));
  }
  if (options.beam_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "beam_size ", options.beam_size, " must be >= 1 (resolve options)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckTokenIds(const std::vector<std::vector<int>>& sources,
                           const ModelConfig& config, int vocab_size) {
  for (size_t i = 0; i < sources.size(); ++i) {
    if (sources[i].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("source ", i, " is empty"));
    }
    if (static_cast<int>(sources[i].size()) > config.max_position_embeddings) {
      return absl::InvalidArgumentError(
          absl::StrCat("source ", i, " has ", sources[i].size(),
                       " tokens, more than max_position_embeddings ",
                       config.max_position_embeddings));
    }
    for (int id : sources[i]) {
      if (id < 0 || id >= vocab_size) {
        return absl::InvalidArgumentError(
            absl::StrCat("source ", i, " has token id ", id,
                         " outside the vocabulary [0, ", vocab_size, ")"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status TranslatorState::CheckTranslate(
    const std::vector<std::vector<int>>& source_ids,
    const TranslationOptions& options,
    const std::vector<SampleSource>& sample_sources) const {
  const ModelConfig& config = model->config();
  absl::Status status = CheckTokenIds(source_ids, config, config.vocab_size);
  if (!status.ok()) return status;
  status = CheckTranslationOptions(options, config);
  if (!status.ok()) return status;
  if (!sample_sources.empty() && sample_sources.size() != source_ids.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(sample_sources.size(), " sample sources for ",
                     source_ids.size(), " sources"));
  }
  if (options.return_attention &&
      (options.attention_layer < -config.decoder_layers ||
       options.attention_layer >= config.decoder_layers)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "attention_layer ", options.attention_layer, " is out of range [",
        -config.decoder_layers, ", ", config.decoder_layers, ")"));
  }
  return absl::OkStatus();
}

// Runs the encoder on right-padded sources; fills encoder_hidden
// [batch, src_len, d_model] and returns src_len (the longest source).
int TranslatorState::RunEncoder(const std::vector<std::vector<int>>& sources,
                                std::vector<int>* lengths) {
  if (intra_threads > 0) omp_set_num_threads(intra_threads);
  const ModelConfig& config = model->config();
  const MarianNetwork& network = model->network();
  const int batch = static_cast<int>(sources.size());
  int src_len = 0;
  lengths->resize(batch);
  for (int b = 0; b < batch; ++b) {
    (*lengths)[b] = static_cast<int>(sources[b].size());
    src_len = std::max(src_len, (*lengths)[b]);
  }
  std::vector<int> ids(static_cast<size_t>(batch) * src_len,
                       config.pad_token_id);
  for (int b = 0; b < batch; ++b) {
    std::copy(sources[b].begin(), sources[b].end(), ids.begin() + b * src_len);
  }
  auto& hidden = encoder_hidden;
  hidden.resize(static_cast<size_t>(batch) * src_len * config.d_model);
  network.encoder_embeddings.Forward(ids.data(), batch, src_len, 0,
                                     hidden.data());
  for (const EncoderLayer& encoder_layer : network.encoder_layers) {
    encoder_layer.Forward(ctx, hidden.data(), batch, src_len, lengths->data(),
                          &layer);
  }
  return src_len;
}

}  // namespace ts::core
