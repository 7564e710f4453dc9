#include "core/translator.h"

#include <omp.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/decoding/search.h"
#include "core/encoder_pooling.h"
#include "core/generator.h"
#include "core/model/marian_decoder.h"
#include "core/ops/execution_context.h"
#include "core/ops/ops.h"
#include "core/translator_state.h"

namespace ts::core {

namespace {

// Ids must be below `vocab_size`: the source vocabulary's, or the target's
// for teacher-forced targets.
absl::Status CheckSources(const std::vector<std::vector<int>>& sources,
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

absl::Status Translator::CheckTranslate(
    const std::vector<std::vector<int>>& source_ids,
    const TranslationOptions& options,
    const std::vector<SampleSource>& sample_sources) const {
  const ModelConfig& config = model_->config();
  absl::Status status = CheckSources(source_ids, config, config.vocab_size);
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

Translator::Translator(std::shared_ptr<const MarianModel> model,
                       int intra_threads)
    : model_(std::move(model)),
      intra_threads_(intra_threads),
      state_(std::make_unique<TranslatorState>()) {}

Translator::~Translator() = default;

// Runs the encoder on right-padded sources; fills state_->encoder_hidden
// [batch, src_len, d_model] and returns src_len (the longest source).
int Translator::RunEncoder(const std::vector<std::vector<int>>& sources,
                           std::vector<int>* lengths) {
  if (intra_threads_ > 0) omp_set_num_threads(intra_threads_);
  const ModelConfig& config = model_->config();
  const MarianNetwork& network = model_->network();
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
  auto& hidden = state_->encoder_hidden;
  hidden.resize(static_cast<size_t>(batch) * src_len * config.d_model);
  network.encoder_embeddings.Forward(ids.data(), batch, src_len, 0,
                                     hidden.data());
  for (const EncoderLayer& layer : network.encoder_layers) {
    layer.Forward(state_->ctx, hidden.data(), batch, src_len, lengths->data(),
                  &state_->layer);
  }
  return src_len;
}

absl::StatusOr<std::vector<TranslationResult>> Translator::Translate(
    const std::vector<std::vector<int>>& source_ids,
    const TranslationOptions& options,
    const std::vector<SampleSource>& sample_sources,
    const TokenCallback& on_token) {
  // A batch is a generator whose sequences all join at the first step.
  Generator generator(this);
  auto ids = generator.Admit(source_ids, options, sample_sources);
  if (!ids.ok()) return ids.status();
  std::vector<TranslationResult> results(source_ids.size());
  while (generator.active_sequences() > 0) {
    generator.Step();
    if (on_token) {
      for (const auto& [id, token] : generator.streamed()) {
        on_token(static_cast<int>(id - ids->front()), token);
      }
    }
    for (auto& [id, result] : generator.TakeFinished()) {
      results[id - ids->front()] = std::move(result);
    }
  }
  return results;
}

absl::StatusOr<std::vector<std::vector<float>>> Translator::EncoderHiddenStates(
    const std::vector<std::vector<int>>& source_ids) {
  const ModelConfig& config = model_->config();
  absl::Status status = CheckSources(source_ids, config, config.vocab_size);
  if (!status.ok()) return status;
  std::vector<std::vector<float>> states;
  if (source_ids.empty()) return states;
  std::vector<int> lengths;
  const int src_len = RunEncoder(source_ids, &lengths);
  const size_t d = config.d_model;
  for (size_t b = 0; b < source_ids.size(); ++b) {
    const float* begin = state_->encoder_hidden.data() + b * src_len * d;
    states.emplace_back(begin, begin + lengths[b] * d);
  }
  return states;
}

absl::StatusOr<std::vector<EncodeResult>> Translator::Encode(
    const std::vector<std::vector<int>>& source_ids,
    const EncodeOptions& options) {
  auto states = EncoderHiddenStates(source_ids);
  if (!states.ok()) return states.status();
  const int d = model_->config().d_model;
  std::vector<EncodeResult> results;
  for (const std::vector<float>& hidden : *states) {
    results.push_back(PoolEncoderStates(
        hidden.data(), static_cast<int>(hidden.size() / d), d, options));
  }
  return results;
}

absl::StatusOr<std::vector<std::vector<float>>> Translator::ScoreTargets(
    const std::vector<std::vector<int>>& source_ids,
    const std::vector<std::vector<int>>& target_ids) {
  const ModelConfig& config = model_->config();
  if (source_ids.size() != target_ids.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_ids.size(), " sources but ", target_ids.size(), " targets"));
  }
  absl::Status status = CheckSources(source_ids, config, config.vocab_size);
  if (!status.ok()) return status;
  status = CheckSources(target_ids, config, config.decoder_vocab_size);
  if (!status.ok()) return status;
  std::vector<std::vector<float>> scores;
  if (source_ids.empty()) return scores;
  std::vector<int> lengths;
  const int src_len = RunEncoder(source_ids, &lengths);
  const int batch = static_cast<int>(source_ids.size());
  int len = 0;
  for (const auto& target : target_ids) {
    len = std::max(len, static_cast<int>(target.size()));
  }
  // Decoder input: [start] + target[:-1], right-padded; the causal mask keeps
  // padding after a target from changing its tokens' scores.
  std::vector<int> tokens(static_cast<size_t>(batch) * len,
                          config.pad_token_id);
  for (int b = 0; b < batch; ++b) {
    tokens[b * len] = config.decoder_start_token_id;
    for (size_t t = 0; t + 1 < target_ids[b].size(); ++t) {
      tokens[b * len + t + 1] = target_ids[b][t];
    }
  }
  MarianDecoder decoder(model_->network(), config, state_->ctx,
                        state_->encoder_hidden.data(), batch, src_len, lengths,
                        &state_->decoder);
  const int64_t vocab = config.decoder_vocab_size;
  auto& logits = state_->logits;
  logits.resize(static_cast<size_t>(batch) * len * vocab);
  decoder.Forward(tokens, len, logits.data());
  std::vector<float> log_probs(logits.size());
  ops::LogSoftmax(state_->ctx, logits.data(), static_cast<int64_t>(batch) * len,
                  vocab, log_probs.data());
  for (int b = 0; b < batch; ++b) {
    std::vector<float> row_scores;
    for (size_t t = 0; t < target_ids[b].size(); ++t) {
      row_scores.push_back(
          log_probs[(static_cast<size_t>(b) * len + t) * vocab +
                    target_ids[b][t]]);
    }
    scores.push_back(std::move(row_scores));
  }
  return scores;
}

}  // namespace ts::core
