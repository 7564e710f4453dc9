// Server options come from flags, from TS_* environment variables when a flag
// is not on the command line, and are range-checked.
#include "server/server_options.h"

#include <cstdlib>
#include <vector>

#include "absl/flags/parse.h"
#include "gtest/gtest.h"

namespace ts::server {
namespace {

TEST(ServerOptionsTest, EnvironmentSetsFlagsAndCommandLineWins) {
  ASSERT_EQ(setenv("TS_MAX_QUEUE_SIZE", "777", 1), 0);
  ASSERT_EQ(setenv("TS_MAX_BATCH_TOKENS", "999", 1), 0);
  ASSERT_EQ(setenv("TS_MODEL_DIR", "/models/opus-mt-de-en", 1), 0);
  ASSERT_TRUE(ApplyEnvironmentToFlags().ok());
  char program[] = "server_options_test";
  char batch_tokens[] = "--max_batch_tokens=123";
  std::vector<char*> argv = {program, batch_tokens};
  absl::ParseCommandLine(static_cast<int>(argv.size()), argv.data());
  const ServerOptions options = ServerOptionsFromFlags();
  EXPECT_EQ(options.max_queue_size, 777);
  EXPECT_EQ(options.model_dir, "/models/opus-mt-de-en");
  EXPECT_EQ(options.max_batch_tokens, 123);
  EXPECT_EQ(options.scheduler_options().max_batch_tokens, 123);
  EXPECT_EQ(options.scheduler_options().max_queue_size, 777);
  EXPECT_EQ(options.intra_threads, 1);  // the measured default
  EXPECT_GE(options.num_workers, 1);    // 0 = one per core
  EXPECT_EQ(options.scheduler_options().max_queue_delay, absl::ZeroDuration());
  EXPECT_TRUE(options.Validate().ok());
  unsetenv("TS_MAX_QUEUE_SIZE");
  unsetenv("TS_MAX_BATCH_TOKENS");
  unsetenv("TS_MODEL_DIR");
}

TEST(ServerOptionsTest, UnparsableEnvironmentValueNamesTheVariable) {
  ASSERT_EQ(setenv("TS_PORT", "not-a-port", 1), 0);
  const absl::Status status = ApplyEnvironmentToFlags();
  unsetenv("TS_PORT");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("TS_PORT"), std::string::npos)
      << status.message();
}

TEST(ServerOptionsTest, ValidateNamesTheBadOption) {
  ServerOptions options;
  EXPECT_TRUE(options.Validate().ok());
  options.max_batch_size = 0;
  EXPECT_NE(options.Validate().message().find("--max_batch_size"),
            std::string::npos);
  options = ServerOptions();
  options.port = 70000;
  EXPECT_NE(options.Validate().message().find("--port"), std::string::npos);
}

TEST(ServerOptionsTest, LengthFactorAndTextBytesComeFromTheEnvironment) {
  ASSERT_EQ(setenv("TS_MAX_LENGTH_FACTOR", "1.5", 1), 0);
  ASSERT_EQ(setenv("TS_MAX_TEXT_BYTES", "5000", 1), 0);
  ASSERT_TRUE(ApplyEnvironmentToFlags().ok());
  const ServerOptions options = ServerOptionsFromFlags();
  unsetenv("TS_MAX_LENGTH_FACTOR");
  unsetenv("TS_MAX_TEXT_BYTES");
  EXPECT_DOUBLE_EQ(options.max_length_factor, 1.5);
  EXPECT_EQ(options.max_text_bytes, 5000);
  EXPECT_DOUBLE_EQ(ServerOptions().max_length_factor, 3.0);
  EXPECT_EQ(ServerOptions().max_text_bytes, 100000);
  ServerOptions bad;
  bad.max_length_factor = -1.0;
  EXPECT_NE(bad.Validate().message().find("--max_length_factor"),
            std::string::npos);
  bad.max_length_factor = 0.0;  // off
  EXPECT_TRUE(bad.Validate().ok());
  bad.max_text_bytes = 0;
  EXPECT_NE(bad.Validate().message().find("--max_text_bytes"),
            std::string::npos);
}

// A request of max_texts_per_request texts must fit in an empty queue.
TEST(ServerOptionsTest, MoreTextsPerRequestThanQueueSizeIsRefused) {
  ServerOptions options;
  options.max_queue_size = 4;
  options.max_texts_per_request = 5;
  const absl::Status status = options.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("--max_texts_per_request (5)"),
            std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find("--max_queue_size (4)"), std::string::npos)
      << status.message();
  options.max_texts_per_request = 4;
  EXPECT_TRUE(options.Validate().ok());
}

TEST(ServerOptionsTest, TlsFilesComeInPairs) {
  ServerOptions options;
  options.tls_cert = "server.pem";
  EXPECT_NE(options.Validate().message().find("--tls_key"), std::string::npos);
  options.tls_key = "server.key";
  EXPECT_TRUE(options.Validate().ok());
  EXPECT_TRUE(options.tls_enabled());
  options = ServerOptions();
  options.tls_client_ca = "ca.pem";
  EXPECT_NE(options.Validate().message().find("--tls_client_ca"),
            std::string::npos);
}

TEST(ServerOptionsTest, ConnectionAgeFlagsAreSecondsAndOffByDefault) {
  char program[] = "server_options_test";
  char age[] = "--max_connection_age_s=300";
  std::vector<char*> argv = {program, age};
  absl::ParseCommandLine(static_cast<int>(argv.size()), argv.data());
  const ServerOptions options = ServerOptionsFromFlags();
  EXPECT_EQ(options.max_connection_age, absl::Seconds(300));
  EXPECT_EQ(options.max_connection_age_grace, absl::Seconds(30));
  EXPECT_EQ(ServerOptions().max_connection_age, absl::ZeroDuration());
  EXPECT_EQ(options.metrics_address, "0.0.0.0");
  ServerOptions negative;
  negative.max_connection_age = absl::Seconds(-1);
  EXPECT_NE(negative.Validate().message().find("--max_connection_age_s"),
            std::string::npos);
}

}  // namespace
}  // namespace ts::server
