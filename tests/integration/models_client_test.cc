// transformer-client with many models (issue 23): `models`, `models load`,
// `models unload`, translate by language pair and bench --models against the
// real server on the demo repository (models/), checked against the en-fr
// and de-en models' golden outputs; and the x-model metadata and request
// fields every command sends, recorded by a stand-in service on loopback.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/test_server.h"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace {

using nlohmann::json;
using ts::testing::CommandResult;
using ts::testing::GoldenTranslation;
using ts::testing::ReadFile;
using ts::testing::ReadGoldenTranslations;
using ts::testing::RunCommand;

constexpr char kEnDe[] = "marian-en-de-multi30k";
constexpr char kEnFr[] = "marian-en-fr-multi30k";
constexpr char kDeEn[] = "marian-de-en-multi30k";

// models/ beside the demo model.
std::string RepositoryDir() { return std::string(TS_DEMO_MODEL_DIR) + "/.."; }

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// The first `count` rows of a model's golden/translations.jsonl.
std::vector<GoldenTranslation> Golden(const std::string& model, int count) {
  std::vector<GoldenTranslation> rows =
      ReadGoldenTranslations(absl::StrCat(RepositoryDir(), "/", model));
  if (static_cast<int>(rows.size()) > count) rows.resize(count);
  return rows;
}

std::string Client(const std::string& target, const std::string& arguments) {
  return absl::StrCat(TS_CLIENT_BINARY, " ", arguments, " --server=", target);
}

// The ModelStatus JSON of `name` in `models --json` output.
json ModelOf(const std::string& list_json, const std::string& name) {
  const json list = json::parse(list_json);
  for (const json& model : list["models"]) {
    if (model["name"] == name) return model;
  }
  ADD_FAILURE() << name << " not in " << list_json;
  return json::object();
}

TEST(ModelsClientTest, ListLoadUnloadAndTranslateByLanguagePair) {
  ts::testing::ServerProcess server;
  const absl::Status started = server.Start(
      {absl::StrCat("--model_repository=", RepositoryDir()),
       "--load_models=none", "--num_workers=2", "--intra_threads=1"});
  ASSERT_TRUE(started.ok()) << started;
  const std::string target = server.target();

  // Nothing loaded yet: a table row per model, with its languages.
  const CommandResult table = RunCommand(Client(target, "models"));
  ASSERT_EQ(table.exit_code, 0) << table.err;
  const std::vector<std::string> rows = Lines(table.out);
  ASSERT_EQ(rows.size(), 5u) << table.out;  // header, 3 models, footer
  EXPECT_EQ(rows[0].substr(0, 4), "NAME");
  for (const auto& [row, name, languages] :
       {std::tuple{1, kDeEn, "de-en"}, std::tuple{2, kEnDe, "en-de"},
        std::tuple{3, kEnFr, "en-fr"}}) {
    const std::vector<std::string> cells =
        absl::StrSplit(rows[row], ' ', absl::SkipEmpty());
    ASSERT_GE(cells.size(), 6u) << rows[row];
    EXPECT_EQ(cells[0], name);
    EXPECT_EQ(cells[1], languages);
    EXPECT_EQ(cells[2], "UNLOADED");
    EXPECT_EQ(rows[row].substr(rows[row].size() - 5), "never");
  }

  // Routed by languages to en-fr (loaded on demand): its golden output.
  const std::vector<GoldenTranslation> en_fr = Golden(kEnFr, 4);
  std::string sources;
  for (const GoldenTranslation& row : en_fr) sources += row.source + "\n";
  const CommandResult french =
      RunCommand(Client(target,
                        "translate --source_language=en --target_language=fr "
                        "--beam_size=1 --max_length=128"),
                 sources);
  ASSERT_EQ(french.exit_code, 0) << french.err;
  ASSERT_EQ(Lines(french.out).size(), en_fr.size()) << french.out;
  for (size_t i = 0; i < en_fr.size(); ++i) {
    EXPECT_EQ(Lines(french.out)[i], en_fr[i].greedy_text) << i;
  }
  // By name: de-en, loaded on demand too.
  const std::vector<GoldenTranslation> de_en = Golden(kDeEn, 2);
  const CommandResult english = RunCommand(
      Client(target, absl::StrCat("translate --model=", kDeEn,
                                  " --beam_size=1 --max_length=128")),
      absl::StrCat(de_en[0].source, "\n", de_en[1].source, "\n"));
  ASSERT_EQ(english.exit_code, 0) << english.err;
  EXPECT_EQ(
      Lines(english.out),
      (std::vector<std::string>{de_en[0].greedy_text, de_en[1].greedy_text}));

  const CommandResult listed = RunCommand(Client(target, "models --json"));
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  const json fr = ModelOf(listed.out, kEnFr);
  EXPECT_EQ(fr["state"], "MODEL_STATE_READY");
  EXPECT_EQ(fr["source_language"], "en");
  EXPECT_EQ(fr["target_languages"], json::array({"fr"}));
  EXPECT_EQ(fr["in_flight"], 0);
  EXPECT_TRUE(fr.contains("last_used"));
  EXPECT_EQ(ModelOf(listed.out, kEnDe)["state"], "MODEL_STATE_UNLOADED");

  // Unload answers at once (idle: UNLOADING or already UNLOADED); load
  // answers once READY.
  const CommandResult unloaded =
      RunCommand(Client(target, absl::StrCat("models unload ", kEnFr)));
  ASSERT_EQ(unloaded.exit_code, 0) << unloaded.err;
  EXPECT_NE(unloaded.out.find("UNLOAD"), std::string::npos) << unloaded.out;
  const CommandResult loaded = RunCommand(
      Client(target, absl::StrCat("models load ", kEnFr, " --json")));
  ASSERT_EQ(loaded.exit_code, 0) << loaded.err;
  EXPECT_EQ(json::parse(loaded.out)["state"], "MODEL_STATE_READY");

  // bench --models alternates: half the requests each, all OK.
  const CommandResult bench = RunCommand(
      Client(target, absl::StrCat("bench --models=", kEnDe, ",", kEnFr,
                                  " --requests=6 --concurrency=2")),
      sources);
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  const json report = json::parse(bench.out);
  for (const char* name : {kEnDe, kEnFr}) {
    EXPECT_EQ(report["models"][name]["requests"], 3) << bench.out;
    EXPECT_EQ(report["models"][name]["codes"]["OK"], 3) << bench.out;
  }

  // Exit codes: an unknown model is an RPC error (NOT_FOUND naming what is
  // served); bad words or half a language pair are usage errors.
  const CommandResult unknown =
      RunCommand(Client(target, "models load no-such-model"));
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("NOT_FOUND"), std::string::npos) << unknown.err;
  EXPECT_NE(unknown.err.find(kEnFr), std::string::npos) << unknown.err;
  EXPECT_EQ(RunCommand(Client(target, "models frobnicate")).exit_code, 2);
  EXPECT_EQ(RunCommand(Client(target, "models load")).exit_code, 2);
  EXPECT_EQ(
      RunCommand(Client(target, "translate --source_language=en x")).exit_code,
      2);
  EXPECT_EQ(
      RunCommand(Client(target, "bench --model=a --models=a,b x")).exit_code,
      2);
}

