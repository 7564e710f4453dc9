// TranslateStream end to end: the real server on loopback (translation cache
// off, so every text is computed), called with gRPC stubs and the real
// client. On the 200 golden sources with greedy search, each text's streamed
// ids and text deltas join to exactly the unary Translate output, and its
// last message carries the unary Translation; beam search sends one message
// per text; errors match Translate's; the cache answers a repeated text in
// one message; streaming and unary requests share batches; a cancelled
// stream leaves the server serving.
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/test_server.h"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace {

using google::protobuf::util::MessageDifferencer;
using transformer::v1::TranslateRequest;
using transformer::v1::TranslateResponse;
using transformer::v1::TranslateStreamResponse;
using transformer::v1::Translation;
using ts::testing::CommandResult;
using ts::testing::RunCommand;

// Everything one TranslateStream call returned.
struct StreamResult {
  grpc::Status status;
  std::vector<TranslateStreamResponse> messages;

  // The messages of text `index`, in arrival order.
  std::vector<const TranslateStreamResponse*> Of(int index) const {
    std::vector<const TranslateStreamResponse*> of;
    for (const auto& message : messages) {
      if (message.text_index() == index) of.push_back(&message);
    }
    return of;
  }
};

// The golden demo outputs: sources and greedy texts (max_length 128).
std::vector<nlohmann::json> Golden() {
  std::vector<nlohmann::json> rows;
  for (absl::string_view line :
       absl::StrSplit(ts::testing::ReadFile(std::string(TS_DEMO_MODEL_DIR) +
                                            "/golden/translations.jsonl"),
                      '\n')) {
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  }
  return rows;
}

// A ts::testing::ServerProcess with a channel and a stub.
class Server {
 public:
  absl::Status Start(std::vector<std::string> args) {
    metrics_port_ = ts::testing::FreePort();
    args.push_back(absl::StrCat("--metrics_port=", metrics_port_));
    args.push_back("--metrics_address=127.0.0.1");
    absl::Status started = process_.Start(args);
    if (!started.ok()) return started;
    channel_ = grpc::CreateChannel(process_.target(),
                                   grpc::InsecureChannelCredentials());
    stub_ = transformer::v1::TransformerService::NewStub(channel_);
    return absl::OkStatus();
  }

  grpc::Status Translate(const TranslateRequest& request,
                         TranslateResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(5)));
    return stub_->Translate(&context, request, response);
  }

  StreamResult TranslateStream(const TranslateRequest& request) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(5)));
    StreamResult result;
    auto reader = stub_->TranslateStream(&context, request);
    TranslateStreamResponse message;
    while (reader->Read(&message)) result.messages.push_back(message);
    result.status = reader->Finish();
    return result;
  }

  // The value of the sample line that starts with `series` in /metrics.
  double Metric(const std::string& series) const {
    const CommandResult result = RunCommand(
        absl::StrCat("curl -sf http://127.0.0.1:", metrics_port_, "/metrics"));
    EXPECT_EQ(result.exit_code, 0) << result.err;
    for (absl::string_view line : absl::StrSplit(result.out, '\n')) {
      if (absl::StartsWith(line, series + " ")) {
        return std::stod(std::string(line.substr(series.size() + 1)));
      }
    }
    ADD_FAILURE() << series << " not in /metrics";
    return -1;
  }

  const std::string target() const { return process_.target(); }
  transformer::v1::TransformerService::Stub& stub() { return *stub_; }

 private:
  ts::testing::ServerProcess process_;
  int metrics_port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<transformer::v1::TransformerService::Stub> stub_;
};

