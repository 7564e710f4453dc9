// End to end: the real server binary on a free loopback port, called by the
// real client binary and by gRPC stubs; checked against the demo model's
// golden outputs, the error contract, /metrics and a clean SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/in_flight_translate.h"
#include "tests/integration/test_server.h"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace {

using nlohmann::json;

// Shared with the other integration tests (test_server.h).
using ts::testing::CommandResult;
using ts::testing::FreePort;
using ts::testing::InFlightTranslate;
using ts::testing::ReadFile;
using ts::testing::RunCommand;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

std::vector<json> ReadJsonLines(const std::string& path) {
  std::vector<json> rows;
  for (const std::string& line : Lines(ReadFile(path))) {
    rows.push_back(json::parse(line));
  }
  return rows;
}

class IntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    golden_ = new std::vector<json>(ReadJsonLines(
        std::string(TS_DEMO_MODEL_DIR) + "/golden/translations.jsonl"));
    ASSERT_EQ(golden_->size(), 200u);
    metrics_port_ = FreePort();
    ASSERT_GT(metrics_port_, 0);
    StartServer();
  }

  static void TearDownTestSuite() {
    delete server_;  // kills the server if a test left it running
    delete golden_;
  }

  // A TranslateRequest of the golden sources [first, first + count).
  static transformer::v1::TranslateRequest GoldenRequest(int first, int count) {
    transformer::v1::TranslateRequest request;
    for (int i = first; i < first + count; ++i) {
      request.add_texts((*golden_)[i]["source"].get<std::string>());
    }
    return request;
  }

  // Starts the server on a port of its own choosing (shared launcher:
  // tests/integration/test_server.h).
  static void StartServer() {
    server_ = new ts::testing::ServerProcess();
    const absl::Status started =
        server_->Start({absl::StrCat("--metrics_port=", metrics_port_),
                        "--metrics_address=127.0.0.1", "--num_workers=2",
                        "--intra_threads=1", "--drain_timeout_s=60"});
    ASSERT_TRUE(started.ok()) << started;
    target_ = server_->target();
    channel_ = new std::shared_ptr<grpc::Channel>(
        grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
  }

  // grpc.health.v1.Health/Check for `service`, called without generated
  // stubs: HealthCheckRequest is field 1 (string service); the response's
  // field 1 is the enum status (SERVING = 1), encoded 0x08 <status>.
  static int HealthStatus(const std::string& service) {
    std::string request;
    if (!service.empty()) {
      request = absl::StrCat(
          "\x0a", std::string(1, static_cast<char>(service.size())), service);
    }
    grpc::Slice slice(request);
    grpc::ByteBuffer request_buffer(&slice, 1);
    grpc::ByteBuffer response_buffer;
    grpc::GenericStub stub(*channel_);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    absl::Mutex mu;
    bool done = false;
    grpc::Status status;
    stub.UnaryCall(&context, "/grpc.health.v1.Health/Check",
                   grpc::StubOptions(), &request_buffer, &response_buffer,
                   [&](grpc::Status s) {
                     absl::MutexLock lock(&mu);
                     status = std::move(s);
                     done = true;
                   });
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&done));
    if (!status.ok()) return -1;
    std::vector<grpc::Slice> slices;
    if (!response_buffer.Dump(&slices).ok()) return -1;
    std::string bytes;
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    if (bytes.size() != 2 || bytes[0] != '\x08') return -1;
    return bytes[1];
  }

  static std::string Client(const std::string& arguments) {
    return absl::StrCat(TS_CLIENT_BINARY, " ", arguments,
                        " --server=", target_);
  }

  static std::string GoldenSources() {
    std::string sources;
    for (const json& row : *golden_) {
      sources += row["source"].get<std::string>() + "\n";
    }
    return sources;
  }

  // The value of the unlabelled series `name` on the server's /metrics.
  static double MetricValue(const std::string& name) {
    const CommandResult result = RunCommand(
        absl::StrCat("curl -sf http://127.0.0.1:", metrics_port_, "/metrics"),
        "");
    EXPECT_EQ(result.exit_code, 0) << result.err;
    const double value = ts::testing::SumSeries(result.out, name, -1.0);
    if (value < 0) ADD_FAILURE() << name << " not in /metrics";
    return value;
  }

  static std::vector<json>* golden_;
  static ts::testing::ServerProcess* server_;
  static int metrics_port_;
  static std::string target_;
  static std::shared_ptr<grpc::Channel>* channel_;
  // Translate RPCs that the tests expect to have succeeded.
  static int ok_translate_requests_;
};

