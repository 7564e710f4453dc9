// Many models in one server (issue 23) against the real server on loopback:
// the three demo models of models/ served as a --model_repository. Requests
// routed by model name, by language pair (ISO 639-1 and 639-3 codes) and to
// the default model give each model's golden greedy translations; de→fr
// pivots through English and equals the two direct hops; unknown models and
// pairs get NOT_FOUND naming what is served, a model larger than the budget
// RESOURCE_EXHAUSTED; ListModels / LoadModel / UnloadModel over gRPC and
// HTTP; a budget for one model under alternating and concurrent requests
// (evictions, loads, golden outputs); unloading a model while a long request
// uses it.
#include <atomic>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/integration/in_flight_translate.h"
#include "tests/integration/test_server.h"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace ts::testing {
namespace {

using transformer::v1::ListModelsResponse;
using transformer::v1::ModelState;
using transformer::v1::ModelStatus;
using transformer::v1::TransformerService;
using transformer::v1::TranslateRequest;
using transformer::v1::TranslateResponse;

constexpr char kEnDe[] = "marian-en-de-multi30k";
constexpr char kDeEn[] = "marian-de-en-multi30k";
constexpr char kEnFr[] = "marian-en-fr-multi30k";
const char* const kModels[] = {kDeEn, kEnDe, kEnFr};  // ListModels' order

// models/, the demo model's parent folder.
std::string RepositoryDir() {
  return std::filesystem::path(TS_DEMO_MODEL_DIR).parent_path().string();
}

// models/NAME/golden/translations.jsonl.
std::vector<GoldenTranslation> GoldenOf(const std::string& model) {
  return ReadGoldenTranslations(absl::StrCat(RepositoryDir(), "/", model));
}

// source_lang / target_lang of models/NAME/tokenizer_config.json.
std::pair<std::string, std::string> LanguagesOf(const std::string& model) {
  const nlohmann::json config = nlohmann::json::parse(ReadFile(
      absl::StrCat(RepositoryDir(), "/", model, "/tokenizer_config.json")));
  return {config["source_lang"].get<std::string>(),
          config["target_lang"].get<std::string>()};
}

// Greedy, max_length 128: the golden outputs' decoding.
TranslateRequest GreedyRequest(const std::vector<std::string>& texts) {
  TranslateRequest request;
  for (const std::string& text : texts) request.add_texts(text);
  request.mutable_options()->set_beam_size(1);
  request.mutable_options()->set_max_length(128);
  return request;
}

std::vector<std::string> Texts(const TranslateResponse& response) {
  std::vector<std::string> texts;
  for (const auto& translation : response.translations()) {
    texts.push_back(translation.hypotheses_size() > 0
                        ? translation.hypotheses(0).text()
                        : "<no hypothesis>");
  }
  return texts;
}

std::vector<std::string> Models(const transformer::v1::Translation& t) {
  return {t.models().begin(), t.models().end()};
}

// A transformer-server on loopback with metrics and the HTTP gateway.
class RepositoryServer {
 public:
  absl::Status Start(const std::vector<std::string>& args) {
    metrics_port_ = FreePort();
    http_port_ = FreePort();
    std::vector<std::string> all = {
        absl::StrCat("--model_repository=", RepositoryDir()),
        absl::StrCat("--metrics_port=", metrics_port_),
        "--metrics_address=127.0.0.1",
        absl::StrCat("--http_port=", http_port_),
        "--http_address=127.0.0.1",
        "--num_workers=2",
        "--intra_threads=1"};
    all.insert(all.end(), args.begin(), args.end());
    if (absl::Status status = process_.Start(all); !status.ok()) return status;
    channel_ = grpc::CreateChannel(process_.target(),
                                   grpc::InsecureChannelCredentials());
    stub_ = TransformerService::NewStub(channel_);
    return absl::OkStatus();
  }

  TransformerService::Stub& stub() { return *stub_; }
  int http_port() const { return http_port_; }

