// TranslationCache with a fake compute function (a thread that "translates"
// a text into ids derived from it): hits return what was computed, the byte
// bound holds under eviction, and concurrent duplicates are computed once.
#include "server/translation_cache.h"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace ts::server {
namespace {

// A deterministic "translation" of `text`: one hypothesis per 4 characters,
// ids from the characters, a score from the length.
core::TranslationResult FakeTranslate(const std::string& text) {
  core::TranslationResult result;
  for (size_t start = 0; start < text.size(); start += 4) {
    core::Hypothesis hypothesis;
    for (size_t i = start; i < text.size() && i < start + 4; ++i) {
      hypothesis.ids.push_back(static_cast<unsigned char>(text[i]));
    }
    hypothesis.ids.push_back(0);
    hypothesis.score = -0.25f * static_cast<float>(start + 1);
    result.hypotheses.push_back(hypothesis);
  }
  return result;
}

bool SameResult(const core::TranslationResult& a,
                const core::TranslationResult& b) {
  if (a.hypotheses.size() != b.hypotheses.size()) return false;
  for (size_t i = 0; i < a.hypotheses.size(); ++i) {
    if (a.hypotheses[i].ids != b.hypotheses[i].ids ||
        a.hypotheses[i].score != b.hypotheses[i].score) {
      return false;
    }
  }
  return true;
}

using Done = SharedTranslation::Done;

// A waiter that always wants its result and hands it to `done`.
SharedTranslation::Waiter Wants(Done done = [](const absl::Status&,
                                               const core::TranslationResult&) {
}) {
  return {.poll = [] { return absl::OkStatus(); },
          .done = std::move(done),
          .on_token = nullptr};
}

// Find with a waiter that wants its result; `computation` (if not null) gets
// the new computation on kCompute.
TranslationCache::Lookup Find(
    TranslationCache& cache, const std::string& key,
    core::TranslationResult* result, Done done = nullptr,
    std::shared_ptr<SharedTranslation>* computation = nullptr) {
  std::shared_ptr<SharedTranslation> created;
  const TranslationCache::Lookup lookup = cache.Find(
      key, done ? Wants(std::move(done)) : Wants(), result, &created);
  if (computation != nullptr) *computation = created;
  return lookup;
}

// Ends a computation as the request handler does: cache first, then waiters.
void End(TranslationCache& cache, const std::string& key,
         const std::shared_ptr<SharedTranslation>& computation,
         const absl::Status& status, const core::TranslationResult& result) {
  cache.Finish(key, computation.get(), status, result);
  computation->Complete(status, result);
}

// Looks `text` up; computes it synchronously on a miss. Returns the result
// and how it was obtained.
core::TranslationResult Get(TranslationCache& cache, const std::string& key,
                            const std::string& text,
                            TranslationCache::Lookup* lookup) {
  core::TranslationResult result;
  std::shared_ptr<SharedTranslation> computation;
  *lookup = Find(cache, key, &result, nullptr, &computation);
  if (*lookup == TranslationCache::Lookup::kCompute) {
    result = FakeTranslate(text);
    End(cache, key, computation, absl::OkStatus(), result);
  }
  return result;
}

TEST(TranslationCacheTest, HitsReturnExactlyWhatWasComputed) {
  TranslationCache cache(1 << 20);
  TranslationCache::Lookup lookup;
  const std::vector<std::string> texts = {"A man in an orange hat.",
                                          "Two dogs play.", "x"};
  for (const std::string& text : texts) {
    Get(cache, text, text, &lookup);
    EXPECT_EQ(lookup, TranslationCache::Lookup::kCompute);
  }
  for (const std::string& text : texts) {
    const core::TranslationResult result = Get(cache, text, text, &lookup);
    EXPECT_EQ(lookup, TranslationCache::Lookup::kHit);
    EXPECT_TRUE(SameResult(result, FakeTranslate(text))) << text;
  }
  EXPECT_EQ(cache.entries(), 3);
}

TEST(TranslationCacheTest, ErrorsAreNotStored) {
  TranslationCache cache(1 << 20);
  core::TranslationResult result;
  std::shared_ptr<SharedTranslation> computation;
  ASSERT_EQ(Find(cache, "k", &result, nullptr, &computation),
            TranslationCache::Lookup::kCompute);
  End(cache, "k", computation, absl::UnavailableError("queue full"), {});
  EXPECT_EQ(cache.entries(), 0);
  EXPECT_EQ(Find(cache, "k", &result), TranslationCache::Lookup::kCompute);
}

TEST(TranslationCacheTest, BytesStayWithinTheBoundLeastRecentlyUsedOut) {
  const int64_t max_bytes = 4096;
  int64_t reported = -1;
  TranslationCache cache(max_bytes,
                         [&reported](int64_t bytes) { reported = bytes; });
  TranslationCache::Lookup lookup;
  auto text_of = [](int i) {
    return std::string(10 + i % 23, static_cast<char>('a' + i % 26)) +
           std::to_string(i);
  };
  int64_t expected_bytes = 0;
  for (int i = 0; i < 500; ++i) {
    const std::string text = text_of(i);
    Get(cache, text, text, &lookup);
    ASSERT_EQ(lookup, TranslationCache::Lookup::kCompute);
    // Text 0 is kept fresh: used again after every insert.
    Get(cache, text_of(0), text_of(0), &lookup);
    ASSERT_EQ(lookup, TranslationCache::Lookup::kHit) << i;
    EXPECT_LE(cache.bytes(), max_bytes);
    EXPECT_EQ(reported, cache.bytes());
    expected_bytes += TranslationCache::EntryBytes(text, FakeTranslate(text));
  }
  // Far more was inserted than fits; what stays is near the bound.
  EXPECT_GT(expected_bytes, 10 * max_bytes);
  EXPECT_GT(cache.bytes(), max_bytes / 2);
  // The most recent texts stay, the oldest (but text 0) went.
  Get(cache, text_of(499), text_of(499), &lookup);
  EXPECT_EQ(lookup, TranslationCache::Lookup::kHit);
  Get(cache, text_of(1), text_of(1), &lookup);
  EXPECT_EQ(lookup, TranslationCache::Lookup::kCompute);
  // The charge of one entry counts its ids and key.
  const core::TranslationResult one = FakeTranslate("abcdefgh");
  EXPECT_EQ(TranslationCache::EntryBytes("key", one) -
                TranslationCache::EntryBytes("", one),
            6);
  EXPECT_GE(
      TranslationCache::EntryBytes("", one),
      static_cast<int64_t>(2 * sizeof(core::Hypothesis) + 6 * sizeof(int)));
}

TEST(TranslationCacheTest, AnEntryLargerThanTheBoundIsNotStored) {
  TranslationCache cache(512);
  TranslationCache::Lookup lookup;
  const std::string big(2000, 'z');
  Get(cache, big, big, &lookup);
  EXPECT_EQ(cache.entries(), 0);
  EXPECT_EQ(cache.bytes(), 0);
  Get(cache, "small", "small", &lookup);
  EXPECT_EQ(cache.entries(), 1);
}

TEST(TranslationCacheTest, ConcurrentDuplicatesAreComputedOnce) {
  TranslationCache cache(1 << 20);
  const int threads = 16;
  const std::string text = "The same sentence, sent by 16 clients at once.";
  std::atomic<int> computed{0};
  std::atomic<int> answered{0};
  std::mutex mu;
  std::condition_variable all_asked;
  int asked = 0;
  std::vector<core::TranslationResult> answers(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      core::TranslationResult result;
      std::shared_ptr<SharedTranslation> computation;
      const TranslationCache::Lookup lookup = Find(
          cache, text, &result,
          [&, t](const absl::Status& status,
                 const core::TranslationResult& shared) {
            EXPECT_TRUE(status.ok());
            answers[t] = shared;
            ++answered;
          },
          &computation);
      {
        std::unique_lock lock(mu);
        ++asked;
        all_asked.notify_all();
      }
      if (lookup == TranslationCache::Lookup::kCompute) {
        ++computed;
        // The fake computation ends only after every thread asked, so all
        // others find it in flight.
        std::unique_lock lock(mu);
        all_asked.wait(lock, [&] { return asked == threads; });
        lock.unlock();
        End(cache, text, computation, absl::OkStatus(), FakeTranslate(text));
      } else {
        EXPECT_EQ(lookup, TranslationCache::Lookup::kPending);
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  EXPECT_EQ(computed.load(), 1);
  EXPECT_EQ(answered.load(), threads);
  for (const core::TranslationResult& answer : answers) {
    EXPECT_TRUE(SameResult(answer, FakeTranslate(text)));
  }
  core::TranslationResult result;
  EXPECT_EQ(Find(cache, text, &result), TranslationCache::Lookup::kHit);
}

TEST(TranslationCacheTest, WaitersShareTheComputationsError) {
  TranslationCache cache(1 << 20);
  core::TranslationResult result;
  std::shared_ptr<SharedTranslation> computation;
  ASSERT_EQ(Find(cache, "k", &result, nullptr, &computation),
            TranslationCache::Lookup::kCompute);
  absl::Status seen;
  ASSERT_EQ(Find(cache, "k", &result,
                 [&seen](const absl::Status& status,
                         const core::TranslationResult&) { seen = status; }),
            TranslationCache::Lookup::kPending);
  End(cache, "k", computation, absl::UnavailableError("server draining"), {});
  EXPECT_EQ(seen.code(), absl::StatusCode::kUnavailable);
}

// An abandoned computation (its every waiter left) is never joined: the next
// caller gets a computation of its own, and the old one's end neither
// unregisters the new one nor reaches its waiter.
TEST(TranslationCacheTest, AnAbandonedComputationIsReplaced) {
  TranslationCache cache(1 << 20);
  core::TranslationResult result;
  std::shared_ptr<SharedTranslation> first;
  absl::Status first_status;
  ASSERT_EQ(cache.Find("k",
                       {.poll = [] { return absl::CancelledError("gone"); },
                        .done =
                            [&](const absl::Status& status,
                                const core::TranslationResult&) {
                              first_status = status;
                            },
                        .on_token = nullptr},
                       &result, &first),
            TranslationCache::Lookup::kCompute);
  EXPECT_TRUE(first->Abandoned());
  EXPECT_EQ(first_status.code(), absl::StatusCode::kCancelled);

  std::shared_ptr<SharedTranslation> second;
  int answers = 0;
  ASSERT_EQ(
      Find(
          cache, "k", &result,
          [&](const absl::Status& status, const core::TranslationResult&) {
            EXPECT_TRUE(status.ok());
            ++answers;
          },
          &second),
      TranslationCache::Lookup::kCompute);
  ASSERT_NE(first, second);
  End(cache, "k", first, absl::CancelledError("dropped"), {});
  EXPECT_EQ(answers, 0);
  // Still in flight: a third caller joins the second computation.
  ASSERT_EQ(Find(cache, "k", &result,
                 [&](const absl::Status&, const core::TranslationResult&) {
                   ++answers;
                 }),
            TranslationCache::Lookup::kPending);
  End(cache, "k", second, absl::OkStatus(), FakeTranslate("k"));
  EXPECT_EQ(answers, 2);
  EXPECT_EQ(Find(cache, "k", &result), TranslationCache::Lookup::kHit);
}

TEST(TranslationCacheKeyTest, KeysSeparateWhatChangesTheResult) {
  core::TranslationOptions greedy;
  greedy.beam_size = 1;
  greedy.max_length = 128;
  const std::string base = TranslationCacheKey("m|fp32", greedy, 0, "Hi.");
  // The text index matters only when sampling.
  EXPECT_EQ(base, TranslationCacheKey("m|fp32", greedy, 5, "Hi."));
  EXPECT_NE(base, TranslationCacheKey("m|int8", greedy, 0, "Hi."));
  EXPECT_NE(base, TranslationCacheKey("m|fp32", greedy, 0, "Hi!"));
  core::TranslationOptions other = greedy;
  other.length_penalty = 1.0000001f;  // prints as 1 with 6 digits
  EXPECT_NE(base, TranslationCacheKey("m|fp32", other, 0, "Hi."));
  for (auto change :
       {+[](core::TranslationOptions* o) { o->no_repeat_ngram_size = 3; },
        +[](core::TranslationOptions* o) {
          o->repetition_penalty = 1.0000001f;
        },
        +[](core::TranslationOptions* o) {
          o->max_length_factor = 3.0000000001;
        }}) {
    core::TranslationOptions changed = greedy;
    change(&changed);
    EXPECT_NE(base, TranslationCacheKey("m|fp32", changed, 0, "Hi."));
  }
  core::TranslationOptions sample = greedy;
  sample.do_sample = true;
  sample.seed = 7;
  const std::string sampled = TranslationCacheKey("m|fp32", sample, 0, "Hi.");
  EXPECT_NE(base, sampled);
  EXPECT_NE(sampled, TranslationCacheKey("m|fp32", sample, 1, "Hi."));
  sample.seed = 8;
  EXPECT_NE(sampled, TranslationCacheKey("m|fp32", sample, 0, "Hi."));
  // A model identity cannot swallow the options that follow it.
  EXPECT_NE(TranslationCacheKey("a|beam=1", greedy, 0, "x"),
            TranslationCacheKey("a", greedy, 0, "x"));
}

}  // namespace
}  // namespace ts::server
