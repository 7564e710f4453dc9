// Length and size limits through the real server (issue 24, items 3 and 4):
// a 10 MB text is refused for its bytes before tokenizing, in well under
// 100 ms; a message over --max_message_bytes is refused by gRPC itself; a
// runaway output stops at --max_length_factor's bound, per text; the
// repetition controls give the reference's outputs
// (golden/repetition.jsonl), through stubs and the client's flags, and are
// part of the cache key.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/test_server.h"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace ts::testing {
namespace {

using nlohmann::json;

constexpr int kMaxMessageBytes = 16 << 20;
constexpr int kEos = 0;  // the demo model's </s>

// A text the demo model translates into letters repeated to max_length
// ("DIOOOOGGG DAAAANNNNN..."; the upper-case runaway).
constexpr char kRunaway[] = "TWO DOGS PLAY IN THE SNOW.";

class LimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The defaults (--max_length_factor 3, which ServerProcess turns off,
    // --max_text_bytes 100000), and the same server without the bound.
    bounded_ = new ServerProcess();
    absl::Status started = bounded_->Start(
        {"--num_workers=1", "--intra_threads=1", "--max_length_factor=3",
         absl::StrCat("--max_message_bytes=", kMaxMessageBytes)});
    ASSERT_TRUE(started.ok()) << started;
    unbounded_ = new ServerProcess();
    started = unbounded_->Start(
        {"--num_workers=1", "--intra_threads=1", "--max_length_factor=0"});
    ASSERT_TRUE(started.ok()) << started;
  }
  static void TearDownTestSuite() {
    delete bounded_;
    delete unbounded_;
  }

  static std::unique_ptr<transformer::v1::TransformerService::Stub> Stub(
      const ServerProcess& server) {
    return transformer::v1::TransformerService::NewStub(grpc::CreateChannel(
        server.target(), grpc::InsecureChannelCredentials()));
  }

  static grpc::Status Translate(
      transformer::v1::TransformerService::Stub& stub,
      const transformer::v1::TranslateRequest& request,
      transformer::v1::TranslateResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
    return stub.Translate(&context, request, response);
  }

  static ServerProcess* bounded_;
  static ServerProcess* unbounded_;
};

ServerProcess* LimitsTest::bounded_ = nullptr;
ServerProcess* LimitsTest::unbounded_ = nullptr;

TEST_F(LimitsTest, GetModelInfoReportsMaxTextBytes) {
  auto stub = Stub(*bounded_);
  transformer::v1::GetModelInfoResponse info;
  grpc::ClientContext context;
  ASSERT_TRUE(stub->GetModelInfo(&context, {}, &info).ok());
  EXPECT_EQ(info.max_text_bytes(), 100000);
}

// The case: 10 MB took 7.2 s of tokenizing before its refusal.
TEST_F(LimitsTest, TenMegabyteTextIsRefusedForItsBytesWithin100Ms) {
  auto stub = Stub(*bounded_);
  {  // connect first: the channel's setup is not the call's time
    transformer::v1::GetModelInfoResponse info;
    grpc::ClientContext context;
    ASSERT_TRUE(stub->GetModelInfo(&context, {}, &info).ok());
  }
  std::string text;
  while (text.size() < 10'000'000) text += "A dog runs. ";
  text.resize(10'000'000);
  transformer::v1::TranslateRequest request;
  request.add_texts("A dog.");
  request.add_texts(text);
  const std::string expected =
      "texts[1] has 10000000 bytes, more than max_text_bytes 100000";
  // Round 0 also lets gRPC's flow control window grow to the message (BDP
  // probing); the bound is on the median of the timed rounds, as the cores
  // are shared with other work.
  std::vector<absl::Duration> times;
  for (int round = 0; round < 6; ++round) {
    transformer::v1::TranslateResponse response;
    const absl::Time start = absl::Now();
    const grpc::Status status = Translate(*stub, request, &response);
    const absl::Duration took = absl::Now() - start;
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << status.error_message();
    EXPECT_NE(status.error_message().find(expected), std::string::npos)
        << status.error_message();
    std::printf("round %d: 10 MB text refused in %.1f ms\n", round,
                absl::ToDoubleMilliseconds(took));
    if (round > 0) times.push_back(took);
  }
  std::sort(times.begin(), times.end());
  EXPECT_LT(times[times.size() / 2], absl::Milliseconds(100));
  transformer::v1::EncodeRequest encode;
  encode.add_texts(text);
  transformer::v1::EncodeResponse embeddings;
  grpc::ClientContext context;
  const grpc::Status status = stub->Encode(&context, encode, &embeddings);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find(
                "texts[0] has 10000000 bytes, more than max_text_bytes 100000"),
            std::string::npos)
      << status.error_message();
}