// Checks that text `index` of `stream` spells out `expected` (the unary
// Translation): the concatenated ids and deltas equal its best hypothesis,
// only the last message has a translation, and it equals `expected`.
void ExpectStreamedTranslation(const StreamResult& stream, int index,
                               const Translation& expected) {
  SCOPED_TRACE(absl::StrCat("text ", index));
  const std::vector<const TranslateStreamResponse*> messages = stream.Of(index);
  ASSERT_FALSE(messages.empty());
  std::vector<int> ids;
  std::string text;
  for (size_t m = 0; m < messages.size(); ++m) {
    ids.insert(ids.end(), messages[m]->token_ids().begin(),
               messages[m]->token_ids().end());
    text += messages[m]->text_delta();
    EXPECT_EQ(messages[m]->has_translation(), m + 1 == messages.size());
  }
  ASSERT_GT(expected.hypotheses_size(), 0);
  EXPECT_EQ(ids, std::vector<int>(expected.hypotheses(0).token_ids().begin(),
                                  expected.hypotheses(0).token_ids().end()));
  EXPECT_EQ(text, expected.hypotheses(0).text());
  EXPECT_TRUE(
      MessageDifferencer::Equals(messages.back()->translation(), expected))
      << "streamed: " << messages.back()->translation().DebugString()
      << "unary: " << expected.DebugString();
}

class StreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    golden_ = new std::vector<nlohmann::json>(Golden());
    ASSERT_EQ(golden_->size(), 200u);
    server_ = new Server();
    const absl::Status started = server_->Start(
        {"--num_workers=2", "--intra_threads=1", "--cache_mb=0"});
    ASSERT_TRUE(started.ok()) << started;
  }
  static void TearDownTestSuite() {
    delete server_;
    delete golden_;
  }

  // Golden sources first .. first + count - 1; max_length 0 = the default.
  static TranslateRequest GoldenRequest(size_t first, size_t count,
                                        int beam_size, int max_length = 0) {
    TranslateRequest request;
    for (size_t i = first; i < first + count && i < golden_->size(); ++i) {
      request.add_texts((*golden_)[i]["source"].get<std::string>());
    }
    request.mutable_options()->set_beam_size(beam_size);
    request.mutable_options()->set_max_length(max_length);
    return request;
  }

  // Whether golden text `i` ended before the golden files' max_length of
  // 128 (at 127 generated tokens the model's forced eos cuts it), so the
  // default max_length gives it too.
  static bool GoldenFinished(size_t i) {
    return (*golden_)[i]["greedy_ids"].size() < 127;
  }

  static std::vector<nlohmann::json>* golden_;
  static Server* server_;
};

std::vector<nlohmann::json>* StreamTest::golden_ = nullptr;
Server* StreamTest::server_ = nullptr;

// The 200 golden sources, greedy and otherwise default options, in requests
// of 20 sent one at a time (so unary and stream calls form the same batches):
// every text's streamed ids, deltas and final Translation equal the unary
// call's, and the texts equal the golden greedy texts (199 of them: one
// golden output was cut at the golden files' max_length of 128 tokens).
TEST_F(StreamTest, GreedyGoldenStreamsEqualUnaryTranslate) {
  const double ttft_before =
      server_->Metric("transformer_time_to_first_token_seconds_count");
  int texts_equal = 0;
  int golden_equal = 0;
  int golden_finished = 0;
  size_t messages = 0;
  for (size_t first = 0; first < golden_->size(); first += 20) {
    const TranslateRequest request = GoldenRequest(first, 20, 1);
    TranslateResponse unary;
    const grpc::Status unary_status = server_->Translate(request, &unary);
    ASSERT_TRUE(unary_status.ok()) << unary_status.error_message();
    ASSERT_EQ(unary.translations_size(), 20);
    const StreamResult stream = server_->TranslateStream(request);
    ASSERT_TRUE(stream.status.ok()) << stream.status.error_message();
    // Tokens come one step at a time: more messages than texts (the first
    // token of a call is never merged with a later message).
    EXPECT_GT(stream.messages.size(), 20u);
    messages += stream.messages.size();
    for (int i = 0; i < 20; ++i) {
      ExpectStreamedTranslation(stream, i, unary.translations(i));
      std::string text;
      for (const auto* message : stream.Of(i)) text += message->text_delta();
      texts_equal += text == unary.translations(i).hypotheses(0).text();
      if (GoldenFinished(first + i)) {
        const std::string golden = (*golden_)[first + i]["greedy_text"];
        EXPECT_EQ(text, golden) << (*golden_)[first + i]["source"];
        ++golden_finished;
        golden_equal += text == golden;
      }
    }
  }
  EXPECT_EQ(texts_equal, 200);
  EXPECT_EQ(golden_finished, 199);
  EXPECT_EQ(golden_equal, golden_finished);
  std::printf(
      "200 texts: %zu messages; joined deltas equal the unary text for %d, "
      "the golden text for %d of %d\n",
      messages, texts_equal, golden_equal, golden_finished);
  // One time-to-first-token observation per streamed text.
  EXPECT_EQ(server_->Metric("transformer_time_to_first_token_seconds_count") -
                ttft_before,
            200);
}

