// A model in memory, as requests and workers share it; and a request's hold
// on it (a lease), which keeps it from being evicted.
#ifndef TRANSFORMER_SERVING_SERVER_LOADED_MODEL_H_
#define TRANSFORMER_SERVING_SERVER_LOADED_MODEL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/model/marian_model.h"
#include "core/translator.h"
#include "server/request_validation.h"

namespace ts::server {

// Thread-safe, immutable but for the per-worker translators (each touched by
// its own worker only) and the retired flag. Its weights are freed when the
// last holder lets go: the registry (while the model is loaded), every lease,
// and a worker while it decodes the model's sentences. `on_free` then runs
// (the registry counts the bytes as freed).
class LoadedModel {
 public:
  // `name`: the repository's name of the model; `cache_identity`: what the
  // translation cache keys its results by (folder and compute type);
  // `weight_bytes`: what counts against --model_memory_mb;
  // `num_workers`: the worker threads that may call TranslatorFor.
  LoadedModel(std::string name, std::shared_ptr<const core::MarianModel> model,
              RequestValidator validator, std::string cache_identity,
              int64_t weight_bytes, int num_workers,
              std::function<void()> on_free);
  ~LoadedModel() = default;

  LoadedModel(const LoadedModel&) = delete;
  LoadedModel& operator=(const LoadedModel&) = delete;

  const std::string& name() const { return name_; }
  const core::MarianModel& model() const { return *model_; }
  const RequestValidator& validator() const { return validator_; }
  const std::string& cache_identity() const { return cache_identity_; }
  int64_t weight_bytes() const { return weight_bytes_; }

  // The Translator of worker `worker` (in [0, num_workers)), built on the
  // first call, which must come from that worker's thread (its scratch
  // memory is first touched there); only that thread may use it.
  // `intra_threads`: as core::Translator.
  core::Translator& TranslatorFor(int worker, int intra_threads) const;

  // Set when the registry unloads or evicts this copy: workers then drop
  // their hold as soon as they have no sentence of it left.
  bool retired() const { return retired_.load(std::memory_order_acquire); }
  void Retire() const { retired_.store(true, std::memory_order_release); }

 private:
  // Declared first, so destroyed last: runs `on_free` once the weights and
  // translators below are gone.
  struct FreeNotice {
    std::function<void()> on_free;
    ~FreeNotice() {
      if (on_free) on_free();
    }
  };
  FreeNotice free_notice_;
  const std::string name_;
  const std::shared_ptr<const core::MarianModel> model_;
  const RequestValidator validator_;
  const std::string cache_identity_;
  const int64_t weight_bytes_;
  mutable std::vector<std::unique_ptr<core::Translator>> translators_;
  mutable std::atomic<bool> retired_{false};
};

// One request's hold on a loaded model (ModelRegistry::Acquire): while any
// lease of a model exists, the model is in flight and is not evicted.
// `on_release` runs when the lease is destroyed. Thread-safe to share.
class ModelLease {
 public:
  ModelLease(std::shared_ptr<const LoadedModel> loaded,
             std::function<void()> on_release)
      : loaded_(std::move(loaded)), on_release_(std::move(on_release)) {}
  ~ModelLease() {
    if (on_release_) on_release_();
  }

  ModelLease(const ModelLease&) = delete;
  ModelLease& operator=(const ModelLease&) = delete;

  const LoadedModel& loaded() const { return *loaded_; }
  const std::shared_ptr<const LoadedModel>& shared() const { return loaded_; }

 private:
  std::shared_ptr<const LoadedModel> loaded_;
  std::function<void()> on_release_;
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_LOADED_MODEL_H_
