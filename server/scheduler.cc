#include "server/scheduler.h"

#include <algorithm>
#include <numeric>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ts::server {

// Shared by the request's work items. The source ids and callbacks are fixed
// at Submit; the rest is guarded by Scheduler::mu_.
class RequestState {
 public:
  std::shared_ptr<const ModelLease> model;
  std::vector<std::vector<int>> source_ids;
  uint64_t sample_seed = 0;
  std::vector<int> text_indices;  // empty: the sentence index
  absl::Time deadline;
  absl::Time enqueued_at;
  std::function<bool()> is_cancelled;
  CompletionCallback on_done;
  SentenceTokenCallback on_token;

  std::vector<SentenceResult> results;  // by sentence index
  int pending = 0;                      // sentences without a result
  bool done = false;                    // on_done was handed out
};

const std::shared_ptr<const ModelLease>& WorkItem::model() const {
  return request->model;
}

const std::vector<int>& WorkItem::source_ids() const {
  return request->source_ids[index];
}

core::SampleSource WorkItem::sample_source() const {
  return {request->sample_seed,
          request->text_indices.empty() ? index : request->text_indices[index]};
}

const SentenceTokenCallback& WorkItem::on_token() const {
  return request->on_token;
}

int64_t Batch::padded_tokens() const {
  int longest = 0;
  for (const WorkItem& item : items) longest = std::max(longest, item.length());
  return static_cast<int64_t>(items.size()) * longest;
}

std::vector<std::vector<int>> Batch::source_ids() const {
  std::vector<std::vector<int>> ids;
  ids.reserve(items.size());
  for (const WorkItem& item : items) ids.push_back(item.source_ids());
  return ids;
}

namespace {

// Indices into `items` (arrival order) of the next batch: it always holds the
// oldest sentence (items[0]), so nothing waits forever, and grows by the
// neighbour in length order that adds the least padding while the batch
// stays within max_batch_size sentences and max_batch_tokens padded tokens.
// Returned shortest first.
std::vector<int> PlanBatch(const std::vector<WorkItem>& items,
                           const SchedulerOptions& options) {
  const int n = static_cast<int>(items.size());
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return items[a].length() < items[b].length();
  });
  auto len = [&](int sorted_pos) {
    return static_cast<int64_t>(items[order[sorted_pos]].length());
  };
  const int oldest = static_cast<int>(std::find(order.begin(), order.end(), 0) -
                                      order.begin());
  int lo = oldest;
  int hi = oldest;
  const int64_t max_tokens = options.max_batch_tokens;
  while (hi - lo + 1 < options.max_batch_size) {
    const int64_t size = hi - lo + 1;
    // Padding a candidate adds: a shorter one is padded up to len(hi); a
    // longer one pads every sentence already in the batch up to its length.
    const bool left_fits = lo > 0 && (size + 1) * len(hi) <= max_tokens;
    const bool right_fits =
        hi + 1 < n && (size + 1) * len(hi + 1) <= max_tokens;
    if (!left_fits && !right_fits) break;
    const int64_t left_waste = left_fits ? len(hi) - len(lo - 1) : 0;
    const int64_t right_waste = right_fits ? size * (len(hi + 1) - len(hi)) : 0;
    if (left_fits && (!right_fits || left_waste <= right_waste)) {
      --lo;
    } else {
      ++hi;
    }
  }
  return std::vector<int>(order.begin() + lo, order.begin() + hi + 1);
}

// Waits on `cv` until notified or `deadline`; false on timeout.
bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
               absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) {
    cv.wait(lock);
    return true;
  }
  return cv.wait_until(lock, absl::ToChronoTime(deadline)) ==
         std::cv_status::no_timeout;
}

}  // namespace

Scheduler::Scheduler(SchedulerOptions options,
                     std::function<void(int64_t)> queue_size_listener)
    : options_(std::move(options)),
      queue_size_listener_(std::move(queue_size_listener)) {}

Scheduler::~Scheduler() {
  // Nobody may be left waiting for an answer.
  AbortQueued(absl::UnavailableError("server is shutting down"));
}

absl::Status Scheduler::Submit(BatchRequest request) {
  std::vector<BatchRequest> requests;
  requests.push_back(std::move(request));
  return SubmitAll(std::move(requests));
}

