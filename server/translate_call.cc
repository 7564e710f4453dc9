#include "server/translate_call.h"

#include <utility>

#include "absl/time/clock.h"
#include "server/translation_assembly.h"

namespace ts::server {
grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

TranslateCall::TranslateCall(std::vector<std::string> texts, TranslateWork work,
                             CallContext context,
                             transformer::v1::TranslateResponse* response,
                             std::shared_ptr<TranslateStreamOutput> stream,
                             Answer finish,
                             std::shared_ptr<const ModelLease> model,
                             std::vector<std::string> models, Metrics* metrics)
    : texts_(std::move(texts)),
      work_(std::move(work)),
      response_(response),
      stream_(std::move(stream)),
      finish_(std::move(finish)),
      model_(std::move(model)),
      models_(std::move(models)),
      tokenizer_(model_->loaded().model().tokenizer()),
      metrics_(metrics),
      context_(std::move(context)) {
  state_.resize(work_.texts.size());
  for (size_t t = 0; t < work_.texts.size(); ++t) {
    const size_t segments = work_.texts[t].segments.size();
    state_[t].results.resize(segments);
    state_[t].done.resize(segments, false);
    pending_ += static_cast<int>(segments);
  }
  if (stream_ != nullptr) {
    std::vector<std::string> leading_gaps;
    for (size_t t = 0; t < work_.texts.size(); ++t) {
      leading_gaps.emplace_back(GapBefore(texts_[t], work_.texts[t], 0));
    }
    stream_->SetTexts(std::move(leading_gaps));
  }
}

SharedTranslation::Waiter TranslateCall::WaiterFor(
    const std::shared_ptr<TranslateCall>& call, int text, int segment,
    bool search_streams) {
  SharedTranslation::Waiter waiter{
      .poll = [call] { return call->Poll(); },
      .done =
          [call, text, segment](const absl::Status& status,
                                const core::TranslationResult& result) {
            call->Settle(text, segment, status, result);
          },
      .on_token = nullptr};
  if (call->stream_ != nullptr && search_streams &&
      call->work_.texts[text].segments.size() == 1 &&
      call->work_.texts[text].html == nullptr) {
    waiter.on_token = [stream = call->stream_, text](int token) {
      stream->Token(text, token);
    };
  }
  return waiter;
}

absl::Status TranslateCall::Poll() {
  std::lock_guard lock(mu_);
  if (answered_) return absl::CancelledError("the call was answered already");
  if (context_.deadline <= absl::Now()) {
    return absl::DeadlineExceededError(
        "deadline exceeded before the translation was done");
  }
  if (context_.is_cancelled && context_.is_cancelled()) {
    return absl::CancelledError(
        "request cancelled before its translation was done");
  }
  return absl::OkStatus();
}

void TranslateCall::Settle(int text, int segment, const absl::Status& status,
                           const core::TranslationResult& result) {
  std::unique_lock lock(mu_);
  if (answered_) return;
  if (!status.ok()) {
    answered_ = true;
    lock.unlock();
    if (stream_ != nullptr) stream_->Close();
    finish_(ToGrpcStatus(status));
    return;
  }
  Text& state = state_[text];
  state.results[segment] = result;
  state.done[segment] = true;
  // A stream's messages go out before the status: under the lock, before
  // the last outcome can answer.
  if (stream_ != nullptr) EmitLocked(text);
  if (--pending_ > 0) return;
  answered_ = true;
  lock.unlock();
  Respond();
}

void TranslateCall::SetUpDone() {
  std::unique_lock lock(mu_);
  if (answered_) return;
  // Texts without sentences (whitespace only) are answered as they are.
  if (stream_ != nullptr) {
    for (size_t t = 0; t < state_.size(); ++t) {
      if (work_.texts[t].segments.empty()) EmitLocked(static_cast<int>(t));
    }
  }
  if (--pending_ > 0) return;
  answered_ = true;
  lock.unlock();
  Respond();
}

void TranslateCall::EmitLocked(int t) {
  Text& state = state_[t];
  const TextWork& text_work = work_.texts[t];
  const int count = static_cast<int>(text_work.segments.size());
  // An empty text, or an HTML document (whose markup is placed only once
  // every sentence is translated): one message, when all is done.
  if (count == 0 || text_work.html != nullptr) {
    if (state.emitted > 0) return;
    for (bool done : state.done) {
      if (!done) return;
    }
    state.emitted = 1;
    transformer::v1::Translation translation;
    Assemble(t, &translation);
    stream_->Finish(t, std::move(translation));
    return;
  }
  // Each sentence once it and every one before it are done, with the gap
  // before it; the last one's message carries the Translation (and, for a
  // single sentence, the ids and text its streamed tokens did not).
  while (state.emitted < count && state.done[state.emitted]) {
    const int s = state.emitted++;
    if (s + 1 == count) {
      transformer::v1::Translation translation;
      Assemble(t, &translation);
      stream_->Finish(t, std::move(translation));
      return;
    }
    const core::TranslationResult& result = state.results[s];
    if (result.hypotheses.empty()) continue;
    const core::Hypothesis& best = result.hypotheses[0];
    std::string delta(GapBefore(texts_[t], text_work, s));
    delta += tokenizer_.DecodeTarget(best.ids);
    stream_->Part(t, best.ids, delta);
  }
}

void TranslateCall::Assemble(int t, transformer::v1::Translation* translation) {
  const absl::Time start = absl::Now();
  AssembleTranslation(texts_[t], work_.texts[t], state_[t].results,
                      work_.options, tokenizer_, translation);
  for (const std::string& name : models_) translation->add_models(name);
  if (metrics_ != nullptr) metrics_->RecordAssembly(absl::Now() - start);
}

void TranslateCall::Respond() {
  if (response_ != nullptr) {
    // No other thread touches the results once the call is answered.
    for (size_t t = 0; t < work_.texts.size(); ++t) {
      Assemble(static_cast<int>(t), response_->add_translations());
    }
  }
  if (stream_ != nullptr) stream_->Close();
  finish_(grpc::Status::OK);
}

}  // namespace ts::server
