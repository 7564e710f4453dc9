// The HTTP/JSON gateway of the real transformer-server on loopback, called
// with cpp-httplib's client: every endpoint, the golden translations, the
// error contract (grpc-gateway's status mapping, malformed JSON, an oversized
// body, unknown paths, deadlines), golden cross-attention, metrics shared
// with gRPC (gateway refusals included), a client closing its connection
// (decoding, queued, streamed: cancelled), and drain.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/integration/test_server.h"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace {

using nlohmann::json;

constexpr int kMaxMessageBytes = 64 * 1024;

// The value of transformer_requests_total{method, code} in a /metrics text.
double RequestsTotal(const std::string& metrics, const std::string& method,
                     const std::string& code) {
  return ts::testing::SumSeries(
      metrics,
      absl::StrCat("transformer_requests_total{code=\"", code, "\",method=\"",
                   method, "\"}"),
      0);
}

// The value of a metric without labels (a gauge or a counter) in a /metrics
// text; -1 if absent.
double MetricValue(const std::string& metrics, const std::string& name) {
  return ts::testing::SumSeries(metrics, name, -1);
}

// One HTTP request written on a raw loopback socket, whose answer is never
// read: Close() is the client going away (a FIN), as a browser tab closing
// or a killed curl does.
class AbandonedRequest {
 public:
  AbandonedRequest(int port, const std::string& path, const std::string& body) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
        0) {
      Close();
      return;
    }
    const std::string request = absl::StrCat(
        "POST ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n",
        "Content-Type: application/json\r\nContent-Length: ", body.size(),
        "\r\n\r\n", body);
    if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      Close();
    }
  }
  ~AbandonedRequest() { Close(); }
  AbandonedRequest(const AbandonedRequest&) = delete;
  AbandonedRequest& operator=(const AbandonedRequest&) = delete;

  bool sent() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

class HttpGatewayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    http_port_ = ts::testing::FreePort();
    metrics_port_ = ts::testing::FreePort();
    ASSERT_GT(http_port_, 0);
    ASSERT_GT(metrics_port_, 0);
    server_ = new ts::testing::ServerProcess();
    const absl::Status started = server_->Start(
        {absl::StrCat("--http_port=", http_port_), "--http_address=127.0.0.1",
         absl::StrCat("--metrics_port=", metrics_port_),
         "--metrics_address=127.0.0.1", "--num_workers=1", "--intra_threads=1",
         absl::StrCat("--max_message_bytes=", kMaxMessageBytes),
         "--drain_timeout_s=120"});
    ASSERT_TRUE(started.ok()) << started;
  }
  static void TearDownTestSuite() { delete server_; }

  static std::unique_ptr<httplib::Client> Client() {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", http_port_);
    client->set_read_timeout(300, 0);
    return client;
  }

  // POSTs `body` to `path`; the status and the parsed JSON answer.
  static std::pair<int, json> Post(const std::string& path,
                                   const std::string& body,
                                   const httplib::Headers& headers = {}) {
    httplib::Result result =
        Client()->Post(path, headers, body, "application/json");
    if (!result) return {-1, json()};
    return {result->status, json::parse(result->body, nullptr, false)};
  }

  static std::string Metrics() {
    httplib::Client client("127.0.0.1", metrics_port_);
    httplib::Result result = client.Get("/metrics");
    return result ? result->body : "";
  }

  static double Metric(const std::string& name) {
    return MetricValue(Metrics(), name);
  }

  // Polls the metrics until `done(metrics text)` or `timeout`; the time it
  // took (at least `timeout` if it never held).
  template <typename Done>
  static absl::Duration WaitForMetrics(Done done, absl::Duration timeout) {
    const absl::Time start = absl::Now();
    while (!done(Metrics())) {
      if (absl::Now() - start >= timeout) return absl::Now() - start;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return absl::Now() - start;
  }

  // The issue's long request: `count` golden sources from `first`, beam 4,
  // min_length 150, so the demo model decodes them for seconds.
  static std::string LongRequest(int first, int count) {
    const std::vector<ts::testing::GoldenTranslation> golden =
        ts::testing::ReadGoldenTranslations();
    json request = {
        {"texts", json::array()},
        {"options", {{"beamSize", 4}, {"minLength", 150}, {"maxLength", 200}}}};
    for (int i = first; i < first + count; ++i) {
      request["texts"].push_back(golden[i].source);
    }
    return request.dump();
  }

  // A long request on `path` (16 texts, LongRequest) decodes; its client
  // closes the connection. Its 16 sequences leave the step batch within a
  // second, far before their 150 steps, and it counts as CANCELLED under
  // `method`.
  static void ExpectCloseCancelsDecoding(const std::string& path,
                                         const std::string& method,
                                         int first_text) {
    const std::string before = Metrics();
    ASSERT_EQ(MetricValue(before, "transformer_active_sequences"), 0);
    AbandonedRequest call(http_port_, path, LongRequest(first_text, 16));
    ASSERT_TRUE(call.sent());
    const absl::Duration admitted = WaitForMetrics(
        [](const std::string& m) {
          return MetricValue(m, "transformer_active_sequences") >= 16;
        },
        absl::Seconds(30));
    ASSERT_LT(admitted, absl::Seconds(30)) << "never decoded";
    const double steps_at_close = Metric("transformer_decode_steps_total");
    call.Close();
    const absl::Duration freed = WaitForMetrics(
        [](const std::string& m) {
          return MetricValue(m, "transformer_active_sequences") == 0;
        },
        absl::Seconds(10));
    EXPECT_LE(freed, absl::Seconds(1))
        << "active sequences left " << absl::FormatDuration(freed)
        << " after the close";
    std::cerr << "[ INFO     ] " << path << ": active sequences 0 "
              << absl::FormatDuration(freed) << " after the client closed\n";
    const std::string after = Metrics();
    EXPECT_EQ(MetricValue(after, "transformer_kv_cache_bytes"), 0);
    EXPECT_LT(
        MetricValue(after, "transformer_decode_steps_total") - steps_at_close,
        100)
        << "the sequences decoded on after the close";
    EXPECT_EQ(RequestsTotal(after, method, "CANCELLED") -
                  RequestsTotal(before, method, "CANCELLED"),
              1);
    EXPECT_EQ(RequestsTotal(after, method, "OK"),
              RequestsTotal(before, method, "OK"));
  }

  // Expects the gateway's error: HTTP `http_status`, body {"code": grpc_code,
  // "message": non-empty}.
  static void ExpectError(const std::pair<int, json>& answer, int http_status,
                          grpc::StatusCode grpc_code) {
    EXPECT_EQ(answer.first, http_status) << answer.second.dump();
    ASSERT_TRUE(answer.second.is_object()) << answer.second.dump();
    EXPECT_EQ(answer.second.value("code", -1), static_cast<int>(grpc_code))
        << answer.second.dump();
    EXPECT_FALSE(answer.second.value("message", "").empty());
  }

  static ts::testing::ServerProcess* server_;
  static int http_port_;
  static int metrics_port_;
};

ts::testing::ServerProcess* HttpGatewayTest::server_ = nullptr;
int HttpGatewayTest::http_port_ = 0;
int HttpGatewayTest::metrics_port_ = 0;

TEST_F(HttpGatewayTest, HealthAndReadiness) {
  httplib::Result live = Client()->Get("/healthz");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  httplib::Result ready = Client()->Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
}

TEST_F(HttpGatewayTest, ModelInfoIsTheModelsConfig) {
  httplib::Result result = Client()->Get("/v1/model");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  EXPECT_EQ(result->get_header_value("Content-Type"), "application/json");
  const json info = json::parse(result->body);
  const json config = json::parse(
      ts::testing::ReadFile(std::string(TS_DEMO_MODEL_DIR) + "/config.json"));
  // proto3 JSON names (lowerCamelCase).
  EXPECT_EQ(info["dModel"], config["d_model"]);
  EXPECT_EQ(info["encoderLayers"], config["encoder_layers"]);
  EXPECT_EQ(info["decoderLayers"], config["decoder_layers"]);
  EXPECT_EQ(info["decoderAttentionHeads"], config["decoder_attention_heads"]);
  EXPECT_EQ(info["vocabSize"], config["vocab_size"]);
  EXPECT_EQ(info["maxTextsPerRequest"], 256);
}

