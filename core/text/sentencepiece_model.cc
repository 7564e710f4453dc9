#include "core/text/sentencepiece_model.h"

#include "sentencepiece_processor.h"

namespace ts::core {

struct SentencePieceModel::Impl {
  sentencepiece::SentencePieceProcessor processor;
};

SentencePieceModel::SentencePieceModel() : impl_(std::make_unique<Impl>()) {}
SentencePieceModel::~SentencePieceModel() = default;

std::unique_ptr<SentencePieceModel> SentencePieceModel::Load(
    const std::string& path, std::string* error) {
  std::unique_ptr<SentencePieceModel> model(new SentencePieceModel());
  const auto status = model->impl_->processor.Load(path);
  if (!status.ok()) {
    *error = status.ToString();
    return nullptr;
  }
  return model;
}

bool SentencePieceModel::Encode(std::string_view text,
                                std::vector<std::string>* pieces,
                                std::string* error) const {
  const auto status = impl_->processor.Encode(text, pieces);
  if (!status.ok()) {
    *error = status.ToString();
    return false;
  }
  return true;
}

bool SentencePieceModel::Decode(const std::vector<std::string>& pieces,
                                std::string* text) const {
  return impl_->processor.Decode(pieces, text).ok();
}

bool SentencePieceModel::EncodeWithRanges(
    std::string_view text, std::vector<std::string>* pieces,
    std::vector<std::pair<size_t, size_t>>* ranges, std::string* error) const {
  // The immutable proto API reports no status; Encode's does.
  std::vector<std::string> checked;
  const auto status = impl_->processor.Encode(text, &checked);
  if (!status.ok()) {
    *error = status.ToString();
    return false;
  }
  const sentencepiece::ImmutableSentencePieceText spt =
      impl_->processor.EncodeAsImmutableProto(text);
  pieces->clear();
  ranges->clear();
  for (const auto& piece : spt.pieces()) {
    pieces->push_back(piece.piece());
    ranges->emplace_back(piece.begin(), piece.end());
  }
  return true;
}

bool SentencePieceModel::DecodeWithRanges(
    const std::vector<std::string>& pieces, std::string* text,
    std::vector<std::pair<size_t, size_t>>* ranges) const {
  if (!impl_->processor.Decode(pieces, text).ok()) return false;
  const sentencepiece::ImmutableSentencePieceText spt =
      impl_->processor.DecodePiecesAsImmutableProto(pieces);
  if (spt.text() != *text) return false;
  ranges->clear();
  for (const auto& piece : spt.pieces()) {
    ranges->emplace_back(piece.begin(), piece.end());
  }
  return true;
}

}  // namespace ts::core
