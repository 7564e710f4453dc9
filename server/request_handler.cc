#include "server/request_handler.h"

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/model/incremental_detokenizer.h"
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

// The output of one TranslateStream call: turns tokens and results into
// messages and hands them to the front end, one at a time, until closed.
class TranslateStreamState {
 public:
  TranslateStreamState(StreamWrite write,
                       const core::MarianTokenizer& tokenizer, Metrics* metrics,
                       absl::Time accepted)
      : write_(std::move(write)),
        tokenizer_(tokenizer),
        metrics_(metrics),
        accepted_(accepted) {}

  void SetTexts(size_t texts) {
    std::lock_guard lock(mu_);
    texts_.resize(texts);
  }

  // `token` was just chosen for text `text` (from a worker's search).
  void Token(int text, int token) {
    std::lock_guard lock(mu_);
    if (closed_ || text < 0 || text >= static_cast<int>(texts_.size())) return;
    Text& state = texts_[text];
    if (state.detokenizer == nullptr) {
      state.detokenizer =
          std::make_unique<core::IncrementalDetokenizer>(tokenizer_);
    }
    transformer::v1::TranslateStreamResponse message;
    message.set_text_index(text);
    message.add_token_ids(token);
    message.set_text_delta(state.detokenizer->Add(token));
    SendLocked(state, std::move(message));
  }

  // The last message of text `text`: the ids and text its streamed messages
  // did not carry yet (all of them if none was streamed), and `translation`.
  void Finish(int text, transformer::v1::Translation translation) {
    std::lock_guard lock(mu_);
    if (closed_ || text < 0 || text >= static_cast<int>(texts_.size())) return;
    Text& state = texts_[text];
    transformer::v1::TranslateStreamResponse message;
    message.set_text_index(text);
    if (translation.hypotheses_size() > 0) {
      const transformer::v1::Hypothesis& best = translation.hypotheses(0);
      if (state.detokenizer == nullptr) {
        *message.mutable_token_ids() = best.token_ids();
        message.set_text_delta(best.text());
      } else {
        std::string delta;
        for (int i = static_cast<int>(state.detokenizer->ids().size());
             i < best.token_ids_size(); ++i) {
          message.add_token_ids(best.token_ids(i));
          delta += state.detokenizer->Add(best.token_ids(i));
        }
        delta += state.detokenizer->Finish();
        message.set_text_delta(std::move(delta));
      }
    }
    state.detokenizer.reset();
    *message.mutable_translation() = std::move(translation);
    SendLocked(state, std::move(message));
  }

  // No message is written after this returns.
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
  }

 private:
  struct Text {
    // Created with the text's first streamed token.
    std::unique_ptr<core::IncrementalDetokenizer> detokenizer;
    bool sent = false;  // a message of this text was written
  };

  void SendLocked(Text& state, transformer::v1::TranslateStreamResponse message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!state.sent) {
      state.sent = true;
      metrics_->RecordTimeToFirstToken(absl::Now() - accepted_);
    }
    write_(std::move(message));
  }

  const StreamWrite write_;
  const core::MarianTokenizer& tokenizer_;
  Metrics* const metrics_;
  const absl::Time accepted_;
  std::mutex mu_;
  std::vector<Text> texts_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

namespace {

// The Translation of one text from its result, as Translate returns it.
// `attention_source`: the text's source ids when options.return_attention,
// else null.
void FillTranslation(const core::TranslationResult& result,
                     int input_token_count,
                     const std::vector<int>* attention_source,
                     const core::TranslationOptions& options,
                     const core::MarianTokenizer& tokenizer,
                     transformer::v1::Translation* translation) {
  translation->set_input_token_count(input_token_count);
  if (attention_source != nullptr) {
    SetSourceTokens(*attention_source, tokenizer, translation);
  }
  if (options.do_sample) translation->set_seed(options.seed);
  for (const core::Hypothesis& hypothesis : result.hypotheses) {
    transformer::v1::Hypothesis* out = translation->add_hypotheses();
    out->set_text(tokenizer.DecodeTarget(hypothesis.ids));
    out->mutable_token_ids()->Add(hypothesis.ids.begin(), hypothesis.ids.end());
    out->set_score(hypothesis.score);
    if (attention_source != nullptr) {
      SetHypothesisAttention(hypothesis, input_token_count, tokenizer, out);
    }
  }
}

}  // namespace

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
                        .max_text_bytes = options.max_text_bytes,
                        .max_length_cap = options.max_length_cap,
                        .max_beam_size = options.max_beam_size,
                        .max_length_factor = options.max_length_factor}),
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
  RunTranslate(request, response, nullptr, std::move(context),
               Track("Translate", std::move(answer)));
}

void RequestHandler::TranslateStream(
    const transformer::v1::TranslateRequest& request, CallContext context,
    StreamWrite write, Answer answer) {
  const absl::Time accepted = absl::Now();
  Answer finish = Track("TranslateStream", std::move(answer));
  auto stream = std::make_shared<TranslateStreamState>(
      std::move(write), model_->tokenizer(), metrics_, accepted);
  RunTranslate(request, nullptr, stream, std::move(context),
               [stream, finish](const grpc::Status& status) {
                 stream->Close();
                 finish(status);
               });
}

void RequestHandler::RunTranslate(
    const transformer::v1::TranslateRequest& request,
    transformer::v1::TranslateResponse* response,
    std::shared_ptr<TranslateStreamState> stream, CallContext context,
    Answer finish) {
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
  if (stream != nullptr) stream->SetTexts(texts);
  // Shared by the callbacks below, which may outlive this function.
  auto attention = std::make_shared<const std::vector<std::vector<int>>>(
      std::move(attention_sources));
  // Text `index`'s Translation.
  auto translation_of = [this, call, options, attention](
                            size_t index, const core::TranslationResult& result,
                            transformer::v1::Translation* translation) {
    FillTranslation(result, call->input_token_counts[index],
                    attention->empty() ? nullptr : &(*attention)[index],
                    options, model_->tokenizer(), translation);
  };
  // Answers the call once every text has its result (or one failed); a
  // stream has sent each text's last message already.
  auto respond = [call, response, finish, translation_of] {
    if (!call->status.ok()) {
      finish(ToGrpcStatus(call->status));
      return;
    }
    if (response != nullptr) {
      for (size_t i = 0; i < call->results.size(); ++i) {
        translation_of(i, call->results[i], response->add_translations());
      }
    }
    finish(grpc::Status::OK);
  };
  // One outstanding text done; the last one answers. A stream sends the
  // text's last message first, so it comes before the status.
  auto settle = [call, respond, stream, translation_of](
                    size_t index, const absl::Status& status,
                    const core::TranslationResult& result) {
    if (stream != nullptr && status.ok() && index < call->results.size()) {
      transformer::v1::Translation translation;
      translation_of(index, result, &translation);
      stream->Finish(static_cast<int>(index), std::move(translation));
    }
    bool last = false;
    {
      std::lock_guard lock(call->mu);
      if (!status.ok()) {
        if (call->status.ok()) call->status = status;
      } else if (stream == nullptr && index < call->results.size()) {
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
    // Greedy search and one sample stream their tokens; beam search and
    // several samples send each text's last message only.
    if (stream != nullptr && options.beam_size <= 1 &&
        options.num_hypotheses <= 1) {
      batch_request.on_token = [stream, misses](int index, int token) {
        stream->Token(misses[index], token);
      };
    }
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
  response->set_max_text_bytes(limits.max_text_bytes);
  finish(grpc::Status::OK);
}

}  // namespace ts::server
