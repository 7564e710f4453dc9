// transformer-client: command-line client of transformer-server.
//
//   transformer-client translate --server=HOST:PORT [TEXT...]
//   transformer-client encode --server=HOST:PORT [--pooling=mean] [TEXT...]
//   transformer-client bench --server=HOST:PORT [--models=A,B] [TEXT...]
//   transformer-client models [--json] | models load NAME | models unload NAME
//   transformer-client [COMMAND] --help
//
// Without TEXT arguments, texts are read from --input (or stdin), one per
// line. Exit codes: client/exit_codes.h.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client/bench_command.h"
#include "client/command_line.h"
#include "client/connection.h"
#include "client/encode_command.h"
#include "client/exit_codes.h"
#include "client/models_command.h"
#include "client/progress.h"
#include "client/text_input.h"
#include "client/translate_command.h"

// Every command.
ABSL_FLAG(std::string, server, "localhost:50051",
          "gRPC target of transformer-server: host:port, dns:///host:port, "
          "ipv4:a:p,b:p, unix:/path.");
ABSL_FLAG(std::string, lb_policy, "",
          "pick_first | round_robin (spread calls over every address the "
          "target resolves to); empty = gRPC's default, pick_first.");
ABSL_FLAG(bool, tls, false,
          "Use TLS (implied by any --tls_* flag); without --tls_ca the "
          "system's root certificates verify the server.");
ABSL_FLAG(std::string, tls_ca, "", "PEM root certificates for the server.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate, for servers that require one (mutual "
          "TLS); needs --tls_key.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name to check the server's certificate against, instead of the "
          "target's host.");
ABSL_FLAG(int, max_attempts, 5,
          "Attempts per request when the server answers UNAVAILABLE (queue "
          "full, draining): gRPC retries with exponential backoff and jitter "
          "(0.2 s doubling up to 5 s). 1 = no retry; at most 5.");
ABSL_FLAG(int, timeout_s, 300, "Deadline of each request (seconds).");
ABSL_FLAG(int, texts_per_request, 32, "Most texts sent in one request.");
ABSL_FLAG(std::string, input, "",
          "File with one text per line (instead of TEXT arguments or stdin).");
ABSL_FLAG(std::string, output, "", "File to write instead of stdout.");
// translate, encode, bench
ABSL_FLAG(std::string, model, "",
          "The server's model to use (its folder name in the server's "
          "--model_repository; transformer-client models lists them); empty "
          "= routed by --source_language/--target_language, else the "
          "server's default model. Every call also carries the model as gRPC "
          "metadata x-model (this name, or SRC-TGT when routed by languages), "
          "so a proxy can keep each model on the same pods (Envoy RING_HASH "
          "with a hash_policy on the x-model header).");
ABSL_FLAG(std::string, source_language, "",
          "With --target_language: the server picks the model that "
          "translates this pair (ISO 639-1 or 639-3 codes: en = eng), or "
          "pivots through its --pivot_language; sent as x-model SRC-TGT "
          "metadata too.");
ABSL_FLAG(std::string, target_language, "",
          "With --source_language: the language to translate into.");
// translate
ABSL_FLAG(int, beam_size, 0,
          "Beam width, 1 = greedy; 0 = the model's default.");
ABSL_FLAG(int, max_length, 0,
          "Most output tokens (counting the decoder start token); 0 = the "
          "model's default.");
ABSL_FLAG(int, no_repeat_ngram_size, 0,
          "Ban a token that would repeat an n-gram of this size in the "
          "hypothesis (generate's no_repeat_ngram_size); 0 = off.");
ABSL_FLAG(std::optional<double>, repetition_penalty, std::nullopt,
          "Penalize tokens already in the hypothesis (generate's "
          "repetition_penalty, > 0; 1 = off); unset = off.");
ABSL_FLAG(int, num_hypotheses, 0,
          "Hypotheses per text (with --json all are printed); 0 = 1.");
