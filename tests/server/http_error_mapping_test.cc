// The gateway's HTTP status per gRPC code against grpc-gateway v2's table
// (runtime/errors.go, HTTPStatusFromCode), and the Grpc-Timeout parser
// against the gRPC HTTP/2 protocol spec ("Timeout" header).
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/http_gateway.h"

namespace ts::server {
namespace {

TEST(HttpStatusFromCodeTest, EveryCodeAsGrpcGatewayMapsIt) {
  const std::vector<std::pair<grpc::StatusCode, int>> table = {
      {grpc::StatusCode::OK, 200},
      {grpc::StatusCode::CANCELLED, 499},
      {grpc::StatusCode::UNKNOWN, 500},
      {grpc::StatusCode::INVALID_ARGUMENT, 400},
      {grpc::StatusCode::DEADLINE_EXCEEDED, 504},
      {grpc::StatusCode::NOT_FOUND, 404},
      {grpc::StatusCode::ALREADY_EXISTS, 409},
      {grpc::StatusCode::PERMISSION_DENIED, 403},
      {grpc::StatusCode::RESOURCE_EXHAUSTED, 429},
      {grpc::StatusCode::FAILED_PRECONDITION, 400},
      {grpc::StatusCode::ABORTED, 409},
      {grpc::StatusCode::OUT_OF_RANGE, 400},
      {grpc::StatusCode::UNIMPLEMENTED, 501},
      {grpc::StatusCode::INTERNAL, 500},
      {grpc::StatusCode::UNAVAILABLE, 503},
      {grpc::StatusCode::DATA_LOSS, 500},
      {grpc::StatusCode::UNAUTHENTICATED, 401},
  };
  for (const auto& [code, http] : table) {
    EXPECT_EQ(HttpStatusFromCode(code), http) << static_cast<int>(code);
  }
  // Unknown numbers are server errors.
  EXPECT_EQ(HttpStatusFromCode(static_cast<grpc::StatusCode>(99)), 500);
}

TEST(ParseGrpcTimeoutTest, UnitsOfTheGrpcProtocol) {
  EXPECT_EQ(*ParseGrpcTimeout("2H"), absl::Hours(2));
  EXPECT_EQ(*ParseGrpcTimeout("3M"), absl::Minutes(3));
  EXPECT_EQ(*ParseGrpcTimeout("10S"), absl::Seconds(10));
  EXPECT_EQ(*ParseGrpcTimeout("500m"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseGrpcTimeout("7u"), absl::Microseconds(7));
  EXPECT_EQ(*ParseGrpcTimeout("1n"), absl::Nanoseconds(1));
  EXPECT_EQ(*ParseGrpcTimeout("99999999S"), absl::Seconds(99999999));
}

TEST(ParseGrpcTimeoutTest, RejectsWhatTheProtocolDoesNotAllow) {
  for (const char* value : {"", "S", "10", "10s", "10 S", "-1S", "+1S",
                            "123456789S", "1.5S", "soon"}) {
    const absl::StatusOr<absl::Duration> parsed = ParseGrpcTimeout(value);
    EXPECT_FALSE(parsed.ok()) << value;
    if (!parsed.ok()) {
      EXPECT_NE(parsed.status().message().find("Grpc-Timeout"),
                std::string::npos);
    }
  }
}

}  // namespace
}  // namespace ts::server
