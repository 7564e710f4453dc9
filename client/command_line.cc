#include "client/command_line.h"

#include <algorithm>
#include <map>

#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace ts::client {
namespace {

struct CommandSpec {
  const char* summary;
  const char* synopsis;
  std::vector<std::string> flags;  // besides kCommonFlags
};

const std::vector<std::string>& CommonFlags() {
  static const auto* flags = new std::vector<std::string>{"server",
                                                          "lb_policy",
                                                          "tls",
                                                          "tls_ca",
                                                          "tls_cert",
                                                          "tls_key",
                                                          "tls_server_name",
                                                          "timeout_s",
                                                          "max_attempts",
                                                          "texts_per_request",
                                                          "input",
                                                          "output"};
  return *flags;
}

const std::map<std::string, CommandSpec>& Commands() {
  static const auto* commands = new std::map<std::string, CommandSpec>{
      {"translate",
       {"Translates texts; prints one translation (or JSON line) per text, "
        "in input order.",
        "transformer-client translate [flags] [TEXT...]",
        {"beam_size",
         "max_length",
         "num_hypotheses",
         "no_repeat_ngram_size",
         "repetition_penalty",
         "sample",
         "top_k",
         "top_p",
         "temperature",
         "seed",
         "input_format",
         "newline_mode",
         "document",
         "json",
         "attention",
         "attention_layer",
         "heatmap",
         "concurrency",
         "stream",
         "model",
         "source_language",
         "target_language"}}},
      {"bench",
       {"Load generator: --concurrency clients each keep one Translate "
        "request in flight (or, with --request_rate, requests arrive at "
        "that rate) until --requests were sent or --duration_s "
        "passed; prints requests/s, sentences/s, latency percentiles and "
        "every status code (JSON); with --stream, TranslateStream calls and "
        "time-to-first-token percentiles too.",
        "transformer-client bench [flags] [TEXT...]",
        {"beam_size", "max_length", "input_format", "concurrency", "requests",
         "duration_s", "repeat_fraction", "paragraph_every", "report_json",
         "stream", "request_rate", "model", "models", "source_language",
         "target_language"}}},
      {"encode",
       {"Encodes texts; prints one JSON line {text, dim, num_tokens, values} "
        "per text, in input order.",
        "transformer-client encode [flags] [TEXT...]",
        {"pooling", "normalize", "model", "source_language",
         "target_language"}}},
      {"models",
       {"Lists the server's models (ListModels) as a table: name (* = the "
        "default), languages, state, weight MiB, requests in flight, last "
        "use; or, with --json, as JSON. 'models load NAME' and 'models "
        "unload NAME' load or unload one (LoadModel answers once it is "
        "READY; UnloadModel at once) and print its status.",
        "transformer-client models [--json] | models load NAME | models "
        "unload NAME",
        {"json"}}},
  };
  return *commands;
}

constexpr char kCommandNames[] = "translate, encode, bench or models";

constexpr char kExitCodes[] =
    "Exit codes: 0 ok, 1 RPC error (status on stderr), 2 usage error, "
    "3 I/O error (--input, --output or a TLS file).\n";

constexpr char kTexts[] =
    "Texts: the TEXT arguments, else one per line of --input (or stdin). "
    "With --input, progress goes to stderr: a bar on a terminal, else one "
    "summary line at the end.\n";

bool IsCommandFlag(const std::string& command, const std::string& name) {
  const std::vector<std::string>& common = CommonFlags();
  if (std::find(common.begin(), common.end(), name) != common.end()) {
    return true;
  }
  const std::vector<std::string>& own = Commands().at(command).flags;
  return std::find(own.begin(), own.end(), name) != own.end();
}

std::string FlagLines(const std::vector<std::string>& names) {
  std::string lines;
  for (const std::string& name : names) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    absl::StrAppend(&lines, "  --", name, " (default: \"", flag->DefaultValue(),
                    "\")\n      ", flag->Help(), "\n");
  }
  return lines;
}

// A flag as written: --name=value, --name value, --bool, --nobool.
struct FlagArg {
  std::string name;
  std::string value;
};

