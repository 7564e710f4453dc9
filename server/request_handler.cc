#include "server/request_handler.h"

#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/time/clock.h"
#include "server/attention_response.h"

namespace ts::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

RequestHandler::RequestHandler(std::shared_ptr<const core::MarianModel> model,
                               const ServerOptions& options,
                               Scheduler* scheduler, Metrics* metrics)
    : model_(model),
      validator_(
          std::move(model),
          RequestLimits{.max_texts_per_request = options.max_texts_per_request,
                        .max_input_tokens = options.max_input_tokens,
                        .max_length_cap = options.max_length_cap,
                        .max_beam_size = options.max_beam_size}),
      scheduler_(scheduler),
      metrics_(metrics) {}

Answer RequestHandler::Track(const char* method, Answer answer) {
  metrics_->IncrementInflight();
  return [metrics = metrics_, method, start = absl::Now(),
          answer = std::move(answer)](const grpc::Status& status) {
    metrics->RecordRequest(method, status.error_code(), absl::Now() - start);
    metrics->DecrementInflight();
    answer(status);
  };
}

void RequestHandler::Translate(const transformer::v1::TranslateRequest& request,
                               transformer::v1::TranslateResponse* response,
                               CallContext context, Answer answer) {
  Answer finish = Track("Translate", std::move(answer));
  TranslateWork work;
  if (grpc::Status status = validator_.ValidateTranslate(request, &work);
      !status.ok()) {
    finish(status);
    return;
  }
  std::vector<int> input_token_counts;
  input_token_counts.reserve(work.source_ids.size());
  for (const auto& ids : work.source_ids) {
    input_token_counts.push_back(static_cast<int>(ids.size()));
  }
  // Kept for Translation.source_tokens; empty unless asked.
  std::vector<std::vector<int>> attention_sources;
  if (work.options.return_attention) attention_sources = work.source_ids;
  BatchRequest batch_request;
  batch_request.key.method = Method::kTranslate;
  batch_request.key.translation = work.options;
  batch_request.source_ids = std::move(work.source_ids);
  batch_request.deadline = context.deadline;
  batch_request.is_cancelled = std::move(context.is_cancelled);
  batch_request.on_done = [this, response, finish,
                           input_token_counts = std::move(input_token_counts),
                           attention_sources = std::move(attention_sources)](
                              absl::Status status,
                              std::vector<SentenceResult> results) {
    if (!status.ok()) {
      finish(ToGrpcStatus(status));
      return;
    }
    const core::MarianTokenizer& tokenizer = model_->tokenizer();
    for (size_t i = 0; i < results.size(); ++i) {
      transformer::v1::Translation* translation = response->add_translations();
      translation->set_input_token_count(input_token_counts[i]);
      if (!attention_sources.empty()) {
        SetSourceTokens(attention_sources[i], tokenizer, translation);
      }
      for (const core::Hypothesis& hypothesis :
           std::get<core::TranslationResult>(results[i]).hypotheses) {
        transformer::v1::Hypothesis* out = translation->add_hypotheses();
        out->set_text(tokenizer.DecodeTarget(hypothesis.ids));
        out->mutable_token_ids()->Add(hypothesis.ids.begin(),
                                      hypothesis.ids.end());
        out->set_score(hypothesis.score);
        if (!attention_sources.empty()) {
          SetHypothesisAttention(hypothesis, input_token_counts[i], tokenizer,
                                 out);
        }
      }
    }
    finish(grpc::Status::OK);
  };
  if (absl::Status submitted = scheduler_->Submit(std::move(batch_request));
      !submitted.ok()) {
    finish(ToGrpcStatus(submitted));
  }
}

void RequestHandler::Encode(const transformer::v1::EncodeRequest& request,
                            transformer::v1::EncodeResponse* response,
                            CallContext context, Answer answer) {
  Answer finish = Track("Encode", std::move(answer));
  EncodeWork work;
  if (grpc::Status status = validator_.ValidateEncode(request, &work);
      !status.ok()) {
    finish(status);
    return;
  }
  BatchRequest batch_request;
  batch_request.key.method = Method::kEncode;
  batch_request.key.encode = work.options;
  batch_request.source_ids = std::move(work.source_ids);
  batch_request.deadline = context.deadline;
  batch_request.is_cancelled = std::move(context.is_cancelled);
  batch_request.on_done = [response, finish](
                              absl::Status status,
                              std::vector<SentenceResult> results) {
    if (!status.ok()) {
      finish(ToGrpcStatus(status));
      return;
    }
    for (SentenceResult& result : results) {
      core::EncodeResult& encoded = std::get<core::EncodeResult>(result);
      transformer::v1::Embedding* embedding = response->add_embeddings();
      embedding->set_dim(encoded.dim);
      embedding->set_num_tokens(encoded.num_tokens);
      embedding->mutable_values()->Add(encoded.values.begin(),
                                       encoded.values.end());
    }
    finish(grpc::Status::OK);
  };
  if (absl::Status submitted = scheduler_->Submit(std::move(batch_request));
      !submitted.ok()) {
    finish(ToGrpcStatus(submitted));
  }
}

void RequestHandler::GetModelInfo(
    transformer::v1::GetModelInfoResponse* response, Answer answer) {
  Answer finish = Track("GetModelInfo", std::move(answer));
  const core::ModelConfig& config = model_->config();
  const core::TranslationOptions defaults =
      validator_.DefaultTranslationOptions();
  const RequestLimits& limits = validator_.limits();
  response->set_model_name(config.name);
  response->set_d_model(config.d_model);
  response->set_encoder_layers(config.encoder_layers);
  response->set_decoder_layers(config.decoder_layers);
  response->set_encoder_attention_heads(config.encoder_attention_heads);
  response->set_decoder_attention_heads(config.decoder_attention_heads);
  response->set_vocab_size(config.vocab_size);
  response->set_default_beam_size(defaults.beam_size);
  response->set_default_max_length(defaults.max_length);
  response->set_max_length_cap(limits.max_length_cap);
  response->set_max_texts_per_request(limits.max_texts_per_request);
  response->set_max_input_tokens(limits.max_input_tokens);
  finish(grpc::Status::OK);
}

}  // namespace ts::server