ABSL_FLAG(bool, sample, false,
          "Sample instead of searching (beam_size must be 0 or 1): each token "
          "drawn from softmax(scores / --temperature) over the --top_k "
          "likeliest tokens holding --top_p of the probability; "
          "--num_hypotheses independent samples per text.");
ABSL_FLAG(int, top_k, 0,
          "With --sample: keep the k likeliest tokens; 0 = all.");
ABSL_FLAG(double, top_p, 1.0,
          "With --sample: keep the likeliest tokens holding this share of the "
          "probability, in (0, 1]; 1 = all.");
ABSL_FLAG(double, temperature, 1.0,
          "With --sample: divide the scores by this (> 0) before the "
          "softmax.");
ABSL_FLAG(std::optional<uint64_t>, seed, std::nullopt,
          "With --sample: request k of the run uses seed + k (same seed and "
          "--texts_per_request: same samples); unset = the server picks, and "
          "--json prints each text's seed.");
ABSL_FLAG(std::string, input_format, "",
          "translate: how the server reads each text: text (split into "
          "sentences, whitespace kept), sentence (one sequence, as sent) or "
          "html (markup kept, inline tags carried over). Default: html for a "
          "--document named .html/.htm, else text.");
ABSL_FLAG(std::string, newline_mode, "break",
          "translate: a single newline inside a paragraph ends a sentence "
          "(break) or is a space (space: wrapped text).");
ABSL_FLAG(std::string, document, "",
          "translate: translate this whole file (.txt or .html) as one text "
          "and write its translation as it is, layout kept.");
ABSL_FLAG(bool, json, false,
          "translate: print a JSON line per text (source, translation, "
          "token_ids, score) instead of the plain translation. models: print "
          "the response as one JSON line instead of a table.");
ABSL_FLAG(bool, attention, false,
          "Ask for the cross-attention and print a JSON line per text with "
          "source_tokens, target_tokens, attention (rows [target][source], "
          "each over the source pieces) and alignment (argmax source "
          "position per target piece).");
ABSL_FLAG(std::optional<int>, attention_layer, std::nullopt,
          "Decoder layer of --attention / --heatmap (negative counts from "
          "the end); unset = the last layer.");
ABSL_FLAG(std::string, heatmap, "",
          "Write the attention heatmap of the first text's translation to "
          "this SVG file (source pieces across, target pieces down).");
ABSL_FLAG(int, concurrency, 4, "Requests in flight at once.");
ABSL_FLAG(bool, stream, false,
          "translate: call TranslateStream and print each translation as it "
          "is decoded (greedy and one sample: token by token; beam search: "
          "each text when done), one request at a time, plain text only. "
          "bench: call TranslateStream and report the time to the first "
          "message (time to first token) too.");
// bench
ABSL_FLAG(int, requests, 0, "bench: total requests; 0 = run --duration_s.");
ABSL_FLAG(int, duration_s, 10, "bench: seconds to run when --requests=0.");
ABSL_FLAG(std::string, report_json, "", "bench: also write the figures here.");
ABSL_FLAG(double, repeat_fraction, 0.0,
          "bench: share of requests, in [0, 1), that repeat the texts of an "
          "earlier request (chosen at random); the others take the next "
          "texts in turn.");
ABSL_FLAG(int, paragraph_every, 0,
          "bench: every Nth request sends paragraphs: each text joins 4 "
          "consecutive inputs with a space (a long input with a long "
          "output); 0 = never.");
ABSL_FLAG(double, request_rate, 0.0,
          "bench: open loop: requests arrive at this mean rate (requests/s, "
          "Poisson, seeded) whether or not earlier ones were answered; "
          "latency counts from each arrival; --concurrency threads send "
          "(give more than rate x latency). 0 = closed loop.");
ABSL_FLAG(std::string, models, "",
          "bench: comma-separated model names; request i goes to the "
          "(i mod N)-th (two models: consecutive requests alternate), with "
          "its x-model metadata, and the report gives each model's requests, "
          "p50 and p99 under \"models\". Instead of --model.");
