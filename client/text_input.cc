#include "client/text_input.h"

namespace ts::client {

std::vector<std::string> ReadTexts(const std::vector<std::string>& args,
                                   std::istream& in) {
  if (!args.empty()) return args;
  std::vector<std::string> texts;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    texts.push_back(std::move(line));
  }
  return texts;
}

}  // namespace ts::client
