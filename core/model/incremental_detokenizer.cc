#include "core/model/incremental_detokenizer.h"

#include <string_view>

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

std::string IncrementalDetokenizer::Add(int id) {
  ids_.push_back(id);
  // DecodeTarget drops these: the text is unchanged.
  if (id == tokenizer_->target_eos_id() || id == tokenizer_->target_pad_id() ||
      id < 0 || id >= tokenizer_->target_vocab_size()) {
    return std::string();
  }
  const std::string text = tokenizer_->DecodeTarget(ids_);
  const size_t stable = StableTextLength(text);
  // The text handed out is a prefix of every later decode (SentencePiece
  // concatenates each piece's own surface); the check keeps a delta from
  // ever repeating or contradicting it if a decoder broke that.
  if (stable <= emitted_.size() ||
      text.compare(0, emitted_.size(), emitted_) != 0) {
    return std::string();
  }
  std::string delta = text.substr(emitted_.size(), stable - emitted_.size());
  emitted_ += delta;
  return delta;
}

std::string IncrementalDetokenizer::Finish() {
  const std::string text = tokenizer_->DecodeTarget(ids_);
  if (text.size() <= emitted_.size() ||
      text.compare(0, emitted_.size(), emitted_) != 0) {
    return std::string();
  }
  std::string delta = text.substr(emitted_.size());
  emitted_ += delta;
  return delta;
}

}  // namespace ts::core
