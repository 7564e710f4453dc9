// Reads the golden files of the demo model (JSON lines) for the core tests.
#ifndef TRANSFORMER_SERVING_TESTS_CORE_JSON_LINES_H_
#define TRANSFORMER_SERVING_TESTS_CORE_JSON_LINES_H_

#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ts::core {

// One JSON value per non-empty line of `path`; a missing file fails the
// calling test (and yields no lines).
inline std::vector<nlohmann::json> ReadJsonLines(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::vector<nlohmann::json> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_TESTS_CORE_JSON_LINES_H_
