#include "server/request_handler.h"

#include <mutex>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/attention_response.h"

namespace ts::server {

// One Translate call while its texts are looked up or computed.
struct TranslateCall {
  std::mutex mu;
  std::vector<core::TranslationResult> results;  // by text
  std::vector<int> input_token_counts;           // by text
  // Texts without a result, + 1 while the handler is still setting up.
  int pending = 1;
  absl::Status status;  // the first error
};

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
                        .max_queue_size = options.max_queue_size,
                        .max_input_tokens = options.max_input_tokens,
                        .max_length_cap = options.max_length_cap,
                        .max_beam_size = options.max_beam_size}),
      scheduler_(scheduler),
      metrics_(metrics),
      model_identity_(
          absl::StrCat(options.model_dir, "|", options.compute_type)) {
  if (options.cache_mb > 0) {
    cache_ = std::make_unique<TranslationCache>(
        int64_t{options.cache_mb} << 20,
        [metrics](int64_t bytes) { metrics->SetCacheBytes(bytes); });
  }
}

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
  // As the scheduler would answer them: cache hits must not slip past a
  // drain or a deadline that has already passed.
  if (!scheduler_->accepting()) {
    finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "server is shutting down and accepts no new requests"));
    return;
  }
  if (context.deadline <= absl::Now()) {
    finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "deadline passed before the call was served"));
    return;
  }
  const size_t texts = work.source_ids.size();
  auto call = std::make_shared<TranslateCall>();
  call->results.resize(texts);
  call->input_token_counts.reserve(texts);
  for (const auto& ids : work.source_ids) {
    call->input_token_counts.push_back(static_cast<int>(ids.size()));
  }
  // Kept for Translation.source_tokens; empty unless asked.
  std::vector<std::vector<int>> attention_sources;
  if (work.options.return_attention) attention_sources = work.source_ids;
  const core::TranslationOptions options = work.options;
  // Answers the call once every text has its result (or one failed).
  auto respond = [this, call, response, finish, options,
                  attention_sources = std::move(attention_sources)] {
    if (!call->status.ok()) {
      finish(ToGrpcStatus(call->status));
      return;
    }
    const core::MarianTokenizer& tokenizer = model_->tokenizer();
    for (size_t i = 0; i < call->results.size(); ++i) {
      transformer::v1::Translation* translation = response->add_translations();
      translation->set_input_token_count(call->input_token_counts[i]);
      if (!attention_sources.empty()) {
        SetSourceTokens(attention_sources[i], tokenizer, translation);
      }
      if (options.do_sample) translation->set_seed(options.seed);
      for (const core::Hypothesis& hypothesis : call->results[i].hypotheses) {
        transformer::v1::Hypothesis* out = translation->add_hypotheses();
        out->set_text(tokenizer.DecodeTarget(hypothesis.ids));
        out->mutable_token_ids()->Add(hypothesis.ids.begin(),
                                      hypothesis.ids.end());
        out->set_score(hypothesis.score);
        if (!attention_sources.empty()) {
          SetHypothesisAttention(hypothesis, call->input_token_counts[i],
                                 tokenizer, out);
        }
      }
    }
    finish(grpc::Status::OK);
  };
  // One outstanding text done; the last one answers.
  auto settle = [call, respond](size_t index, const absl::Status& status,
                                const core::TranslationResult& result) {
    bool last = false;
    {
      std::lock_guard lock(call->mu);
      if (!status.ok()) {
        if (call->status.ok()) call->status = status;
      } else if (index < call->results.size()) {
        call->results[index] = result;
      }
      last = --call->pending == 0;
    }
    if (last) respond();
  };

  // Sampling without a seed gets a fresh one: its result can never repeat.
  // Attention weights are not cached (large, and rarely asked twice).
  const bool use_cache = cache_ != nullptr && !options.return_attention &&
                         (!options.do_sample || request.options().has_seed());
  std::vector<int> misses;  // text indices to compute
  std::vector<std::string> miss_keys;
  for (size_t i = 0; i < texts; ++i) {
    if (!use_cache) {
      misses.push_back(static_cast<int>(i));
      continue;
    }
    std::string key =
        TranslationCacheKey(model_identity_, options, static_cast<int>(i),
                            request.texts(static_cast<int>(i)));
    {
      // Counted before Find: its waiter may run at once on another thread.
      std::lock_guard lock(call->mu);
      ++call->pending;
    }
    core::TranslationResult hit;
    const TranslationCache::Lookup lookup =
        cache_->Find(key, &hit,
                     [settle, i](const absl::Status& status,
                                 const core::TranslationResult& result) {
                       settle(i, status, result);
                     });
    switch (lookup) {
      case TranslationCache::Lookup::kHit:
        metrics_->RecordCacheHit();
        settle(i, absl::OkStatus(), hit);
        break;
      case TranslationCache::Lookup::kPending:
        metrics_->RecordCacheHit();
        break;
      case TranslationCache::Lookup::kCompute: {
        metrics_->RecordCacheMiss();
        misses.push_back(static_cast<int>(i));
        miss_keys.push_back(std::move(key));
        std::lock_guard lock(call->mu);
        --call->pending;  // counted again below, with the batch
        break;
      }
    }
  }

  if (!misses.empty()) {
    {
      std::lock_guard lock(call->mu);
      call->pending += static_cast<int>(misses.size());
    }
    // Ends the computation of every missed text: the cache's waiters and
    // this call get the same outcome.
    auto complete = [this, settle, misses, miss_keys](
                        const absl::Status& status,
                        std::vector<SentenceResult>* results) {
      const core::TranslationResult none;
      for (size_t j = 0; j < misses.size(); ++j) {
        const core::TranslationResult& result =
            status.ok() ? std::get<core::TranslationResult>((*results)[j])
                        : none;
        if (!miss_keys.empty()) cache_->Finish(miss_keys[j], status, result);
        settle(misses[j], status, result);
      }
    };
    BatchRequest batch_request;
    batch_request.key.method = Method::kTranslate;
    batch_request.key.translation = options;
    // The seed travels per sentence, so requests with other seeds can share
    // a batch.
    batch_request.key.translation.seed = 0;
    batch_request.sample_seed = options.seed;
    batch_request.text_indices = misses;
    for (int i : misses) {
      batch_request.source_ids.push_back(std::move(work.source_ids[i]));
    }
    batch_request.deadline = context.deadline;
    batch_request.is_cancelled = std::move(context.is_cancelled);
    batch_request.on_done = [complete](absl::Status status,
                                       std::vector<SentenceResult> results) {
      complete(status, &results);
    };
    if (absl::Status submitted = scheduler_->Submit(std::move(batch_request));
        !submitted.ok()) {
      complete(submitted, nullptr);
    }
  }
  settle(texts, absl::OkStatus(), {});  // the set-up's own count
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
