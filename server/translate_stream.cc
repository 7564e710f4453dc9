#include "server/translate_stream.h"

#include <utility>

#include "absl/time/clock.h"

namespace ts::server {

TranslateStreamOutput::TranslateStreamOutput(
    StreamWrite write, const core::MarianTokenizer& tokenizer, Metrics* metrics,
    absl::Time accepted)
    : write_(std::move(write)),
      tokenizer_(tokenizer),
      metrics_(metrics),
      accepted_(accepted) {}

void TranslateStreamOutput::SetTexts(std::vector<std::string> leading_gaps) {
  std::lock_guard lock(mu_);
  texts_.resize(leading_gaps.size());
  for (size_t i = 0; i < leading_gaps.size(); ++i) {
    texts_[i].leading_gap = std::move(leading_gaps[i]);
  }
}

bool TranslateStreamOutput::UsableLocked(int text) const {
  return !closed_ && text >= 0 && text < static_cast<int>(texts_.size());
}

void TranslateStreamOutput::Token(int text, int token) {
  std::lock_guard lock(mu_);
  if (!UsableLocked(text)) return;
  Text& state = texts_[text];
  std::string delta;
  if (state.detokenizer == nullptr) {
    state.detokenizer =
        std::make_unique<core::IncrementalDetokenizer>(tokenizer_);
    delta = state.leading_gap;
  }
  delta += state.detokenizer->Add(token);
  transformer::v1::TranslateStreamResponse message;
  message.set_text_index(text);
  message.add_token_ids(token);
  message.set_text_delta(std::move(delta));
  SendLocked(state, std::move(message));
}

void TranslateStreamOutput::Part(int text, const std::vector<int>& token_ids,
                                 std::string_view text_delta) {
  std::lock_guard lock(mu_);
  if (!UsableLocked(text)) return;
  transformer::v1::TranslateStreamResponse message;
  message.set_text_index(text);
  message.mutable_token_ids()->Add(token_ids.begin(), token_ids.end());
  message.set_text_delta(std::string(text_delta));
  SendLocked(texts_[text], std::move(message));
}

void TranslateStreamOutput::Finish(int text,
                                   transformer::v1::Translation translation) {
  std::lock_guard lock(mu_);
  if (!UsableLocked(text)) return;
  Text& state = texts_[text];
  transformer::v1::TranslateStreamResponse message;
  message.set_text_index(text);
  if (translation.hypotheses_size() > 0) {
    // What the earlier messages carried is a prefix of the best hypothesis
    // (the incremental detokenizer emits only final text).
    const transformer::v1::Hypothesis& best = translation.hypotheses(0);
    for (size_t i = state.ids_sent;
         i < static_cast<size_t>(best.token_ids_size()); ++i) {
      message.add_token_ids(best.token_ids(static_cast<int>(i)));
    }
    if (state.bytes_sent < best.text().size()) {
      message.set_text_delta(best.text().substr(state.bytes_sent));
    }
  }
  state.detokenizer.reset();
  *message.mutable_translation() = std::move(translation);
  SendLocked(state, std::move(message));
}

void TranslateStreamOutput::Close() {
  std::lock_guard lock(mu_);
  closed_ = true;
}

void TranslateStreamOutput::SendLocked(
    Text& state, transformer::v1::TranslateStreamResponse message) {
  if (!state.sent) {
    state.sent = true;
    metrics_->RecordTimeToFirstToken(absl::Now() - accepted_);
  }
  state.ids_sent += static_cast<size_t>(message.token_ids_size());
  state.bytes_sent += message.text_delta().size();
  write_(std::move(message));
}

}  // namespace ts::server
