// Tests of the dynamic batcher with synthetic requests: no model, no gRPC.
#include "server/scheduler.h"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace ts::server {
namespace {

// A delay long enough that no test waits for it: batches released in such a
// test are released because they are full (or the scheduler drains).
constexpr absl::Duration kNever = absl::Hours(1);
// How long a NextBatch call that should return at once may block before the
// test fails instead of hanging.
constexpr absl::Duration kGiveUp = absl::Seconds(20);

// The answers of the requests of one test.
class Answers {
 public:
  struct Answer {
    absl::Status status;
    std::vector<SentenceResult> results;
    int calls = 0;
  };

  CompletionCallback CallbackFor(int request_id) {
    return [this, request_id](absl::Status status,
                              std::vector<SentenceResult> results) {
      std::lock_guard lock(mu_);
      Answer& answer = answers_[request_id];
      answer.status = std::move(status);
      answer.results = std::move(results);
      ++answer.calls;
    };
  }
  std::optional<Answer> Get(int request_id) {
    std::lock_guard lock(mu_);
    auto it = answers_.find(request_id);
    if (it == answers_.end()) return std::nullopt;
    return it->second;
  }
  int size() {
    std::lock_guard lock(mu_);
    return static_cast<int>(answers_.size());
  }

 private:
  std::mutex mu_;
  std::map<int, Answer> answers_;
};

// Sentence `i` of length lengths[i], made of tokens equal to `tag` so tests
// can tell requests apart in a batch.
BatchRequest MakeRequest(const std::vector<int>& lengths, int tag,
                         CompletionCallback on_done,
                         BatchKey key = BatchKey{}) {
  BatchRequest request;
  request.key = key;
  for (int length : lengths) {
    request.source_ids.push_back(std::vector<int>(length, tag));
  }
  request.on_done = std::move(on_done);
  return request;
}

// What a worker would do: answer every sentence, here with a TranslationResult
// whose single hypothesis echoes the source.
void DeliverEcho(Scheduler& scheduler, const Batch& batch) {
  for (const WorkItem& item : batch.items) {
    core::TranslationResult result;
    core::Hypothesis hypothesis;
    hypothesis.ids = item.source_ids();
    result.hypotheses.push_back(std::move(hypothesis));
    scheduler.Deliver(item, std::move(result));
  }
}

std::vector<int> Lengths(const Batch& batch) {
  std::vector<int> lengths;
  for (const WorkItem& item : batch.items) lengths.push_back(item.length());
  return lengths;
}

SchedulerOptions Options(int max_batch_size, int max_batch_tokens,
                         absl::Duration delay, int max_queue_size = 1024) {
  SchedulerOptions options;
  options.max_batch_size = max_batch_size;
  options.max_batch_tokens = max_batch_tokens;
  options.max_queue_delay = delay;
  options.max_queue_size = max_queue_size;
  return options;
}

TEST(SchedulerTest, BatchIsSortedBySourceLength) {
  Scheduler scheduler(Options(3, 4096, kNever));
  Answers answers;
  ASSERT_TRUE(
      scheduler.Submit(MakeRequest({5, 1, 3}, 1, answers.CallbackFor(1))).ok());
  std::optional<Batch> batch = scheduler.NextBatch(absl::Now() + kGiveUp);
  ASSERT_TRUE(batch.has_value()) << "a full batch was not released";
  EXPECT_EQ(Lengths(*batch), (std::vector<int>{1, 3, 5}));
  // The indices still say where each sentence goes in the request.
  EXPECT_EQ(batch->items[0].index, 1);
  EXPECT_EQ(batch->items[2].index, 0);
  DeliverEcho(scheduler, *batch);
  std::optional<Answers::Answer> answer = answers.Get(1);
  ASSERT_TRUE(answer.has_value());
  ASSERT_TRUE(answer->status.ok()) << answer->status;
  ASSERT_EQ(answer->results.size(), 3u);
  // Results come back in request order, not batch order.
  const std::vector<size_t> request_lengths = {5, 1, 3};
  for (size_t i = 0; i < 3; ++i) {
    const auto& result = std::get<core::TranslationResult>(answer->results[i]);
    EXPECT_EQ(result.hypotheses[0].ids.size(), request_lengths[i]);
  }
}

TEST(SchedulerTest, BatchesNeverMixOptionGroups) {
  Scheduler scheduler(Options(8, 4096, absl::Milliseconds(1)));
  Answers answers;
  BatchKey greedy;
  greedy.translation.beam_size = 1;
  BatchKey beam4;
  beam4.translation.beam_size = 4;
  BatchKey encode_mean;
  encode_mean.method = Method::kEncode;
  BatchKey encode_first = encode_mean;
  encode_first.encode.pooling = core::Pooling::kFirst;
  const std::vector<BatchKey> keys = {greedy, beam4, encode_mean, encode_first};
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(scheduler
                    .Submit(MakeRequest({2, 3}, i, answers.CallbackFor(i),
                                        keys[i % keys.size()]))
                    .ok());
  }
  scheduler.Shutdown();  // release everything now, then stop
  int sentences = 0;
  while (std::optional<Batch> batch =
             scheduler.NextBatch(absl::Now() + kGiveUp)) {
    for (const WorkItem& item : batch->items) {
      // The tag of a sentence is its request id, whose key is known.
      const int request_id = item.source_ids()[0];
      EXPECT_EQ(keys[request_id % keys.size()], batch->key)
          << "request " << request_id << " in a batch of another group";
    }
    sentences += static_cast<int>(batch->items.size());
    DeliverEcho(scheduler, *batch);
  }
  EXPECT_EQ(sentences, 16);
  EXPECT_EQ(answers.size(), 8);
}