std::vector<json>* IntegrationTest::golden_ = nullptr;
ts::testing::ServerProcess* IntegrationTest::server_ = nullptr;
int IntegrationTest::metrics_port_ = 0;
std::string IntegrationTest::target_;
std::shared_ptr<grpc::Channel>* IntegrationTest::channel_ = nullptr;
int IntegrationTest::ok_translate_requests_ = 0;

// The tests below run in this order in one process and share the server.

TEST_F(IntegrationTest, HealthIsServingAfterStartup) {
  // The server prints its port once loaded and warmed up; health follows.
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  int status = -1;
  while (absl::Now() < give_up) {
    status = HealthStatus("");
    if (status == 1) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(status, 1) << "grpc.health.v1 never reported SERVING";
  EXPECT_EQ(HealthStatus("transformer.v1.TransformerService"), 1);
}

TEST_F(IntegrationTest, GetModelInfoDescribesTheDemoModel) {
  auto stub = transformer::v1::TransformerService::NewStub(*channel_);
  grpc::ClientContext context;
  transformer::v1::GetModelInfoResponse info;
  ASSERT_TRUE(stub->GetModelInfo(&context, {}, &info).ok());
  const json config =
      json::parse(ReadFile(std::string(TS_DEMO_MODEL_DIR) + "/config.json"));
  EXPECT_EQ(info.d_model(), config["d_model"].get<int>());
  EXPECT_EQ(info.vocab_size(), config["vocab_size"].get<int>());
  EXPECT_EQ(info.default_beam_size(), config["num_beams"].get<int>());
  EXPECT_EQ(info.max_texts_per_request(), 256);
  EXPECT_EQ(info.max_input_tokens(), 256);
}

TEST_F(IntegrationTest, GreedyTranslationsMatchGolden) {
  const CommandResult result = RunCommand(
      Client("translate --beam_size=1 --max_length=128"), GoldenSources());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  // 200 texts in requests of 32 (the client's default).
  ok_translate_requests_ += (200 + 31) / 32;
  const std::vector<std::string> lines = Lines(result.out);
  ASSERT_EQ(lines.size(), golden_->size());
  int matches = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string expected = (*golden_)[i]["greedy_text"];
    if (lines[i] == expected) {
      ++matches;
    } else {
      ADD_FAILURE() << "line " << i << ": got \"" << lines[i] << "\", golden \""
                    << expected << "\"";
    }
  }
  EXPECT_EQ(matches, 200);
}

TEST_F(IntegrationTest, Beam4TranslationsMatchGolden) {
  const CommandResult result = RunCommand(
      Client("translate --beam_size=4 --max_length=128 --texts_per_request=16 "
             "--concurrency=3"),
      GoldenSources());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  ok_translate_requests_ += (200 + 15) / 16;
  const std::vector<std::string> lines = Lines(result.out);
  ASSERT_EQ(lines.size(), golden_->size());
  int matches = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i] == (*golden_)[i]["beam4_text"].get<std::string>()) ++matches;
  }
  EXPECT_GE(matches, 198) << "of 200 beam-4 translations equal to golden";
}

TEST_F(IntegrationTest, JsonOutputCarriesTokenIdsAndScores) {
  std::string sources;
  for (int i = 0; i < 3; ++i)
    sources += (*golden_)[i]["source"].get<std::string>() + "\n";
  const CommandResult result = RunCommand(
      Client("translate --json --beam_size=1 --max_length=128"), sources);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  ok_translate_requests_ += 1;
  const std::vector<std::string> lines = Lines(result.out);
  ASSERT_EQ(lines.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const json line = json::parse(lines[i]);
    const json& golden = (*golden_)[i];
    EXPECT_EQ(line["source"], golden["source"]);
    EXPECT_EQ(line["translation"], golden["greedy_text"]);
    EXPECT_EQ(line["token_ids"], golden["greedy_ids"]);
    EXPECT_EQ(line["input_token_count"].get<size_t>(),
              golden["source_ids"].size());
    EXPECT_LT(line["score"].get<double>(), 0.0);  // a mean log-probability
  }
}

