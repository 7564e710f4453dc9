#include "common/pem_file.h"

#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ts::common {

absl::StatusOr<std::string> ReadPemFile(absl::string_view flag,
                                        const std::string& path) {
  // stdio, not ifstream: libstdc++ throws reading a directory.
  std::FILE* file = std::fopen(path.c_str(), "rb");
  std::string contents;
  bool read_error = file == nullptr;
  if (file != nullptr) {
    char buffer[4096];
    size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
      contents.append(buffer, n);
    }
    read_error = std::ferror(file) != 0;
    std::fclose(file);
  }
  if (read_error || contents.empty()) {
    return absl::NotFoundError(
        absl::StrCat("--", flag, ": cannot read PEM file \"", path, "\""));
  }
  return contents;
}

}  // namespace ts::common