TEST_F(HttpGatewayTest, TranslateGivesTheGoldenGreedyTexts) {
  const std::vector<ts::testing::GoldenTranslation> golden =
      ts::testing::ReadGoldenTranslations();
  ASSERT_EQ(golden.size(), 200u);
  json request = {{"texts", json::array()},
                  {"options", {{"beamSize", 1}, {"maxLength", 128}}}};
  for (const auto& row : golden) request["texts"].push_back(row.source);
  const auto [status, response] = Post("/v1/translate", request.dump());
  ASSERT_EQ(status, 200) << response.dump();
  ASSERT_EQ(response["translations"].size(), golden.size());
  int same = 0;
  for (size_t i = 0; i < golden.size(); ++i) {
    const json& translation = response["translations"][i];
    EXPECT_GT(translation["inputTokenCount"].get<int>(), 1);
    const std::string text = translation["hypotheses"][0]["text"];
    EXPECT_EQ(text, golden[i].greedy_text) << "line " << i;
    same += text == golden[i].greedy_text;
  }
  EXPECT_EQ(same, 200);
}

// Documents through HTTP/JSON: inputFormat in the proto3 JSON mapping, the
// gaps kept and one segment per sentence with its byte range.
TEST_F(HttpGatewayTest, TranslateSplitsADocumentIntoSegments) {
  const std::vector<ts::testing::GoldenTranslation> golden =
      ts::testing::ReadGoldenTranslations();
  const std::string text =
      golden[20].source + "\n\n" + golden[21].source + " " + golden[22].source;
  json request = {{"texts", {text}},
                  {"options",
                   {{"beamSize", 1},
                    {"maxLength", 128},
                    {"inputFormat", "INPUT_FORMAT_TEXT"}}}};
  const auto [status, response] = Post("/v1/translate", request.dump());
  ASSERT_EQ(status, 200) << response.dump();
  const json& translation = response["translations"][0];
  EXPECT_EQ(translation["hypotheses"][0]["text"],
            golden[20].greedy_text + "\n\n" + golden[21].greedy_text + " " +
                golden[22].greedy_text);
  ASSERT_EQ(translation["segments"].size(), 3u);
  EXPECT_EQ(translation["segments"][1]["source"], golden[21].source);
  EXPECT_EQ(translation["segments"][1]["sourceBegin"],
            static_cast<int>(golden[20].source.size() + 2));
  request["options"]["inputFormat"] = "INPUT_FORMAT_NOPE";
  EXPECT_EQ(Post("/v1/translate", request.dump()).first, 400);
}

// POST /v1/translate:stream: server-sent events, one per TranslateStream
// message. Greedy (maxLength 100: not in the cache the test above filled),
// so tokens stream; each text's deltas and ids join to its golden greedy
// text and to its last event's translation, which equals /v1/translate's.
// An invalid request is the ordinary 400 error.
TEST_F(HttpGatewayTest, TranslateStreamSendsServerSentEvents) {
  const std::vector<ts::testing::GoldenTranslation> golden =
      ts::testing::ReadGoldenTranslations();
  ASSERT_EQ(golden.size(), 200u);
  json request = {{"texts", json::array()},
                  {"options", {{"beamSize", 1}, {"maxLength", 100}}}};
  const size_t texts = 8;
  for (size_t i = 0; i < texts; ++i) {
    request["texts"].push_back(golden[120 + i].source);
  }
  httplib::Result result = Client()->Post("/v1/translate:stream",
                                          request.dump(), "application/json");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  EXPECT_EQ(result->get_header_value("Content-Type"), "text/event-stream");
  std::vector<std::string> joined(texts);
  std::vector<std::vector<int>> ids(texts);
  std::vector<json> translations(texts);
  int events = 0;
  for (absl::string_view event : absl::StrSplit(result->body, "\n\n")) {
    if (event.empty()) continue;
    ASSERT_TRUE(absl::ConsumePrefix(&event, "data: ")) << event;
    const json message = json::parse(event);
    ++events;
    const int index = message["textIndex"];
    ASSERT_GE(index, 0);
    ASSERT_LT(index, static_cast<int>(texts));
    EXPECT_TRUE(translations[index].is_null()) << "event after the last one";
    joined[index] += message["textDelta"].get<std::string>();
    for (const json& id : message["tokenIds"]) ids[index].push_back(id);
    if (message.contains("translation")) {
      translations[index] = message["translation"];
    }
  }
  EXPECT_GT(events, static_cast<int>(texts)) << "greedy tokens stream";
  const auto [status, unary] = Post("/v1/translate", request.dump());
  ASSERT_EQ(status, 200) << unary.dump();
  for (size_t i = 0; i < texts; ++i) {
    EXPECT_EQ(joined[i], golden[120 + i].greedy_text) << "text " << i;
    ASSERT_FALSE(translations[i].is_null()) << "text " << i;
    EXPECT_EQ(translations[i], unary["translations"][i]) << "text " << i;
    EXPECT_EQ(
        ids[i],
        translations[i]["hypotheses"][0]["tokenIds"].get<std::vector<int>>());
  }
  ExpectError(Post("/v1/translate:stream", R"({"texts": []})"), 400,
              grpc::StatusCode::INVALID_ARGUMENT);
}

