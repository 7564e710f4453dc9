// Dynamic batcher: sentences of many requests in, batches of like sentences
// out to the worker threads.
#ifndef TRANSFORMER_SERVING_SERVER_SCHEDULER_H_
#define TRANSFORMER_SERVING_SERVER_SCHEDULER_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/decoding/options.h"
#include "core/decoding/sampling.h"

namespace ts::server {

class ModelLease;  // server/loaded_model.h; the scheduler only holds it

// Queue policy; filled from ServerOptions.
struct SchedulerOptions {
  int max_batch_size = 32;  // sentences per batch
  // Padded tokens per batch: sentences * longest source in the batch. A
  // single sentence longer than this still forms a batch on its own.
  int max_batch_tokens = 4096;
  // Longest a sentence waits for its batch to fill before the batch is
  // released anyway.
  absl::Duration max_queue_delay = absl::Milliseconds(5);
  int max_queue_size = 1024;  // sentences waiting, over all requests
};

enum class Method { kTranslate, kEncode };

// Which sentences may share a batch: same model, same method and same
// options.
struct BatchKey {
  // The LoadedModel the sentences run on (identity only; the request's
  // lease keeps it alive while it is queued). Null: tests without a model.
  const void* model = nullptr;
  Method method = Method::kTranslate;
  core::TranslationOptions translation;  // used when method == kTranslate
  core::EncodeOptions encode;            // used when method == kEncode
  bool operator==(const BatchKey&) const = default;
};

// Output of one sentence, by method.
using SentenceResult =
    std::variant<core::TranslationResult, core::EncodeResult>;

// Runs once per request: with OK and one result per sentence in request
// order, or with the first error and no results.
using CompletionCallback =
    std::function<void(absl::Status status, std::vector<SentenceResult>)>;

// Token streaming: the token a worker's search just chose for sentence
// `index` (position in the request), as core::TokenCallback.
using SentenceTokenCallback = std::function<void(int index, int token)>;

// One request as handed to Submit.
struct BatchRequest {
  // The model its sentences run on, held until the request is answered and
  // its sentences have left the workers. Set key.model to its LoadedModel.
  std::shared_ptr<const ModelLease> model;
  BatchKey key;
  std::vector<std::vector<int>> source_ids;  // tokenized, </s> included
  // Sampling: the request's seed (the key's translation.seed stays 0, so
  // requests with other seeds share batches) and each sentence's text index
  // in the client's request (empty: 0, 1, ...), which name its random
  // streams (core::SampleSource).
  uint64_t sample_seed = 0;
  std::vector<int> text_indices;
  absl::Time deadline = absl::InfiniteFuture();
  // Polled while the request waits; may be empty. Never called after the
  // completion callback has started.
  std::function<bool()> is_cancelled;
  CompletionCallback on_done;
  // Optional (Translate only): called on the worker thread, between decoder
  // steps, with each token of each sentence as it is chosen, when the
  // request's search streams (greedy or one sample; see core::TokenCallback).
  // Requests with and without it share batches. It may still be called for
  // a sentence in a running batch after on_done ran with an error.
  SentenceTokenCallback on_token;
};

class RequestState;

// One sentence of a request.
struct WorkItem {
  std::shared_ptr<RequestState> request;
  int index = 0;           // position in the request
  absl::Time enqueued_at;  // when Submit accepted the request
  const std::vector<int>& source_ids() const;
  // Random streams of this sentence when sampling.
  core::SampleSource sample_source() const;
  // The request's on_token (may be empty).
  const SentenceTokenCallback& on_token() const;
  // The request's model (null in tests without one).
  const std::shared_ptr<const ModelLease>& model() const;
  int length() const { return static_cast<int>(source_ids().size()); }
};

// Sentences of one group, shortest first.
struct Batch {
  BatchKey key;
  std::vector<WorkItem> items;
  absl::Time formed_at;  // when NextBatch released it
  // Padded tokens: items.size() * longest source (tokens).
  int64_t padded_tokens() const;
  std::vector<std::vector<int>> source_ids() const;
};

// Thread-safe. Producers (gRPC handlers) call Submit; workers loop on
// NextBatch and hand every item back through Deliver or Fail. Each accepted
// request gets exactly one completion callback, run without the lock held on
// the thread that finished it (a worker, or the NextBatch caller for requests
// that expired or were cancelled in the queue).
class Scheduler {
 public:
  // `queue_size_listener`, if set, is told the number of queued sentences
  // after each change (for a gauge); called with the lock held, so it must
  // not call back into the scheduler.
  explicit Scheduler(SchedulerOptions options,
                     std::function<void(int64_t)> queue_size_listener = {});
  ~Scheduler();

  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues every sentence of `request`. Errors, returned at once and without
  // calling on_done: UNAVAILABLE if the queue would exceed max_queue_size or
  // the scheduler is shutting down; INVALID_ARGUMENT for a request without
  // sentences or with more than max_queue_size (it could never be queued).
  absl::Status Submit(BatchRequest request);
  // Submit for several requests at once: all are queued, or none (the same
  // errors, for their sentences together), so a call split into many
  // requests is never half queued.
  absl::Status SubmitAll(std::vector<BatchRequest> requests);

