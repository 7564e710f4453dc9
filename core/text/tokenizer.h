// MarianTokenizer: SentencePiece pieces mapped to ids through vocab.json.
#ifndef TRANSFORMER_SERVING_CORE_TEXT_TOKENIZER_H_
#define TRANSFORMER_SERVING_CORE_TEXT_TOKENIZER_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/text/sentencepiece_model.h"

namespace ts::core {

// True if `text` is well-formed UTF-8 (RFC 3629: no overlongs, surrogates,
// values past U+10FFFF or truncated sequences), which SentencePiece expects.
bool IsValidUtf8(std::string_view text);

// Bytes [begin, end) of one token in a text; empty for a token with no text
// (</s>, <pad>).
struct TokenRange {
  size_t begin = 0;
  size_t end = 0;
};

// Source ids with the bytes of the source text each came from.
struct EncodedSource {
  std::vector<int> ids;            // as MarianTokenizer::EncodeSource
  std::vector<TokenRange> ranges;  // one per id
};

// Target text with the bytes of it each id produced.
struct DecodedTarget {
  std::string text;                // as MarianTokenizer::DecodeTarget
  std::vector<TokenRange> ranges;  // one per id
};

// As MarianTokenizer in transformers: the source text is split into pieces by
// source.spm, a leading `>>xxx<<` language token is kept whole, pieces map to
// ids through vocab.json (unknown pieces -> <unk>) and </s> is appended.
// Target ids map back to pieces through vocab.json (target_vocab.json when
// the vocabularies are separate) and are joined by
// target.spm; </s> and <pad> are dropped. Const methods are thread-safe.
class MarianTokenizer {
 public:
  MarianTokenizer();
  ~MarianTokenizer();
  MarianTokenizer(MarianTokenizer&&) noexcept;
  MarianTokenizer& operator=(MarianTokenizer&&) noexcept;

  // Reads vocab.json, source.spm and target.spm from `model_dir`, and
  // target_vocab.json if present (separate source and target vocabularies,
  // as MarianTokenizer's separate_vocabs).
  // Errors: NotFound for a missing file; InvalidArgument for malformed JSON,
  // a non-integer or duplicate id, or a vocab without </s>, <unk> or <pad>.
  static absl::StatusOr<MarianTokenizer> Load(const std::string& model_dir);

  // Source ids of `text`, </s> included. Errors: InvalidArgument if `text` is
  // not valid UTF-8.
  absl::StatusOr<std::vector<int>> EncodeSource(std::string_view text) const;

  // Text of target ids; ids outside the vocabulary are skipped.
  std::string DecodeTarget(absl::Span<const int> ids) const;

  // EncodeSource(text) plus each id's bytes in `text`: the input bytes the
  // SentencePiece piece was normalized from (NFKC folding, e.g. "ﬁ" -> "fi",
  // maps the piece back to the original bytes, so a range may be longer or
  // shorter than the piece). A piece "▁word" covers the word and, when the
  // input has one, the space before it (SentencePiece counts a space to the
  // next piece); extra spaces that normalization removes belong to no piece.
  // A leading ">>xxx<<" language token covers its bytes; </s> gets the empty
  // range [text.size(), text.size()). Errors: as EncodeSource.
  absl::StatusOr<EncodedSource> EncodeSourceWithRanges(
      std::string_view text) const;

  // DecodeTarget(ids) plus each id's bytes in that text: a piece "▁Hund"
  // covers " Hund" (the space it decodes to, none at the start of the text).
  // </s>, <pad> and ids outside the vocabulary get an empty range at the end
  // of the text decoded before them.
  DecodedTarget DecodeTargetWithRanges(absl::Span<const int> ids) const;

  // The vocab.json piece of each id (source or target: the vocabulary is
  // shared), e.g. "▁Ein", "</s>"; "" for an id outside the vocabulary.
  std::vector<std::string> Pieces(absl::Span<const int> ids) const;

  int vocab_size() const { return static_cast<int>(id_to_piece_.size()); }
  // Entries of target_vocab.json (separate vocabularies), else vocab_size.
  int target_vocab_size() const {
    return static_cast<int>(target_id_to_piece_.size());
  }
  int target_eos_id() const { return target_eos_id_; }
  int target_pad_id() const { return target_pad_id_; }
  int eos_id() const { return eos_id_; }
  int unk_id() const { return unk_id_; }
  int pad_id() const { return pad_id_; }

 private:
  std::unique_ptr<SentencePieceModel> source_spm_;
  std::unique_ptr<SentencePieceModel> target_spm_;
  std::unordered_map<std::string, int> piece_to_id_;
  std::vector<std::string> id_to_piece_;
  // Target ids -> pieces: target_vocab.json if present, else vocab.json.
  std::vector<std::string> target_id_to_piece_;
  int target_eos_id_ = 0;
  int target_pad_id_ = 0;
  int eos_id_ = 0;
  int unk_id_ = 1;
  int pad_id_ = 0;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_TEXT_TOKENIZER_H_
