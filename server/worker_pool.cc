#include "server/worker_pool.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
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

}  // namespace ts::server