  // Blocks until a batch is ready (full, or its oldest sentence waited
  // max_queue_delay, or shutting down) and returns it; returns nullopt once
  // the scheduler is shut down and the queue is empty, or when `give_up`
  // passes first. Drops expired and cancelled requests from the queue,
  // answering them DEADLINE_EXCEEDED / CANCELLED.
  // `max_sentences` (> 0) caps the batch below max_batch_size (the room a
  // continuous worker has left).
  std::optional<Batch> NextBatch(absl::Time give_up = absl::InfiniteFuture(),
                                 int max_sentences = 0);

  // For a sentence a continuous worker is decoding: false if its request no
  // longer wants it — already answered (another sentence failed), cancelled
  // by the client, or past its deadline (these two are answered here with
  // CANCELLED / DEADLINE_EXCEEDED). The worker then drops the sentence.
  bool StillWanted(const WorkItem& item);

  // The result of `item`, from a worker.
  void Deliver(const WorkItem& item, SentenceResult result);
  // `item` could not be computed; its request is answered with `status`
  // (unless it already was) and its queued sentences are dropped.
  void Fail(const WorkItem& item, absl::Status status);

  // Stops accepting requests; queued ones are still released (at once, not
  // waiting for max_queue_delay) until the queue is empty.
  void Shutdown();
  // Waits until every accepted request has been answered or `deadline`
  // passes; returns whether all were answered.
  bool WaitUntilIdle(absl::Time deadline);
  // Answers every queued request with `status` and empties the queue (for a
  // drain that ran out of time). Batches already in workers still finish.
  void AbortQueued(absl::Status status);

  int64_t queued_sentences() const;
  // False once Shutdown was called: Submit then refuses with UNAVAILABLE.
  bool accepting() const;

 private:
  struct Group {
    BatchKey key;
    std::vector<WorkItem> items;  // arrival order
  };
  using Completion = std::function<void()>;

  // Removes items of finished, expired and cancelled requests; appends the
  // callbacks to run once the lock is released. Returns the earliest time a
  // queued request's deadline passes.
  absl::Time SweepLocked(absl::Time now, std::vector<Completion>* completions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks `request` failed; returns its callback to run unlocked, or an empty
  // function if it was already answered.
  Completion FinishWithErrorLocked(RequestState& request, absl::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool GroupReadyLocked(const Group& group, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Batch TakeBatchLocked(Group& group, absl::Time now, int max_sentences)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetQueuedLocked(int64_t queued) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SchedulerOptions options_;
  const std::function<void(int64_t)> queue_size_listener_;

  // std rather than absl primitives: ThreadSanitizer understands them without
  // an instrumented absl build.
  mutable std::mutex mu_;
  std::condition_variable work_available_;  // a request arrived, or shutdown
  std::condition_variable request_done_;    // live_requests_ decreased
  std::vector<Group> groups_ ABSL_GUARDED_BY(mu_);
  int64_t queued_ ABSL_GUARDED_BY(mu_) = 0;  // sentences in groups_
  // Fairness between models: the turn at which each model (BatchKey::model)
  // last got a batch. A ready group of the model served longest ago goes
  // first, so a flood on one model does not hold back another.
  std::map<const void*, uint64_t> model_turns_ ABSL_GUARDED_BY(mu_);
  uint64_t turn_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t live_requests_ ABSL_GUARDED_BY(mu_) = 0;  // accepted, unanswered
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_SCHEDULER_H_
