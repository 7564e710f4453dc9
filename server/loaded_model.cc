#include "server/loaded_model.h"

#include <utility>

namespace ts::server {

LoadedModel::LoadedModel(std::string name,
                         std::shared_ptr<const core::MarianModel> model,
                         RequestValidator validator, std::string cache_identity,
                         int64_t weight_bytes, int num_workers,
                         std::function<void()> on_free)
    : free_notice_{std::move(on_free)},
      name_(std::move(name)),
      model_(std::move(model)),
      validator_(std::move(validator)),
      cache_identity_(std::move(cache_identity)),
      weight_bytes_(weight_bytes),
      translators_(static_cast<size_t>(num_workers)) {}

core::Translator& LoadedModel::TranslatorFor(int worker,
                                             int intra_threads) const {
  std::unique_ptr<core::Translator>& translator = translators_.at(worker);
  if (translator == nullptr) {
    translator = std::make_unique<core::Translator>(model_, intra_threads);
  }
  return *translator;
}

}  // namespace ts::server
