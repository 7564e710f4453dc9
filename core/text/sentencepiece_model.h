// A SentencePiece model behind an interface free of absl types: the
// sentencepiece 0.1.97 header declares its own absl::string_view, which
// clashes with abseil's, so only sentencepiece_model.cc includes it.
#ifndef TRANSFORMER_SERVING_CORE_TEXT_SENTENCEPIECE_MODEL_H_
#define TRANSFORMER_SERVING_CORE_TEXT_SENTENCEPIECE_MODEL_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ts::core {

class SentencePieceModel {
 public:
  ~SentencePieceModel();

  // Loads a .spm file; nullptr and `error` set on failure.
  static std::unique_ptr<SentencePieceModel> Load(const std::string& path,
                                                  std::string* error);

  // Splits `text` into pieces. False and `error` set on failure.
  bool Encode(std::string_view text, std::vector<std::string>* pieces,
              std::string* error) const;

  // Joins pieces into text (undoing the "▁" word marks).
  bool Decode(const std::vector<std::string>& pieces, std::string* text) const;

  // Encode, plus each piece's bytes [first, second) in `text` (SentencePiece
  // maps the normalized pieces back to the input bytes they came from).
  bool EncodeWithRanges(std::string_view text, std::vector<std::string>* pieces,
                        std::vector<std::pair<size_t, size_t>>* ranges,
                        std::string* error) const;

  // Decode, plus each piece's bytes [first, second) in `text` (empty for a
  // piece that decodes to nothing).
  bool DecodeWithRanges(const std::vector<std::string>& pieces,
                        std::string* text,
                        std::vector<std::pair<size_t, size_t>>* ranges) const;

 private:
  SentencePieceModel();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_TEXT_SENTENCEPIECE_MODEL_H_