// encode
ABSL_FLAG(std::string, pooling, "mean",
          "mean | first | tokens (every token's vector).");
ABSL_FLAG(bool, normalize, false, "L2-normalize each vector.");

namespace ts::client {
namespace {

// --input_format: text, sentence or html; empty: html for a --document
// named .html/.htm, else text.
absl::Status ParseInputFormat(std::string name,
                              const std::string& document_path,
                              transformer::v1::InputFormat* format) {
  if (name.empty()) {
    name = absl::EndsWithIgnoreCase(document_path, ".html") ||
                   absl::EndsWithIgnoreCase(document_path, ".htm")
               ? "html"
               : "text";
  }
  if (name == "text") {
    *format = transformer::v1::INPUT_FORMAT_TEXT;
  } else if (name == "sentence") {
    *format = transformer::v1::INPUT_FORMAT_SENTENCE;
  } else if (name == "html") {
    *format = transformer::v1::INPUT_FORMAT_HTML;
  } else {
    return absl::InvalidArgumentError(
        "--input_format must be text, sentence or html, got \"" + name + "\"");
  }
  return absl::OkStatus();
}

int Fail(int code, const std::string& message) {
  std::cerr << "transformer-client: " << message << std::endl;
  return code;
}

ConnectionOptions ConnectionOptionsFromFlags() {
  ConnectionOptions options;
  options.target = absl::GetFlag(FLAGS_server);
  options.lb_policy = absl::GetFlag(FLAGS_lb_policy);
  options.tls = absl::GetFlag(FLAGS_tls);
  options.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  options.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  return options;
}

// --model, --source_language, --target_language.
absl::StatusOr<ModelSelection> ModelSelectionFromFlags() {
  ModelSelection selection{
      .model = absl::GetFlag(FLAGS_model),
      .source_language = absl::GetFlag(FLAGS_source_language),
      .target_language = absl::GetFlag(FLAGS_target_language)};
  if (absl::Status status = ValidateModelSelection(selection); !status.ok()) {
    return status;
  }
  return selection;
}

int Run(int argc, char** argv) {
  absl::StatusOr<CommandLine> command_line = ParseCommandLine(argc, argv);
  if (!command_line.ok()) {
    return Fail(kExitUsageError,
                std::string(command_line.status().message()) +
                    "\nRun 'transformer-client --help' for usage.");
  }
  if (command_line->help) {
    std::cout << Usage(command_line->command);
    return kExitOk;
  }
  const std::string& command = command_line->command;

  if (command == "models") {
    if (!absl::GetFlag(FLAGS_input).empty()) {
      return Fail(kExitUsageError, "models reads no --input");
    }
    const std::string output_path = absl::GetFlag(FLAGS_output);
    std::ofstream output_file;
    if (!output_path.empty()) {
      output_file.open(output_path, std::ios::binary | std::ios::trunc);
      if (!output_file) {
        return Fail(kExitIoError,
                    "cannot write --output \"" + output_path + "\"");
      }
    }
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        Connect(ConnectionOptionsFromFlags());
    if (!channel.ok()) {
      return Fail(
          absl::IsNotFound(channel.status()) ? kExitIoError : kExitUsageError,
          std::string(channel.status().message()));
    }
    ModelsCommandOptions options;
    options.json = absl::GetFlag(FLAGS_json);
    options.timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_s));
    return RunModels(options, *channel, command_line->texts,
                     output_path.empty() ? std::cout : output_file, std::cerr);
  }
  absl::StatusOr<ModelSelection> model = ModelSelectionFromFlags();
  if (!model.ok()) {
    return Fail(kExitUsageError, std::string(model.status().message()));
  }