// Cross-attention through HTTP against the reference PyTorch MarianMT
// (golden/attention.jsonl: 20 sentences, greedy and beam 4, every decoder
// layer averaged over heads), all 20 in one request per search and layer.
TEST_F(HttpGatewayTest, AttentionMatchesGoldenForEveryLayerGreedyAndBeam) {
  std::vector<json> golden;
  for (const absl::string_view line :
       absl::StrSplit(ts::testing::ReadFile(std::string(TS_DEMO_MODEL_DIR) +
                                            "/golden/attention.jsonl"),
                      '\n', absl::SkipEmpty())) {
    golden.push_back(json::parse(std::string(line)));
  }
  ASSERT_EQ(golden.size(), 40u);
  const int layers = static_cast<int>(golden[0]["cross_attention"].size());
  for (const auto& [search, beam] :
       {std::pair<std::string, int>{"greedy", 1}, {"beam4", 4}}) {
    std::vector<const json*> rows;
    json request = {{"texts", json::array()}};
    for (const json& row : golden) {
      if (row["search"] != search) continue;
      rows.push_back(&row);
      request["texts"].push_back(row["source"]);
    }
    ASSERT_EQ(rows.size(), 20u) << search;
    for (int layer = 0; layer < layers; ++layer) {
      request["options"] = {{"beamSize", beam},
                            {"maxLength", 128},
                            {"returnAttention", true},
                            {"attentionLayer", layer}};
      const auto [status, response] = Post("/v1/translate", request.dump());
      ASSERT_EQ(status, 200) << response.dump();
      for (size_t i = 0; i < rows.size(); ++i) {
        const json& want = *rows[i];
        const json& translation = response["translations"][i];
        const json& hypothesis = translation["hypotheses"][0];
        const size_t source_len = want["source_ids"].size();
        const size_t target_len = want["ids"].size();
        ASSERT_EQ(hypothesis["tokenIds"], want["ids"]) << search << " " << i;
        ASSERT_EQ(translation["sourceTokens"].size(), source_len);
        ASSERT_EQ(hypothesis["targetTokens"].size(), target_len);
        ASSERT_EQ(hypothesis["alignment"].size(), target_len);
        ASSERT_EQ(hypothesis["attention"].size(), target_len * source_len);
        const json& matrix = want["cross_attention"][layer];
        for (size_t t = 0; t < target_len; ++t) {
          for (size_t k = 0; k < source_len; ++k) {
            ASSERT_NEAR(
                hypothesis["attention"][t * source_len + k].get<float>(),
                matrix[t][k].get<float>(), 1e-4)
                << search << " sentence " << i << " layer " << layer << " row "
                << t << " column " << k;
          }
        }
      }
    }
  }
}

TEST_F(HttpGatewayTest, SnakeCaseFieldNamesAreAcceptedToo) {
  // The proto3 JSON mapping accepts the proto field names as well.
  const auto [status, response] = Post(
      "/v1/translate",
      R"({"texts": ["A dog runs."], "options": {"beam_size": 1, "num_hypotheses": 1}})");
  ASSERT_EQ(status, 200) << response.dump();
  EXPECT_FALSE(response["translations"][0]["hypotheses"][0]["text"]
                   .get<std::string>()
                   .empty());
}