// Beam search: exactly one message per text, with all its ids, its text and
// the unary Translation (every hypothesis).
TEST_F(StreamTest, BeamSearchSendsOneMessagePerText) {
  TranslateRequest request = GoldenRequest(40, 6, 4);
  request.mutable_options()->set_num_hypotheses(2);
  TranslateResponse unary;
  ASSERT_TRUE(server_->Translate(request, &unary).ok());
  const StreamResult stream = server_->TranslateStream(request);
  ASSERT_TRUE(stream.status.ok()) << stream.status.error_message();
  ASSERT_EQ(stream.messages.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(stream.Of(i).size(), 1u);
    EXPECT_EQ(stream.Of(i)[0]->translation().hypotheses_size(), 2);
    ExpectStreamedTranslation(stream, i, unary.translations(i));
  }
}

// Invalid requests: the unary call's code and message, and no message.
TEST_F(StreamTest, InvalidRequestsFailAsTranslate) {
  std::vector<TranslateRequest> requests(4);
  requests[0].add_texts("");        // empty text
  requests[1].add_texts("A dog.");  // max_length past the cap
  requests[1].mutable_options()->set_max_length(100000);
  requests[2].add_texts("A dog.");  // beam search cannot sample
  requests[2].mutable_options()->set_beam_size(4);
  requests[2].mutable_options()->set_do_sample(true);
  for (int i = 0; i < 300; ++i) requests[3].add_texts("Too many.");
  for (const TranslateRequest& request : requests) {
    TranslateResponse unary;
    const grpc::Status unary_status = server_->Translate(request, &unary);
    ASSERT_EQ(unary_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << unary_status.error_message();
    const StreamResult stream = server_->TranslateStream(request);
    EXPECT_EQ(stream.status.error_code(), unary_status.error_code());
    EXPECT_EQ(stream.status.error_message(), unary_status.error_message());
    EXPECT_TRUE(stream.messages.empty());
  }
}

// Streaming and unary requests with the same options, 8 at a time over the
// golden sources (max_length 128, as the golden files): both get the golden
// greedy texts while they share batches.
TEST_F(StreamTest, StreamingAndUnaryRequestsShareBatches) {
  std::vector<std::thread> clients;
  std::vector<int> correct(8, 0);
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([c, &correct] {
      for (size_t first = c * 5; first < 200; first += 40) {
        const TranslateRequest request = GoldenRequest(first, 5, 1, 128);
        std::vector<std::string> texts(request.texts_size());
        if (c % 2 == 0) {
          TranslateResponse unary;
          if (!server_->Translate(request, &unary).ok()) continue;
          for (int i = 0; i < unary.translations_size(); ++i) {
            texts[i] = unary.translations(i).hypotheses(0).text();
          }
        } else {
          const StreamResult stream = server_->TranslateStream(request);
          if (!stream.status.ok()) continue;
          for (const auto& message : stream.messages) {
            texts[message.text_index()] += message.text_delta();
          }
        }
        for (size_t i = 0; i < texts.size(); ++i) {
          correct[c] += texts[i] ==
                        (*golden_)[first + i]["greedy_text"].get<std::string>();
        }
      }
    });
  }
  for (std::thread& client : clients) client.join();
  for (int c = 0; c < 8; ++c) {
    EXPECT_EQ(correct[c], 25) << "client " << c << (c % 2 ? " (stream)" : "");
  }
}

