#include "server/worker_pool.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/generator.h"
#include "core/translator.h"

namespace ts::server {
namespace {

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

WorkerPool::WorkerPool(std::shared_ptr<const core::MarianModel> model,
                       WorkerPoolOptions options, Scheduler* scheduler,
                       Metrics* metrics)
    : model_(std::move(model)),
      options_(std::move(options)),
      scheduler_(scheduler),
      metrics_(metrics) {}

WorkerPool::~WorkerPool() { Join(); }

absl::Status WorkerPool::Start() {
  for (int i = 0; i < options_.num_workers; ++i) {
    threads_.emplace_back(&WorkerPool::Run, this, i);
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

void WorkerPool::Run(int worker_index) {
  // Built here so its scratch memory is first touched by this thread.
  core::Translator translator(model_, options_.intra_threads);
  absl::Status warmup = absl::OkStatus();
  if (!options_.warmup_source_ids.empty()) {
    for (const core::TranslationOptions& options : options_.warmup_options) {
      warmup =
          translator.Translate({options_.warmup_source_ids}, options).status();
      if (!warmup.ok()) break;
    }
  }
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
    RunContinuous(translator);
    return;
  }
  while (std::optional<Batch> batch = scheduler_->NextBatch()) {
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
        RunBatch(translator, *batch, *scheduler_, &output_tokens);
    const absl::Duration compute = absl::Now() - start;
    if (!status.ok()) {
      // Sentences already delivered are ignored once their request fails.
      for (const WorkItem& item : batch->items) scheduler_->Fail(item, status);
    }
    if (metrics_ != nullptr) {
      metrics_->RecordBatch(static_cast<int>(batch->items.size()),
                            batch->padded_tokens(), compute, input_tokens,
                            output_tokens);
    }
  }
}

void WorkerPool::RunContinuous(core::Translator& translator) {
  core::Generator generator(&translator);
  std::map<int64_t, WorkItem> decoding;  // by sequence id
  int64_t reported_kv_bytes = 0;
  auto report_kv = [&] {
    const int64_t bytes = generator.kv_bytes();
    if (metrics_ != nullptr)
      metrics_->AddKvCacheBytes(bytes - reported_kv_bytes);
    reported_kv_bytes = bytes;
  };
  auto drop = [&](std::map<int64_t, WorkItem>::iterator it) {
    generator.Cancel(it->first);
    if (metrics_ != nullptr) metrics_->AddActiveSequences(-1);
    return decoding.erase(it);
  };
  while (true) {
    // Admit ready batches while there is room; wait for one only when idle.
    while (static_cast<int>(decoding.size()) < options_.max_active_sequences &&
           generator.kv_bytes() < options_.kv_cache_bytes) {
      const bool idle = decoding.empty();
      std::optional<Batch> batch = scheduler_->NextBatch(
          idle ? absl::InfiniteFuture() : absl::Now(),
          options_.max_active_sequences - static_cast<int>(decoding.size()));
      if (!batch.has_value()) {
        if (idle) {  // shut down and drained
          report_kv();
          return;
        }
        break;
      }
      if (metrics_ != nullptr) {
        for (const WorkItem& item : batch->items) {
          metrics_->RecordQueueWait(batch->formed_at - item.enqueued_at);
        }
      }
      const absl::Time start = absl::Now();
      int64_t input_tokens = 0;
      for (const WorkItem& item : batch->items) input_tokens += item.length();
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
                                input_tokens, output_tokens);
        }
        continue;
      }
      std::vector<core::SampleSource> sample_sources;
      if (batch->key.translation.do_sample) {
        for (const WorkItem& item : batch->items) {
          sample_sources.push_back(item.sample_source());
        }
      }
      absl::StatusOr<std::vector<int64_t>> ids = generator.Admit(
          batch->source_ids(), batch->key.translation, sample_sources);
      if (!ids.ok()) {
        for (const WorkItem& item : batch->items) {
          scheduler_->Fail(item, ids.status());
        }
        continue;
      }
      for (size_t i = 0; i < ids->size(); ++i) {
        decoding.emplace((*ids)[i], batch->items[i]);
      }
      if (metrics_ != nullptr) {
        metrics_->CountAdmitted(static_cast<int64_t>(ids->size()));
        metrics_->AddActiveSequences(static_cast<int64_t>(ids->size()));
        // A batch here is what was admitted together; its compute time is
        // the encoder pass and the cross-attention keys/values.
        metrics_->RecordBatch(static_cast<int>(batch->items.size()),
                              batch->padded_tokens(), absl::Now() - start,
                              input_tokens, /*output_tokens=*/0);
      }
    }
    // Sentences whose request no longer wants them leave before the step,
    // so a cancelled client frees its rows within one step.
    for (auto it = decoding.begin(); it != decoding.end();) {
      it = scheduler_->StillWanted(it->second) ? std::next(it) : drop(it);
    }
    if (decoding.empty()) {
      report_kv();
      continue;
    }
    generator.Step();
    if (metrics_ != nullptr) metrics_->CountDecodeSteps(1);
    report_kv();
    for (const auto& [id, token] : generator.streamed()) {
      const WorkItem& item = decoding.at(id);
      if (item.on_token()) item.on_token()(item.index, token);
    }
    for (auto& [id, result] : generator.TakeFinished()) {
      auto it = decoding.find(id);
      int64_t output_tokens = 0;
      for (const core::Hypothesis& hypothesis : result.hypotheses) {
        output_tokens += static_cast<int64_t>(hypothesis.ids.size());
      }
      scheduler_->Deliver(it->second, std::move(result));
      decoding.erase(it);
      if (metrics_ != nullptr) {
        metrics_->AddActiveSequences(-1);
        metrics_->AddOutputTokens(output_tokens);
      }
    }
  }
}

}  // namespace ts::server
