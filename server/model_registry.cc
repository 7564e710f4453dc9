#include "server/model_registry.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/model/config.h"
#include "core/model/model_memory.h"
#include "server/language_codes.h"
#include "server/model_languages.h"

namespace ts::server {

struct ModelRegistry::Entry {
  std::string name;
  std::string directory;
  std::string source;  // canonical
  // (canonical target, its >>xxx<< token or "" for a one-target model)
  std::vector<std::pair<std::string, std::string>> targets;
  int64_t weight_bytes = 0;
  // The copy new leases get; null while unloaded, loading or failed.
  std::shared_ptr<const LoadedModel> loaded;
  int64_t generation = 0;     // of `loaded`: leases of older copies are retired
  int in_flight = 0;          // leases of `loaded`
  int retired_in_flight = 0;  // leases of older copies (UNLOADING)
  // Weight bytes of every copy still in memory: `loaded`, and older copies
  // that leases or workers still hold (UNLOADING).
  int64_t alive_bytes = 0;
  bool loading = false;
  int64_t load_failures = 0;
  std::string failure;  // the last load's error; "" after a good load
  // Acquires waiting for it, and since when the longest has waited.
  int wanting = 0;
  absl::Time wanted_since = absl::InfiniteFuture();
  // A load waits for this model's requests to end so it can be evicted:
  // it takes no new lease meanwhile.
  bool draining = false;
  absl::Time last_used = absl::InfinitePast();
};

const char* ModelStateName(ModelState state) {
  switch (state) {
    case ModelState::kUnloaded:
      return "UNLOADED";
    case ModelState::kLoading:
      return "LOADING";
    case ModelState::kReady:
      return "READY";
    case ModelState::kUnloading:
      return "UNLOADING";
    case ModelState::kFailed:
      return "FAILED";
  }
  return "UNLOADED";
}

ModelRegistry::ModelRegistry(ModelRegistryOptions options, Metrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {}

ModelRegistry::~ModelRegistry() {
  Shutdown();
  // Dropped unlocked: a copy's free notice takes the lock.
  std::vector<std::shared_ptr<const LoadedModel>> released;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, entry] : entries_) {
      if (entry->loaded != nullptr)
        released.push_back(std::move(entry->loaded));
    }
  }
}

absl::Status ModelRegistry::Add(std::string name, std::string directory) {
  absl::StatusOr<core::ModelConfig> config = core::ModelConfig::Load(directory);
  if (!config.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load model from ", directory, " (model \"", name,
                     "\"): ", config.status().message()));
  }
  absl::StatusOr<core::ops::ComputeType> compute_type =
      core::MarianModel::ParseComputeType(options_.compute_type);
  if (!compute_type.ok()) return compute_type.status();
  auto entry = std::make_unique<Entry>();
  entry->name = name;
  entry->directory = std::move(directory);
  entry->weight_bytes = core::WeightBytes(*config, *compute_type);
  const ModelLanguages languages = ReadModelLanguages(entry->directory);
  entry->source = CanonicalLanguage(languages.source);
  if (languages.target_tokens.size() > 1) {
    for (const TargetLanguageToken& target :
         MultiTargetLanguages(languages.target_tokens)) {
      entry->targets.emplace_back(target.language, target.token);
    }
  } else {
    const std::string target = CanonicalLanguage(languages.target);
    if (!target.empty()) entry->targets.emplace_back(target, "");
  }
  std::lock_guard lock(mu_);
  if (entries_.count(name) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model \"", name, "\" is added twice"));
  }
  entries_.emplace(std::move(name), std::move(entry));
  return absl::OkStatus();
}

