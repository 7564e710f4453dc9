// Fuzzes sentence segmentation (core/text/sentence_splitter.h): the first
// byte picks the language, the newline mode and max_tokens; the rest is the
// text, any bytes (ill-formed UTF-8 included). Spans must be in order,
// non-empty, inside the text, with only ASCII whitespace or non-ASCII bytes
// in the gaps (Unicode spaces are multi-byte), and every span cut into
// pieces must give back its bytes with the same kind of gaps.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/text/sentence_splitter.h"

namespace {

using ts::core::text::NewlineMode;
using ts::core::text::SentenceSpan;
using ts::core::text::SentenceSplitter;

const SentenceSplitter& Splitter(int index) {
  static const std::vector<SentenceSplitter>* splitters = [] {
    auto* all = new std::vector<SentenceSplitter>();
    for (const char* language : {"en", "de", "fr", "zh", "ja", ""}) {
      auto splitter = SentenceSplitter::Create(language);
      if (!splitter.ok()) __builtin_trap();
      all->push_back(std::move(*splitter));
    }
    return all;
  }();
  return (*splitters)[index % splitters->size()];
}

// A gap holds no printable ASCII (whitespace is ASCII or multi-byte).
bool GapLooksWhite(std::string_view gap) {
  for (char c : gap) {
    const unsigned char b = static_cast<unsigned char>(c);
    if (b > 0x20 && b < 0x7F) return false;
  }
  return true;
}

// Words + 1, as a tokenizer counting </s>.
int CountWords(std::string_view piece) {
  int words = 0;
  bool in_word = false;
  for (char c : piece) {
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words + 1;
}

void CheckSpans(std::string_view text, size_t begin, size_t end,
                const std::vector<SentenceSpan>& spans) {
  size_t at = begin;
  for (const SentenceSpan& span : spans) {
    if (span.begin < at || span.begin >= span.end || span.end > end) {
      __builtin_trap();
    }
    if (!GapLooksWhite(text.substr(at, span.begin - at))) __builtin_trap();
    at = span.end;
  }
  if (!GapLooksWhite(text.substr(at, end - at))) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1),
                              size - 1);
  const SentenceSplitter& splitter = Splitter(control & 7);
  const NewlineMode mode =
      (control & 8) != 0 ? NewlineMode::kSpace : NewlineMode::kBreak;
  const int max_tokens = 1 + (control >> 4);
  const std::vector<SentenceSpan> spans = splitter.Segment(text, mode);
  CheckSpans(text, 0, text.size(), spans);
  for (const SentenceSpan& span : spans) {
    const std::vector<SentenceSpan> pieces =
        splitter.CutLongSentence(text, span, max_tokens, CountWords);
    if (pieces.empty() || pieces.front().begin != span.begin ||
        pieces.back().end != span.end) {
      __builtin_trap();
    }
    CheckSpans(text, span.begin, span.end, pieces);
  }
  return 0;
}