// A client that cancels after the first message: the server answers the
// next calls as before.
TEST_F(StreamTest, CancelledStreamLeavesTheServerServing) {
  {
    grpc::ClientContext context;
    auto reader =
        server_->stub().TranslateStream(&context, GoldenRequest(0, 64, 1));
    TranslateStreamResponse message;
    ASSERT_TRUE(reader->Read(&message));
    context.TryCancel();
    while (reader->Read(&message)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  const TranslateRequest request = GoldenRequest(100, 3, 1);
  const StreamResult stream = server_->TranslateStream(request);
  ASSERT_TRUE(stream.status.ok()) << stream.status.error_message();
  TranslateResponse unary;
  ASSERT_TRUE(server_->Translate(request, &unary).ok());
  for (int i = 0; i < 3; ++i) {
    ExpectStreamedTranslation(stream, i, unary.translations(i));
  }
}

// transformer-client translate --stream: the golden greedy texts, one line
// each; bench --stream reports time to first token.
TEST_F(StreamTest, ClientStreamsTheGoldenTexts) {
  std::string sources;
  for (const nlohmann::json& row : *golden_) {
    sources += row["source"].get<std::string>() + "\n";
  }
  const std::string client =
      absl::StrCat(TS_CLIENT_BINARY, " --server=", server_->target());
  CommandResult result =
      RunCommand(absl::StrCat(client,
                              " translate --stream --beam_size=1 "
                              "--max_length=128 --texts_per_request=16"),
                 sources);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::vector<std::string> lines = absl::StrSplit(result.out, '\n');
  ASSERT_EQ(lines.size(), 201u);  // and the final newline
  int equal = 0;
  for (size_t i = 0; i < 200; ++i) {
    const std::string golden = (*golden_)[i]["greedy_text"];
    EXPECT_EQ(lines[i], golden) << "line " << i;
    equal += lines[i] == golden;
  }
  EXPECT_EQ(equal, 200);

  result = RunCommand(absl::StrCat(client,
                                   " bench --stream --beam_size=1 "
                                   "--requests=20 --concurrency=2"),
                      sources);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["codes"]["OK"], 20);
  EXPECT_TRUE(report["stream"].get<bool>());
  EXPECT_GT(report["time_to_first_token_p50_s"].get<double>(), 0.0);
  EXPECT_LE(report["time_to_first_token_p50_s"].get<double>(),
            report["latency_p50_s"].get<double>());
  EXPECT_LE(report["time_to_first_token_p99_s"].get<double>(),
            report["time_to_first_token_max_s"].get<double>());
}

// With the translation cache on, a repeated text arrives as one message
// holding all its ids, its text and the Translation of the computed call.
TEST(StreamCacheTest, CachedTextArrivesInOneMessage) {
  Server server;
  const absl::Status started =
      server.Start({"--num_workers=1", "--intra_threads=1", "--cache_mb=16"});
  ASSERT_TRUE(started.ok()) << started;
  TranslateRequest request;
  request.add_texts("A man in an orange hat starring at something.");
  request.add_texts("Two dogs play in the snow.");
  request.mutable_options()->set_beam_size(1);
  const StreamResult computed = server.TranslateStream(request);
  ASSERT_TRUE(computed.status.ok()) << computed.status.error_message();
  EXPECT_GT(computed.messages.size(), 2u);
  const StreamResult cached = server.TranslateStream(request);
  ASSERT_TRUE(cached.status.ok()) << cached.status.error_message();
  ASSERT_EQ(cached.messages.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    ExpectStreamedTranslation(cached, i, computed.Of(i).back()->translation());
    ExpectStreamedTranslation(computed, i,
                              computed.Of(i).back()->translation());
  }
  EXPECT_EQ(cached.messages[0].translation().hypotheses(0).text(),
            "Ein Mann mit einem orangefarbenen Hut starrt etwas an.");
}

}  // namespace