TEST_F(IntegrationTest, EncodeReturnsTheMeanEncoderState) {
  const json golden = json::parse(
      Lines(ReadFile(std::string(TS_DEMO_MODEL_DIR) + "/golden/encoder.jsonl"))
          .at(0));
  const CommandResult result =
      RunCommand(Client("encode --pooling=mean \"" +
                        golden["source"].get<std::string>() + "\""),
                 "");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::vector<std::string> lines = Lines(result.out);
  ASSERT_EQ(lines.size(), 1u);
  const json line = json::parse(lines[0]);
  EXPECT_EQ(line["dim"].get<int>(), 256);
  EXPECT_EQ(line["num_tokens"].get<size_t>(), golden["source_ids"].size());
  const std::vector<double> values = line["values"];
  const std::vector<double> expected = golden["mean_over_tokens"];
  ASSERT_EQ(values.size(), 256u);
  ASSERT_EQ(expected.size(), 256u);
  for (size_t d = 0; d < values.size(); ++d) {
    ASSERT_NEAR(values[d], expected[d], 1e-3) << "dimension " << d;
  }

  const CommandResult normalized =
      RunCommand(Client("encode --pooling=first --normalize \"A dog.\""), "");
  ASSERT_EQ(normalized.exit_code, 0) << normalized.err;
  const std::vector<double> unit =
      json::parse(Lines(normalized.out).at(0))["values"];
  double norm = 0;
  for (double v : unit) norm += v * v;
  EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-4);
}

TEST_F(IntegrationTest, InvalidRequestsGetInvalidArgument) {
  // Through the client: exit code and the status code name on stderr.
  const CommandResult result =
      RunCommand(Client("translate \"A dog.\" \"\""), "");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.err.find("INVALID_ARGUMENT"), std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("texts[1] is empty"), std::string::npos)
      << result.err;

  // Directly: the limit is named.
  auto stub = transformer::v1::TransformerService::NewStub(*channel_);
  transformer::v1::TranslateRequest request;
  for (int i = 0; i < 257; ++i) request.add_texts("A dog.");
  grpc::ClientContext context;
  transformer::v1::TranslateResponse response;
  const grpc::Status status = stub->Translate(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("max_texts_per_request 256"),
            std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("max_queue_size 1024"),
            std::string::npos)
      << status.error_message();
}

TEST_F(IntegrationTest, MetricsCountRequestsAndBatches) {
  const CommandResult result = RunCommand(
      absl::StrCat("curl -sf http://127.0.0.1:", metrics_port_, "/metrics"),
      "");
  ASSERT_EQ(result.exit_code, 0) << "curl failed: " << result.err;
  double ok_translate = -1;
  bool invalid_translate = false;
  for (const std::string& line : Lines(result.out)) {
    if (line.rfind("transformer_requests_total{", 0) != 0) continue;
    const bool translate =
        line.find("method=\"Translate\"") != std::string::npos;
    if (translate && line.find("code=\"OK\"") != std::string::npos) {
      ok_translate = std::stod(line.substr(line.rfind(' ') + 1));
    }
    if (translate &&
        line.find("code=\"INVALID_ARGUMENT\"") != std::string::npos) {
      invalid_translate = true;
    }
  }
  EXPECT_GE(ok_translate, ok_translate_requests_) << result.out;
  EXPECT_TRUE(invalid_translate) << result.out;
  EXPECT_NE(result.out.find("transformer_batch_size_count"), std::string::npos);
  EXPECT_NE(result.out.find("transformer_build_info{version=\"0.1.0\"} 1"),
            std::string::npos);
  EXPECT_NE(result.out.find("transformer_model_info{"), std::string::npos);
  // Continuous batching's series (issue 13) are exported from the start.
  for (const char* name :
       {"transformer_active_sequences", "transformer_kv_cache_bytes",
        "transformer_kv_cache_limit_bytes", "transformer_decode_steps_total",
        "transformer_admitted_sequences_total"}) {
    EXPECT_NE(result.out.find(absl::StrCat("\n", name, " ")), std::string::npos)
        << name << " not in /metrics:\n"
        << result.out;
  }
}