absl::Status Scheduler::SubmitAll(std::vector<BatchRequest> requests) {
  int64_t sentences = 0;
  for (const BatchRequest& request : requests) {
    if (request.source_ids.empty()) {
      return absl::InvalidArgumentError("request has no sentences");
    }
    sentences += static_cast<int64_t>(request.source_ids.size());
  }
  if (sentences == 0) {
    return absl::InvalidArgumentError("request has no sentences");
  }
  // Such a request could never be queued: UNAVAILABLE would make clients
  // retry it for ever.
  if (sentences > options_.max_queue_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request has ", sentences, " sentences, more than max_queue_size ",
        options_.max_queue_size, ": it can never be queued; send at most ",
        options_.max_queue_size, " per request"));
  }
  std::vector<std::pair<BatchKey, std::shared_ptr<RequestState>>> states;
  states.reserve(requests.size());
  for (BatchRequest& request : requests) {
    auto state = std::make_shared<RequestState>();
    const int count = static_cast<int>(request.source_ids.size());
    state->model = std::move(request.model);
    state->source_ids = std::move(request.source_ids);
    state->sample_seed = request.sample_seed;
    state->text_indices = std::move(request.text_indices);
    state->deadline = request.deadline;
    state->is_cancelled = std::move(request.is_cancelled);
    state->on_done = std::move(request.on_done);
    state->on_token = std::move(request.on_token);
    state->results.resize(count);
    state->pending = count;
    states.emplace_back(std::move(request.key), std::move(state));
  }

  std::unique_lock lock(mu_);
  if (shutting_down_) {
    return absl::UnavailableError(
        "server is shutting down and accepts no new requests");
  }
  if (queued_ + sentences > options_.max_queue_size) {
    return absl::UnavailableError(
        absl::StrCat("queue full: ", queued_, " sentences queued + ", sentences,
                     " in this request exceed max_queue_size ",
                     options_.max_queue_size, "; retry later"));
  }
  const absl::Time now = absl::Now();
  for (auto& [key, state] : states) {
    state->enqueued_at = now;
    auto group = std::find_if(groups_.begin(), groups_.end(),
                              [&](const Group& g) { return g.key == key; });
    if (group == groups_.end()) {
      groups_.push_back(Group{key, {}});
      group = groups_.end() - 1;
    }
    for (int i = 0; i < static_cast<int>(state->source_ids.size()); ++i) {
      group->items.push_back(WorkItem{state, i, now});
    }
    ++live_requests_;
  }
  SetQueuedLocked(queued_ + sentences);
  work_available_.notify_all();
  return absl::OkStatus();
}

Scheduler::Completion Scheduler::FinishWithErrorLocked(RequestState& request,
                                                       absl::Status status) {
  if (request.done) return {};
  request.done = true;
  request.results.clear();
  --live_requests_;
  request_done_.notify_all();
  return [callback = std::move(request.on_done), status = std::move(status)] {
    if (callback) callback(status, {});
  };
}

absl::Time Scheduler::SweepLocked(absl::Time now,
                                  std::vector<Completion>* completions) {
  absl::Time next_expiry = absl::InfiniteFuture();
  int64_t removed = 0;
  for (Group& group : groups_) {
    auto keep_end = std::remove_if(
        group.items.begin(), group.items.end(), [&](const WorkItem& item) {
          RequestState& request = *item.request;
          if (!request.done && request.deadline <= now) {
            completions->push_back(FinishWithErrorLocked(
                request,
                absl::DeadlineExceededError(absl::StrCat(
                    "deadline exceeded after ",
                    absl::ToInt64Milliseconds(now - request.enqueued_at),
                    " ms in the queue, before the request was computed"))));
          } else if (!request.done && request.is_cancelled &&
                     request.is_cancelled()) {
            completions->push_back(FinishWithErrorLocked(
                request,
                absl::CancelledError("request cancelled while in the queue")));
          }
          if (request.done) return true;
          next_expiry = std::min(next_expiry, request.deadline);
          return false;
        });
    removed += group.items.end() - keep_end;
    group.items.erase(keep_end, group.items.end());
  }
  std::erase_if(groups_, [](const Group& g) { return g.items.empty(); });
  std::erase_if(*completions, [](const Completion& c) { return !c; });
  if (removed > 0) SetQueuedLocked(queued_ - removed);
  return next_expiry;
}

bool Scheduler::GroupReadyLocked(const Group& group, absl::Time now) const {
  if (group.items.empty()) return false;
  if (shutting_down_) return true;
  if (now - group.items.front().enqueued_at >= options_.max_queue_delay) {
    return true;
  }
  // Full: the batch cannot grow any more, by its limits, although sentences
  // remain in the group.
  const size_t planned = PlanBatch(group.items, options_).size();
  return planned == static_cast<size_t>(options_.max_batch_size) ||
         planned < group.items.size();
}

Batch Scheduler::TakeBatchLocked(Group& group, absl::Time now,
                                 int max_sentences) {
  SchedulerOptions options = options_;
  if (max_sentences > 0) {
    options.max_batch_size = std::min(options.max_batch_size, max_sentences);
  }
  const std::vector<int> plan = PlanBatch(group.items, options);
  Batch batch;
  batch.key = group.key;
  batch.formed_at = now;
  batch.items.reserve(plan.size());
  std::vector<bool> taken(group.items.size(), false);
  for (int index : plan) {
    batch.items.push_back(group.items[index]);
    taken[index] = true;
  }
  std::vector<WorkItem> rest;
  rest.reserve(group.items.size() - plan.size());
  for (size_t i = 0; i < group.items.size(); ++i) {
    if (!taken[i]) rest.push_back(std::move(group.items[i]));
  }
  group.items = std::move(rest);
  std::erase_if(groups_, [](const Group& g) { return g.items.empty(); });
  SetQueuedLocked(queued_ - static_cast<int64_t>(plan.size()));
  return batch;
}

