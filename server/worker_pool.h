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
#include "core/translator.h"
#include "server/loaded_model.h"
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
  // Over every model a worker decodes at once: the KV budget is shared.
  int64_t kv_cache_bytes = int64_t{256} << 20;
};

// num_workers threads serving every model: a batch holds one model's
// sentences (BatchKey::model), and each worker runs it on its own
// core::Translator of that model (LoadedModel::TranslatorFor: scratch
// memory, KV block pool and primitive cache, built on the worker's thread).
// Static scheduling loops: Scheduler::NextBatch -> Translate or Encode ->
// Deliver (or Fail) every sentence -> metrics. Continuous scheduling loops:
// admit ready batches (without waiting while sentences are decoding) into
// the generator of their model -> drop sentences whose request was
// cancelled, failed or timed out -> one decoder step of each model's
// generator in turn -> stream tokens -> Deliver the sentences that ended. A
// worker holds a model only while it decodes its sentences, so an unloaded
// model is freed once its last sentence ends.
class WorkerPool {
 public:
  // `scheduler` and `metrics` (may be null) must outlive the pool.
  WorkerPool(WorkerPoolOptions options, Scheduler* scheduler, Metrics* metrics);
  // Joins the threads; the scheduler must be shut down first, else this
  // waits for that.
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Starts the threads and returns once every worker has built its
  // Translator of each of `warm_models` and translated one short sentence
  // with the model's default search and greedy search, so first-call costs
  // (primitive creation, allocation) are not paid by a request; then they
  // serve. Errors: the first warm-up failure (the threads then still serve,
  // so Join after Scheduler::Shutdown).
  absl::Status Start(
      const std::vector<std::shared_ptr<const LoadedModel>>& warm_models);
  // Waits for the threads to exit (after Scheduler::Shutdown drained the
  // queue).
  void Join();

 private:
  void Run(int worker_index,
           std::vector<std::shared_ptr<const LoadedModel>> warm_models);
  // The continuous loop of one worker; returns when the scheduler is shut
  // down and drained.
  void RunContinuous(int worker_index);

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