absl::Status ModelRegistry::AddRepository(const std::string& repository) {
  std::error_code error;
  if (!std::filesystem::is_directory(repository, error)) {
    return absl::NotFoundError(
        absl::StrCat("--model_repository ", repository, " is not a folder"));
  }
  std::vector<std::filesystem::path> folders;
  for (const auto& item :
       std::filesystem::directory_iterator(repository, error)) {
    if (item.is_directory() &&
        std::filesystem::exists(item.path() / "config.json")) {
      folders.push_back(item.path());
    }
  }
  if (folders.empty()) {
    return absl::NotFoundError(
        absl::StrCat("--model_repository ", repository,
                     " holds no model folder (a subfolder with config.json)"));
  }
  std::sort(folders.begin(), folders.end());
  for (const std::filesystem::path& folder : folders) {
    if (absl::Status status = Add(folder.filename(), folder.string());
        !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

absl::Status ModelRegistry::CheckDefault() const {
  std::lock_guard lock(mu_);
  if (options_.default_model.empty() ||
      FindLocked(options_.default_model) != nullptr) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--default_model \"", options_.default_model,
                   "\" is not served; served: ", NamesLocked()));
}

std::string ModelRegistry::default_model() const {
  std::lock_guard lock(mu_);
  if (!options_.default_model.empty()) return options_.default_model;
  return entries_.size() == 1 ? entries_.begin()->first : "";
}

int ModelRegistry::model_count() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(entries_.size());
}

int64_t ModelRegistry::resident_bytes() const {
  std::lock_guard lock(mu_);
  return resident_bytes_;
}

ModelRegistry::Entry* ModelRegistry::FindLocked(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second.get();
}

std::string ModelRegistry::NamesLocked() const {
  std::vector<std::string> names;
  for (const auto& [name, entry] : entries_) names.push_back(name);
  return absl::StrJoin(names, ", ");
}