  const std::string input_path = absl::GetFlag(FLAGS_input);
  if (!input_path.empty() && !command_line->texts.empty()) {
    return Fail(kExitUsageError, "give TEXT arguments or --input, not both");
  }
  std::ifstream input_file;
  if (!input_path.empty()) {
    input_file.open(input_path);
    if (!input_file) {
      return Fail(kExitIoError, "cannot read --input \"" + input_path + "\"");
    }
  }
  const std::string document_path = absl::GetFlag(FLAGS_document);
  if (!document_path.empty() &&
      (!input_path.empty() || !command_line->texts.empty() ||
       command != "translate")) {
    return Fail(kExitUsageError,
                "--document is for translate, without TEXT or --input");
  }
  std::vector<std::string> texts;
  if (!document_path.empty()) {
    std::ifstream document(document_path, std::ios::binary);
    if (!document) {
      return Fail(kExitIoError,
                  "cannot read --document \"" + document_path + "\"");
    }
    texts.emplace_back(std::istreambuf_iterator<char>(document),
                       std::istreambuf_iterator<char>());
  } else {
    texts = ReadTexts(command_line->texts,
                      input_path.empty() ? std::cin : input_file);
  }
  if (input_file.bad()) {
    return Fail(kExitIoError, "error reading --input \"" + input_path + "\"");
  }

  const std::string output_path = absl::GetFlag(FLAGS_output);
  std::ofstream output_file;
  if (!output_path.empty()) {
    output_file.open(output_path, std::ios::binary | std::ios::trunc);
    if (!output_file) {
      return Fail(kExitIoError,
                  "cannot write --output \"" + output_path + "\"");
    }
  }
  std::ostream& out = output_path.empty() ? std::cout : output_file;

  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      Connect(ConnectionOptionsFromFlags());
  if (!channel.ok()) {
    return Fail(
        absl::IsNotFound(channel.status()) ? kExitIoError : kExitUsageError,
        std::string(channel.status().message()));
  }

