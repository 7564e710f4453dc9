// Incremental detokenization of target ids, for token streaming.
#ifndef TRANSFORMER_SERVING_CORE_TEXT_INCREMENTAL_DETOKENIZER_H_
#define TRANSFORMER_SERVING_CORE_TEXT_INCREMENTAL_DETOKENIZER_H_

#include <cstddef>
#include <string>
#include <vector>

#include "core/text/tokenizer.h"

namespace ts::core {

// Turns target ids, fed one at a time as a search chooses them, into text
// deltas whose concatenation is byte for byte MarianTokenizer::DecodeTarget
// of all the ids (the text the unary Translate returns): </s>, <pad> and ids
// outside the vocabulary are dropped, SentencePiece joins the pieces (the
// first piece's word mark gives no leading space, byte-fallback pieces form
// UTF-8 characters, an unknown piece reads " ⁇ ").
//
// Each delta is text that no later id can change, valid UTF-8. The text is
// decoded with DecodeTarget after every id and handed out up to its stable
// end: everything except trailing U+FFFD characters, which is what
// SentencePiece makes of byte-fallback pieces that do not (yet) form a whole
// UTF-8 character; the next byte piece may complete it (held back until a
// later id or Finish settles it).
//
// Cost per id: one decode of the ids since the last "anchor" (usually one or
// two), not of the whole sequence. SentencePiece's text is the concatenation
// of each piece's surface, which depends only on whether any text precedes
// it (a leading word mark is dropped at the start) and, for byte pieces, on
// the byte run it belongs to. So once all text so far is out, the last id
// becomes the anchor if its own text is non-empty and has no U+FFFD: the
// text of the ids after it is DecodeTarget(anchor and them) minus the
// anchor's own text (checked on every decode; the detokenizer falls back to
// decoding everything if that ever does not hold).
//
// Not thread-safe; one per streamed sequence. The tokenizer must outlive it.
class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const MarianTokenizer& tokenizer);

  // Adds the next target id; returns the text that became stable with it:
  // the id's own text and any held-back text it settled; empty for a dropped
  // id (</s>, <pad>) or a byte piece that leaves a character incomplete.
  std::string Add(int id);

  // Everything not yet returned (held-back bytes); afterwards the deltas
  // joined equal DecodeTarget(ids()). Add after Finish starts a continuation
  // of the same sequence.
  std::string Finish();

  // The ids added so far.
  const std::vector<int>& ids() const { return ids_; }

 private:
  static constexpr size_t kNoAnchor = static_cast<size_t>(-1);

  // The text of the ids after the anchor (of all ids without one), which
  // follows emitted_[0, base_).
  std::string TailText();

  const MarianTokenizer* tokenizer_;
  std::vector<int> ids_;
  std::string emitted_;        // the text handed out so far
  size_t anchor_ = kNoAnchor;  // index in ids_ of the anchor
  std::string anchor_text_;    // DecodeTarget of the anchor alone
  size_t base_ = 0;            // emitted_ bytes up to and with the anchor
};

// Length of `text` without its trailing U+FFFD characters (EF BF BD) and
// without a trailing incomplete UTF-8 sequence: the part of a decoded prefix
// that later byte-fallback pieces cannot change.
size_t StableTextLength(const std::string& text);

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_TEXT_INCREMENTAL_DETOKENIZER_H_