absl::Status ModelRegistry::LoadAtStart(const std::string& which) {
  std::vector<std::string> names;
  const bool fit_only = which.empty();
  {
    std::lock_guard lock(mu_);
    if (which == "none") return absl::OkStatus();
    if (which.empty() || which == "all") {
      for (const auto& [name, entry] : entries_) names.push_back(name);
    } else {
      for (absl::string_view name :
           absl::StrSplit(which, ',', absl::SkipWhitespace())) {
        if (FindLocked(std::string(name)) == nullptr) {
          return absl::InvalidArgumentError(
              absl::StrCat("--load_models names \"", name,
                           "\", which is not served; served: ", NamesLocked()));
        }
        names.emplace_back(name);
      }
    }
  }
  // The default model first, so it is the one that fits.
  const std::string first = default_model();
  std::stable_partition(names.begin(), names.end(),
                        [&first](const std::string& n) { return n == first; });
  for (const std::string& name : names) {
    std::unique_lock lock(mu_);
    Entry& entry = *FindLocked(name);
    if (entry.loaded != nullptr) continue;
    if (!FitsLocked(entry)) {
      if (fit_only) continue;
      return absl::ResourceExhaustedError(absl::StrCat(
          "--load_models: model \"", name, "\" (", entry.weight_bytes,
          " weight bytes) does not fit --model_memory_mb (",
          options_.memory_budget_bytes, " bytes) beside the ", resident_bytes_,
          " bytes already loaded"));
    }
    if (absl::Status status = LoadLocked(entry, lock); !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

bool ModelRegistry::FitsLocked(const Entry& entry) const {
  return options_.memory_budget_bytes <= 0 ||
         resident_bytes_ + entry.weight_bytes <= options_.memory_budget_bytes;
}

absl::Status ModelRegistry::LoadLocked(Entry& entry,
                                       std::unique_lock<std::mutex>& lock) {
  entry.loading = true;
  resident_bytes_ += entry.weight_bytes;  // reserved while loading
  PublishLocked(entry);
  const std::string directory = entry.directory;
  const std::string name = entry.name;
  const int64_t bytes = entry.weight_bytes;
  lock.unlock();

  const absl::Time start = absl::Now();
  absl::StatusOr<std::shared_ptr<const LoadedModel>> loaded =
      [&]() -> absl::StatusOr<std::shared_ptr<const LoadedModel>> {
    absl::StatusOr<core::ops::ComputeType> compute_type =
        core::MarianModel::ParseComputeType(options_.compute_type);
    if (!compute_type.ok()) return compute_type.status();
    absl::StatusOr<std::shared_ptr<const core::MarianModel>> model =
        core::MarianModel::Load(directory, *compute_type);
    if (!model.ok()) return model.status();
    RequestValidator validator(*model, options_.limits,
                               ReadModelLanguages(directory).source);
    Entry* const target = &entry;
    return std::make_shared<const LoadedModel>(
        name, *model, std::move(validator),
        absl::StrCat(directory, "|", options_.compute_type), bytes,
        options_.num_workers, [this, target, bytes] {
          std::lock_guard free_lock(mu_);
          resident_bytes_ -= bytes;
          target->alive_bytes -= bytes;
          PublishLocked(*target);
          changed_.notify_all();
        });
  }();
  const absl::Duration took = absl::Now() - start;

  lock.lock();
  entry.loading = false;
  if (!loaded.ok()) {
    resident_bytes_ -= bytes;
    ++entry.load_failures;
    entry.failure = std::string(loaded.status().message());
    PublishLocked(entry);
    changed_.notify_all();
    return absl::Status(
        loaded.status().code(),
        absl::StrCat("cannot load model \"", name, "\" from ", directory, ": ",
                     loaded.status().message()));
  }
  // From now on the copy's own free notice gives the bytes back; until it
  // is retired they are counted here.
  entry.alive_bytes += bytes;
  entry.loaded = *std::move(loaded);
  ++entry.generation;
  entry.in_flight = 0;
  entry.failure.clear();
  if (metrics_ != nullptr) metrics_->RecordModelLoad(name, took);
  PublishLocked(entry);
  changed_.notify_all();
  return absl::OkStatus();
}

std::shared_ptr<const ModelLease> ModelRegistry::LeaseLocked(Entry& entry) {
  ++entry.in_flight;
  entry.last_used = absl::Now();
  Entry* const target = &entry;
  const int64_t generation = entry.generation;
  return std::make_shared<const ModelLease>(
      entry.loaded, [this, target, generation] {
        std::vector<std::shared_ptr<const LoadedModel>> released;
        {
          std::lock_guard lock(mu_);
          if (target->generation == generation) {
            --target->in_flight;
          } else {
            --target->retired_in_flight;
          }
          target->last_used = absl::Now();
          RebalanceLocked(&released);
          changed_.notify_all();
        }
      });
}

void ModelRegistry::RetireLocked(
    Entry& entry, std::vector<std::shared_ptr<const LoadedModel>>* released) {
  if (entry.loaded == nullptr) return;
  entry.loaded->Retire();
  released->push_back(std::move(entry.loaded));
  entry.loaded = nullptr;
  entry.retired_in_flight += entry.in_flight;
  entry.in_flight = 0;
  entry.draining = false;
  ++entry.generation;
  PublishLocked(entry);
}

void ModelRegistry::RebalanceLocked(
    std::vector<std::shared_ptr<const LoadedModel>>* released) {
  for (auto& [name, entry] : entries_) entry->draining = false;
  if (options_.memory_budget_bytes <= 0) return;
  // The model waited for longest that is neither loaded nor loading.
  Entry* wanted = nullptr;
  for (auto& [name, entry] : entries_) {
    if (entry->wanting == 0 || entry->loaded != nullptr || entry->loading ||
        entry->weight_bytes > options_.memory_budget_bytes) {
      continue;
    }
    if (wanted == nullptr || entry->wanted_since < wanted->wanted_since) {
      wanted = entry.get();
    }
  }
  if (wanted == nullptr) return;
  // Bytes still to free: copies already retired are on their way out.
  int64_t retiring = 0;
  for (auto& [name, entry] : entries_) {
    retiring += entry->alive_bytes -
                (entry->loaded != nullptr ? entry->weight_bytes : 0);
  }
  int64_t excess = resident_bytes_ - retiring + wanted->weight_bytes -
                   options_.memory_budget_bytes;
  if (excess <= 0) return;
  std::vector<Entry*> victims;
  for (auto& [name, entry] : entries_) {
    if (entry.get() != wanted && entry->loaded != nullptr) {
      victims.push_back(entry.get());
    }
  }
  // Least recently used first; idle ones are evicted now, busy ones drain.
  std::sort(victims.begin(), victims.end(),
            [](Entry* a, Entry* b) { return a->last_used < b->last_used; });
  for (Entry* victim : victims) {
    if (excess <= 0) break;
    if (victim->in_flight == 0) {
      excess -= victim->weight_bytes;
      if (metrics_ != nullptr) metrics_->CountModelEviction(victim->name);
      RetireLocked(*victim, released);
    }
  }
  for (Entry* victim : victims) {
    if (excess <= 0) break;
    if (victim->loaded != nullptr) {
      victim->draining = true;
      excess -= victim->weight_bytes;
    }
  }
}

absl::StatusOr<std::shared_ptr<const ModelLease>>
ModelRegistry::AcquireBlocking(const std::string& name, absl::Time deadline,
                               const std::function<bool()>& is_cancelled) {
  std::unique_lock lock(mu_);
  Entry* entry = FindLocked(name);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "model \"", name, "\" is not served; served: ", NamesLocked()));
  }
  return AcquireLocked(*entry, deadline, is_cancelled, lock);
}

