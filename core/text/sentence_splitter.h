// Sentence segmentation of UTF-8 text into byte ranges, with the whitespace
// between sentences kept byte for byte (a text is "gap sentence gap ...
// sentence gap", as Bergamot's annotation.h), and the cutting of a sentence
// that is longer than the model accepts into pieces.
//
// Sentences come from ICU's sentence BreakIterator (UAX #29) over UTF-8
// (utext_openUTF8, so every offset is a byte offset), then rules ICU lacks
// decide which of its breaks stand (sentence_splitter.cc; docs/DESIGN.md,
// "Segmentation"): the CLDR abbreviations of the language (the list ICU's
// "@ss=standard" uses, matched on whole words) and the non-breaking prefixes
// of core/text/data/<language>.txt (as the Moses nonbreaking_prefix files),
// German ordinals, "!"/"?" before a lowercase word, closing quotes kept with
// their sentence, no break without a space after a narrow terminator (URLs,
// "a.b?x=1"), CJK 。！？ breaking with no space after them, and a break ICU
// misses after "." before a number ("... water. 3 boys are ...").
#ifndef TRANSFORMER_SERVING_CORE_TEXT_SENTENCE_SPLITTER_H_
#define TRANSFORMER_SERVING_CORE_TEXT_SENTENCE_SPLITTER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ts::core::text {

namespace internal {
// ICU's iterators (prototypes, cloned per call) and a language's rules;
// sentence_splitter.cc.
struct SplitterState;
}  // namespace internal

// Bytes [begin, end) of a text. A sentence span never starts or ends with
// whitespace; the bytes between two spans (and before the first, after the
// last) are the gaps.
struct SentenceSpan {
  size_t begin = 0;
  size_t end = 0;

  size_t size() const { return end - begin; }
  bool operator==(const SentenceSpan&) const = default;
};

// What a single newline inside a paragraph means. A blank line (a line of
// only whitespace) ends a paragraph, and with it a sentence, in both modes.
enum class NewlineMode {
  // Each line is its own unit: a newline always ends a sentence (lists,
  // subtitles, one sentence per line).
  kBreak,
  // Wrapped text: the lines of a paragraph are joined as if the newline were
  // a space, so a sentence span may contain newlines (ModelText).
  kSpace,
};

// Counts the model tokens of a piece of text, </s> included (e.g.
// MarianTokenizer::EncodeSource(piece)->size()); also called with an empty
// piece (the cost of </s> alone).
using TokenCounter = std::function<int(std::string_view)>;

// Splits text into sentences for one source language. Thread-safe: every
// const method may run concurrently (each call clones ICU's iterator).
class SentenceSplitter {
 public:
  // `language`: an ISO 639-1 code ("en", "de", "fr", "zh", "ja"); a region or
  // script after '-' or '_' is ignored ("en-US" = "en"); case-insensitive.
  // A language without ICU rules or data of its own gets ICU's root rules
  // (still UAX #29, so 。！？ and . ! ? break) and no abbreviations.
  // Errors: Internal if ICU cannot create its iterator (ICU data missing).
  static absl::StatusOr<SentenceSplitter> Create(std::string_view language);

  SentenceSplitter(SentenceSplitter&&) noexcept;
  SentenceSplitter& operator=(SentenceSplitter&&) noexcept;
  ~SentenceSplitter();

  // The sentences of `text` in order, as byte ranges into `text`, each
  // trimmed of whitespace (Unicode White_Space: spaces, tabs, \r, \n, NBSP,
  // ideographic space...). Every byte of `text` is in exactly one span or one
  // gap, so `gap0 + sentence0 + gap1 + ... + sentenceN + gapN+1` is `text`
  // byte for byte. Text of only whitespace gives no spans; text with no final
  // punctuation is still a sentence. `text` should be valid UTF-8 (the
  // server checks it): ill-formed bytes are read as U+FFFD and end up inside
  // a span or a gap, never split.
  std::vector<SentenceSpan> Segment(
      std::string_view text, NewlineMode mode = NewlineMode::kBreak) const;

  // Cuts the sentence `text[sentence.begin, sentence.end)` into pieces of at
  // most `max_tokens` tokens each as counted by `count_tokens` (</s>
  // included), in order; offsets are into `text`. A sentence that fits is
  // returned whole. Each cut is at the last place where the piece still
  // fits, preferring, in this order: right after a comma or semicolon
  // (, ; ， ； 、 ، ؛ ﹐ ﹔), a space (SentencePiece starts a token at each
  // space), an ICU word boundary (CJK dictionary words), an ICU character
  // (grapheme cluster) boundary; a cut of a higher kind is taken only if its
  // piece holds at least half of max_tokens. Pieces are trimmed; the
  // whitespace between them is a gap as in Segment. Never fails: a single
  // character that alone counts more than max_tokens (impossible with a real
  // SentencePiece vocabulary and max_tokens >= 3) becomes a piece of its own,
  // the only case where a piece exceeds max_tokens.
  // Cost: count_tokens runs on the whole sentence, on each word alone (the
  // sum estimates a piece: SentencePiece tokenizes words separately), and a
  // few times per piece on pieces of about its size to check the cut; in
  // all a few times the sentence's bytes (a 100 KB sentence: under 2x).
  std::vector<SentenceSpan> CutLongSentence(
      std::string_view text, SentenceSpan sentence, int max_tokens,
      const TokenCounter& count_tokens) const;

  // The primary language subtag the splitter was made for ("en" for
  // "en-US", "xx" for an unknown "xx"); "" if `language` had none (root).
  const std::string& language() const { return language_; }

 private:
  SentenceSplitter(std::string language,
                   std::unique_ptr<internal::SplitterState> state);

  std::string language_;
  std::unique_ptr<internal::SplitterState> state_;
};

// The text to give the model for a span: the span's bytes with each \r and
// \n turned into a space (kSpace sentences hold the newlines of wrapped
// lines). The span as written gives the same ids with OPUS-MT's
// SentencePiece models, whose nmt_nfkc normalization reads \r and \n as
// spaces and collapses whitespace runs (tested on the demo model); this
// makes it explicit. Other bytes are unchanged.
std::string ModelText(std::string_view text, SentenceSpan span);

}  // namespace ts::core::text

#endif  // TRANSFORMER_SERVING_CORE_TEXT_SENTENCE_SPLITTER_H_
