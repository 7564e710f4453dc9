// Threads that take batches from the scheduler and run the model on them.
#ifndef TRANSFORMER_SERVING_SERVER_WORKER_POOL_H_
#define TRANSFORMER_SERVING_SERVER_WORKER_POOL_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/decoding/options.h"
#include "core/model/marian_model.h"
#include "core/translator.h"
#include "server/metrics.h"
#include "server/scheduler.h"

namespace ts::server {

struct WorkerPoolOptions {
  int num_workers = 1;
  int intra_threads = 1;  // OpenMP threads of each worker's Translator
  // Continuous scheduling (see ServerOptions::scheduling): sentences join a
  // worker's core::Generator between decoder steps, up to
  // max_active_sequences and while its KV blocks stay under kv_cache_bytes.
  bool continuous = true;
  int max_active_sequences = 16;
  int64_t kv_cache_bytes = int64_t{256} << 20;
  // One sentence each worker translates with each of `warmup_options`
  // before it serves, so first-call costs (primitive creation, allocation)
  // are not paid by a request.
  std::vector<int> warmup_source_ids;
  std::vector<core::TranslationOptions> warmup_options;
};

// num_workers threads sharing the model's weights; each owns a
// core::Translator (its scratch memory, KV block pool and primitive cache),
// built on that thread. Static scheduling loops: Scheduler::NextBatch ->
// Translate or Encode -> Deliver (or Fail) every sentence -> metrics.
// Continuous scheduling loops: admit ready batches (without waiting while
// sentences are decoding) -> drop sentences whose request was cancelled,
// failed or timed out -> one decoder step -> stream tokens -> Deliver the
// sentences that ended.
class WorkerPool {
 public:
  // `scheduler` and `metrics` (may be null) must outlive the pool.
  WorkerPool(std::shared_ptr<const core::MarianModel> model,
             WorkerPoolOptions options, Scheduler* scheduler, Metrics* metrics);
  // Joins the threads; the scheduler must be shut down first, else this
  // waits for that.
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Starts the threads and returns once every worker has run its warm-up
  // translation; then they serve. Errors: the first warm-up failure (the
  // threads then still serve, so Join after Scheduler::Shutdown).
  absl::Status Start();
  // Waits for the threads to exit (after Scheduler::Shutdown drained the
  // queue).
  void Join();

 private:
  void Run(int worker_index);
  // The continuous loop of one worker; returns when the scheduler is shut
  // down and drained.
  void RunContinuous(core::Translator& translator);

  const std::shared_ptr<const core::MarianModel> model_;
  const WorkerPoolOptions options_;
  Scheduler* const scheduler_;
  Metrics* const metrics_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable warmed_up_changed_;
  int warmed_up_ ABSL_GUARDED_BY(mu_) = 0;  // workers done with warm-up
  absl::Status warmup_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_WORKER_POOL_H_