TEST_F(HttpGatewayTest, EncodeEqualsGrpcEncode) {
  const auto [status, response] = Post(
      "/v1/encode",
      R"({"texts": ["A dog runs.", "Two men play chess."], "normalize": true})");
  ASSERT_EQ(status, 200) << response.dump();
  ASSERT_EQ(response["embeddings"].size(), 2u);

  auto stub = transformer::v1::TransformerService::NewStub(grpc::CreateChannel(
      server_->target(), grpc::InsecureChannelCredentials()));
  transformer::v1::EncodeRequest request;
  request.add_texts("A dog runs.");
  request.add_texts("Two men play chess.");
  request.set_normalize(true);
  transformer::v1::EncodeResponse expected;
  grpc::ClientContext context;
  ASSERT_TRUE(stub->Encode(&context, request, &expected).ok());
  for (int i = 0; i < 2; ++i) {
    const json& embedding = response["embeddings"][i];
    EXPECT_EQ(embedding["dim"], 256);
    EXPECT_EQ(embedding["numTokens"], expected.embeddings(i).num_tokens());
    ASSERT_EQ(embedding["values"].size(), 256u);
    double norm = 0;
    for (int k = 0; k < 256; ++k) {
      const float value = embedding["values"][k].get<float>();
      // JSON carries floats exactly (shortest round-trip digits).
      EXPECT_EQ(value, expected.embeddings(i).values(k)) << i << "," << k;
      norm += double{value} * value;
    }
    EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-5);
  }
}

TEST_F(HttpGatewayTest, InvalidArgumentIs400WithTheGrpcCode) {
  ExpectError(Post("/v1/translate", R"({"texts": []})"), 400,
              grpc::StatusCode::INVALID_ARGUMENT);
  ExpectError(Post("/v1/translate",
                   R"({"texts": ["A dog."], "options": {"beamSize": 99}})"),
              400, grpc::StatusCode::INVALID_ARGUMENT);
  ExpectError(Post("/v1/encode", R"({"texts": [""]})"), 400,
              grpc::StatusCode::INVALID_ARGUMENT);
  const auto answer = Post("/v1/translate", R"({"texts": []})");
  EXPECT_EQ(answer.second["message"], "request has no texts");
}