  // Progress only for --input: a run over a file is the long one, and
  // stderr of a one-line call stays empty.
  Progress progress(Progress::ModeFor(!input_path.empty() && command != "bench",
                                      STDERR_FILENO),
                    command == "translate" ? "translated" : "encoded",
                    texts.size(), &std::cerr);
  const absl::Duration timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_s));
  int exit_code = kExitOk;
  if (command == "bench") {
    if (texts.empty()) return Fail(kExitUsageError, "bench needs texts");
    BenchCommandOptions options;
    options.concurrency = absl::GetFlag(FLAGS_concurrency);
    options.requests = absl::GetFlag(FLAGS_requests);
    options.duration = absl::Seconds(absl::GetFlag(FLAGS_duration_s));
    options.texts_per_request = absl::GetFlag(FLAGS_texts_per_request);
    options.beam_size = absl::GetFlag(FLAGS_beam_size);
    options.max_length = absl::GetFlag(FLAGS_max_length);
    options.timeout = timeout;
    options.report_json = absl::GetFlag(FLAGS_report_json);
    options.repeat_fraction = absl::GetFlag(FLAGS_repeat_fraction);
    options.stream = absl::GetFlag(FLAGS_stream);
    const std::string models = absl::GetFlag(FLAGS_models);
    if (!models.empty()) {
      if (!model->model.empty() || !model->source_language.empty()) {
        return Fail(kExitUsageError,
                    "give --models, or --model / --source_language and "
                    "--target_language, not both");
      }
      for (absl::string_view name :
           absl::StrSplit(models, ',', absl::SkipWhitespace())) {
        ModelSelection selection;
        selection.model = std::string(name);
        options.models.push_back(std::move(selection));
      }
    } else if (!model->RoutingKey().empty()) {
      options.models.push_back(*model);
    }
    if (!(options.repeat_fraction >= 0.0 && options.repeat_fraction < 1.0)) {
      return Fail(kExitUsageError, "--repeat_fraction must be in [0, 1)");
    }
    if (absl::Status status = ParseInputFormat(
            absl::GetFlag(FLAGS_input_format), "", &options.input_format);
        !status.ok()) {
      return Fail(kExitUsageError, std::string(status.message()));
    }
    options.paragraph_every = absl::GetFlag(FLAGS_paragraph_every);
    if (options.paragraph_every < 0) {
      return Fail(kExitUsageError, "--paragraph_every must be >= 0");
    }
    options.request_rate = absl::GetFlag(FLAGS_request_rate);
    // The arrival times are drawn up front: bound the rate so that they fit.
    constexpr double kMaxRequestRate = 1e5;
    if (!(options.request_rate >= 0.0 &&
          options.request_rate <= kMaxRequestRate)) {
      return Fail(kExitUsageError,
                  "--request_rate must be in [0, 100000] requests/s");
    }
    exit_code = RunBench(options, *channel, texts, out, std::cerr);
  } else if (command == "translate") {
    TranslateCommandOptions options;
    options.model = *model;
    options.beam_size = absl::GetFlag(FLAGS_beam_size);
    options.max_length = absl::GetFlag(FLAGS_max_length);
    options.num_hypotheses = absl::GetFlag(FLAGS_num_hypotheses);
    options.no_repeat_ngram_size = absl::GetFlag(FLAGS_no_repeat_ngram_size);
    if (const std::optional<double> penalty =
            absl::GetFlag(FLAGS_repetition_penalty);
        penalty.has_value()) {
      options.repetition_penalty = static_cast<float>(*penalty);
    }
    options.sample = absl::GetFlag(FLAGS_sample);
    options.top_k = absl::GetFlag(FLAGS_top_k);
    options.top_p = static_cast<float>(absl::GetFlag(FLAGS_top_p));
    options.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
    options.seed = absl::GetFlag(FLAGS_seed);
    options.document = !document_path.empty();
    if (absl::Status status =
            ParseInputFormat(absl::GetFlag(FLAGS_input_format), document_path,
                             &options.input_format);
        !status.ok()) {
      return Fail(kExitUsageError, std::string(status.message()));
    }
    const std::string newline_mode = absl::GetFlag(FLAGS_newline_mode);
    if (newline_mode == "break") {
      options.newline_mode = transformer::v1::NEWLINE_MODE_BREAK;
    } else if (newline_mode == "space") {
      options.newline_mode = transformer::v1::NEWLINE_MODE_SPACE;
    } else {
      return Fail(kExitUsageError,
                  "--newline_mode must be break or space, "
                  "got \"" +
                      newline_mode + "\"");
    }
    options.json = absl::GetFlag(FLAGS_json);
    options.attention = absl::GetFlag(FLAGS_attention);
    options.attention_layer = absl::GetFlag(FLAGS_attention_layer);
    options.heatmap = absl::GetFlag(FLAGS_heatmap);
    options.texts_per_request = absl::GetFlag(FLAGS_texts_per_request);
    options.concurrency = absl::GetFlag(FLAGS_concurrency);
    options.stream = absl::GetFlag(FLAGS_stream);
    options.timeout = timeout;
    if (options.stream &&
        (options.json || options.attention || !options.heatmap.empty())) {
      return Fail(kExitUsageError,
                  "--stream prints plain text: not with --json, --attention "
                  "or --heatmap");
    }
    exit_code =
        RunTranslate(options, *channel, texts, out, std::cerr, &progress);
  } else {
    EncodeCommandOptions options;
    options.model = *model;
    options.pooling = absl::GetFlag(FLAGS_pooling);
    options.normalize = absl::GetFlag(FLAGS_normalize);
    options.texts_per_request = absl::GetFlag(FLAGS_texts_per_request);
    options.timeout = timeout;
    exit_code = RunEncode(options, *channel, texts, out, std::cerr, &progress);
  }
  progress.Finish();
  if (output_file.is_open()) {
    output_file.close();
    if (!output_file && exit_code == kExitOk) {
      return Fail(kExitIoError,
                  "cannot write --output \"" + output_path + "\"");
    }
  }
  return exit_code;
}

}  // namespace
}  // namespace ts::client

int main(int argc, char** argv) { return ts::client::Run(argc, argv); }