// Sampling through the server: the seed returned with an unseeded request
// reproduces its samples; beam search cannot sample.
TEST_F(IntegrationTest, SampledTranslationsReproduceFromTheReturnedSeed) {
  auto stub = transformer::v1::TransformerService::NewStub(*channel_);
  transformer::v1::TranslateRequest request;
  for (int i = 0; i < 3; ++i) {
    request.add_texts((*golden_)[60 + i]["source"].get<std::string>());
  }
  transformer::v1::TranslationOptions* options = request.mutable_options();
  options->set_do_sample(true);
  options->set_num_hypotheses(4);
  options->set_top_p(0.95f);
  options->set_max_length(64);
  transformer::v1::TranslateResponse first;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->Translate(&context, request, &first).ok());
  }
  ok_translate_requests_ += 1;
  ASSERT_EQ(first.translations_size(), 3);
  ASSERT_TRUE(first.translations(0).has_seed());
  const uint64_t seed = first.translations(0).seed();
  std::set<std::string> texts;
  for (const auto& translation : first.translations()) {
    EXPECT_EQ(translation.seed(), seed);
    ASSERT_EQ(translation.hypotheses_size(), 4);
    for (const auto& h : translation.hypotheses()) texts.insert(h.text());
  }
  EXPECT_GT(texts.size(), 3u);  // samples, not 4 copies of one output

  // The same request with the returned seed, with the texts in a batch of
  // other requests' sentences: the same samples.
  options->set_seed(seed);
  std::vector<std::thread> others;
  for (int t = 0; t < 4; ++t) {
    others.emplace_back([&, t] {
      transformer::v1::TranslateRequest other;
      other.add_texts((*golden_)[70 + t]["source"].get<std::string>());
      *other.mutable_options() = request.options();
      other.mutable_options()->set_seed(seed + 1 + t);
      grpc::ClientContext context;
      transformer::v1::TranslateResponse response;
      EXPECT_TRUE(stub->Translate(&context, other, &response).ok());
    });
  }
  transformer::v1::TranslateResponse again;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->Translate(&context, request, &again).ok());
  }
  for (std::thread& thread : others) thread.join();
  ok_translate_requests_ += 5;
  EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString());

  // Beam search with do_sample is refused, naming why.
  options->set_beam_size(4);
  grpc::ClientContext context;
  transformer::v1::TranslateResponse refused;
  const grpc::Status status = stub->Translate(&context, request, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("beam search cannot sample"),
            std::string::npos)
      << status.error_message();
}

// The translation cache through the server (on by default, --cache_mb 64):
// repeated texts come back identical, counted as hits; identical requests
// in flight at once compute each text once.
TEST_F(IntegrationTest, CacheAnswersRepeatsIdenticallyAndComputesOnce) {
  auto stub = transformer::v1::TransformerService::NewStub(*channel_);
  // Golden lines 120-139 with options no earlier test used.
  transformer::v1::TranslateRequest request = GoldenRequest(120, 20);
  request.mutable_options()->set_beam_size(1);
  request.mutable_options()->set_max_length(128);
  request.mutable_options()->set_min_length(1);
  const double hits = MetricValue("transformer_cache_hits_total");
  const double misses = MetricValue("transformer_cache_misses_total");
  transformer::v1::TranslateResponse first, second;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->Translate(&context, request, &first).ok());
  }
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->Translate(&context, request, &second).ok());
  }
  ok_translate_requests_ += 2;
  EXPECT_EQ(second.SerializeAsString(), first.SerializeAsString());
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(second.translations(i).hypotheses(0).text(),
              (*golden_)[120 + i]["greedy_text"].get<std::string>());
  }
  EXPECT_EQ(MetricValue("transformer_cache_misses_total") - misses, 20);
  EXPECT_EQ(MetricValue("transformer_cache_hits_total") - hits, 20);
  EXPECT_GT(MetricValue("transformer_cache_bytes"), 0);

  // 8 identical requests of 10 new texts at once: 10 computations.
  transformer::v1::TranslateRequest burst;
  for (int i = 140; i < 150; ++i) {
    burst.add_texts((*golden_)[i]["source"].get<std::string>());
  }
  *burst.mutable_options() = request.options();
  const double misses_before = MetricValue("transformer_cache_misses_total");
  const double hits_before = MetricValue("transformer_cache_hits_total");
  std::vector<transformer::v1::TranslateResponse> responses(8);
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      grpc::ClientContext context;
      EXPECT_TRUE(stub->Translate(&context, burst, &responses[t]).ok());
    });
  }
  for (std::thread& client : clients) client.join();
  ok_translate_requests_ += 8;
  for (int t = 1; t < 8; ++t) {
    EXPECT_EQ(responses[t].SerializeAsString(),
              responses[0].SerializeAsString());
  }
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(responses[0].translations(i).hypotheses(0).text(),
              (*golden_)[140 + i]["greedy_text"].get<std::string>());
  }
  EXPECT_EQ(MetricValue("transformer_cache_misses_total") - misses_before, 10);
  EXPECT_EQ(MetricValue("transformer_cache_hits_total") - hits_before, 70);
}