absl::StatusOr<std::shared_ptr<const ModelLease>> ModelRegistry::AcquireLocked(
    Entry& entry, absl::Time deadline,
    const std::function<bool()>& is_cancelled,
    std::unique_lock<std::mutex>& lock) {
  if (entry.loaded != nullptr && !entry.draining) return LeaseLocked(entry);
  if (options_.memory_budget_bytes > 0 &&
      entry.weight_bytes > options_.memory_budget_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "model \"", entry.name, "\" needs ", entry.weight_bytes,
        " weight bytes, more than the whole --model_memory_mb budget of ",
        options_.memory_budget_bytes, " bytes"));
  }
  if (entry.wanting++ == 0) entry.wanted_since = absl::Now();
  const int64_t failures_at_start = entry.load_failures;
  // A copy loaded (or retired) since this request began to wait: the load
  // was for it and the requests waiting with it, so they lease it even when
  // another model's load has it draining already (else each load would
  // serve one request: a load per request when two models alternate).
  const int64_t generation_at_start = entry.generation;
  absl::StatusOr<std::shared_ptr<const ModelLease>> result =
      absl::UnknownError("unset");
  while (true) {
    if (shutting_down_) {
      result =
          absl::UnavailableError("server is shutting down and loads no model");
      break;
    }
    if (entry.loaded != nullptr &&
        (!entry.draining || entry.generation != generation_at_start)) {
      result = LeaseLocked(entry);
      break;
    }
    if (entry.load_failures != failures_at_start) {
      result = absl::UnavailableError(absl::StrCat(
          "cannot load model \"", entry.name, "\": ", entry.failure));
      break;
    }
    if (entry.loaded == nullptr && !entry.loading && FitsLocked(entry)) {
      // This waiter loads it; the others wait for the outcome.
      absl::Status status = LoadLocked(entry, lock);
      if (!status.ok()) {
        result = absl::UnavailableError(status.message());
        break;
      }
      continue;
    }
    std::vector<std::shared_ptr<const LoadedModel>> released;
    RebalanceLocked(&released);
    if (!released.empty()) {
      // Dropped unlocked: the last holder's free notice takes the lock.
      lock.unlock();
      released.clear();
      lock.lock();
      continue;
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      result = absl::DeadlineExceededError(absl::StrCat(
          "deadline passed while model \"", entry.name, "\" ",
          entry.loading
              ? "was loading"
              : absl::StrCat("waited for memory (--model_memory_mb ",
                             options_.memory_budget_bytes, " bytes, ",
                             resident_bytes_, " in use by busy models)")));
      break;
    }
    if (is_cancelled && is_cancelled()) {
      result = absl::CancelledError(absl::StrCat(
          "request cancelled while model \"", entry.name, "\" was loading"));
      break;
    }
    changed_.wait_until(lock, absl::ToChronoTime(std::min(
                                  deadline, now + absl::Milliseconds(50))));
  }
  if (--entry.wanting == 0) entry.wanted_since = absl::InfiniteFuture();
  std::vector<std::shared_ptr<const LoadedModel>> released;
  RebalanceLocked(&released);
  changed_.notify_all();
  if (!released.empty()) {
    lock.unlock();
    released.clear();
    lock.lock();
  }
  return result;
}

