// Coalesced requests against the real server: identical calls in flight
// share one computation (the translation cache's in-flight table), and the
// computation belongs to none of them. With two and three callers, the first
// one cancels, passes its deadline, or the server drains: the first gets its
// own status and every other caller the full, correct result.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/in_flight_translate.h"
#include "tests/integration/test_server.h"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace ts::testing {
namespace {

constexpr int kTexts = 16;

enum class Leave { kCancel, kDeadline, kDrain };

class CoalescingTest : public ::testing::TestWithParam<std::tuple<Leave, int>> {
 protected:
  void SetUp() override {
    metrics_port_ = FreePort();
    ASSERT_GT(metrics_port_, 0);
    const absl::Status started =
        server_.Start({absl::StrCat("--metrics_port=", metrics_port_),
                       "--metrics_address=127.0.0.1", "--num_workers=2",
                       "--intra_threads=1", "--drain_timeout_s=120"});
    ASSERT_TRUE(started.ok()) << started;
    channel_ = grpc::CreateChannel(server_.target(),
                                   grpc::InsecureChannelCredentials());
    stub_ = transformer::v1::TransformerService::NewStub(channel_);
  }

  // 16 golden sources at beam 4, each forced to decode 150 steps (the
  // issue's case): seconds of work, so callers can join and leave midway.
  static transformer::v1::TranslateRequest LongRequest() {
    transformer::v1::TranslateRequest request;
    const std::vector<GoldenTranslation> golden = ReadGoldenTranslations();
    for (int i = 0; i < kTexts; ++i) request.add_texts(golden[i].source);
    request.mutable_options()->set_beam_size(4);
    request.mutable_options()->set_min_length(150);
    request.mutable_options()->set_max_length(160);
    return request;
  }

  double Metric(const std::string& series) {
    return ScrapeMetric(metrics_port_, series);
  }

  // Polls until `series` reaches at least `value` (30 s at most).
  bool WaitForMetric(const std::string& series, double value) {
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (Metric(series) < value) {
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return true;
  }

  ServerProcess server_;
  int metrics_port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<transformer::v1::TransformerService::Stub> stub_;
};

TEST_P(CoalescingTest, OnlyTheCallerThatLeavesFails) {
  const auto [leave, callers] = GetParam();
  const transformer::v1::TranslateRequest request = LongRequest();
  const double misses_before = Metric("transformer_cache_misses_total");
  const double hits_before = Metric("transformer_cache_hits_total");

  // The first caller starts the computation; the others join it while it
  // decodes (each text found in flight counts as a cache hit).
  const absl::Time first_deadline = leave == Leave::kDeadline
                                        ? absl::Now() + absl::Milliseconds(800)
                                        : absl::InfiniteFuture();
  InFlightTranslate first(*stub_, request, first_deadline);
  ASSERT_TRUE(WaitForMetric("transformer_active_sequences", 1));
  std::vector<std::unique_ptr<InFlightTranslate>> others;
  for (int i = 1; i < callers; ++i) {
    others.push_back(std::make_unique<InFlightTranslate>(
        *stub_, request, absl::Now() + absl::Seconds(120)));
  }
  ASSERT_TRUE(WaitForMetric("transformer_cache_hits_total",
                            hits_before + kTexts * (callers - 1)));
  ASSERT_GT(Metric("transformer_active_sequences"), 0)
      << "the computation ended before every caller had joined it";

  switch (leave) {
    case Leave::kCancel:
      first.Cancel();
      EXPECT_EQ(first.Wait().error_code(), grpc::StatusCode::CANCELLED);
      break;
    case Leave::kDeadline:
      EXPECT_EQ(first.Wait().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
      break;
    case Leave::kDrain:
      server_.Signal(SIGTERM);
      EXPECT_TRUE(first.Wait().ok());
      break;
  }
  std::vector<transformer::v1::TranslateResponse> survivors;
  for (auto& other : others) {
    const grpc::Status status = other->Wait();
    ASSERT_TRUE(status.ok()) << status.error_message();
    survivors.push_back(other->response());
  }
  transformer::v1::TranslateResponse want;
  if (leave == Leave::kDrain) {
    // The server exits once the drain is done; the first caller's answer
    // (the same computation) is the reference.
    EXPECT_EQ(server_.WaitForExit(absl::Seconds(120)), 0);
    want = first.response();
  } else {
    // Computed once: only the first caller missed the cache.
    EXPECT_EQ(Metric("transformer_cache_misses_total"), misses_before + kTexts);
    // Independent expectation: the same request with return_attention is
    // not cached, so the server computes it afresh; decoding is the same.
    transformer::v1::TranslateRequest fresh = request;
    fresh.mutable_options()->set_return_attention(true);
    InFlightTranslate expected(*stub_, fresh, absl::Now() + absl::Seconds(120));
    ASSERT_TRUE(expected.Wait().ok());
    EXPECT_EQ(Metric("transformer_cache_misses_total"), misses_before + kTexts);
    want = expected.response();
  }
  ASSERT_EQ(want.translations_size(), kTexts);
  for (const auto& survivor : survivors) {
    ASSERT_EQ(survivor.translations_size(), kTexts);
    for (int t = 0; t < kTexts; ++t) {
      const auto& got = survivor.translations(t).hypotheses(0);
      const auto& wanted = want.translations(t).hypotheses(0);
      EXPECT_EQ(got.text(), wanted.text()) << "text " << t;
      EXPECT_EQ(
          std::vector<int>(got.token_ids().begin(), got.token_ids().end()),
          std::vector<int>(wanted.token_ids().begin(),
                           wanted.token_ids().end()))
          << "text " << t;
      EXPECT_GE(got.token_ids_size(), 149) << "min_length 150 was dropped";
    }
  }
}

std::string CaseName(
    const ::testing::TestParamInfo<CoalescingTest::ParamType>& info) {
  const char* leave[] = {"Cancel", "Deadline", "Drain"};
  return absl::StrCat(leave[static_cast<int>(std::get<0>(info.param))],
                      std::get<1>(info.param), "Callers");
}

INSTANTIATE_TEST_SUITE_P(TwoAndThreeCallers, CoalescingTest,
                         ::testing::Combine(::testing::Values(Leave::kCancel,
                                                              Leave::kDeadline,
                                                              Leave::kDrain),
                                            ::testing::Values(2, 3)),
                         CaseName);

}  // namespace
}  // namespace ts::testing
