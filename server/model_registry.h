// The models a server can serve (a model repository, or one --model_dir):
// which languages each translates, which are in memory, loading on demand
// within a memory budget, evicting the least recently used idle ones, and
// unloading once the last request using a model ends.
//
// Triton's model repository and its load/unload API are the anchor; the
// budget is TF Serving's total_model_memory_limit_bytes, with eviction
// (which neither does) instead of a refusal.
#ifndef TRANSFORMER_SERVING_SERVER_MODEL_REGISTRY_H_
#define TRANSFORMER_SERVING_SERVER_MODEL_REGISTRY_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/loaded_model.h"
#include "server/metrics.h"
#include "server/request_validation.h"

namespace ts::server {

struct ModelRegistryOptions {
  std::string compute_type = "fp32";  // fp32 | bf16 | int8
  // Bound on the weight bytes of the models in memory; 0 = none.
  int64_t memory_budget_bytes = 0;
  int num_workers = 1;  // worker threads (LoadedModel::TranslatorFor)
  RequestLimits limits;
  // The model of a request that names neither model nor languages; empty:
  // the only model.
  std::string default_model;
  // Pairs without a model go through this language; empty: never.
  std::string pivot_language = "en";
};

enum class ModelState { kUnloaded, kLoading, kReady, kUnloading, kFailed };

// "UNLOADED", "LOADING", ... (the proto's names without MODEL_STATE_).
const char* ModelStateName(ModelState state);

// What ListModels reports of one model.
struct ModelInfo {
  std::string name;
  std::string directory;
  std::string source_language;  // canonical (language_codes.h)
  std::vector<std::string> target_languages;
  ModelState state = ModelState::kUnloaded;
  std::string reason;        // why the last load failed
  int64_t weight_bytes = 0;  // core::WeightBytes of the compute type
  std::string compute_type;
  absl::Time last_used = absl::InfinitePast();  // never: InfinitePast
  int in_flight = 0;  // leases held now, of every copy (UNLOADING ones too)
  bool is_default = false;
};

// One model a request runs through; `target_token` (">>deu<<") goes before
// each source of a multi-target model, else empty.
struct RouteHop {
  std::string model;
  std::string target_token;
};

// Thread-safe. Models are added before serving; then requests Resolve a
// route and Acquire a lease on each model of it.
class ModelRegistry {
 public:
  // `metrics` (may be null) gets the model gauges and load/eviction counts.
  ModelRegistry(ModelRegistryOptions options, Metrics* metrics);
  // Shutdown, then waits for the loads in progress.
  ~ModelRegistry();

  ModelRegistry(const ModelRegistry&) = delete;
  ModelRegistry& operator=(const ModelRegistry&) = delete;

  // Adds the model folder `directory` under `name` (read: config.json for
  // its size, tokenizer_config.json / metadata.json / the folder name and
  // vocab.json for its languages; the weights load later). Errors:
  // InvalidArgument for a duplicate name or an unreadable config (naming the
  // folder).
  absl::Status Add(std::string name, std::string directory);
  // Adds every subfolder of `repository` that holds a config.json, under
  // the subfolder's name. Errors: NotFound if it is not a folder or holds no
  // model; else as Add.
  absl::Status AddRepository(const std::string& repository);
  // After the Adds: checks default_model names a model. Errors:
  // InvalidArgument naming the served models.
  absl::Status CheckDefault() const;

  // Loads at start, on this thread: `which` is "all", "none", names
  // separated by commas, or "" (every model that still fits the budget, by
  // name). Errors: the first model that fails to load, an unknown name, or
  // RESOURCE_EXHAUSTED if the named models do not fit together.
  absl::Status LoadAtStart(const std::string& which);

  // The models a request runs through: `model` if set, else the model that
  // translates `source` into `target` (codes as CanonicalLanguage reads
  // them; a multi-target model's token goes in the hop), else, with
  // `allow_pivot`, two hops through pivot_language, else the default model
  // (both languages empty). Errors: NotFound naming the models, or the
  // pairs, that are served; InvalidArgument for only one language set or
  // several models and no default.
  absl::StatusOr<std::vector<RouteHop>> Resolve(std::string_view model,
                                                std::string_view source,
                                                std::string_view target,
                                                bool allow_pivot) const;

