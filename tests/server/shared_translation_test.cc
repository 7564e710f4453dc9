// SharedTranslation: a computation that belongs to none of its waiters. A
// waiter that cancels or passes its deadline detaches with its own status;
// the others get the result; the computation is abandoned only when no
// waiter is left.
#include "server/shared_translation.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace ts::server {
namespace {

// A caller as the request handler models one: it may cancel, it has a
// deadline, and it records the one answer it gets.
struct Caller {
  bool cancelled = false;
  absl::Time deadline = absl::InfiniteFuture();
  int answers = 0;
  absl::Status status;
  core::TranslationResult result;
  std::vector<int> tokens;

  SharedTranslation::Waiter Waiter(bool streams = false) {
    SharedTranslation::Waiter waiter{
        .poll =
            [this] {
              if (cancelled) return absl::CancelledError("caller cancelled");
              if (deadline <= absl::Now()) {
                return absl::DeadlineExceededError("caller's deadline");
              }
              return absl::OkStatus();
            },
        .done =
            [this](const absl::Status& s, const core::TranslationResult& r) {
              ++answers;
              status = s;
              result = r;
            },
        .on_token = nullptr};
    if (streams)
      waiter.on_token = [this](int token) { tokens.push_back(token); };
    return waiter;
  }
};

core::TranslationResult Result(std::vector<int> ids) {
  core::TranslationResult result;
  core::Hypothesis hypothesis;
  hypothesis.ids = std::move(ids);
  result.hypotheses.push_back(std::move(hypothesis));
  return result;
}

// For n = 2 and 3 waiters: the first cancels, then (n = 3) the second
// expires; the last gets the full result, each other its own status, and
// every waiter exactly one answer.
TEST(SharedTranslationTest, OnlyTheCallerThatLeavesFails) {
  for (int n : {2, 3}) {
    SCOPED_TRACE(n);
    std::vector<Caller> callers(n);
    SharedTranslation computation;
    for (Caller& caller : callers)
      ASSERT_TRUE(computation.Attach(caller.Waiter()));
    EXPECT_FALSE(computation.Abandoned());

    callers[0].cancelled = true;
    EXPECT_FALSE(computation.Abandoned());
    EXPECT_EQ(callers[0].answers, 1);
    EXPECT_EQ(callers[0].status.code(), absl::StatusCode::kCancelled);
    if (n == 3) {
      callers[1].deadline = absl::Now() - absl::Seconds(1);
      EXPECT_FALSE(computation.Abandoned());
      EXPECT_EQ(callers[1].answers, 1);
      EXPECT_EQ(callers[1].status.code(), absl::StatusCode::kDeadlineExceeded);
    }
    EXPECT_EQ(computation.waiters(), 1);

    computation.Complete(absl::OkStatus(), Result({5, 6, 0}));
    const Caller& last = callers.back();
    EXPECT_EQ(last.answers, 1);
    EXPECT_TRUE(last.status.ok());
    ASSERT_EQ(last.result.hypotheses.size(), 1u);
    EXPECT_EQ(last.result.hypotheses[0].ids, (std::vector<int>{5, 6, 0}));
    for (const Caller& caller : callers) EXPECT_EQ(caller.answers, 1);
  }
}

// When every waiter has left, the computation is abandoned: nobody can join
// it any more, and its later end answers nobody twice.
TEST(SharedTranslationTest, AbandonedWhenEveryWaiterLeft) {
  std::vector<Caller> callers(3);
  SharedTranslation computation;
  for (Caller& caller : callers)
    ASSERT_TRUE(computation.Attach(caller.Waiter()));
  callers[0].cancelled = true;
  callers[1].cancelled = true;
  EXPECT_FALSE(computation.Abandoned());
  callers[2].deadline = absl::Now() - absl::Milliseconds(1);
  EXPECT_TRUE(computation.Abandoned());
  EXPECT_TRUE(computation.Abandoned());  // stays so

  Caller late;
  EXPECT_FALSE(computation.Attach(late.Waiter()));
  computation.Complete(absl::CancelledError("dropped by the scheduler"), {});
  for (const Caller& caller : callers) EXPECT_EQ(caller.answers, 1);
  EXPECT_EQ(callers[2].status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(late.answers, 0);
}

// A failure of the computation itself (a drain that ran out of time) reaches
// every waiter still attached.
TEST(SharedTranslationTest, TheComputationsOwnErrorReachesEveryWaiter) {
  std::vector<Caller> callers(3);
  SharedTranslation computation;
  for (Caller& caller : callers)
    ASSERT_TRUE(computation.Attach(caller.Waiter()));
  computation.Complete(absl::UnavailableError("server is shutting down"), {});
  for (const Caller& caller : callers) {
    EXPECT_EQ(caller.answers, 1);
    EXPECT_EQ(caller.status.code(), absl::StatusCode::kUnavailable);
  }
  Caller late;
  EXPECT_FALSE(computation.Attach(late.Waiter()));
}

// Tokens reach the sinks that attached before the first token (they see the
// whole sequence), not one that joined later, and not a detached waiter.
TEST(SharedTranslationTest, TokensGoToWaitersThatSawTheStart) {
  Caller early;
  Caller leaving;
  Caller late;
  SharedTranslation computation;
  ASSERT_TRUE(computation.Attach(early.Waiter(/*streams=*/true)));
  ASSERT_TRUE(computation.Attach(leaving.Waiter(/*streams=*/true)));
  computation.Token(7);
  leaving.cancelled = true;
  EXPECT_FALSE(computation.Abandoned());
  ASSERT_TRUE(computation.Attach(late.Waiter(/*streams=*/true)));
  computation.Token(8);
  computation.Complete(absl::OkStatus(), Result({7, 8}));
  EXPECT_EQ(early.tokens, (std::vector<int>{7, 8}));
  EXPECT_EQ(leaving.tokens, (std::vector<int>{7}));
  EXPECT_TRUE(late.tokens.empty());
  EXPECT_TRUE(late.status.ok());
  EXPECT_EQ(late.result.hypotheses[0].ids, (std::vector<int>{7, 8}));
}

}  // namespace
}  // namespace ts::server
