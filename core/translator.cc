#include "core/translator.h"

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

Translator::Translator(std::shared_ptr<const MarianModel> model,
                       int intra_threads)
    : state_(std::make_unique<TranslatorState>()) {
  state_->model = std::move(model);
  state_->intra_threads = intra_threads;
}

const MarianModel& Translator::model() const { return *state_->model; }

std::unique_ptr<Generator> Translator::NewGenerator() {
  return std::make_unique<Generator>(state_.get());
}

Translator::~Translator() = default;

absl::StatusOr<std::vector<TranslationResult>> Translator::Translate(
    const std::vector<std::vector<int>>& source_ids,
    const TranslationOptions& options,
    const std::vector<SampleSource>& sample_sources,
    const TokenCallback& on_token) {
  // A batch is a generator whose sequences all join at the first step.
  Generator generator(state_.get());
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
  const ModelConfig& config = state_->model->config();
  absl::Status status = CheckTokenIds(source_ids, config, config.vocab_size);
  if (!status.ok()) return status;
  std::vector<std::vector<float>> states;
  if (source_ids.empty()) return states;
  std::vector<int> lengths;
  const int src_len = state_->RunEncoder(source_ids, &lengths);
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
  const int d = state_->model->config().d_model;
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
  const ModelConfig& config = state_->model->config();
  if (source_ids.size() != target_ids.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_ids.size(), " sources but ", target_ids.size(), " targets"));
  }
  absl::Status status = CheckTokenIds(source_ids, config, config.vocab_size);
  if (!status.ok()) return status;
  status = CheckTokenIds(target_ids, config, config.decoder_vocab_size);
  if (!status.ok()) return status;
  std::vector<std::vector<float>> scores;
  if (source_ids.empty()) return scores;
  std::vector<int> lengths;
  const int src_len = state_->RunEncoder(source_ids, &lengths);
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
  MarianDecoder decoder(state_->model->network(), config, state_->ctx,
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
