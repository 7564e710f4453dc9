#include "core/text/incremental_detokenizer.h"

#include <string_view>

#include "absl/types/span.h"

namespace ts::core {
namespace {

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

// Bytes of the UTF-8 sequence that `lead` starts; 0 for a continuation or
// invalid byte.
size_t SequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 0;
}

}  // namespace

size_t StableTextLength(const std::string& text) {
  size_t end = text.size();
  // A trailing incomplete sequence (SentencePiece never produces one, but a
  // delta must stay valid UTF-8 whatever the decoder gives).
  for (size_t back = 1; back <= 3 && back <= end; ++back) {
    const auto byte = static_cast<unsigned char>(text[end - back]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation: look further back
    const size_t length = SequenceLength(byte);
    if (length > back) end -= back;
    break;
  }
  while (end >= kReplacementCharacter.size() &&
         std::string_view(text).substr(end - kReplacementCharacter.size(),
                                       kReplacementCharacter.size()) ==
             kReplacementCharacter) {
    end -= kReplacementCharacter.size();
  }
  return end;
}

IncrementalDetokenizer::IncrementalDetokenizer(const MarianTokenizer& tokenizer)
    : tokenizer_(&tokenizer) {}

std::string IncrementalDetokenizer::TailText() {
  if (anchor_ < ids_.size()) {
    const std::string window =
        tokenizer_->DecodeTarget(absl::MakeConstSpan(ids_).subspan(anchor_));
    if (window.compare(0, anchor_text_.size(), anchor_text_) == 0) {
      return window.substr(anchor_text_.size());
    }
    // Not the concatenation the anchor relies on: decode everything from
    // now on (never seen with SentencePiece's decoder).
    anchor_ = kNoAnchor;
    base_ = 0;
  }
  return tokenizer_->DecodeTarget(ids_);
}

std::string IncrementalDetokenizer::Add(int id) {
  ids_.push_back(id);
  // DecodeTarget drops these: the text is unchanged.
  if (id == tokenizer_->target_eos_id() || id == tokenizer_->target_pad_id() ||
      id < 0 || id >= tokenizer_->target_vocab_size()) {
    return std::string();
  }
  const std::string tail = TailText();
  const size_t stable = StableTextLength(tail);
  const size_t done = emitted_.size() - base_;  // of the tail, handed out
  // The text handed out is a prefix of every later decode (SentencePiece
  // concatenates each piece's own surface); the check keeps a delta from
  // ever repeating or contradicting it if a decoder broke that.
  if (stable < done || tail.compare(0, done, emitted_, base_, done) != 0) {
    return std::string();
  }
  std::string delta = tail.substr(done, stable - done);
  emitted_ += delta;
  // Everything decoded is out: `id` can start the next window if its own
  // text is non-empty (so the piece after it keeps its word mark, as after
  // any text) and has no U+FFFD (a byte piece: only an ASCII byte, which
  // cannot join the bytes after it into a character).
  if (stable == tail.size()) {
    std::string own = tokenizer_->DecodeTarget(absl::MakeConstSpan(&id, 1));
    if (!own.empty() && own.find(kReplacementCharacter) == std::string::npos) {
      anchor_ = ids_.size() - 1;
      anchor_text_ = std::move(own);
      base_ = emitted_.size();
    }
  }
  return delta;
}

std::string IncrementalDetokenizer::Finish() {
  const std::string tail = TailText();
  const size_t done = emitted_.size() - base_;
  if (tail.size() <= done ||
      tail.compare(0, done, emitted_, base_, done) != 0) {
    return std::string();
  }
  std::string delta = tail.substr(done);
  emitted_ += delta;
  return delta;
}

}  // namespace ts::core