  // The sum of the series `series` selects (SumSeries); a labelled metric
  // with no series yet (a counter of loads before any load) is 0; -1 if
  // /metrics does not answer.
  double Metric(const std::string& series) const {
    const CommandResult scraped = RunCommand(
        absl::StrCat("curl -sf http://127.0.0.1:", metrics_port_, "/metrics"));
    if (scraped.exit_code != 0) return -1.0;
    return SumSeries(scraped.out, series, 0.0);
  }
  // Polls until `series` reaches at least `value` (30 s at most).
  bool WaitForMetric(const std::string& series, double value) const {
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (Metric(series) < value) {
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return true;
  }

  grpc::Status Translate(const TranslateRequest& request,
                         TranslateResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    return stub_->Translate(&context, request, response);
  }

  ListModelsResponse List() {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    ListModelsResponse response;
    const grpc::Status status = stub_->ListModels(
        &context, transformer::v1::ListModelsRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // The model's entry in ListModels (an empty status if absent).
  ModelStatus Status(const std::string& name) {
    const ListModelsResponse list = List();
    for (const ModelStatus& model : list.models()) {
      if (model.name() == name) return model;
    }
    ADD_FAILURE() << name << " is not in ListModels";
    return ModelStatus();
  }

  // Polls ListModels until model `name` is in `state` (10 s at most).
  bool WaitForState(const std::string& name, ModelState state) {
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (Status(name).state() != state) {
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return true;
  }

 private:
  ServerProcess process_;
  int metrics_port_ = 0;
  int http_port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<TransformerService::Stub> stub_;
};

// The model label of a per-model series.
std::string Labelled(const std::string& metric, const std::string& model) {
  return absl::StrCat(metric, "{model=\"", model, "\"}");
}

// One server for the routing, pivot, NOT_FOUND, list/load/unload and unload
// cases: every model loaded at start, no budget, en-de the default.
class ModelRepositoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new RepositoryServer();
    const absl::Status started = server_->Start(
        {"--load_models=all", absl::StrCat("--default_model=", kEnDe)});
    ASSERT_TRUE(started.ok()) << started;
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr); }

  static RepositoryServer* server_;
};

RepositoryServer* ModelRepositoryTest::server_ = nullptr;

// For each model: 20 golden sources named by `model`, 20 others by their
// language pair (tokenizer_config.json's codes, or their ISO 639-3 forms),
// give the golden greedy translations, and each Translation names the model.
TEST_F(ModelRepositoryTest, RoutesByNameAndByLanguagePair) {
  // ISO 639-3 for de-en's source and en-fr's pair; 639-1 for en-de's.
  const std::map<std::string, std::pair<std::string, std::string>> codes = {
      {kDeEn, {"deu", LanguagesOf(kDeEn).second}},
      {kEnDe, LanguagesOf(kEnDe)},
      {kEnFr, {"eng", "fra"}}};
  for (const char* model : kModels) {
    SCOPED_TRACE(model);
    const std::vector<GoldenTranslation> golden = GoldenOf(model);
    ASSERT_GE(golden.size(), 40u);
    for (const bool by_name : {true, false}) {
      SCOPED_TRACE(by_name ? "by name" : "by language pair");
      const int first = by_name ? 0 : 20;
      std::vector<std::string> sources, want;
      for (int i = first; i < first + 20; ++i) {
        sources.push_back(golden[i].source);
        want.push_back(golden[i].greedy_text);
      }
      TranslateRequest request = GreedyRequest(sources);
      if (by_name) {
        request.set_model(model);
      } else {
        request.set_source_language(codes.at(model).first);
        request.set_target_language(codes.at(model).second);
      }
      TranslateResponse response;
      const grpc::Status status = server_->Translate(request, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      EXPECT_EQ(Texts(response), want);
      for (const auto& translation : response.translations()) {
        EXPECT_EQ(Models(translation), std::vector<std::string>{model});
      }
    }
  }
}

// Neither model nor languages: --default_model (en-de) translates.
TEST_F(ModelRepositoryTest, NoModelNoLanguagesGoesToTheDefault) {
  const std::vector<GoldenTranslation> golden = GoldenOf(kEnDe);
  TranslateResponse response;
  const grpc::Status status = server_->Translate(
      GreedyRequest({golden[40].source, golden[41].source}), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Texts(response),
            (std::vector<std::string>{golden[40].greedy_text,
                                      golden[41].greedy_text}));
  EXPECT_EQ(Models(response.translations(0)), std::vector<std::string>{kEnDe});
  EXPECT_TRUE(server_->Status(kEnDe).is_default());
  EXPECT_FALSE(server_->Status(kEnFr).is_default());
}

// de→fr has no model: it runs de-en, then en-fr on its output. The
// expectation is the two hops asked for directly, one after the other.
TEST_F(ModelRepositoryTest, PivotsThroughEnglishAsTwoDirectHops) {
  const std::vector<GoldenTranslation> golden = GoldenOf(kDeEn);
  std::vector<std::string> german;
  for (int i = 60; i < 70; ++i) german.push_back(golden[i].source);

  TranslateRequest to_english = GreedyRequest(german);
  to_english.set_model(kDeEn);
  TranslateResponse english;
  grpc::Status status = server_->Translate(to_english, &english);
  ASSERT_TRUE(status.ok()) << status.error_message();
  TranslateRequest to_french = GreedyRequest(Texts(english));
  to_french.set_model(kEnFr);
  TranslateResponse french;
  status = server_->Translate(to_french, &french);
  ASSERT_TRUE(status.ok()) << status.error_message();

  TranslateRequest pivot = GreedyRequest(german);
  pivot.set_source_language("de");
  pivot.set_target_language("fr");
  TranslateResponse response;
  status = server_->Translate(pivot, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Texts(response), Texts(french));
  for (const auto& translation : response.translations()) {
    EXPECT_EQ(Models(translation), (std::vector<std::string>{kDeEn, kEnFr}));
  }
  // Not an echo of either hop.
  EXPECT_NE(Texts(response), Texts(english));
  EXPECT_NE(Texts(response), german);
}

// An unknown model or pair: NOT_FOUND naming the models, or pairs, served.
TEST_F(ModelRepositoryTest, UnknownModelOrPairIsNotFoundNamingWhatIsServed) {
  TranslateRequest unknown_model = GreedyRequest({"A dog runs."});
  unknown_model.set_model("marian-en-xx-nowhere");
  TranslateResponse response;
  grpc::Status status = server_->Translate(unknown_model, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "marian-en-xx-nowhere"))
      << status.error_message();
  for (const char* model : kModels) {
    EXPECT_TRUE(absl::StrContains(status.error_message(), model))
        << status.error_message();
  }

  TranslateRequest unknown_pair = GreedyRequest({"A dog runs."});
  unknown_pair.set_source_language("en");
  unknown_pair.set_target_language("zh");
  status = server_->Translate(unknown_pair, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  for (const char* model : kModels) {
    const auto [source, target] = LanguagesOf(model);
    EXPECT_TRUE(absl::StrContains(status.error_message(),
                                  absl::StrCat(source, "-", target)))
        << status.error_message();
    EXPECT_TRUE(absl::StrContains(status.error_message(), model))
        << status.error_message();
  }

  // Encode and GetModelInfo route the same way.
  {
    grpc::ClientContext context;
    transformer::v1::EncodeRequest encode;
    encode.add_texts("A dog runs.");
    encode.set_model("marian-en-xx-nowhere");
    transformer::v1::EncodeResponse encoded;
    EXPECT_EQ(server_->stub().Encode(&context, encode, &encoded).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    transformer::v1::GetModelInfoRequest info_request;
    info_request.set_model("marian-en-xx-nowhere");
    transformer::v1::GetModelInfoResponse info;
    EXPECT_EQ(server_->stub()
                  .GetModelInfo(&context, info_request, &info)
                  .error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
}

// What UnloadModel answers: UNLOADING while anything holds the model, else
// UNLOADED.
bool Unloading(ModelState state) {
  return state == transformer::v1::MODEL_STATE_UNLOADING ||
         state == transformer::v1::MODEL_STATE_UNLOADED;
}

// The HTTP gateway's answer: status code and JSON body.
struct HttpAnswer {
  int status = -1;
  std::string body;
};

HttpAnswer HttpCall(int port, const std::string& method,
                    const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  // cpp-httplib 0.11 answers 400 to a POST without a body.
  httplib::Result result = method == "POST"
                               ? client.Post(path, "{}", "application/json")
                               : client.Get(path);
  if (!result) return {};
  return {result->status, result->body};
}

template <typename Message>
Message FromJson(const std::string& json) {
  Message message;
  const auto status =
      google::protobuf::util::JsonStringToMessage(json, &message);
  EXPECT_TRUE(status.ok()) << status << ": " << json;
  return message;
}

// ListModels names the three models with their languages, READY (all loaded
// at start), weight bytes; UnloadModel and LoadModel change the state, the
// transformer_model_loaded gauge and the resident bytes; the HTTP routes do
// the same.
TEST_F(ModelRepositoryTest, ListLoadAndUnloadOverGrpcAndHttp) {
  ListModelsResponse list = server_->List();
  ASSERT_EQ(list.models_size(), 3);
  int64_t all_weights = 0;
  for (int i = 0; i < 3; ++i) {
    const ModelStatus& model = list.models(i);
    SCOPED_TRACE(model.name());
    EXPECT_EQ(model.name(), kModels[i]);
    const auto [source, target] = LanguagesOf(kModels[i]);
    EXPECT_EQ(model.source_language(), source);
    EXPECT_EQ(std::vector<std::string>(model.target_languages().begin(),
                                       model.target_languages().end()),
              std::vector<std::string>{target});
    EXPECT_EQ(model.state(), transformer::v1::MODEL_STATE_READY);
    EXPECT_GT(model.weight_bytes(), 0);
    EXPECT_EQ(model.compute_type(), "fp32");
    EXPECT_EQ(server_->Metric(Labelled("transformer_model_loaded", kModels[i])),
              1);
    EXPECT_EQ(
        server_->Metric(Labelled("transformer_model_weight_bytes", kModels[i])),
        model.weight_bytes());
    all_weights += model.weight_bytes();
  }
  EXPECT_EQ(list.memory_budget_bytes(), 0);
  EXPECT_EQ(list.resident_weight_bytes(), all_weights);
  const int64_t en_fr_bytes = server_->Status(kEnFr).weight_bytes();

  // gRPC: unload en-fr (nothing in flight: UNLOADED at once), then load it.
  {
    grpc::ClientContext context;
    transformer::v1::UnloadModelRequest request;
    request.set_name(kEnFr);
    transformer::v1::UnloadModelResponse response;
    const grpc::Status status =
        server_->stub().UnloadModel(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.model().name(), kEnFr);
    // Nothing in flight, but an idle worker may still hold its copy (it lets
    // go within its 200 ms wait for work): UNLOADING, then UNLOADED.
    EXPECT_TRUE(Unloading(response.model().state()))
        << response.model().state();
  }
  EXPECT_TRUE(
      server_->WaitForState(kEnFr, transformer::v1::MODEL_STATE_UNLOADED));
  EXPECT_EQ(server_->Status(kEnDe).state(), transformer::v1::MODEL_STATE_READY);
  EXPECT_EQ(server_->List().resident_weight_bytes(), all_weights - en_fr_bytes);
  EXPECT_EQ(server_->Metric(Labelled("transformer_model_loaded", kEnFr)), 0);
  EXPECT_EQ(server_->Status(kEnFr).in_flight(), 0);
  EXPECT_EQ(server_->Metric(Labelled("transformer_model_loaded", kEnDe)), 1);
  const double en_fr_loads =
      server_->Metric(Labelled("transformer_model_loads_total", kEnFr));
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    transformer::v1::LoadModelRequest request;
    request.set_name(kEnFr);
    transformer::v1::LoadModelResponse response;
    const grpc::Status status =
        server_->stub().LoadModel(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.model().state(), transformer::v1::MODEL_STATE_READY);
  }
  EXPECT_EQ(server_->Status(kEnFr).state(), transformer::v1::MODEL_STATE_READY);
  EXPECT_EQ(server_->List().resident_weight_bytes(), all_weights);
  EXPECT_EQ(server_->Metric(Labelled("transformer_model_loaded", kEnFr)), 1);
  EXPECT_EQ(server_->Metric(Labelled("transformer_model_loads_total", kEnFr)),
            en_fr_loads + 1);
  // Unknown names: NOT_FOUND.
  {
    grpc::ClientContext context;
    transformer::v1::UnloadModelRequest request;
    request.set_name("marian-en-xx-nowhere");
    transformer::v1::UnloadModelResponse response;
    EXPECT_EQ(
        server_->stub().UnloadModel(&context, request, &response).error_code(),
        grpc::StatusCode::NOT_FOUND);
  }

  // HTTP: the same list, then unload and load de-en.
  const int port = server_->http_port();
  HttpAnswer answer = HttpCall(port, "GET", "/v1/models");
  ASSERT_EQ(answer.status, 200) << answer.body;
  const ListModelsResponse http_list =
      FromJson<ListModelsResponse>(answer.body);
  ASSERT_EQ(http_list.models_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(http_list.models(i).name(), kModels[i]);
    EXPECT_EQ(http_list.models(i).source_language(),
              LanguagesOf(kModels[i]).first);
    EXPECT_EQ(http_list.models(i).state(), transformer::v1::MODEL_STATE_READY);
    EXPECT_EQ(http_list.models(i).weight_bytes(),
              list.models(i).weight_bytes());
  }

  answer =
      HttpCall(port, "POST", absl::StrCat("/v1/models/", kDeEn, ":unload"));
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_TRUE(
      Unloading(FromJson<transformer::v1::UnloadModelResponse>(answer.body)
                    .model()
                    .state()))
      << answer.body;
  EXPECT_TRUE(
      server_->WaitForState(kDeEn, transformer::v1::MODEL_STATE_UNLOADED));
  EXPECT_EQ(server_->Metric(Labelled("transformer_model_loaded", kDeEn)), 0);
  answer = HttpCall(port, "GET", absl::StrCat("/v1/models/", kDeEn));
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(FromJson<ModelStatus>(answer.body).state(),
            transformer::v1::MODEL_STATE_UNLOADED);

  answer = HttpCall(port, "POST", absl::StrCat("/v1/models/", kDeEn, ":load"));
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(
      FromJson<transformer::v1::LoadModelResponse>(answer.body).model().state(),
      transformer::v1::MODEL_STATE_READY);
  EXPECT_EQ(server_->Status(kDeEn).state(), transformer::v1::MODEL_STATE_READY);
  EXPECT_EQ(server_->Metric(Labelled("transformer_model_loaded", kDeEn)), 1);
  answer = HttpCall(port, "GET", absl::StrCat("/v1/models/", kDeEn));
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(FromJson<ModelStatus>(answer.body).state(),
            transformer::v1::MODEL_STATE_READY);
  // GetModelInfo of a named model over HTTP carries its status.
  answer = HttpCall(port, "GET", absl::StrCat("/v1/model?model=", kEnFr));
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(FromJson<transformer::v1::GetModelInfoResponse>(answer.body)
                .model()
                .name(),
            kEnFr);

  answer = HttpCall(port, "GET", "/v1/models/marian-en-xx-nowhere");
  EXPECT_EQ(answer.status, 404) << answer.body;
  answer = HttpCall(port, "POST", "/v1/models/marian-en-xx-nowhere:unload");
  EXPECT_EQ(answer.status, 404) << answer.body;
}

// UnloadModel while a long request runs on the model: it answers at once
// with UNLOADING; the request finishes with the output a fresh computation
// gives; then the model is UNLOADED, and the next request loads it again.
TEST_F(ModelRepositoryTest, UnloadDuringALongRequestWaitsForIt) {
  const std::vector<GoldenTranslation> golden = GoldenOf(kEnFr);
  constexpr int kTexts = 16;
  TranslateRequest request;
  request.set_model(kEnFr);
  for (int i = 0; i < kTexts; ++i) request.add_texts(golden[100 + i].source);
  request.mutable_options()->set_beam_size(4);
  request.mutable_options()->set_min_length(150);
  request.mutable_options()->set_max_length(160);
  ASSERT_EQ(server_->Status(kEnFr).state(), transformer::v1::MODEL_STATE_READY);
  const double loads_before =
      server_->Metric(Labelled("transformer_model_loads_total", kEnFr));

  InFlightTranslate long_call(server_->stub(), request,
                              absl::Now() + absl::Seconds(120));
  ASSERT_TRUE(server_->WaitForMetric("transformer_active_sequences", 1));

  const absl::Time unload_start = absl::Now();
  transformer::v1::UnloadModelResponse unloaded;
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    transformer::v1::UnloadModelRequest unload;
    unload.set_name(kEnFr);
    const grpc::Status status =
        server_->stub().UnloadModel(&context, unload, &unloaded);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  const absl::Duration unload_took = absl::Now() - unload_start;
  EXPECT_EQ(unloaded.model().state(), transformer::v1::MODEL_STATE_UNLOADING);
  // The request's lease still counts against the unloading copy.
  EXPECT_EQ(unloaded.model().in_flight(), 1);
  // "At once": long before the request's seconds of decoding end.
  EXPECT_LT(unload_took, absl::Seconds(2));
  // Past an idle worker's 200 ms hold: still UNLOADING, because the request
  // still decodes (the only one: active sequences read after the state).
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(server_->Status(kEnFr).state(),
            transformer::v1::MODEL_STATE_UNLOADING);
  ASSERT_GT(server_->Metric("transformer_active_sequences"), 0)
      << "the request ended too soon to test anything";

  const grpc::Status status = long_call.Wait();
  ASSERT_TRUE(status.ok()) << status.error_message();
  const TranslateResponse got = long_call.response();
  ASSERT_EQ(got.translations_size(), kTexts);
  EXPECT_TRUE(
      server_->WaitForState(kEnFr, transformer::v1::MODEL_STATE_UNLOADED))
      << "state " << server_->Status(kEnFr).state();
  EXPECT_EQ(server_->Metric(Labelled("transformer_model_loaded", kEnFr)), 0);

  // A fresh computation (return_attention is not cached; decoding is the
  // same) loads the model again.
  TranslateRequest fresh = request;
  fresh.mutable_options()->set_return_attention(true);
  TranslateResponse want;
  const grpc::Status fresh_status = [&] {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
    return server_->stub().Translate(&context, fresh, &want);
  }();
  ASSERT_TRUE(fresh_status.ok()) << fresh_status.error_message();
  EXPECT_EQ(Texts(got), Texts(want));
  for (int t = 0; t < kTexts; ++t) {
    const auto& hypothesis = got.translations(t).hypotheses(0);
    EXPECT_EQ(
        std::vector<int>(hypothesis.token_ids().begin(),
                         hypothesis.token_ids().end()),
        std::vector<int>(want.translations(t).hypotheses(0).token_ids().begin(),
                         want.translations(t).hypotheses(0).token_ids().end()))
        << "text " << t;
    EXPECT_GE(hypothesis.token_ids_size(), 149) << "min_length 150 was dropped";
  }
  EXPECT_EQ(server_->Status(kEnFr).state(), transformer::v1::MODEL_STATE_READY);
  EXPECT_EQ(server_->Metric(Labelled("transformer_model_loads_total", kEnFr)),
            loads_before + 1);
  EXPECT_EQ(server_->Metric(Labelled("transformer_model_loaded", kEnFr)), 1);
}

// A budget smaller than any model: a request gets RESOURCE_EXHAUSTED naming
// the budget and the model's size, and nothing loads.
TEST(ModelRepositoryBudgetTest, ModelLargerThanTheBudgetIsResourceExhausted) {
  RepositoryServer server;
  const absl::Status started =
      server.Start({"--model_memory_mb=10", "--load_models=none",
                    absl::StrCat("--default_model=", kEnDe)});
  ASSERT_TRUE(started.ok()) << started;
  const ListModelsResponse list = server.List();
  EXPECT_EQ(list.memory_budget_bytes(), 10 << 20);
  EXPECT_EQ(list.resident_weight_bytes(), 0);
  const ModelStatus en_de = server.Status(kEnDe);
  EXPECT_EQ(en_de.state(), transformer::v1::MODEL_STATE_UNLOADED);
  ASSERT_GT(en_de.weight_bytes(), 10 << 20);

  TranslateRequest request = GreedyRequest({GoldenOf(kEnDe)[0].source});
  request.set_model(kEnDe);
  TranslateResponse response;
  const grpc::Status status = server.Translate(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(absl::StrContains(status.error_message(), absl::StrCat(10 << 20)))
      << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(),
                                absl::StrCat(en_de.weight_bytes())))
      << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), kEnDe))
      << status.error_message();
  EXPECT_EQ(server.Status(kEnDe).state(),
            transformer::v1::MODEL_STATE_UNLOADED);
  EXPECT_EQ(server.Metric("transformer_model_loads_total"), 0);
}

// A budget for one model (40 MB; each is 30 MiB in fp32): requests that
// alternate between models, one after another and from 8 threads at once,
// all succeed with the golden outputs; each switch loads one model and
// evicts the other.
TEST(ModelRepositoryBudgetTest, BudgetForOneModelEvictsAndReloads) {
  RepositoryServer server;
  const absl::Status started =
      server.Start({"--model_memory_mb=40", "--load_models=none",
                    absl::StrCat("--default_model=", kEnDe)});
  ASSERT_TRUE(started.ok()) << started;
  ASSERT_LT(40 << 20, 2 * server.Status(kEnDe).weight_bytes())
      << "the budget must hold one model only";
  const std::map<std::string, std::vector<GoldenTranslation>> golden = {
      {kEnDe, GoldenOf(kEnDe)},
      {kEnFr, GoldenOf(kEnFr)},
      {kDeEn, GoldenOf(kDeEn)}};
  EXPECT_EQ(server.Metric("transformer_model_loads_total"), 0);
  EXPECT_EQ(server.Metric("transformer_model_evictions_total"), 0);

  // Sequential: en-de, en-fr, de-en, ... each request loads its model and
  // evicts the one before (idle by then).
  constexpr int kSequential = 12;
  const char* const cycle[] = {kEnDe, kEnFr, kDeEn};
  for (int i = 0; i < kSequential; ++i) {
    const std::string model = cycle[i % 3];
    SCOPED_TRACE(absl::StrCat("request ", i, " ", model));
    const GoldenTranslation& row = golden.at(model)[120 + i];
    TranslateRequest request = GreedyRequest({row.source});
    request.set_model(model);
    TranslateResponse response;
    const grpc::Status status = server.Translate(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(Texts(response), std::vector<std::string>{row.greedy_text});
    EXPECT_LE(server.List().resident_weight_bytes(), 40 << 20);
  }
  EXPECT_EQ(server.Metric("transformer_model_loads_total"), kSequential);
  EXPECT_EQ(server.Metric("transformer_model_evictions_total"),
            kSequential - 1);
  for (const char* model : {kEnDe, kEnFr, kDeEn}) {
    EXPECT_EQ(server.Metric(Labelled("transformer_model_loads_total", model)),
              kSequential / 3)
        << model;
  }

  // Concurrent: 8 threads, each alternating between en-de and en-fr (half
  // start with each), 4 requests each, a 60 s deadline.
  const double loads_before = server.Metric("transformer_model_loads_total");
  const double evictions_before =
      server.Metric("transformer_model_evictions_total");
  constexpr int kThreads = 8;
  constexpr int kPerThread = 3;
  struct Outcome {
    std::string model;
    grpc::Status status;
    std::string want;
    std::vector<std::string> got;
  };
  std::vector<std::vector<Outcome>> outcomes(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kPerThread; ++k) {
        const std::string model = (t + k) % 2 == 0 ? kEnDe : kEnFr;
        const GoldenTranslation& row =
            golden.at(model)[140 + t * kPerThread + k];
        TranslateRequest request = GreedyRequest({row.source});
        request.set_model(model);
        TranslateResponse response;
        Outcome outcome{model, server.Translate(request, &response),
                        row.greedy_text, Texts(response)};
        outcomes[t].push_back(std::move(outcome));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    for (int k = 0; k < kPerThread; ++k) {
      const Outcome& outcome = outcomes[t][k];
      SCOPED_TRACE(
          absl::StrCat("thread ", t, " request ", k, " ", outcome.model));
      ASSERT_TRUE(outcome.status.ok()) << outcome.status.error_code() << " "
                                       << outcome.status.error_message();
      EXPECT_EQ(outcome.got, std::vector<std::string>{outcome.want});
    }
  }
  const double loads = server.Metric("transformer_model_loads_total");
  const double evictions = server.Metric("transformer_model_evictions_total");
  // de-en was the model in memory when they started: at least one load of
  // each, and each load evicted the model before it.
  EXPECT_GE(loads - loads_before, 2);
  EXPECT_GE(evictions - evictions_before, 1);
  EXPECT_EQ(evictions - evictions_before, loads - loads_before)
      << "each load evicted one model";
  // A load serves every request waiting for it when it ends: a thread waits
  // at most two switches for a request (the model in memory drains, then
  // its own loads), so there are at most 2 * kPerThread + 1 loads, not one
  // per request.
  EXPECT_LE(loads - loads_before, 2 * kPerThread + 1)
      << "a load per request: the requests waiting for a model's load did "
         "not all get it";
  EXPECT_LE(server.List().resident_weight_bytes(), 40 << 20);
  std::cout << "budget test: " << loads - loads_before << " loads, "
            << evictions - evictions_before << " evictions for "
            << kThreads * kPerThread << " concurrent requests" << std::endl;
}

}  // namespace
}  // namespace ts::testing