void ModelRegistry::Acquire(const std::string& name, absl::Time deadline,
                            std::function<bool()> is_cancelled,
                            AcquireDone done) {
  {
    std::unique_lock lock(mu_);
    Entry* entry = FindLocked(name);
    if (entry == nullptr) {
      const std::string names = NamesLocked();
      lock.unlock();
      done(absl::NotFoundError(
          absl::StrCat("model \"", name, "\" is not served; served: ", names)));
      return;
    }
    if (entry->loaded != nullptr && !entry->draining) {
      std::shared_ptr<const ModelLease> lease = LeaseLocked(*entry);
      lock.unlock();
      done(std::move(lease));
      return;
    }
    if (!shutting_down_) {
      // Waiting (for a load or for memory) happens off the caller's thread;
      // threads that ended are joined here.
      std::erase_if(waiters_, [](Waiter& waiter) {
        if (!waiter.finished->load()) return false;
        waiter.thread.join();
        return true;
      });
      auto finished = std::make_shared<std::atomic<bool>>(false);
      waiters_.push_back(
          Waiter{std::thread([this, name, deadline, finished,
                              is_cancelled = std::move(is_cancelled),
                              done = std::move(done)] {
                   done(AcquireBlocking(name, deadline, is_cancelled));
                   finished->store(true);
                 }),
                 finished});
      return;
    }
  }
  done(absl::UnavailableError("server is shutting down and loads no model"));
}

absl::StatusOr<ModelInfo> ModelRegistry::Unload(const std::string& name) {
  std::vector<std::shared_ptr<const LoadedModel>> released;
  {
    std::lock_guard lock(mu_);
    Entry* entry = FindLocked(name);
    if (entry == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "model \"", name, "\" is not served; served: ", NamesLocked()));
    }
    RetireLocked(*entry, &released);
    changed_.notify_all();
  }
  // The registry's hold goes now; leases and workers keep the copy until
  // their last request ends (UNLOADING until then).
  released.clear();
  std::lock_guard lock(mu_);
  return InfoLocked(*FindLocked(name));
}

ModelInfo ModelRegistry::InfoLocked(const Entry& entry) const {
  ModelInfo info;
  info.name = entry.name;
  info.directory = entry.directory;
  info.source_language = entry.source;
  for (const auto& [code, token] : entry.targets) {
    info.target_languages.push_back(code);
  }
  if (entry.loading) {
    info.state = ModelState::kLoading;
  } else if (entry.loaded != nullptr) {
    info.state = ModelState::kReady;
  } else if (entry.alive_bytes > 0) {
    info.state = ModelState::kUnloading;
  } else if (!entry.failure.empty()) {
    info.state = ModelState::kFailed;
    info.reason = entry.failure;
  }
  info.weight_bytes = entry.weight_bytes;
  info.compute_type = options_.compute_type;
  info.last_used = entry.last_used;
  info.in_flight = entry.in_flight + entry.retired_in_flight;
  info.is_default =
      entry.name == (options_.default_model.empty() && entries_.size() == 1
                         ? entries_.begin()->first
                         : options_.default_model);
  return info;
}

void ModelRegistry::PublishLocked(const Entry& entry) const {
  if (metrics_ == nullptr) return;
  metrics_->SetModelState(entry.name, entry.loaded != nullptr,
                          entry.weight_bytes);
}

std::vector<std::shared_ptr<const LoadedModel>> ModelRegistry::LoadedModels()
    const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<const LoadedModel>> loaded;
  for (const auto& [name, entry] : entries_) {
    if (entry->loaded != nullptr) loaded.push_back(entry->loaded);
  }
  return loaded;
}

std::vector<ModelInfo> ModelRegistry::List() const {
  std::lock_guard lock(mu_);
  std::vector<ModelInfo> list;
  for (const auto& [name, entry] : entries_) list.push_back(InfoLocked(*entry));
  return list;
}