// transformer-client translate --sample: the samples of a seeded run come
// back the same (one line per text, each with its samples and seed), and
// differ from a run with another seed.
TEST_F(IntegrationTest, ClientSamplesReproduceWithTheSameSeed) {
  std::string sources;
  for (int i = 80; i < 86; ++i) {
    sources += (*golden_)[i]["source"].get<std::string>() + "\n";
  }
  const std::string command =
      "translate --sample --num_hypotheses=4 --top_k=20 --temperature=0.9 "
      "--max_length=64 --texts_per_request=4 --json";
  const CommandResult first =
      RunCommand(Client(command + " --seed=41"), sources);
  const CommandResult again =
      RunCommand(Client(command + " --seed=41"), sources);
  const CommandResult other =
      RunCommand(Client(command + " --seed=42"), sources);
  ok_translate_requests_ += 6;
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(again.exit_code, 0) << again.err;
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_EQ(first.out, again.out);
  EXPECT_NE(first.out, other.out);
  const std::vector<std::string> lines = Lines(first.out);
  ASSERT_EQ(lines.size(), 6u);
  for (size_t i = 0; i < lines.size(); ++i) {
    const json line = json::parse(lines[i]);
    EXPECT_EQ(line["source"], (*golden_)[80 + i]["source"]);
    EXPECT_EQ(line["hypotheses"].size(), 4u);
    // Request k of the run samples with seed 41 + k (4 texts per request).
    EXPECT_EQ(line["seed"], std::to_string(41 + i / 4));
  }
}

TEST_F(IntegrationTest, BenchSendsExactlyTheRequestsAskedAndReportsThem) {
  const CommandResult result = RunCommand(
      Client("bench --requests=40 --concurrency=4 --texts_per_request=2 "
             "--beam_size=1 --max_length=32 \"A dog runs.\" \"Two men.\" "
             "\"A girl.\""),
      "");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["requests"], 40);
  EXPECT_EQ(report["codes"]["OK"], 40);
  EXPECT_EQ(report["codes"].size(), 1u);
  EXPECT_GT(report["sentences_per_second"].get<double>(), 0.0);
  EXPECT_LE(report["latency_p50_s"].get<double>(),
            report["latency_p99_s"].get<double>());
  EXPECT_LE(report["latency_p99_s"].get<double>(),
            report["latency_max_s"].get<double>());

  // --repeat_fraction: about that share of the requests repeat an earlier
  // one (a fixed plan: the same count every run).
  const CommandResult repeats = RunCommand(
      Client("bench --requests=200 --concurrency=8 --texts_per_request=1 "
             "--beam_size=1 --max_length=32 --repeat_fraction=0.5 \"A dog "
             "runs.\" \"Two men.\" \"A girl.\""),
      "");
  ASSERT_EQ(repeats.exit_code, 0) << repeats.err;
  const nlohmann::json repeat_report = nlohmann::json::parse(repeats.out);
  EXPECT_EQ(repeat_report["codes"]["OK"], 200);
  EXPECT_GT(repeat_report["repeated_requests"].get<int>(), 70);
  EXPECT_LT(repeat_report["repeated_requests"].get<int>(), 130);
  EXPECT_EQ(RunCommand(Client("bench --requests=1 --repeat_fraction=1 x"), "")
                .exit_code,
            2);
}

