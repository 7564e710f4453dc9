// Where the client's texts come from: command-line arguments or stdin.
#ifndef TRANSFORMER_SERVING_CLIENT_TEXT_INPUT_H_
#define TRANSFORMER_SERVING_CLIENT_TEXT_INPUT_H_

#include <istream>
#include <string>
#include <vector>

namespace ts::client {

// `args` if not empty (each sent as is), else one text per line of `in`
// (a trailing '\r' removed).
std::vector<std::string> ReadTexts(const std::vector<std::string>& args,
                                   std::istream& in);

}  // namespace ts::client

#endif  // TRANSFORMER_SERVING_CLIENT_TEXT_INPUT_H_
