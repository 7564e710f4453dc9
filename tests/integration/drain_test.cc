// SIGTERM with 200 calls in flight: every accepted call is still answered
// OK, the server reports NOT_SERVING and refuses new calls while it drains,
// and it exits 0 within --drain_timeout_s.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/test_server.h"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace ts::testing {
namespace {

constexpr int kCalls = 200;
// Far more than the drain takes (seconds), even on a busy machine.
constexpr int kDrainTimeoutS = 120;

// grpc.health.v1.Health/Check of the whole server, without generated stubs:
// the empty request; the response is field 1, the enum status, encoded
// 0x08 <status> (SERVING = 1, NOT_SERVING = 2). -1 if the call fails.
int HealthStatus(grpc::Channel* channel) {
  // A ByteBuffer with no slice is not a message; one empty slice is.
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  grpc::GenericStub stub(channel->shared_from_this());
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  absl::Mutex mu;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                 &request, &response, [&](grpc::Status s) {
                   absl::MutexLock lock(&mu);
                   status = std::move(s);
                   done = true;
                 });
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(&done));
  std::vector<grpc::Slice> slices;
  if (!status.ok() || !response.Dump(&slices).ok()) return -1;
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  if (bytes.size() != 2 || bytes[0] != '\x08') return -1;
  return bytes[1];
}

// One single-sentence Translate call in flight.
struct Call {
  grpc::ClientContext context;
  transformer::v1::TranslateRequest request;
  transformer::v1::TranslateResponse response;
  grpc::Status status;
};

TEST(DrainTest, SigtermAnswersEveryCallInFlightAndExitsZero) {
  const std::vector<GoldenTranslation> golden = ReadGoldenTranslations();
  ASSERT_EQ(golden.size(), static_cast<size_t>(kCalls));
  ServerProcess server;
  // Small batches: answers come in steps of 8, so the signal lands with most
  // calls still queued.
  ASSERT_TRUE(server
                  .Start({"--max_batch_size=8", "--num_workers=1",
                          absl::StrCat("--drain_timeout_s=", kDrainTimeoutS)})
                  .ok());
  auto channel =
      grpc::CreateChannel(server.target(), grpc::InsecureChannelCredentials());
  auto stub = transformer::v1::TransformerService::NewStub(channel);
  ASSERT_EQ(HealthStatus(channel.get()), 1);

  absl::Mutex mu;
  int answered = 0;  // guarded by mu
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < kCalls; ++i) {
    auto call = std::make_unique<Call>();
    call->request.add_texts(golden[i].source);
    call->request.mutable_options()->set_beam_size(1);
    call->request.mutable_options()->set_max_length(128);
    call->context.set_deadline(
        absl::ToChronoTime(absl::Now() + absl::Seconds(240)));
    Call* raw = call.get();
    calls.push_back(std::move(call));
    stub->async()->Translate(&raw->context, &raw->request, &raw->response,
                             [raw, &mu, &answered](grpc::Status status) {
                               absl::MutexLock lock(&mu);
                               raw->status = std::move(status);
                               ++answered;
                             });
  }
  int answered_at_signal = 0;
  {
    absl::MutexLock lock(&mu);
    mu.AwaitWithTimeout(absl::Condition(
                            +[](int* n) { return *n >= 20; }, &answered),
                        absl::Seconds(120));
    answered_at_signal = answered;
  }
  ASSERT_GE(answered_at_signal, 20) << "calls too slow to start the test";
  server.Signal(SIGTERM);
  const absl::Time signalled = absl::Now();
  std::cerr << "SIGTERM with " << kCalls - answered_at_signal << " of "
            << kCalls << " calls in flight" << std::endl;

  // While the queue drains: health NOT_SERVING, new calls UNAVAILABLE. Only
  // checked if the drain was still on when both probes returned (a call
  // still unanswered proves it).
  absl::SleepFor(absl::Milliseconds(200));  // the signal reaches sigwait
  const int health = HealthStatus(channel.get());
  grpc::ClientContext late_context;
  late_context.set_deadline(
      absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  transformer::v1::TranslateRequest late_request;
  late_request.add_texts("A late dog.");
  transformer::v1::TranslateResponse late_response;
  const grpc::Status late =
      stub->Translate(&late_context, late_request, &late_response);
  bool still_draining = false;
  {
    absl::MutexLock lock(&mu);
    still_draining = answered < kCalls;
  }
  if (still_draining) {
    EXPECT_EQ(health, 2) << "health during drain (2 = NOT_SERVING)";
    EXPECT_EQ(late.error_code(), grpc::StatusCode::UNAVAILABLE)
        << late.error_message();
  } else {
    std::cerr << "drain ended before the probes: not checked" << std::endl;
  }

  {
    absl::MutexLock lock(&mu);
    mu.AwaitWithTimeout(absl::Condition(
                            +[](int* n) { return *n >= kCalls; }, &answered),
                        absl::Seconds(kDrainTimeoutS + 30));
    ASSERT_EQ(answered, kCalls) << "calls never answered";
  }
  int ok = 0;
  for (int i = 0; i < kCalls; ++i) {
    const Call& call = *calls[i];
    if (!call.status.ok()) {
      ADD_FAILURE() << "call " << i << ": " << call.status.error_code() << " "
                    << call.status.error_message();
      continue;
    }
    ++ok;
    ASSERT_EQ(call.response.translations_size(), 1);
    EXPECT_EQ(call.response.translations(0).hypotheses(0).text(),
              golden[i].greedy_text)
        << "call " << i;
  }
  EXPECT_EQ(ok, kCalls);

  // Drain (at most kDrainTimeoutS) and the server's own 5 s shutdown grace.
  const int exit_code = server.WaitForExit(absl::Seconds(kDrainTimeoutS + 5) -
                                           (absl::Now() - signalled));
  EXPECT_EQ(exit_code, 0) << "-2: still running after the drain timeout";
  std::cerr << "answered " << ok << "/" << kCalls << " OK; exit " << exit_code
            << " " << absl::FormatDuration(absl::Now() - signalled)
            << " after SIGTERM" << std::endl;
}

}  // namespace
}  // namespace ts::testing