TEST(SchedulerTest, RespectsMaxBatchSize) {
  Scheduler scheduler(Options(4, 1 << 20, kNever));
  Answers answers;
  ASSERT_TRUE(scheduler
                  .Submit(MakeRequest(std::vector<int>(10, 3), 1,
                                      answers.CallbackFor(1)))
                  .ok());
  std::vector<size_t> sizes;
  // Two full batches are released without waiting for the delay.
  for (int i = 0; i < 2; ++i) {
    std::optional<Batch> batch = scheduler.NextBatch(absl::Now() + kGiveUp);
    ASSERT_TRUE(batch.has_value()) << "full batch " << i << " not released";
    sizes.push_back(batch->items.size());
    DeliverEcho(scheduler, *batch);
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{4, 4}));
  // The remaining 2 sentences do not fill a batch: not released yet.
  EXPECT_FALSE(
      scheduler.NextBatch(absl::Now() + absl::Milliseconds(50)).has_value());
  EXPECT_EQ(scheduler.queued_sentences(), 2);
  scheduler.Shutdown();
  std::optional<Batch> last = scheduler.NextBatch(absl::Now() + kGiveUp);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->items.size(), 2u);
  DeliverEcho(scheduler, *last);
  EXPECT_FALSE(scheduler.NextBatch(absl::Now() + kGiveUp).has_value());
  ASSERT_TRUE(answers.Get(1).has_value());
  EXPECT_TRUE(answers.Get(1)->status.ok());
}

// A continuous worker with room for fewer sentences than max_batch_size
// takes only that many; the rest stay queued for the next call.
TEST(SchedulerTest, NextBatchTakesAtMostTheRoomLeft) {
  Scheduler scheduler(Options(8, 1 << 20, absl::ZeroDuration()));
  Answers answers;
  ASSERT_TRUE(
      scheduler.Submit(MakeRequest({2, 2, 2, 2, 2}, 1, answers.CallbackFor(1)))
          .ok());
  std::optional<Batch> first = scheduler.NextBatch(absl::Now() + kGiveUp, 3);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->items.size(), 3u);
  EXPECT_EQ(scheduler.queued_sentences(), 2);
  std::optional<Batch> rest = scheduler.NextBatch(absl::Now() + kGiveUp);
  ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(rest->items.size(), 2u);
  DeliverEcho(scheduler, *first);
  DeliverEcho(scheduler, *rest);
  ASSERT_TRUE(answers.Get(1).has_value());
  EXPECT_TRUE(answers.Get(1)->status.ok());
}

