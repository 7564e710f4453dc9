// The client's model selection (x-model routing key, the language pair
// check) and the `models` table: the default marker, multi-target
// languages, a FAILED model's reason, last use and the memory budget line.
#include "client/models_command.h"

#include <string>

#include "absl/time/time.h"
#include "client/connection.h"
#include "gtest/gtest.h"

namespace ts::client {
namespace {

TEST(ModelSelectionTest, RoutingKeyIsTheModelElseThePairElseEmpty) {
  ModelSelection selection;
  EXPECT_EQ(selection.RoutingKey(), "");
  selection.source_language = "en";
  selection.target_language = "fr";
  EXPECT_EQ(selection.RoutingKey(), "en-fr");
  selection.model = "marian-en-fr-multi30k";
  EXPECT_EQ(selection.RoutingKey(), "marian-en-fr-multi30k");
}

TEST(ModelSelectionTest, LanguagesGoTogether) {
  ModelSelection selection;
  EXPECT_TRUE(ValidateModelSelection(selection).ok());
  selection.source_language = "en";
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateModelSelection(selection)));
  selection.target_language = "de";
  EXPECT_TRUE(ValidateModelSelection(selection).ok());
}

TEST(ModelsTableTest, RowsReasonsAndBudget) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  transformer::v1::ListModelsResponse response;
  response.set_memory_budget_bytes(int64_t{40} << 20);
  response.set_resident_weight_bytes(31'419'652);
  auto* en_de = response.add_models();
  en_de->set_name("en-de");
  en_de->set_source_language("en");
  en_de->add_target_languages("de");
  en_de->set_state(transformer::v1::MODEL_STATE_READY);
  en_de->set_weight_bytes(31'419'652);
  en_de->set_in_flight(3);
  en_de->set_is_default(true);
  en_de->mutable_last_used()->set_seconds(1'800'000'000 - 125);
  auto* multi = response.add_models();
  multi->set_name("en-mul");
  multi->set_source_language("en");
  multi->add_target_languages("de");
  multi->add_target_languages("fr");
  multi->set_state(transformer::v1::MODEL_STATE_FAILED);
  multi->set_reason("model.safetensors: no such file");
  EXPECT_EQ(ModelsTable(response, now),
            "NAME     LANGUAGES  STATE   WEIGHT MiB  IN FLIGHT  LAST USED\n"
            "en-de *  en-de      READY   30.0        3          2m05s ago\n"
            "en-mul   en-de,fr   FAILED  0.0         0          never\n"
            "en-mul: model.safetensors: no such file\n"
            "* the default model. Weights in memory: 30.0 MiB of 40.0 MiB "
            "(--model_memory_mb)\n");
}

TEST(ModelsTableTest, NoDefaultNoBudget) {
  transformer::v1::ListModelsResponse response;
  auto* model = response.add_models();
  model->set_name("m");
  model->set_state(transformer::v1::MODEL_STATE_UNLOADED);
  EXPECT_EQ(ModelsTable(response, absl::UnixEpoch()),
            "NAME  LANGUAGES  STATE     WEIGHT MiB  IN FLIGHT  LAST USED\n"
            "m     ?          UNLOADED  0.0         0          never\n"
            "Weights in memory: 0.0 MiB (no --model_memory_mb bound)\n");
}

}  // namespace
}  // namespace ts::client