// The report's seconds run from the start to the last answer: with one
// client, at least the sum of the request latencies and about no more (they
// used to be rounded up to a whole second: 5 requests of ~10 ms said 1.0 s),
// and never more than the wall clock around the whole process.
TEST_F(IntegrationTest, BenchReportsTheRunsRealSeconds) {
  const absl::Time before = absl::Now();
  const CommandResult result =
      RunCommand(Client("bench --requests=5 --concurrency=1 "
                        "--texts_per_request=1 --beam_size=1 --max_length=16 "
                        "\"A dog runs.\""),
                 "");
  const double wall = absl::ToDoubleSeconds(absl::Now() - before);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json report = nlohmann::json::parse(result.out);
  ASSERT_EQ(report["codes"]["OK"], 5);
  const double seconds = report["seconds"].get<double>();
  const double latency_sum = 5 * report["latency_mean_s"].get<double>();
  EXPECT_GE(seconds, latency_sum * (1 - 1e-9)) << result.out;
  EXPECT_LE(seconds, latency_sum + 0.25) << result.out;
  EXPECT_LE(seconds, wall) << result.out;
  EXPECT_NEAR(report["sentences_per_second"].get<double>(), 5 / seconds,
              1e-6 * (5 / seconds));
}

// Latency apart by kind. --paragraph_every=3 over 6 requests of 4 inputs:
// requests 2 and 5 are paragraphs (inputs 2,3,0,1 and 1,2,3,0, computed),
// 0, 1, 3 and 4 sentences (inputs 0, 1, 3, 0), which the translation cache
// answers because they were translated just before with the same options.
// So the sentences' p50 (the third fastest of four, which leaves out the
// first call, the one that connects) is a cache hit's latency and the
// paragraphs' p50 (the slower of two) a decode's. The longest call is one of
// the two kinds.
TEST_F(IntegrationTest, BenchReportsSentenceAndParagraphLatencyApart) {
  // Paragraphs as one sequence each (not split into their sentences).
  const std::string options =
      "--beam_size=1 --max_length=90 --input_format=sentence";
  const std::string inputs =
      " \"A dog runs.\" \"Two men sit.\" \"A girl.\" \"A cat sleeps.\"";
  const CommandResult warm =
      RunCommand(Client("translate " + options +
                        " \"A dog runs.\" \"Two men sit.\" \"A cat sleeps.\""),
                 "");
  ASSERT_EQ(warm.exit_code, 0) << warm.err;
  const double misses = MetricValue("transformer_cache_misses_total");
  const CommandResult result = RunCommand(
      Client("bench --requests=6 --concurrency=1 --texts_per_request=1 "
             "--paragraph_every=3 " +
             options + inputs),
      "");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(MetricValue("transformer_cache_misses_total") - misses, 2);
  const nlohmann::json report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["codes"]["OK"], 6);
  EXPECT_EQ(report["paragraph_requests"], 2);
  EXPECT_EQ(std::max(report["sentence_latency_max_s"].get<double>(),
                     report["paragraph_latency_max_s"].get<double>()),
            report["latency_max_s"].get<double>());
  EXPECT_GT(report["paragraph_latency_p50_s"].get<double>(),
            report["sentence_latency_p50_s"].get<double>())
      << result.out;
}

// --request_rate: an open loop. 40 requests arriving at 50/s (Poisson)
// span about 0.78 s (39 intervals of 20 ms on average), however fast the
// server answers them (a closed loop of 8 takes well under that), and each
// latency counts from its own arrival, not from the start.
TEST_F(IntegrationTest, BenchRequestRateSendsAtThatRate) {
  const CommandResult result =
      RunCommand(Client("bench --requests=40 --request_rate=50 --concurrency=8 "
                        "--texts_per_request=1 --beam_size=1 --max_length=16 "
                        "\"A dog runs.\" \"Two men sit.\""),
                 "");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["codes"]["OK"], 40);
  EXPECT_EQ(report["request_rate"], 50.0);
  EXPECT_GE(report["seconds"].get<double>(), 0.4) << result.out;
  EXPECT_LT(report["seconds"].get<double>(), 5.0) << result.out;
  EXPECT_LT(report["latency_p50_s"].get<double>(), 0.25) << result.out;
  EXPECT_LT(report["max_send_delay_s"].get<double>(), 0.25) << result.out;
  EXPECT_EQ(RunCommand(Client("bench --requests=1 --request_rate=-1 x"), "")
                .exit_code,
            2);
  EXPECT_EQ(RunCommand(Client("bench --requests=1 --request_rate=1e9 x"), "")
                .exit_code,
            2);
}

