// Exit codes of transformer-client, as its usage documents them: scripts
// tell a bad invocation from a server problem from a file problem.
#ifndef TRANSFORMER_SERVING_CLIENT_EXIT_CODES_H_
#define TRANSFORMER_SERVING_CLIENT_EXIT_CODES_H_

namespace ts::client {

enum ExitCode : int {
  kExitOk = 0,
  kExitRpcError = 1,    // a call failed (status on stderr)
  kExitUsageError = 2,  // bad command, flag or flag value
  kExitIoError = 3,     // a file cannot be read or written
};

}  // namespace ts::client

#endif  // TRANSFORMER_SERVING_CLIENT_EXIT_CODES_H_
