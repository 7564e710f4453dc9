// The output side of one TranslateStream call: tokens, sentences and
// results in, TranslateStreamResponse messages out, one at a time, until
// closed.
#ifndef TRANSFORMER_SERVING_SERVER_TRANSLATE_STREAM_H_
#define TRANSFORMER_SERVING_SERVER_TRANSLATE_STREAM_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "core/text/incremental_detokenizer.h"
#include "core/text/tokenizer.h"
#include "server/metrics.h"
#include "transformer/v1/transformer_service.pb.h"

namespace ts::server {

// Sends one TranslateStream message. Called in order, one call at a time
// per RPC, and never after the call's Answer has started.
using StreamWrite =
    std::function<void(transformer::v1::TranslateStreamResponse message)>;

// Thread-safe. For every text, the concatenation of its messages' token_ids
// and text_delta equals its final Translation's hypotheses[0] token_ids and
// text, byte for byte (the proto's contract).
class TranslateStreamOutput {
 public:
  // `accepted`: when the call arrived (for time to first token).
  TranslateStreamOutput(StreamWrite write,
                        const core::MarianTokenizer& tokenizer,
                        Metrics* metrics, absl::Time accepted);

  // Before any message: the number of texts, and for each the bytes its
  // translation starts with (the source's leading gap), which the first
  // streamed token's message carries.
  void SetTexts(std::vector<std::string> leading_gaps);

  // `token` was just chosen for text `text`, a single-sentence text whose
  // search streams (from a worker's search).
  void Token(int text, int token);

  // A part of text `text` that is final: `token_ids` and `text_delta`
  // continue what was sent (a document's next sentence, with its gap).
  void Part(int text, const std::vector<int>& token_ids,
            std::string_view text_delta);

  // The last message of text `text`: the ids and text of
  // translation.hypotheses(0) that earlier messages did not carry, and
  // `translation` itself.
  void Finish(int text, transformer::v1::Translation translation);

  // No message is written after this returns.
  void Close();

 private:
  struct Text {
    std::string leading_gap;
    // Created with the text's first streamed token.
    std::unique_ptr<core::IncrementalDetokenizer> detokenizer;
    size_t ids_sent = 0;
    size_t bytes_sent = 0;
    bool sent = false;  // a message of this text was written
  };

  bool UsableLocked(int text) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendLocked(Text& state, transformer::v1::TranslateStreamResponse message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const StreamWrite write_;
  const core::MarianTokenizer& tokenizer_;
  Metrics* const metrics_;
  const absl::Time accepted_;
  std::mutex mu_;
  std::vector<Text> texts_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_TRANSLATE_STREAM_H_