// Reads the flag at argv[*i] and advances *i past it (and past its value
// when that is the next argument). A flag not linked in keeps its name and
// fails later, once the command is known.
absl::StatusOr<FlagArg> ReadFlag(int argc, const char* const* argv, int* i) {
  absl::string_view arg = argv[(*i)++];
  arg.remove_prefix(absl::StartsWith(arg, "--") ? 2 : 1);
  const size_t equals = arg.find('=');
  FlagArg flag{std::string(arg.substr(0, equals)), ""};
  if (equals != absl::string_view::npos) {
    flag.value = std::string(arg.substr(equals + 1));
    return flag;
  }
  const absl::CommandLineFlag* found = absl::FindCommandLineFlag(flag.name);
  if (found == nullptr && absl::StartsWith(flag.name, "no")) {
    const absl::CommandLineFlag* negated =
        absl::FindCommandLineFlag(flag.name.substr(2));
    if (negated != nullptr && negated->IsOfType<bool>()) {
      return FlagArg{flag.name.substr(2), "false"};
    }
  }
  if (found == nullptr || found->IsOfType<bool>()) {
    flag.value = "true";
  } else if (*i < argc) {
    flag.value = argv[(*i)++];
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("flag --", flag.name, " needs a value"));
  }
  return flag;
}

absl::Status ApplyFlag(const std::string& command, const FlagArg& arg) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(arg.name);
  if (flag == nullptr || !IsCommandFlag(command, arg.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown flag --", arg.name, " for ", command,
                     " (see transformer-client ", command, " --help)"));
  }
  std::string error;
  if (!flag->ParseFrom(arg.value, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", arg.name, "=", arg.value, ": ", error));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CommandLine> ParseCommandLine(int argc,
                                             const char* const* argv) {
  CommandLine result;
  // Flags may come before the command, so they are applied once it is known.
  std::vector<FlagArg> flags;
  bool flags_ended = false;
  for (int i = 1; i < argc;) {
    const absl::string_view arg = argv[i];
    if (flags_ended || !absl::StartsWith(arg, "-") || arg == "-") {
      if (result.command.empty()) {
        result.command = std::string(arg);
      } else {
        result.texts.emplace_back(arg);
      }
      ++i;
    } else if (arg == "--") {
      flags_ended = true;
      ++i;
    } else if (arg == "--help" || arg == "-h" || arg == "-help") {
      result.help = true;
      ++i;
    } else {
      absl::StatusOr<FlagArg> flag = ReadFlag(argc, argv, &i);
      if (!flag.ok()) return flag.status();
      flags.push_back(*std::move(flag));
    }
  }
  if (!result.command.empty() && Commands().count(result.command) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown command \"", result.command, "\" (", kCommandNames, ")"));
  }
  if (result.help) return result;
  if (result.command.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("missing command (", kCommandNames, ")"));
  }
  for (const FlagArg& flag : flags) {
    if (absl::Status status = ApplyFlag(result.command, flag); !status.ok()) {
      return status;
    }
  }
  return result;
}

std::string Usage(const std::string& command) {
  const auto it = Commands().find(command);
  if (it == Commands().end()) {
    std::string usage =
        "Client of transformer-server.\n"
        "Usage: transformer-client COMMAND [flags] [TEXT...]\n"
        "       transformer-client COMMAND --help\n"
        "Commands:\n";
    for (const auto& [name, spec] : Commands()) {
      absl::StrAppend(&usage, "  ", name, std::string(11 - name.size(), ' '),
                      spec.summary, "\n");
    }
    absl::StrAppend(&usage, kTexts, kExitCodes, "Flags of every command:\n",
                    FlagLines(CommonFlags()));
    return usage;
  }
  const CommandSpec& spec = it->second;
  return absl::StrCat(spec.summary, "\nUsage: ", spec.synopsis, "\n",
                      command == "models" ? "" : kTexts, kExitCodes, "Flags:\n",
                      FlagLines(spec.flags), FlagLines(CommonFlags()));
}

}  // namespace ts::client
