#include "client/models_command.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/connection.h"
#include "client/exit_codes.h"
#include "google/protobuf/util/json_util.h"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace ts::client {
namespace {

using transformer::v1::ListModelsResponse;
using transformer::v1::ModelStatus;

std::string StateName(transformer::v1::ModelState state) {
  std::string name = transformer::v1::ModelState_Name(state);
  constexpr absl::string_view kPrefix = "MODEL_STATE_";
  if (absl::StartsWith(name, kPrefix)) name.erase(0, kPrefix.size());
  return name.empty() ? absl::StrCat("STATE_", static_cast<int>(state)) : name;
}

std::string Languages(const ModelStatus& model) {
  if (model.source_language().empty() && model.target_languages().empty()) {
    return "?";
  }
  return absl::StrCat(
      model.source_language().empty() ? "?" : model.source_language(), "-",
      absl::StrJoin(model.target_languages(), ","));
}

std::string Mebibytes(int64_t bytes) {
  return absl::StrFormat("%.1f", static_cast<double>(bytes) / (1 << 20));
}

// "never", or how long before `now`: "12s ago", "3m05s ago", "2h01m ago".
std::string LastUsed(const ModelStatus& model, absl::Time now) {
  if (!model.has_last_used()) return "never";
  const absl::Time used = absl::FromUnixSeconds(model.last_used().seconds()) +
                          absl::Nanoseconds(model.last_used().nanos());
  const int64_t seconds =
      std::max<int64_t>(0, absl::ToInt64Seconds(now - used));
  if (seconds < 60) return absl::StrCat(seconds, "s ago");
  if (seconds < 3600) {
    return absl::StrFormat("%dm%02ds ago", seconds / 60, seconds % 60);
  }
  return absl::StrFormat("%dh%02dm ago", seconds / 3600, seconds / 60 % 60);
}

std::string Json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    return "{}";
  }
  return json;
}

// Rows of cells as columns padded to their widest cell, two spaces apart.
std::string Columns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string text;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) {
        line.append(widths[i] - row[i].size() + 2, ' ');
      }
    }
    absl::StrAppend(&text, line, "\n");
  }
  return text;
}

std::vector<std::string> Row(const ModelStatus& model, absl::Time now) {
  return {model.is_default() ? model.name() + " *" : model.name(),
          Languages(model),
          StateName(model.state()),
          Mebibytes(model.weight_bytes()),
          std::to_string(model.in_flight()),
          LastUsed(model, now)};
}

const std::vector<std::string>& Header() {
  static const auto* header = new std::vector<std::string>{
      "NAME", "LANGUAGES", "STATE", "WEIGHT MiB", "IN FLIGHT", "LAST USED"};
  return *header;
}

}  // namespace

std::string ModelsTable(const ListModelsResponse& response, absl::Time now) {
  std::vector<std::vector<std::string>> rows = {Header()};
  for (const ModelStatus& model : response.models()) {
    rows.push_back(Row(model, now));
  }
  std::string table = Columns(rows);
  for (const ModelStatus& model : response.models()) {
    if (!model.reason().empty()) {
      absl::StrAppend(&table, model.name(), ": ", model.reason(), "\n");
    }
  }
  const bool has_default =
      std::any_of(response.models().begin(), response.models().end(),
                  [](const ModelStatus& model) { return model.is_default(); });
  absl::StrAppend(
      &table, has_default ? "* the default model. " : "",
      "Weights in memory: ", Mebibytes(response.resident_weight_bytes()),
      " MiB",
      response.memory_budget_bytes() > 0
          ? absl::StrCat(" of ", Mebibytes(response.memory_budget_bytes()),
                         " MiB (--model_memory_mb)")
          : " (no --model_memory_mb bound)",
      "\n");
  return table;
}

int RunModels(const ModelsCommandOptions& options,
              const std::shared_ptr<grpc::Channel>& channel,
              const std::vector<std::string>& arguments, std::ostream& out,
              std::ostream& err) {
  auto stub = transformer::v1::TransformerService::NewStub(channel);
  grpc::Status status;
  std::string method;
  if (arguments.empty()) {
    method = "ListModels";
    transformer::v1::ListModelsResponse response;
    auto context = MakeContext(options.timeout);
    status = stub->ListModels(context.get(),
                              transformer::v1::ListModelsRequest(), &response);
    if (status.ok()) {
      out << (options.json ? Json(response) + "\n"
                           : ModelsTable(response, absl::Now()));
    }
  } else if (arguments.size() == 2 &&
             (arguments[0] == "load" || arguments[0] == "unload")) {
    const std::string& name = arguments[1];
    auto context = MakeContext(options.timeout, name);
    ModelStatus model;
    if (arguments[0] == "load") {
      method = "LoadModel";
      transformer::v1::LoadModelRequest request;
      request.set_name(name);
      transformer::v1::LoadModelResponse response;
      status = stub->LoadModel(context.get(), request, &response);
      model = response.model();
    } else {
      method = "UnloadModel";
      transformer::v1::UnloadModelRequest request;
      request.set_name(name);
      transformer::v1::UnloadModelResponse response;
      status = stub->UnloadModel(context.get(), request, &response);
      model = response.model();
    }
    if (status.ok()) {
      out << (options.json ? Json(model) + "\n"
                           : Columns({Header(), Row(model, absl::Now())}));
    }
  } else {
    err << "transformer-client: models takes no argument (list), or load "
           "NAME, or unload NAME; got \""
        << absl::StrJoin(arguments, " ") << "\"" << std::endl;
    return kExitUsageError;
  }
  if (!status.ok()) {
    err << "transformer-client: " << DescribeRpcError(method, status)
        << std::endl;
    return kExitRpcError;
  }
  out.flush();
  if (!out) {
    err << "transformer-client: cannot write the output" << std::endl;
    return kExitIoError;
  }
  return kExitOk;
}

}  // namespace ts::client