// --paragraph_every=2: requests 1 and 3 each send 4 consecutive inputs
// joined with a space. The translation cache proves which texts were sent:
// translating exactly those four texts afterwards hits it four times.
TEST_F(IntegrationTest, BenchParagraphEveryJoinsFourInputs) {
  // Paragraphs as one sequence each (not split into their sentences).
  const std::string options =
      "--beam_size=1 --max_length=96 --input_format=sentence";
  const CommandResult result = RunCommand(
      Client("bench --requests=4 --concurrency=1 --texts_per_request=1 "
             "--paragraph_every=2 " +
             options + " \"A dog runs.\" \"Two men sit.\" \"A girl.\""),
      "");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["codes"]["OK"], 4);
  EXPECT_EQ(report["paragraph_requests"], 2);
  EXPECT_EQ(report["paragraph_every"], 2);

  const double hits = MetricValue("transformer_cache_hits_total");
  const double misses = MetricValue("transformer_cache_misses_total");
  const CommandResult again = RunCommand(
      Client("translate --texts_per_request=4 " + options +
             " \"A dog runs.\" \"Two men sit. A girl. A dog runs. Two men "
             "sit.\" \"A girl.\" \"A dog runs. Two men sit. A girl. A dog "
             "runs.\""),
      "");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(MetricValue("transformer_cache_hits_total") - hits, 4);
  EXPECT_EQ(MetricValue("transformer_cache_misses_total") - misses, 0);
  EXPECT_EQ(RunCommand(Client("bench --requests=1 --paragraph_every=-1 x"), "")
                .exit_code,
            2);
}

TEST_F(IntegrationTest, FilesInAndOutWithASummaryLine) {
  char dir_template[] = "/tmp/ts_files_XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string input = dir + "/in.txt", encoded = dir + "/enc.jsonl",
                    translated = dir + "/de.txt";
  std::string sources;
  for (int i = 0; i < 3; ++i) {
    sources += (*golden_)[i]["source"].get<std::string>() + "\n";
  }
  std::ofstream(input) << sources;

  // stderr is a file here, not a terminal: one summary line, no bar.
  const CommandResult encode =
      RunCommand(Client("encode --texts_per_request=2 --input=" + input +
                        " --output=" + encoded),
                 "");
  ASSERT_EQ(encode.exit_code, 0) << encode.err;
  EXPECT_EQ(encode.out, "");
  EXPECT_EQ(Lines(encode.err).size(), 1u) << encode.err;
  EXPECT_NE(encode.err.find("encoded 3 of 3 texts"), std::string::npos)
      << encode.err;
  const std::vector<json> rows = ReadJsonLines(encoded);
  ASSERT_EQ(rows.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(rows[i]["text"], (*golden_)[i]["source"]);
    EXPECT_EQ(rows[i]["dim"].get<int>(), 256);
  }

  const CommandResult translate = RunCommand(
      Client("translate --beam_size=1 --max_length=128 --texts_per_request=1 "
             "--input=" +
             input + " --output=" + translated),
      "");
  ASSERT_EQ(translate.exit_code, 0) << translate.err;
  ok_translate_requests_ += 3;
  EXPECT_NE(translate.err.find("translated 3 of 3 texts"), std::string::npos)
      << translate.err;
  const std::vector<std::string> lines = Lines(ReadFile(translated));
  ASSERT_EQ(lines.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(lines[i], (*golden_)[i]["greedy_text"].get<std::string>());
  }
  for (const std::string& path : {input, encoded, translated}) {
    std::remove(path.c_str());
  }
  rmdir(dir.c_str());
}