// Records what each call carried: its x-model metadata ("-" if none) and
// the request's model fields.
class RecordingService final
    : public transformer::v1::TransformerService::Service {
 public:
  grpc::Status Translate(
      grpc::ServerContext* context,
      const transformer::v1::TranslateRequest* request,
      transformer::v1::TranslateResponse* response) override {
    Record(context, "Translate", request->model(), request->source_language(),
           request->target_language());
    for (int i = 0; i < request->texts_size(); ++i) {
      response->add_translations()->add_hypotheses()->set_text("t");
    }
    return grpc::Status::OK;
  }
  grpc::Status Encode(grpc::ServerContext* context,
                      const transformer::v1::EncodeRequest* request,
                      transformer::v1::EncodeResponse* response) override {
    Record(context, "Encode", request->model(), request->source_language(),
           request->target_language());
    for (int i = 0; i < request->texts_size(); ++i) {
      response->add_embeddings()->set_dim(0);
    }
    return grpc::Status::OK;
  }
  grpc::Status LoadModel(
      grpc::ServerContext* context,
      const transformer::v1::LoadModelRequest* request,
      transformer::v1::LoadModelResponse* response) override {
    Record(context, "LoadModel", request->name(), "", "");
    response->mutable_model()->set_name(request->name());
    return grpc::Status::OK;
  }

  // "Method x-model model source target" per call, in arrival order.
  std::vector<std::string> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  void Record(grpc::ServerContext* context, const std::string& method,
              const std::string& model, const std::string& source,
              const std::string& target) {
    const auto& metadata = context->client_metadata();
    const auto found = metadata.find("x-model");
    const std::string header =
        found == metadata.end()
            ? "-"
            : std::string(found->second.data(), found->second.size());
    absl::MutexLock lock(&mu_);
    calls_.push_back(
        absl::StrJoin({method, header, model, source, target}, " "));
  }

  absl::Mutex mu_;
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
};

TEST(ModelsClientTest, EveryCallCarriesTheModelAsXModelMetadata) {
  RecordingService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);
  const std::string target = absl::StrCat("127.0.0.1:", port);
  for (const std::string arguments :
       {"translate --model=m1 a",
        "translate --source_language=en "
        "--target_language=fr a",
        "translate a", "encode --model=m2 a",
        "bench --models=m3,m4 --requests=4 --concurrency=1 a",
        "bench --source_language=de --target_language=en --requests=1 a",
        "models load m5"}) {
    const CommandResult result = RunCommand(Client(target, arguments));
    EXPECT_EQ(result.exit_code, 0) << arguments << ": " << result.err;
  }
  // Empty fields print as nothing between the spaces.
  EXPECT_EQ(service.calls(),
            (std::vector<std::string>{
                "Translate m1 m1  ", "Translate en-fr  en fr", "Translate -   ",
                "Encode m2 m2  ", "Translate m3 m3  ", "Translate m4 m4  ",
                "Translate m3 m3  ", "Translate m4 m4  ",
                "Translate de-en  de en", "LoadModel m5 m5  "}));
  server->Shutdown();
}

}  // namespace