std::optional<Batch> Scheduler::NextBatch(absl::Time give_up,
                                          int max_sentences) {
  while (true) {
    std::vector<Completion> completions;
    std::optional<Batch> batch;
    bool stop = false;
    {
      std::unique_lock lock(mu_);
      const absl::Time now = absl::Now();
      const absl::Time next_expiry = SweepLocked(now, &completions);
      // The model served longest ago first; within it, the oldest sentence.
      Group* ready = nullptr;
      uint64_t ready_turn = 0;
      for (Group& group : groups_) {
        if (!GroupReadyLocked(group, now)) continue;
        auto turn = model_turns_.find(group.key.model);
        const uint64_t group_turn =
            turn == model_turns_.end() ? 0 : turn->second;
        if (ready == nullptr || group_turn < ready_turn ||
            (group_turn == ready_turn &&
             group.items.front().enqueued_at <
                 ready->items.front().enqueued_at)) {
          ready = &group;
          ready_turn = group_turn;
        }
      }
      if (ready != nullptr) {
        model_turns_[ready->key.model] = ++turn_;
        batch = TakeBatchLocked(*ready, now, max_sentences);
        // Forget models with nothing queued once the table grows.
        if (model_turns_.size() > groups_.size() + 16) {
          std::erase_if(model_turns_, [this](const auto& entry) {
            return std::none_of(groups_.begin(), groups_.end(),
                                [&entry](const Group& group) {
                                  return group.key.model == entry.first;
                                });
          });
        }
      } else if ((shutting_down_ && groups_.empty()) || now >= give_up) {
        stop = true;
      } else if (completions.empty()) {
        // Sleep until a group's oldest sentence has waited max_queue_delay, a
        // queued deadline passes, a request arrives, or `give_up`.
        absl::Time wake = std::min(give_up, next_expiry);
        for (const Group& group : groups_) {
          wake = std::min(
              wake, group.items.front().enqueued_at + options_.max_queue_delay);
        }
        WaitUntil(work_available_, lock, wake);
        continue;
      }
    }
    for (Completion& completion : completions) completion();
    if (batch.has_value()) return batch;
    if (stop) return std::nullopt;
  }
}

bool Scheduler::StillWanted(const WorkItem& item) {
  Completion completion;
  {
    std::unique_lock lock(mu_);
    RequestState& request = *item.request;
    if (request.done) return false;
    if (request.deadline <= absl::Now()) {
      completion = FinishWithErrorLocked(
          request, absl::DeadlineExceededError(
                       "deadline exceeded while the request was decoding"));
    } else if (request.is_cancelled && request.is_cancelled()) {
      completion = FinishWithErrorLocked(
          request, absl::CancelledError("request cancelled while decoding"));
    } else {
      return true;
    }
  }
  if (completion) completion();
  return false;
}

void Scheduler::Deliver(const WorkItem& item, SentenceResult result) {
  CompletionCallback callback;
  std::vector<SentenceResult> results;
  {
    std::unique_lock lock(mu_);
    RequestState& request = *item.request;
    if (request.done) return;  // already answered with an error
    request.results[item.index] = std::move(result);
    if (--request.pending > 0) return;
    request.done = true;
    callback = std::move(request.on_done);
    results = std::move(request.results);
    --live_requests_;
    request_done_.notify_all();
  }
  if (callback) callback(absl::OkStatus(), std::move(results));
}

void Scheduler::Fail(const WorkItem& item, absl::Status status) {
  Completion completion;
  {
    std::unique_lock lock(mu_);
    // Its queued sentences are dropped by the next sweep.
    completion = FinishWithErrorLocked(*item.request, std::move(status));
  }
  if (completion) completion();
}

void Scheduler::Shutdown() {
  std::unique_lock lock(mu_);
  shutting_down_ = true;
  work_available_.notify_all();
}

bool Scheduler::WaitUntilIdle(absl::Time deadline) {
  std::unique_lock lock(mu_);
  while (live_requests_ > 0) {
    if (!WaitUntil(request_done_, lock, deadline)) return live_requests_ == 0;
  }
  return true;
}

void Scheduler::AbortQueued(absl::Status status) {
  std::vector<Completion> completions;
  {
    std::unique_lock lock(mu_);
    for (Group& group : groups_) {
      for (WorkItem& item : group.items) {
        Completion completion = FinishWithErrorLocked(*item.request, status);
        if (completion) completions.push_back(std::move(completion));
      }
    }
    groups_.clear();
    SetQueuedLocked(0);
    work_available_.notify_all();
  }
  for (Completion& completion : completions) completion();
}

bool Scheduler::accepting() const {
  std::lock_guard lock(mu_);
  return !shutting_down_;
}

int64_t Scheduler::queued_sentences() const {
  std::unique_lock lock(mu_);
  return queued_;
}

void Scheduler::SetQueuedLocked(int64_t queued) {
  queued_ = queued;
  if (queue_size_listener_) queue_size_listener_(queued_);
}

}  // namespace ts::server