TEST_F(IntegrationTest, ClientUsageAndExitCodes) {
  const CommandResult help = RunCommand(Client("--help"), "");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Exit codes: 0 ok, 1 RPC error"), std::string::npos)
      << help.out;
  for (const std::string command : {"translate", "encode", "bench", "models"}) {
    const CommandResult usage = RunCommand(Client(command + " --help"), "");
    EXPECT_EQ(usage.exit_code, 0);
    EXPECT_NE(usage.out.find("transformer-client " + command),
              std::string::npos)
        << usage.out;
  }
  EXPECT_NE(RunCommand(Client("encode --help"), "").out.find("--pooling"),
            std::string::npos);
  // 2: usage errors.
  EXPECT_EQ(RunCommand(Client("frobnicate x"), "").exit_code, 2);
  EXPECT_EQ(RunCommand(Client("translate --pooling=mean x"), "").exit_code, 2);
  EXPECT_EQ(RunCommand(Client("translate --beam_size=abc x"), "").exit_code, 2);
  EXPECT_EQ(RunCommand(Client("translate --lb_policy=random x"), "").exit_code,
            2);
  // 3: I/O errors.
  EXPECT_EQ(
      RunCommand(Client("translate --input=/nonexistent/in.txt"), "").exit_code,
      3);
  EXPECT_EQ(RunCommand(Client("translate --output=/nonexistent/out.txt x"), "")
                .exit_code,
            3);
  // 1: an RPC error (nothing listens on port 1).
  EXPECT_EQ(RunCommand(absl::StrCat(TS_CLIENT_BINARY,
                                    " translate --timeout_s=10 "
                                    "--server=127.0.0.1:1 x"),
                       "")
                .exit_code,
            1);
}

// Continuous scheduling: a cancelled call's sentences leave the step batch
// before the next step, so their rows and KV blocks are free long before
// they would have finished (min_length 200 keeps each decoding for 200
// steps), and the call ends CANCELLED.
TEST_F(IntegrationTest, CancelledCallLeavesTheDecoderAtOnce) {
  auto stub = transformer::v1::TransformerService::NewStub(*channel_);
  transformer::v1::TranslateRequest request = GoldenRequest(0, 8);
  request.mutable_options()->set_beam_size(4);
  request.mutable_options()->set_min_length(200);
  request.mutable_options()->set_max_length(256);
  const double steps_before = MetricValue("transformer_decode_steps_total");
  InFlightTranslate call(*stub, std::move(request));
  // Wait until all 8 decode.
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (MetricValue("transformer_active_sequences") < 8 &&
         absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(MetricValue("transformer_active_sequences"), 8);
  EXPECT_GT(MetricValue("transformer_kv_cache_bytes"), 0);
  call.Cancel();
  EXPECT_EQ(call.Wait().error_code(), grpc::StatusCode::CANCELLED);
  // The worker notices before its next step.
  const absl::Time freed_by = absl::Now() + absl::Seconds(5);
  while (MetricValue("transformer_active_sequences") > 0 &&
         absl::Now() < freed_by) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(MetricValue("transformer_active_sequences"), 0);
  EXPECT_EQ(MetricValue("transformer_kv_cache_bytes"), 0);
  // Far fewer steps than the 200 each sentence needed.
  EXPECT_LT(MetricValue("transformer_decode_steps_total") - steps_before, 200);
}

TEST_F(IntegrationTest, SigtermDrainsAndExitsZero) {
  ASSERT_GT(server_->pid(), 0);
  // A request in flight when the signal arrives still gets its answer.
  auto stub = transformer::v1::TransformerService::NewStub(*channel_);
  transformer::v1::TranslateRequest request = GoldenRequest(0, 64);
  request.mutable_options()->set_beam_size(4);
  request.mutable_options()->set_max_length(128);
  InFlightTranslate call(*stub, std::move(request));
  absl::SleepFor(absl::Milliseconds(200));  // let it reach the queue
  server_->Signal(SIGTERM);
  const grpc::Status status = call.Wait();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(call.response().translations_size(), 64);

  // 0: exited 0; -1: killed by a signal; -2: still running after 120 s.
  EXPECT_EQ(server_->WaitForExit(absl::Seconds(120)), 0);
}

}  // namespace
