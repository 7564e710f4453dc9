// Reading the PEM files named by the TLS flags of the server and the client.
#ifndef TRANSFORMER_SERVING_COMMON_PEM_FILE_H_
#define TRANSFORMER_SERVING_COMMON_PEM_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ts::common {

// The whole file at `path` (gRPC takes PEM contents, not paths). Errors:
// NotFound naming --`flag` and the path for a missing, unreadable or empty
// file or a directory: an error at start-up rather than a failed TLS
// handshake later.
absl::StatusOr<std::string> ReadPemFile(absl::string_view flag,
                                        const std::string& path);

}  // namespace ts::common

#endif  // TRANSFORMER_SERVING_COMMON_PEM_FILE_H_