absl::StatusOr<ModelInfo> ModelRegistry::Info(const std::string& name) const {
  std::lock_guard lock(mu_);
  const Entry* entry = FindLocked(name);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "model \"", name, "\" is not served; served: ", NamesLocked()));
  }
  return InfoLocked(*entry);
}

std::vector<std::pair<std::string, std::string>> ModelRegistry::LanguagePairs(
    bool with_pivot) const {
  std::lock_guard lock(mu_);
  std::set<std::pair<std::string, std::string>> pairs;
  for (const auto& [name, entry] : entries_) {
    for (const auto& [target, token] : entry->targets) {
      if (!entry->source.empty()) pairs.emplace(entry->source, target);
    }
  }
  const std::string pivot = CanonicalLanguage(options_.pivot_language);
  if (with_pivot && !pivot.empty()) {
    std::set<std::pair<std::string, std::string>> direct = pairs;
    for (const auto& [source, middle] : direct) {
      if (middle != pivot) continue;
      for (const auto& [from, target] : direct) {
        if (from == pivot && target != source) pairs.emplace(source, target);
      }
    }
  }
  return {pairs.begin(), pairs.end()};
}

absl::StatusOr<std::vector<RouteHop>> ModelRegistry::Resolve(
    std::string_view model, std::string_view source, std::string_view target,
    bool allow_pivot) const {
  std::lock_guard lock(mu_);
  if (!model.empty()) {
    if (FindLocked(model) == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("model \"", std::string(model),
                       "\" is not served; served: ", NamesLocked()));
    }
    return std::vector<RouteHop>{{std::string(model), ""}};
  }
  if (source.empty() && target.empty()) {
    std::string name = options_.default_model;
    if (name.empty() && entries_.size() == 1) name = entries_.begin()->first;
    if (name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "several models are served (", NamesLocked(),
          "): name one with model, or source_language and target_language "
          "(or start the server with --default_model)"));
    }
    return std::vector<RouteHop>{{name, ""}};
  }
  if (source.empty() || target.empty()) {
    return absl::InvalidArgumentError(
        "source_language and target_language must be set together");
  }
  const std::string from = CanonicalLanguage(source);
  const std::string to = CanonicalLanguage(target);
  // The one model of a pair: the first by name.
  auto find = [this](const std::string& s,
                     const std::string& t) -> std::optional<RouteHop> {
    for (const auto& [name, entry] : entries_) {
      if (entry->source != s) continue;
      for (const auto& [code, token] : entry->targets) {
        if (code == t) return RouteHop{name, token};
      }
    }
    return std::nullopt;
  };
  if (std::optional<RouteHop> direct = find(from, to)) {
    return std::vector<RouteHop>{*direct};
  }
  const std::string pivot = CanonicalLanguage(options_.pivot_language);
  if (allow_pivot && !pivot.empty() && from != pivot && to != pivot) {
    std::optional<RouteHop> first = find(from, pivot);
    std::optional<RouteHop> second = find(pivot, to);
    if (first && second) return std::vector<RouteHop>{*first, *second};
  }
  std::vector<std::string> served;
  for (const auto& [name, entry] : entries_) {
    for (const auto& [code, token] : entry->targets) {
      served.push_back(absl::StrCat(entry->source, "-", code, " (", name, ")"));
    }
  }
  return absl::NotFoundError(
      absl::StrCat("no model translates \"", std::string(source), "\" into \"",
                   std::string(target), "\"",
                   allow_pivot && !pivot.empty()
                       ? absl::StrCat(", directly or through \"", pivot, "\"")
                       : "",
                   "; served: ", absl::StrJoin(served, ", ")));
}

void ModelRegistry::Shutdown() {
  std::vector<Waiter> waiters;
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
    changed_.notify_all();
    waiters.swap(waiters_);
  }
  for (Waiter& waiter : waiters) {
    if (waiter.thread.joinable()) waiter.thread.join();
  }
}

}  // namespace ts::server
