#include "server/worker_pool.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/generator.h"
#include "core/translator.h"

namespace ts::server {
namespace {

// One short sentence with the model's default search and with greedy search
// (first-call costs: primitive creation, allocation).
absl::Status WarmUp(const LoadedModel& loaded, core::Translator& translator) {
  core::TranslationOptions options =
      loaded.validator().DefaultTranslationOptions();
  options.max_length = std::min(options.max_length, 16);
  options.min_length = 0;
  std::vector<core::TranslationOptions> searches = {options};
  if (options.beam_size != 1) {
    options.beam_size = 1;
    options.num_hypotheses = 1;
    searches.push_back(options);
  }
  absl::StatusOr<std::vector<int>> source_ids =
      loaded.model().tokenizer().EncodeSource("Hello world.");
  if (!source_ids.ok()) return source_ids.status();
  for (const core::TranslationOptions& search : searches) {
    absl::Status status = translator.Translate({*source_ids}, search).status();
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

// The model of `batch` (its sentences share it), or null if it has none.
std::shared_ptr<const LoadedModel> ModelOf(const Batch& batch) {
  const std::shared_ptr<const ModelLease>& lease = batch.items.front().model();
  return lease == nullptr ? nullptr : lease->shared();
}

absl::Status RunBatch(core::Translator& translator, const Batch& batch,
                      Scheduler& scheduler, int64_t* output_tokens) {
  const std::vector<std::vector<int>> source_ids = batch.source_ids();
  if (batch.key.method == Method::kTranslate) {
    std::vector<core::SampleSource> sample_sources;
    if (batch.key.translation.do_sample) {
      for (const WorkItem& item : batch.items) {
        sample_sources.push_back(item.sample_source());
      }
    }
    // Streams the tokens of the items whose requests asked for them.
    core::TokenCallback on_token;
    if (std::any_of(batch.items.begin(), batch.items.end(),
                    [](const WorkItem& item) { return item.on_token(); })) {
      on_token = [&batch](int source, int token) {
        const WorkItem& item = batch.items[source];
        if (item.on_token()) item.on_token()(item.index, token);
      };
    }
    absl::StatusOr<std::vector<core::TranslationResult>> results =
        translator.Translate(source_ids, batch.key.translation, sample_sources,
                             on_token);
    if (!results.ok()) return results.status();
    if (results->size() != batch.items.size()) {
      return absl::InternalError(
          absl::StrCat("Translate returned ", results->size(), " results for ",
                       batch.items.size(), " sentences"));
    }
    for (size_t i = 0; i < batch.items.size(); ++i) {
      for (const core::Hypothesis& hypothesis : (*results)[i].hypotheses) {
        *output_tokens += static_cast<int64_t>(hypothesis.ids.size());
      }
      scheduler.Deliver(batch.items[i], std::move((*results)[i]));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<core::EncodeResult>> results =
      translator.Encode(source_ids, batch.key.encode);
  if (!results.ok()) return results.status();
  if (results->size() != batch.items.size()) {
    return absl::InternalError(absl::StrCat("Encode returned ", results->size(),
                                            " results for ", batch.items.size(),
                                            " sentences"));
  }
  for (size_t i = 0; i < batch.items.size(); ++i) {
    scheduler.Deliver(batch.items[i], std::move((*results)[i]));
  }
  return absl::OkStatus();
}

}  // namespace

WorkerPool::WorkerPool(WorkerPoolOptions options, Scheduler* scheduler,
                       Metrics* metrics)
    : options_(std::move(options)), scheduler_(scheduler), metrics_(metrics) {}

WorkerPool::~WorkerPool() { Join(); }

absl::Status WorkerPool::Start(
    const std::vector<std::shared_ptr<const LoadedModel>>& warm_models) {
  for (int i = 0; i < options_.num_workers; ++i) {
    threads_.emplace_back(&WorkerPool::Run, this, i, warm_models);
  }
  std::unique_lock lock(mu_);
  warmed_up_changed_.wait(
      lock, [this] { return warmed_up_ >= options_.num_workers; });
  return warmup_status_;
}

void WorkerPool::Join() {
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

void WorkerPool::Run(
    int worker_index,
    std::vector<std::shared_ptr<const LoadedModel>> warm_models) {
  absl::Status warmup = absl::OkStatus();
  for (const std::shared_ptr<const LoadedModel>& loaded : warm_models) {
    // Built here so its scratch memory is first touched by this thread.
    warmup = WarmUp(
        *loaded, loaded->TranslatorFor(worker_index, options_.intra_threads));
    if (!warmup.ok()) {
      warmup = absl::Status(
          warmup.code(),
          absl::StrCat("model ", loaded->name(), ": ", warmup.message()));
      break;
    }
  }
  warm_models.clear();
  {
    std::lock_guard lock(mu_);
    if (!warmup.ok() && warmup_status_.ok()) {
      warmup_status_ = absl::Status(
          warmup.code(), absl::StrCat("warm-up of worker ", worker_index,
                                      " failed: ", warmup.message()));
    }
    ++warmed_up_;
    warmed_up_changed_.notify_all();
  }

  if (options_.continuous) {
    RunContinuous(worker_index);
    return;
  }
  while (std::optional<Batch> batch = scheduler_->NextBatch()) {
    const std::shared_ptr<const LoadedModel> loaded = ModelOf(*batch);
    if (loaded == nullptr) {
      for (const WorkItem& item : batch->items) {
        scheduler_->Fail(item, absl::InternalError("batch without a model"));
      }
      continue;
    }
    if (metrics_ != nullptr) {
      for (const WorkItem& item : batch->items) {
        metrics_->RecordQueueWait(batch->formed_at - item.enqueued_at);
      }
    }
    int64_t input_tokens = 0;
    for (const WorkItem& item : batch->items) input_tokens += item.length();
    int64_t output_tokens = 0;
    const absl::Time start = absl::Now();
    absl::Status status =
        RunBatch(loaded->TranslatorFor(worker_index, options_.intra_threads),
                 *batch, *scheduler_, &output_tokens);
    const absl::Duration compute = absl::Now() - start;
    if (!status.ok()) {
      // Sentences already delivered are ignored once their request fails.
      for (const WorkItem& item : batch->items) scheduler_->Fail(item, status);
    }
    if (metrics_ != nullptr) {
      metrics_->RecordBatch(static_cast<int>(batch->items.size()),
                            batch->padded_tokens(), compute, input_tokens,
                            output_tokens, loaded->name());
    }
  }
}

namespace {

// What a continuous worker decodes of one model: the model (held while any
// of its sentences decodes), the generator on this worker's Translator of
// it, and the sentences by sequence id.
struct ModelSlot {
  std::shared_ptr<const LoadedModel> loaded;
  std::unique_ptr<core::Generator> generator;
  std::map<int64_t, WorkItem> decoding;
  int64_t reported_kv_bytes = 0;
};

}  // namespace

void WorkerPool::RunContinuous(int worker_index) {
  // By model; a slot leaves once it has no sentence and its model was
  // unloaded, or when the worker idles (so an unloaded model is freed).
  std::map<const LoadedModel*, ModelSlot> slots;
  auto report_kv = [&](ModelSlot& slot) {
    const int64_t bytes =
        slot.generator == nullptr ? 0 : slot.generator->kv_bytes();
    if (metrics_ != nullptr) {
      metrics_->AddKvCacheBytes(bytes - slot.reported_kv_bytes);
    }
    slot.reported_kv_bytes = bytes;
  };
  auto decoding_count = [&] {
    int count = 0;
    for (auto& [model, slot] : slots) {
      count += static_cast<int>(slot.decoding.size());
    }
    return count;
  };
  auto kv_bytes = [&] {
    int64_t bytes = 0;
    for (auto& [model, slot] : slots) bytes += slot.generator->kv_bytes();
    return bytes;
  };
  // Removes the slots without sentences: all of them, or those of unloaded
  // models.
  auto release_slots = [&](bool all) {
    for (auto it = slots.begin(); it != slots.end();) {
      if (it->second.decoding.empty() &&
          (all || it->second.loaded->retired())) {
        it->second.generator.reset();
        report_kv(it->second);
        it = slots.erase(it);
      } else {
        ++it;
      }
    }
  };
  auto drop = [&](ModelSlot& slot, std::map<int64_t, WorkItem>::iterator it) {
    slot.generator->Cancel(it->first);
    if (metrics_ != nullptr) metrics_->AddActiveSequences(-1);
    return slot.decoding.erase(it);
  };
  while (true) {
    // Admit ready batches while there is room; wait for one only when idle
    // (in short waits, so the slots of unloaded models are let go).
    while (decoding_count() < options_.max_active_sequences &&
           kv_bytes() < options_.kv_cache_bytes) {
      const bool idle = decoding_count() == 0;
      if (idle) release_slots(/*all=*/false);
      std::optional<Batch> batch = scheduler_->NextBatch(
          idle ? absl::Now() + absl::Milliseconds(200) : absl::Now(),
          options_.max_active_sequences - decoding_count());
      if (!batch.has_value()) {
        if (idle && !scheduler_->accepting() &&
            scheduler_->queued_sentences() == 0) {  // shut down and drained
          release_slots(/*all=*/true);
          return;
        }
        if (idle) continue;
        break;
      }
      const std::shared_ptr<const LoadedModel> loaded = ModelOf(*batch);
      if (loaded == nullptr) {
        for (const WorkItem& item : batch->items) {
          scheduler_->Fail(item, absl::InternalError("batch without a model"));
        }
        continue;
      }
      if (metrics_ != nullptr) {
        for (const WorkItem& item : batch->items) {
          metrics_->RecordQueueWait(batch->formed_at - item.enqueued_at);
        }
      }
      const absl::Time start = absl::Now();
      int64_t input_tokens = 0;
      for (const WorkItem& item : batch->items) input_tokens += item.length();
      core::Translator& translator =
          loaded->TranslatorFor(worker_index, options_.intra_threads);
      if (batch->key.method == Method::kEncode) {
        int64_t output_tokens = 0;
        absl::Status status =
            RunBatch(translator, *batch, *scheduler_, &output_tokens);
        if (!status.ok()) {
          for (const WorkItem& item : batch->items) {
            scheduler_->Fail(item, status);
          }
        }
        if (metrics_ != nullptr) {
          metrics_->RecordBatch(static_cast<int>(batch->items.size()),
                                batch->padded_tokens(), absl::Now() - start,
                                input_tokens, output_tokens, loaded->name());
        }
        continue;
      }
      ModelSlot& slot = slots[loaded.get()];
      if (slot.generator == nullptr) {
        slot.loaded = loaded;
        slot.generator = translator.NewGenerator();
      }
      std::vector<core::SampleSource> sample_sources;
      if (batch->key.translation.do_sample) {
        for (const WorkItem& item : batch->items) {
          sample_sources.push_back(item.sample_source());
        }
      }
      absl::StatusOr<std::vector<int64_t>> ids = slot.generator->Admit(
          batch->source_ids(), batch->key.translation, sample_sources);
      if (!ids.ok()) {
        for (const WorkItem& item : batch->items) {
          scheduler_->Fail(item, ids.status());
        }
        continue;
      }
      for (size_t i = 0; i < ids->size(); ++i) {
        slot.decoding.emplace((*ids)[i], batch->items[i]);
      }
      if (metrics_ != nullptr) {
        metrics_->CountAdmitted(static_cast<int64_t>(ids->size()));
        metrics_->AddActiveSequences(static_cast<int64_t>(ids->size()));
        // A batch here is what was admitted together; its compute time is
        // the encoder pass and the cross-attention keys/values.
        metrics_->RecordBatch(static_cast<int>(batch->items.size()),
                              batch->padded_tokens(), absl::Now() - start,
                              input_tokens, /*output_tokens=*/0,
                              loaded->name());
      }
    }
    // One step of each model's generator in turn. Sentences whose request
    // no longer wants them leave before the step, so a cancelled client
    // frees its rows within one step.
    for (auto& [model, slot] : slots) {
      for (auto it = slot.decoding.begin(); it != slot.decoding.end();) {
        it = scheduler_->StillWanted(it->second) ? std::next(it)
                                                 : drop(slot, it);
      }
      if (slot.decoding.empty()) {
        report_kv(slot);
        continue;
      }
      slot.generator->Step();
      if (metrics_ != nullptr) metrics_->CountDecodeSteps(1);
      report_kv(slot);
      for (const auto& [id, token] : slot.generator->streamed()) {
        const WorkItem& item = slot.decoding.at(id);
        if (item.on_token()) item.on_token()(item.index, token);
      }
      for (auto& [id, result] : slot.generator->TakeFinished()) {
        auto it = slot.decoding.find(id);
        int64_t output_tokens = 0;
        for (const core::Hypothesis& hypothesis : result.hypotheses) {
          output_tokens += static_cast<int64_t>(hypothesis.ids.size());
        }
        scheduler_->Deliver(it->second, std::move(result));
        slot.decoding.erase(it);
        if (metrics_ != nullptr) {
          metrics_->AddActiveSequences(-1);
          metrics_->AddOutputTokens(output_tokens, slot.loaded->name());
        }
      }
    }
    release_slots(/*all=*/false);
  }
}

}  // namespace ts::server
