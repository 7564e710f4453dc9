#include "core/model/sentencepiece_model.h"

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

}  // namespace ts::core