TEST_F(HttpGatewayTest, MalformedJsonIs400) {
  ExpectError(Post("/v1/translate", R"({"texts": ["A dog.")"), 400,
              grpc::StatusCode::INVALID_ARGUMENT);
  ExpectError(Post("/v1/translate", "not json"), 400,
              grpc::StatusCode::INVALID_ARGUMENT);
  // Wrong type, and a field the message does not have (a misspelt option is
  // an error, not silently ignored).
  ExpectError(Post("/v1/translate", R"({"texts": ["A dog.", 5]})"), 400,
              grpc::StatusCode::INVALID_ARGUMENT);
  ExpectError(Post("/v1/translate", R"({"texts": ["A dog."]} trailing)"), 400,
              grpc::StatusCode::INVALID_ARGUMENT);
  ExpectError(
      Post("/v1/translate", R"({"texts": ["A dog."], "options": {"beam": 2}})"),
      400, grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(HttpGatewayTest, BodyOverMaxMessageBytesIs413) {
  json request = {{"texts", {std::string(kMaxMessageBytes + 1000, 'a')}}};
  const auto answer = Post("/v1/translate", request.dump());
  ExpectError(answer, 413, grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(answer.second.value("message", "").find("max_message_bytes"),
            std::string::npos);
  // The server still answers afterwards.
  EXPECT_EQ(Post("/v1/translate", R"({"texts": ["A dog."]})").first, 200);
}

// Refusals by the gateway itself, before the request handler, count in
// transformer_requests_total as the handler's own answers do.
TEST_F(HttpGatewayTest, GatewayRefusalsCountInRequestsTotal) {
  const std::string before = Metrics();
  ASSERT_EQ(Post("/v1/translate", R"({"texts": ["A dog.")").first, 400);
  ASSERT_EQ(Post("/v1/translate", "not json").first, 400);
  ASSERT_EQ(Post("/v1/translate", R"({"texts": ["A dog."]})",
                 {{"Grpc-Timeout", "soon"}})
                .first,
            400);
  ASSERT_EQ(Post("/v1/translate:stream", R"({"texts": 5})").first, 400);
  ASSERT_EQ(Post("/v1/encode", R"({"texts": ["A dog."], "pool": 1)").first,
            400);
  json oversized = {{"texts", {std::string(kMaxMessageBytes + 1000, 'a')}}};
  ASSERT_EQ(Post("/v1/encode", oversized.dump()).first, 413);
  // Not an RPC: not counted.
  ASSERT_EQ(Post("/v1/nothing", "{").first, 404);
  const std::string after = Metrics();
  auto grown = [&](const std::string& method, const std::string& code) {
    return RequestsTotal(after, method, code) -
           RequestsTotal(before, method, code);
  };
  EXPECT_EQ(grown("Translate", "INVALID_ARGUMENT"), 3);
  EXPECT_EQ(grown("TranslateStream", "INVALID_ARGUMENT"), 1);
  EXPECT_EQ(grown("Encode", "INVALID_ARGUMENT"), 1);
  EXPECT_EQ(grown("Encode", "RESOURCE_EXHAUSTED"), 1);
  EXPECT_EQ(after.find("method=\"nothing"), std::string::npos);
}

// Issue 24: a client that closes its connection during a long call frees
// the workers as a gRPC cancel does (the gateway polls the socket for the
// client's FIN whenever the scheduler asks is_cancelled).
TEST_F(HttpGatewayTest, ClosingTheConnectionCancelsADecodingTranslate) {
  ExpectCloseCancelsDecoding("/v1/translate", "Translate", 20);
}

// Beam search streams no tokens, so for seconds there is nothing to write
// that could fail: only the socket tells.
TEST_F(HttpGatewayTest, ClosingTheConnectionCancelsADecodingStream) {
  ExpectCloseCancelsDecoding("/v1/translate:stream", "TranslateStream", 40);
}

// A call whose client leaves while it waits in the queue (the one worker
// decodes another call's 16 sequences, --max_active_sequences) is never
// decoded: it leaves the queue, CANCELLED, when the worker next takes work
// (as a cancelled gRPC call does), here once the first client leaves too.
TEST_F(HttpGatewayTest, ClosingTheConnectionDropsAQueuedTranslate) {
  const std::string before = Metrics();
  ASSERT_EQ(MetricValue(before, "transformer_active_sequences"), 0);
  AbandonedRequest decoding(http_port_, "/v1/translate", LongRequest(60, 16));
  ASSERT_TRUE(decoding.sent());
  ASSERT_LT(WaitForMetrics(
                [](const std::string& m) {
                  return MetricValue(m, "transformer_active_sequences") >= 16;
                },
                absl::Seconds(30)),
            absl::Seconds(30));
  AbandonedRequest queued(http_port_, "/v1/translate", LongRequest(80, 16));
  ASSERT_TRUE(queued.sent());
  ASSERT_LT(WaitForMetrics(
                [](const std::string& m) {
                  return MetricValue(m, "transformer_queue_size") >= 16;
                },
                absl::Seconds(10)),
            absl::Seconds(10));
  queued.Close();
  absl::SleepFor(absl::Milliseconds(50));
  decoding.Close();
  const absl::Duration emptied = WaitForMetrics(
      [](const std::string& m) {
        return MetricValue(m, "transformer_active_sequences") == 0 &&
               MetricValue(m, "transformer_queue_size") == 0;
      },
      absl::Seconds(10));
  EXPECT_LE(emptied, absl::Seconds(1));
  const std::string after = Metrics();
  EXPECT_EQ(RequestsTotal(after, "Translate", "CANCELLED") -
                RequestsTotal(before, "Translate", "CANCELLED"),
            2);
  // Only the first call's 16 sentences were ever admitted.
  EXPECT_EQ(MetricValue(after, "transformer_admitted_sequences_total") -
                MetricValue(before, "transformer_admitted_sequences_total"),
            16);
}

TEST_F(HttpGatewayTest, UnknownPathIs404NotFound) {
  ExpectError(Post("/v1/translatex", "{}"), 404, grpc::StatusCode::NOT_FOUND);
  httplib::Result result = Client()->Get("/v1/nothing");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);
  EXPECT_EQ(json::parse(result->body)["code"],
            static_cast<int>(grpc::StatusCode::NOT_FOUND));
}

TEST_F(HttpGatewayTest, ExpiredGrpcTimeoutIs504DeadlineExceeded) {
  ExpectError(Post("/v1/translate", R"({"texts": ["A dog."]})",
                   {{"Grpc-Timeout", "1n"}}),
              504, grpc::StatusCode::DEADLINE_EXCEEDED);
  ExpectError(Post("/v1/translate", R"({"texts": ["A dog."]})",
                   {{"Grpc-Timeout", "soon"}}),
              400, grpc::StatusCode::INVALID_ARGUMENT);
  // A generous one changes nothing.
  EXPECT_EQ(Post("/v1/translate", R"({"texts": ["A dog."]})",
                 {{"Grpc-Timeout", "60S"}})
                .first,
            200);
}

TEST_F(HttpGatewayTest, PageIsServedFromTheBinary) {
  httplib::Result result = Client()->Get("/");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->get_header_value("Content-Type"),
            "text/html; charset=utf-8");
  EXPECT_NE(result->body.find("id=\"heatmap\""), std::string::npos);
  EXPECT_NE(result->body.find("/v1/translate"), std::string::npos);
  // Nothing from elsewhere: no URL with a scheme in the page.
  EXPECT_EQ(result->body.find("http://"), std::string::npos);
  EXPECT_EQ(result->body.find("https://"), std::string::npos);
}

TEST_F(HttpGatewayTest, HttpCallsCountInTheSameMetricsAsGrpc) {
  const std::string before = Metrics();
  ASSERT_NE(before.find("transformer_requests_total"), std::string::npos);
  ASSERT_EQ(Post("/v1/translate", R"({"texts": ["A cat."]})").first, 200);
  ASSERT_EQ(Post("/v1/translate", R"({"texts": []})").first, 400);
  ASSERT_EQ(Post("/v1/encode", R"({"texts": ["A cat."]})").first, 200);
  ASSERT_TRUE(Client()->Get("/v1/model"));
  const std::string after = Metrics();
  EXPECT_EQ(RequestsTotal(after, "Translate", "OK") -
                RequestsTotal(before, "Translate", "OK"),
            1);
  EXPECT_EQ(RequestsTotal(after, "Translate", "INVALID_ARGUMENT") -
                RequestsTotal(before, "Translate", "INVALID_ARGUMENT"),
            1);
  EXPECT_EQ(RequestsTotal(after, "Encode", "OK") -
                RequestsTotal(before, "Encode", "OK"),
            1);
  EXPECT_EQ(RequestsTotal(after, "GetModelInfo", "OK") -
                RequestsTotal(before, "GetModelInfo", "OK"),
            1);
}

// Last: stops the server. A long request in flight; SIGTERM; the gateway
// then says not ready (503), refuses new calls with UNAVAILABLE (503), and
// still answers the call in flight; the process exits 0.
TEST_F(HttpGatewayTest, ZzDrainRefusesNewCallsAndFinishesTheOneInFlight) {
  json long_request = {{"texts", json::array()},
                       {"options", {{"beamSize", 8}, {"maxLength", 128}}}};
  const std::vector<ts::testing::GoldenTranslation> golden =
      ts::testing::ReadGoldenTranslations();
  for (int i = 0; i < 96; ++i)
    long_request["texts"].push_back(golden[i].source);
  std::pair<int, json> in_flight;
  std::thread caller(
      [&] { in_flight = Post("/v1/translate", long_request.dump()); });
  // Until a worker decodes it, then SIGTERM. (The inflight gauge rises
  // before the call is tokenized and queued: a SIGTERM in between refuses
  // it, so it is not the call this test needs.)
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  auto decoding = [&] {
    const std::string text = Metrics();
    const std::string name = "\ntransformer_active_sequences ";
    const size_t at = text.find(name);
    return at != std::string::npos &&
           std::stod(text.substr(at + name.size())) > 0;
  };
  while (!decoding() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  server_->Signal(SIGTERM);
  // The readiness flips at once, before the drain.
  absl::SleepFor(absl::Milliseconds(200));
  httplib::Result ready = Client()->Get("/readyz");
  httplib::Result live = Client()->Get("/healthz");
  const auto refused = Post("/v1/translate", R"({"texts": ["A dog."]})");
  caller.join();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  ExpectError(refused, 503, grpc::StatusCode::UNAVAILABLE);
  ASSERT_EQ(in_flight.first, 200) << in_flight.second.dump();
  EXPECT_EQ(in_flight.second["translations"].size(), 96u);
  EXPECT_EQ(server_->WaitForExit(absl::Seconds(150)), 0);
}

}  // namespace