// --max_message_bytes is gRPC's max receive message size: the message is
// refused before it is parsed, and the server goes on serving.
TEST_F(LimitsTest, MessageOverMaxMessageBytesIsRefusedByGrpc) {
  auto stub = Stub(*bounded_);
  transformer::v1::TranslateRequest request;
  request.add_texts(std::string(kMaxMessageBytes + 1024, 'a'));
  transformer::v1::TranslateResponse response;
  const grpc::Status status = Translate(*stub, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  transformer::v1::TranslateRequest small;
  small.add_texts("A dog.");
  EXPECT_TRUE(Translate(*stub, small, &response).ok());
}

// The runaway text decodes to max_length without the bound; with the
// default factor 3 it stops after exactly 3 x source tokens + 10 tokens,
// without </s>. Greedy: the bounded ids are the unbounded ones' prefix.
TEST_F(LimitsTest, RunawayOutputStopsAtTheLengthFactorsBound) {
  auto bounded = Stub(*bounded_);
  auto unbounded = Stub(*unbounded_);
  for (int beam : {1, 4}) {
    SCOPED_TRACE(absl::StrCat("beam ", beam));
    transformer::v1::TranslateRequest request;
    request.add_texts(kRunaway);
    request.mutable_options()->set_beam_size(beam);
    transformer::v1::TranslateResponse cut, runaway;
    ASSERT_TRUE(Translate(*bounded, request, &cut).ok());
    ASSERT_TRUE(Translate(*unbounded, request, &runaway).ok());
    const int source_tokens = cut.translations(0).input_token_count();
    const auto& cut_ids = cut.translations(0).hypotheses(0).token_ids();
    const auto& runaway_ids = runaway.translations(0).hypotheses(0).token_ids();
    // max_length 512 counts the decoder start token; the model forces </s>.
    EXPECT_EQ(runaway_ids.size(), 511) << "the text runs away";
    EXPECT_EQ(cut_ids.size(), 3 * source_tokens + 10);
    EXPECT_NE(cut_ids[cut_ids.size() - 1], kEos);
    if (beam == 1) {
      EXPECT_TRUE(
          std::equal(cut_ids.begin(), cut_ids.end(), runaway_ids.begin()));
    }
    std::printf("beam %d: %d source tokens, %d output tokens (%d unbounded)\n",
                beam, source_tokens, cut_ids.size(), runaway_ids.size());
  }
}

// Per text: texts of different lengths in one request (one batch), made
// long by min_length, each stop at its own bound.
TEST_F(LimitsTest, EachTextOfARequestHasItsOwnBound) {
  auto stub = Stub(*bounded_);
  transformer::v1::TranslateRequest request;
  request.add_texts("A dog.");
  request.add_texts("A man in an orange hat starring at something.");
  request.add_texts(
      "A group of people standing in front of an igloo while a man in a red "
      "jacket watches them from the other side of the frozen lake.");
  request.mutable_options()->set_beam_size(1);
  request.mutable_options()->set_min_length(512);
  transformer::v1::TranslateResponse response;
  ASSERT_TRUE(Translate(*stub, request, &response).ok());
  ASSERT_EQ(response.translations_size(), 3);
  for (const auto& translation : response.translations()) {
    const int source_tokens = translation.input_token_count();
    EXPECT_EQ(translation.hypotheses(0).token_ids_size(),
              3 * source_tokens + 10)
        << source_tokens << " source tokens";
  }
  EXPECT_NE(response.translations(0).input_token_count(),
            response.translations(2).input_token_count());
}

std::vector<json> RepetitionGolden() {
  std::vector<json> lines;
  for (absl::string_view line :
       absl::StrSplit(ReadFile(std::string(TS_DEMO_MODEL_DIR) +
                               "/golden/repetition.jsonl"),
                      '\n', absl::SkipEmpty())) {
    lines.push_back(json::parse(line));
  }
  return lines;
}

// Through the server: each golden case of the second source (its output
// repeats "U-Bahn-Bahn-Bahn"), one request per case after the plain one, so
// a cache that ignored the options would return the plain output.
TEST_F(LimitsTest, RepetitionControlsMatchTheReferenceAndSplitTheCache) {
  const std::vector<json> golden = RepetitionGolden();
  ASSERT_EQ(golden.size(), 48u);
  auto stub = Stub(*bounded_);
  int compared = 0;
  for (const json& line : golden) {
    if (line["source"] != "Three teenagers in a subway playing around.") {
      continue;
    }
    transformer::v1::TranslateRequest request;
    request.add_texts(line["source"].get<std::string>());
    auto* options = request.mutable_options();
    options->set_beam_size(line["beam_size"].get<int>());
    options->set_max_length(line["max_length"].get<int>());
    options->set_no_repeat_ngram_size(line["no_repeat_ngram_size"].get<int>());
    if (line["repetition_penalty"].get<double>() != 1.0) {
      options->set_repetition_penalty(line["repetition_penalty"].get<float>());
    }
    transformer::v1::TranslateResponse response;
    ASSERT_TRUE(Translate(*stub, request, &response).ok());
    const auto& ids = response.translations(0).hypotheses(0).token_ids();
    EXPECT_EQ(std::vector<int>(ids.begin(), ids.end()),
              line["ids"].get<std::vector<int>>())
        << line.dump();
    EXPECT_EQ(response.translations(0).hypotheses(0).text(),
              line["text"].get<std::string>());
    ++compared;
  }
  EXPECT_EQ(compared, 8);
}

// The client's --no_repeat_ngram_size and --repetition_penalty.
TEST_F(LimitsTest, ClientFlagsSetTheRepetitionControls) {
  for (const json& line : RepetitionGolden()) {
    if (line["source"] != "A man doing handstand on top of a round statue." ||
        line["beam_size"] != 1 ||
        (line["no_repeat_ngram_size"] == 0 &&
         line["repetition_penalty"] == 1.0)) {
      continue;
    }
    const CommandResult result = RunCommand(absl::StrCat(
        TS_CLIENT_BINARY, " translate --server=", bounded_->target(),
        " --beam_size=1 --max_length=", line["max_length"].get<int>(),
        " --no_repeat_ngram_size=", line["no_repeat_ngram_size"].get<int>(),
        " --repetition_penalty=", line["repetition_penalty"].get<double>(),
        " '", line["source"].get<std::string>(), "'"));
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out, line["text"].get<std::string>() + "\n")
        << line.dump();
  }
}

}  // namespace
}  // namespace ts::testing