// A sentence being decoded is dropped once its request is cancelled or past
// its deadline (answered here, once) or answered with another sentence's
// error; a wanted one stays.
TEST(SchedulerTest, StillWantedAnswersCancelledAndExpiredRequestsOnce) {
  Scheduler scheduler(Options(8, 1 << 20, absl::ZeroDuration()));
  Answers answers;
  std::atomic<bool> cancelled{false};
  BatchRequest cancellable = MakeRequest({2}, 1, answers.CallbackFor(1));
  cancellable.is_cancelled = [&cancelled] { return cancelled.load(); };
  BatchRequest expiring = MakeRequest({2}, 2, answers.CallbackFor(2));
  expiring.deadline = absl::Now() + absl::Milliseconds(300);
  ASSERT_TRUE(scheduler.Submit(std::move(cancellable)).ok());
  ASSERT_TRUE(scheduler.Submit(std::move(expiring)).ok());
  ASSERT_TRUE(
      scheduler.Submit(MakeRequest({2, 2}, 3, answers.CallbackFor(3))).ok());
  std::vector<WorkItem> items;
  while (items.size() < 4) {
    std::optional<Batch> batch = scheduler.NextBatch(absl::Now() + kGiveUp);
    ASSERT_TRUE(batch.has_value());
    items.insert(items.end(), batch->items.begin(), batch->items.end());
  }
  for (const WorkItem& item : items) EXPECT_TRUE(scheduler.StillWanted(item));
  cancelled = true;
  absl::SleepFor(absl::Milliseconds(350));
  const WorkItem* failing = nullptr;
  for (const WorkItem& item : items) {
    const int tag = item.source_ids()[0];
    if (tag == 3 && item.index == 0) failing = &item;
    EXPECT_EQ(scheduler.StillWanted(item), tag == 3) << "request " << tag;
  }
  ASSERT_NE(failing, nullptr);
  scheduler.Fail(*failing, absl::InternalError("sentence 0 failed"));
  for (const WorkItem& item : items) EXPECT_FALSE(scheduler.StillWanted(item));
  ASSERT_TRUE(answers.Get(1).has_value());
  EXPECT_EQ(answers.Get(1)->status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(answers.Get(1)->calls, 1);
  ASSERT_TRUE(answers.Get(2).has_value());
  EXPECT_EQ(answers.Get(2)->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(answers.Get(2)->calls, 1);
  EXPECT_EQ(answers.Get(3)->status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(answers.Get(3)->calls, 1);
}

TEST(SchedulerTest, RespectsMaxBatchTokensWithPaddingCounted) {
  // 20 padded tokens: a 10-token sentence fits with one other sentence only
  // (2 * 10), although the real tokens of 10 + 2 + 2 would be 14.
  Scheduler scheduler(Options(32, 20, kNever));
  Answers answers;
  ASSERT_TRUE(
      scheduler
          .Submit(MakeRequest({10, 2, 2, 2, 7, 1}, 1, answers.CallbackFor(1)))
          .ok());
  scheduler.Shutdown();
  int sentences = 0;
  while (std::optional<Batch> batch =
             scheduler.NextBatch(absl::Now() + kGiveUp)) {
    EXPECT_LE(batch->padded_tokens(), 20)
        << "lengths in batch: " << ::testing::PrintToString(Lengths(*batch));
    sentences += static_cast<int>(batch->items.size());
    DeliverEcho(scheduler, *batch);
  }
  EXPECT_EQ(sentences, 6);
  ASSERT_TRUE(answers.Get(1).has_value());
  EXPECT_TRUE(answers.Get(1)->status.ok());
}

TEST(SchedulerTest, FullByTokensIsReleasedWithoutWaiting) {
  Scheduler scheduler(Options(32, 20, kNever));
  Answers answers;
  // 3 sentences of 10 tokens: only 2 fit in 20 padded tokens, so a batch is
  // full and released before the delay.
  ASSERT_TRUE(
      scheduler.Submit(MakeRequest({10, 10, 10}, 1, answers.CallbackFor(1)))
          .ok());
  std::optional<Batch> batch = scheduler.NextBatch(absl::Now() + kGiveUp);
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->items.size(), 2u);
  EXPECT_EQ(batch->padded_tokens(), 20);
  DeliverEcho(scheduler, *batch);
  scheduler.Shutdown();
  batch = scheduler.NextBatch(absl::Now() + kGiveUp);
  ASSERT_TRUE(batch.has_value());
  DeliverEcho(scheduler, *batch);
}

TEST(SchedulerTest, SentenceLongerThanMaxBatchTokensFormsItsOwnBatch) {
  Scheduler scheduler(Options(32, 8, absl::Milliseconds(1)));
  Answers answers;
  ASSERT_TRUE(
      scheduler.Submit(MakeRequest({12}, 1, answers.CallbackFor(1))).ok());
  std::optional<Batch> batch = scheduler.NextBatch(absl::Now() + kGiveUp);
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(Lengths(*batch), std::vector<int>{12});
}

TEST(SchedulerTest, PartialBatchReleasedAfterMaxQueueDelay) {
  const absl::Duration delay = absl::Milliseconds(100);
  Scheduler scheduler(Options(32, 4096, delay));
  Answers answers;
  const absl::Time submitted = absl::Now();
  ASSERT_TRUE(
      scheduler.Submit(MakeRequest({4, 4}, 1, answers.CallbackFor(1))).ok());
  std::optional<Batch> batch = scheduler.NextBatch(absl::Now() + kGiveUp);
  ASSERT_TRUE(batch.has_value()) << "not released after max_queue_delay";
  // Not full, so it must have waited for the delay (a lower bound, not a
  // speed requirement).
  EXPECT_GE(batch->formed_at - submitted, delay);
  EXPECT_EQ(batch->items.size(), 2u);
  DeliverEcho(scheduler, *batch);
}

TEST(SchedulerTest, FullQueueRejectsAtOnceWithUnavailable) {
  Scheduler scheduler(Options(32, 4096, kNever, /*max_queue_size=*/5));
  Answers answers;
  ASSERT_TRUE(
      scheduler.Submit(MakeRequest({1, 1, 1}, 1, answers.CallbackFor(1))).ok());
  absl::Status rejected =
      scheduler.Submit(MakeRequest({1, 1, 1}, 2, answers.CallbackFor(2)));
  EXPECT_EQ(rejected.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(rejected.message().find("max_queue_size 5"), std::string::npos)
      << rejected.message();
  EXPECT_FALSE(answers.Get(2).has_value())
      << "a rejected request must not also get a callback";
  EXPECT_EQ(scheduler.queued_sentences(), 3);
  // What still fits is accepted.
  EXPECT_TRUE(
      scheduler.Submit(MakeRequest({1, 1}, 3, answers.CallbackFor(3))).ok());
  EXPECT_EQ(scheduler.queued_sentences(), 5);
}

// More sentences than the whole queue holds can never be queued: the answer
// is INVALID_ARGUMENT (clients retry UNAVAILABLE), even on an empty queue.
TEST(SchedulerTest, RequestLargerThanTheQueueIsInvalidArgument) {
  Scheduler scheduler(Options(32, 4096, kNever, /*max_queue_size=*/5));
  Answers answers;
  absl::Status rejected = scheduler.Submit(
      MakeRequest({1, 1, 1, 1, 1, 1}, 1, answers.CallbackFor(1)));
  EXPECT_EQ(rejected.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(rejected.message().find("6 sentences, more than max_queue_size 5"),
            std::string::npos)
      << rejected.message();
  EXPECT_FALSE(answers.Get(1).has_value());
  EXPECT_EQ(scheduler.queued_sentences(), 0);
  EXPECT_TRUE(
      scheduler.Submit(MakeRequest({1, 1, 1, 1, 1}, 2, answers.CallbackFor(2)))
          .ok());
}

TEST(SchedulerTest, ExpiredRequestAnsweredDeadlineExceededAndNeverBatched) {
  Scheduler scheduler(Options(32, 4096, absl::Milliseconds(200)));
  Answers answers;
  BatchRequest expiring = MakeRequest({3, 3}, 1, answers.CallbackFor(1));
  expiring.deadline = absl::Now() + absl::Milliseconds(20);
  ASSERT_TRUE(scheduler.Submit(std::move(expiring)).ok());
  ASSERT_TRUE(
      scheduler.Submit(MakeRequest({3}, 2, answers.CallbackFor(2))).ok());
  absl::SleepFor(absl::Milliseconds(40));  // let the deadline pass
  scheduler.Shutdown();
  int batched = 0;
  while (std::optional<Batch> batch =
             scheduler.NextBatch(absl::Now() + kGiveUp)) {
    for (const WorkItem& item : batch->items) {
      EXPECT_NE(item.source_ids()[0], 1) << "expired request was batched";
      ++batched;
    }
    DeliverEcho(scheduler, *batch);
  }
  EXPECT_EQ(batched, 1);
  std::optional<Answers::Answer> expired = answers.Get(1);
  ASSERT_TRUE(expired.has_value());
  EXPECT_EQ(expired->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(expired->calls, 1);
  ASSERT_TRUE(answers.Get(2).has_value());
  EXPECT_TRUE(answers.Get(2)->status.ok());
}

TEST(SchedulerTest, ExpiryIsAnsweredWhileWaitingWithoutOtherTraffic) {
  // A worker blocked in NextBatch wakes for the deadline, not only for the
  // (long) queue delay.
  Scheduler scheduler(Options(32, 4096, kNever));
  Answers answers;
  BatchRequest expiring = MakeRequest({3}, 1, answers.CallbackFor(1));
  expiring.deadline = absl::Now() + absl::Milliseconds(20);
  ASSERT_TRUE(scheduler.Submit(std::move(expiring)).ok());
  EXPECT_FALSE(
      scheduler.NextBatch(absl::Now() + absl::Milliseconds(500)).has_value());
  std::optional<Answers::Answer> expired = answers.Get(1);
  ASSERT_TRUE(expired.has_value());
  EXPECT_EQ(expired->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(scheduler.queued_sentences(), 0);
}

TEST(SchedulerTest, CancelledRequestLeavesTheQueue) {
  Scheduler scheduler(Options(32, 4096, kNever));
  Answers answers;
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  BatchRequest request = MakeRequest({2, 2}, 1, answers.CallbackFor(1));
  request.is_cancelled = [cancelled] { return cancelled->load(); };
  ASSERT_TRUE(scheduler.Submit(std::move(request)).ok());
  ASSERT_TRUE(
      scheduler.Submit(MakeRequest({2}, 2, answers.CallbackFor(2))).ok());
  cancelled->store(true);
  scheduler.Shutdown();
  while (std::optional<Batch> batch =
             scheduler.NextBatch(absl::Now() + kGiveUp)) {
    for (const WorkItem& item : batch->items) {
      EXPECT_NE(item.source_ids()[0], 1) << "cancelled request was batched";
    }
    DeliverEcho(scheduler, *batch);
  }
  ASSERT_TRUE(answers.Get(1).has_value());
  EXPECT_EQ(answers.Get(1)->status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(answers.Get(1)->calls, 1);
  EXPECT_TRUE(answers.Get(2)->status.ok());
}

TEST(SchedulerTest, FailedSentenceAnswersItsRequestOnceWithTheFirstError) {
  Scheduler scheduler(Options(2, 4096, kNever));
  Answers answers;
  ASSERT_TRUE(
      scheduler.Submit(MakeRequest({1, 1, 1, 1}, 1, answers.CallbackFor(1)))
          .ok());
  std::optional<Batch> batch = scheduler.NextBatch(absl::Now() + kGiveUp);
  ASSERT_TRUE(batch.has_value());
  scheduler.Fail(batch->items[0], absl::InternalError("first"));
  scheduler.Fail(batch->items[1], absl::InternalError("second"));
  DeliverEcho(scheduler, *batch);  // late results are ignored
  ASSERT_TRUE(answers.Get(1).has_value());
  EXPECT_EQ(answers.Get(1)->status, absl::InternalError("first"));
  EXPECT_EQ(answers.Get(1)->calls, 1);
  // Its other sentences are dropped from the queue, not computed.
  scheduler.Shutdown();
  EXPECT_FALSE(scheduler.NextBatch(absl::Now() + kGiveUp).has_value());
  EXPECT_EQ(scheduler.queued_sentences(), 0);
}

TEST(SchedulerTest, ShutdownRejectsNewRequestsAndDrainsQueuedOnes) {
  Scheduler scheduler(Options(32, 4096, kNever));
  Answers answers;
  ASSERT_TRUE(
      scheduler.Submit(MakeRequest({2, 3}, 1, answers.CallbackFor(1))).ok());
  scheduler.Shutdown();
  EXPECT_EQ(
      scheduler.Submit(MakeRequest({2}, 2, answers.CallbackFor(2))).code(),
      absl::StatusCode::kUnavailable);
  EXPECT_FALSE(scheduler.WaitUntilIdle(absl::Now() + absl::Milliseconds(10)));
  std::optional<Batch> batch = scheduler.NextBatch(absl::Now() + kGiveUp);
  ASSERT_TRUE(batch.has_value());
  DeliverEcho(scheduler, *batch);
  EXPECT_TRUE(scheduler.WaitUntilIdle(absl::Now() + kGiveUp));
  EXPECT_FALSE(scheduler.NextBatch(absl::Now() + kGiveUp).has_value());
}

TEST(SchedulerTest, AbortQueuedAnswersEveryWaitingRequest) {
  Scheduler scheduler(Options(32, 4096, kNever));
  Answers answers;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        scheduler.Submit(MakeRequest({2}, i, answers.CallbackFor(i))).ok());
  }
  scheduler.AbortQueued(absl::UnavailableError("drain timed out"));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(answers.Get(i).has_value());
    EXPECT_EQ(answers.Get(i)->status.code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_TRUE(scheduler.WaitUntilIdle(absl::Now()));
}

TEST(SchedulerTest, ManyProducersAndWorkersAnswerEveryRequestExactlyOnce) {
  Scheduler scheduler(Options(8, 64, absl::Milliseconds(1), 100000));
  Answers answers;
  constexpr int kProducers = 4;
  constexpr int kRequestsPerProducer = 50;
  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([&scheduler] {
      while (std::optional<Batch> batch = scheduler.NextBatch()) {
        EXPECT_LE(batch->items.size(), 8u);
        if (batch->items.size() > 1) {
          EXPECT_LE(batch->padded_tokens(), 64);
        }
        DeliverEcho(scheduler, *batch);
      }
    });
  }
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&scheduler, &answers, p] {
      for (int r = 0; r < kRequestsPerProducer; ++r) {
        const int id = p * kRequestsPerProducer + r;
        // 1..5 sentences of 1..12 tokens, varied by id.
        std::vector<int> lengths;
        for (int s = 0; s <= id % 5; ++s)
          lengths.push_back(1 + (id * 7 + s) % 12);
        BatchKey key;
        key.translation.beam_size = 1 + id % 2;
        EXPECT_TRUE(
            scheduler
                .Submit(MakeRequest(lengths, id, answers.CallbackFor(id), key))
                .ok());
      }
    });
  }
  for (std::thread& t : producers) t.join();
  EXPECT_TRUE(scheduler.WaitUntilIdle(absl::Now() + absl::Seconds(60)));
  scheduler.Shutdown();
  for (std::thread& t : workers) t.join();
  ASSERT_EQ(answers.size(), kProducers * kRequestsPerProducer);
  for (int id = 0; id < kProducers * kRequestsPerProducer; ++id) {
    std::optional<Answers::Answer> answer = answers.Get(id);
    ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(answer->calls, 1) << "request " << id;
    ASSERT_TRUE(answer->status.ok()) << answer->status;
    ASSERT_EQ(static_cast<int>(answer->results.size()), id % 5 + 1);
    for (size_t s = 0; s < answer->results.size(); ++s) {
      const auto& ids = std::get<core::TranslationResult>(answer->results[s])
                            .hypotheses[0]
                            .ids;
      EXPECT_EQ(static_cast<int>(ids.size()),
                1 + (id * 7 + static_cast<int>(s)) % 12);
      EXPECT_EQ(ids[0], id) << "sentence of another request delivered";
    }
  }
}

}  // namespace
}  // namespace ts::server
