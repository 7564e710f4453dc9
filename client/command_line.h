// The client's command line: `transformer-client COMMAND [--flag=v] [TEXT...]`
// and the usage text of each command.
//
// Not absl::ParseCommandLine: it exits 1 on an unknown flag (our code for an
// RPC error, where a usage error is 2), and it does not know which flags
// belong to which command.
#ifndef TRANSFORMER_SERVING_CLIENT_COMMAND_LINE_H_
#define TRANSFORMER_SERVING_CLIENT_COMMAND_LINE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ts::client {

struct CommandLine {
  // "translate", "encode", "bench", "models"; "" with --help.
  std::string command;
  // The arguments after the command (for models: its subcommand and NAME).
  std::vector<std::string> texts;
  bool help = false;  // --help / -h: print Usage(command)
};

// Sets the absl flags named on the command line (--name=value, --name value,
// --bool, --nobool; "--" ends the flags) and returns the rest. Errors:
// InvalidArgument for a missing or unknown command, an unknown flag, a flag
// that is not one of the command's, or a value that does not parse.
absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv);

// Usage of `command` with its flags, defaults and help, or of the whole
// client (commands, exit codes) for "".
std::string Usage(const std::string& command);

}  // namespace ts::client

#endif  // TRANSFORMER_SERVING_CLIENT_COMMAND_LINE_H_