  using AcquireDone =
      std::function<void(absl::StatusOr<std::shared_ptr<const ModelLease>>)>;
  // Calls `done` with a lease on model `name` once it is READY: on this
  // thread if it is now, else from a registry thread after it is loaded
  // (evicting idle least-recently-used models until it fits the budget,
  // waiting for busy ones to go idle; models chosen to make room take no new
  // lease meanwhile, so a load never starves behind steady traffic; the
  // exception: requests that were already waiting when a copy was published
  // lease it even while it drains, else each load would serve one request).
  // Errors: NotFound (unknown name), ResourceExhausted (its weights exceed
  // the whole budget, naming both), DeadlineExceeded at `deadline`,
  // Cancelled when `is_cancelled` (polled every 50 ms; may be empty) says
  // so, Unavailable after Shutdown, or the load's own error.
  void Acquire(const std::string& name, absl::Time deadline,
               std::function<bool()> is_cancelled, AcquireDone done);
  // Acquire, blocking this thread (for LoadModel and tests).
  absl::StatusOr<std::shared_ptr<const ModelLease>> AcquireBlocking(
      const std::string& name, absl::Time deadline,
      const std::function<bool()>& is_cancelled);

  // Unloads model `name` at once: it takes no new lease; its memory is freed
  // when its last lease ends (UNLOADING until then). Unloading an unloaded
  // model does nothing. Errors: NotFound.
  absl::StatusOr<ModelInfo> Unload(const std::string& name);

  // The copies in memory now (READY), by name: for warm-up.
  std::vector<std::shared_ptr<const LoadedModel>> LoadedModels() const;
  // Every model, sorted by name. Errors (Info): NotFound.
  std::vector<ModelInfo> List() const;
  absl::StatusOr<ModelInfo> Info(const std::string& name) const;
  // (source, target) pairs served, canonical codes, sorted; with
  // `with_pivot` also the pairs reachable through pivot_language.
  std::vector<std::pair<std::string, std::string>> LanguagePairs(
      bool with_pivot) const;
  // The model of a request without model or languages ("" if none).
  std::string default_model() const;
  int64_t memory_budget_bytes() const { return options_.memory_budget_bytes; }
  // Weight bytes of the copies in memory (loading ones included).
  int64_t resident_bytes() const;
  int model_count() const;

  // Stops loading: waiting Acquires get UNAVAILABLE; waits for their
  // threads. Call before the handler that Acquire calls back goes away.
  void Shutdown();

 private:
  struct Entry;

  // Unlocked-callers' loop of AcquireBlocking.
  absl::StatusOr<std::shared_ptr<const ModelLease>> AcquireLocked(
      Entry& entry, absl::Time deadline,
      const std::function<bool()>& is_cancelled,
      std::unique_lock<std::mutex>& lock);
  // A lease on entry's loaded copy (which must exist).
  std::shared_ptr<const ModelLease> LeaseLocked(Entry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Loads entry's weights with the lock released; then publishes them.
  absl::Status LoadLocked(Entry& entry, std::unique_lock<std::mutex>& lock);
  // Makes room for the longest-waiting model that needs loading: evicts
  // idle least-recently-used models (their copies go to `released`, to be
  // dropped after unlocking) and marks busy ones draining.
  void RebalanceLocked(
      std::vector<std::shared_ptr<const LoadedModel>>* released)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes entry's loaded copy out (unload or eviction); it is freed when its
  // last holder lets go.
  void RetireLocked(Entry& entry,
                    std::vector<std::shared_ptr<const LoadedModel>>* released)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool FitsLocked(const Entry& entry) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ModelInfo InfoLocked(const Entry& entry) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Entry* FindLocked(std::string_view name) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NamesLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PublishLocked(const Entry& entry) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ModelRegistryOptions options_;
  Metrics* const metrics_;

  mutable std::mutex mu_;
  std::condition_variable changed_;  // a load ended, a lease or copy freed
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_
      ABSL_GUARDED_BY(mu_);
  int64_t resident_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  // Threads of Acquires that wait; joined once finished, and by Shutdown.
  struct Waiter {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> finished;
  };
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_MODEL_REGISTRY_H_
