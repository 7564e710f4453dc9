// --max_connection_age_s: the server ends each client connection (GOAWAY)
// after that age, so long-lived clients reconnect and re-resolve (how new
// Kubernetes replicas get traffic). And the client takes dns:/// targets.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/test_server.h"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace ts::testing {
namespace {

// One GetModelInfo call: cheap, and it makes the channel connect.
bool Ping(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = transformer::v1::TransformerService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  transformer::v1::GetModelInfoResponse info;
  return stub->GetModelInfo(&context, {}, &info).ok();
}

// Whether the channel, connected now, leaves READY within `timeout`: it does
// when the server closes the connection (a GOAWAY makes it IDLE).
bool LeavesReadyWithin(const std::shared_ptr<grpc::Channel>& channel,
                       absl::Duration timeout) {
  EXPECT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  return channel->WaitForStateChange(GRPC_CHANNEL_READY,
                                     absl::ToChronoTime(absl::Now() + timeout));
}

TEST(ConnectionAgeTest, ServerClosesConnectionsAfterMaxAge) {
  ServerProcess server;
  ASSERT_TRUE(
      server
          .Start({"--max_connection_age_s=1", "--max_connection_age_grace_s=1"})
          .ok());
  auto channel =
      grpc::CreateChannel(server.target(), grpc::InsecureChannelCredentials());
  ASSERT_TRUE(Ping(channel));
  // Age 1 s (+-10% jitter) + grace 1 s; 20 s is far beyond both, and far
  // below gRPC's idle timeout (30 min), the only other reason to leave READY.
  EXPECT_TRUE(LeavesReadyWithin(channel, absl::Seconds(20)));
  // The client reconnects on the next call.
  EXPECT_TRUE(Ping(channel));
}

TEST(ConnectionAgeTest, ConnectionsLiveOnWithoutMaxAge) {
  ServerProcess server;
  ASSERT_TRUE(server.Start({}).ok());
  auto channel =
      grpc::CreateChannel(server.target(), grpc::InsecureChannelCredentials());
  ASSERT_TRUE(Ping(channel));
  // The control for the test above: nothing closes this connection.
  EXPECT_FALSE(LeavesReadyWithin(channel, absl::Seconds(3)));

  // The client resolves dns:/// targets (localhost may also give ::1, where
  // nothing listens: the client must still reach 127.0.0.1).
  const CommandResult result = RunCommand(absl::StrCat(
      TS_CLIENT_BINARY, " translate --timeout_s=60 --server=dns:///localhost:",
      server.port(), " \"A man is riding a bicycle.\""));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("Fahrrad"), std::string::npos) << result.out;
}

}  // namespace
}  // namespace ts::testing
