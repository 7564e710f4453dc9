// transformer-client: command-line client of transformer-server.
//
//   transformer-client translate --server=HOST:PORT [TEXT...]
//   transformer-client encode --server=HOST:PORT [--pooling=mean] [TEXT...]
//
// Without TEXT arguments, texts are read from stdin, one per line.
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "client/encode_command.h"
#include "client/text_input.h"
#include "client/translate_command.h"

ABSL_FLAG(std::string, server, "localhost:50051",
          "gRPC target of transformer-server (any gRPC target string).");
ABSL_FLAG(int, timeout_s, 300, "Deadline of each request (seconds).");
ABSL_FLAG(int, texts_per_request, 32, "Most texts sent in one request.");
// translate
ABSL_FLAG(int, beam_size, 0,
          "translate: beam width, 1 = greedy; 0 = the model's default.");
ABSL_FLAG(int, max_length, 0,
          "translate: most output tokens (counting the decoder start token); "
          "0 = the model's default.");
ABSL_FLAG(int, num_hypotheses, 0,
          "translate: hypotheses per text (with --json all are printed); "
          "0 = 1.");
ABSL_FLAG(bool, json, false,
          "translate: print a JSON line per text (source, translation, "
          "token_ids, score) instead of the plain translation.");
ABSL_FLAG(int, concurrency, 4, "translate: requests in flight at once.");
// encode
ABSL_FLAG(std::string, pooling, "mean",
          "encode: mean | first | tokens (every token's vector).");
ABSL_FLAG(bool, normalize, false, "encode: L2-normalize each vector.");

namespace {

constexpr char kUsage[] =
    "Client of transformer-server.\n"
    "  transformer-client translate --server=HOST:PORT [--beam_size=N] "
    "[--max_length=N] [--json] [--texts_per_request=N] [--concurrency=N] "
    "[TEXT...]\n"
    "  transformer-client encode --server=HOST:PORT "
    "[--pooling=mean|first|tokens] [--normalize] [TEXT...]\n"
    "Without TEXT arguments, reads one text per line from stdin. Prints one "
    "line per text, in input order.";

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() < 2) {
    std::cerr << "transformer-client: missing command (translate or encode)\n"
              << kUsage << std::endl;
    return 2;
  }
  const std::string command = positional[1];
  if (command != "translate" && command != "encode") {
    std::cerr << "transformer-client: unknown command \"" << command
              << "\" (translate or encode)" << std::endl;
    return 2;
  }
  const std::vector<std::string> args(positional.begin() + 2, positional.end());
  const std::vector<std::string> texts = ts::client::ReadTexts(args, std::cin);
  const absl::Duration timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_s));

  if (command == "translate") {
    ts::client::TranslateCommandOptions options;
    options.server = absl::GetFlag(FLAGS_server);
    options.beam_size = absl::GetFlag(FLAGS_beam_size);
    options.max_length = absl::GetFlag(FLAGS_max_length);
    options.num_hypotheses = absl::GetFlag(FLAGS_num_hypotheses);
    options.json = absl::GetFlag(FLAGS_json);
    options.texts_per_request = absl::GetFlag(FLAGS_texts_per_request);
    options.concurrency = absl::GetFlag(FLAGS_concurrency);
    options.timeout = timeout;
    return ts::client::RunTranslate(options, texts, std::cout, std::cerr);
  }
  if (command == "encode") {
    ts::client::EncodeCommandOptions options;
    options.server = absl::GetFlag(FLAGS_server);
    options.pooling = absl::GetFlag(FLAGS_pooling);
    options.normalize = absl::GetFlag(FLAGS_normalize);
    options.texts_per_request = absl::GetFlag(FLAGS_texts_per_request);
    options.timeout = timeout;
    return ts::client::RunEncode(options, texts, std::cout, std::cerr);
  }
  return 2;  // unreachable: the command was checked above
}
