#include "server/libretranslate.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/language_codes.h"

namespace ts::server {
namespace {

absl::Status Missing(const char* name) {
  return absl::InvalidArgumentError(
      absl::StrCat("Invalid request: missing ", name, " parameter"));
}

// A required non-empty string field (source, target).
absl::StatusOr<std::string> RequiredString(const nlohmann::json& body,
                                           const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return Missing(name);
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Invalid request: ", name, " parameter must be a string"));
  }
  std::string value = it->get<std::string>();
  if (value.empty()) return Missing(name);
  return value;
}

// q: a string, or a list of strings; Python's `not q` (absent, null, "" or
// []) is LibreTranslate's "missing".
absl::Status ReadQ(const nlohmann::json& body, LibreTranslateRequest* request) {
  auto it = body.find("q");
  if (it == body.end() || it->is_null()) return Missing("q");
  const absl::Status ill_typed = absl::InvalidArgumentError(
      "Invalid request: q parameter must be a string or a list of strings");
  if (it->is_string()) {
    request->texts.push_back(it->get<std::string>());
    if (request->texts.back().empty()) return Missing("q");
    return absl::OkStatus();
  }
  if (!it->is_array()) return ill_typed;
  if (it->empty()) return Missing("q");
  request->q_is_list = true;
  for (const nlohmann::json& text : *it) {
    if (!text.is_string()) return ill_typed;
    request->texts.push_back(text.get<std::string>());
  }
  return absl::OkStatus();
}

// alternatives: LibreTranslate's max(0, int(alternatives)), which takes an
// integer, an integral float or a string of digits.
absl::StatusOr<int> ReadAlternatives(const nlohmann::json& body,
                                     int max_alternatives) {
  auto it = body.find("alternatives");
  if (it == body.end() || it->is_null()) return 0;
  const absl::Status not_a_number = absl::InvalidArgumentError(
      "Invalid request: alternatives parameter is not a number");
  int64_t value = 0;
  if (it->is_number_integer()) {
    value = std::clamp<int64_t>(it->get<int64_t>(), -1, INT32_MAX);
  } else if (it->is_number_float()) {
    const double number = it->get<double>();
    if (!std::isfinite(number)) return not_a_number;
    value = static_cast<int64_t>(std::clamp<double>(number, -1, INT32_MAX));
  } else if (it->is_string()) {
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(it->get<std::string>()),
                          &value)) {
      return not_a_number;
    }
  } else {
    return not_a_number;
  }
  value = std::max<int64_t>(value, 0);
  if (value > max_alternatives) {
    return absl::InvalidArgumentError(
        absl::StrCat("Invalid request: alternatives parameter must be <= ",
                     max_alternatives));
  }
  return static_cast<int>(value);
}

nlohmann::json DetectedJson(const DetectedLanguage& detected) {
  return {{"confidence", detected.confidence}, {"language", detected.language}};
}

std::string HypothesisText(const transformer::v1::TranslateResponse& response,
                           int text, int hypothesis) {
  if (text >= response.translations_size()) return "";
  const transformer::v1::Translation& translation = response.translations(text);
  if (hypothesis >= translation.hypotheses_size()) return "";
  return translation.hypotheses(hypothesis).text();
}

// Hypotheses 1.. of text `text` that differ from the translation and from
// each other, at most `count` (LibreTranslate's filter_unique).
nlohmann::json Alternatives(const transformer::v1::TranslateResponse& response,
                            int text, int count) {
  nlohmann::json alternatives = nlohmann::json::array();
  if (text >= response.translations_size()) return alternatives;
  const transformer::v1::Translation& translation = response.translations(text);
  std::set<std::string> seen = {HypothesisText(response, text, 0)};
  for (int h = 1; h < translation.hypotheses_size() &&
                  static_cast<int>(alternatives.size()) < count;
       ++h) {
    const std::string& candidate = translation.hypotheses(h).text();
    if (seen.insert(candidate).second) alternatives.push_back(candidate);
  }
  return alternatives;
}

}  // namespace

absl::StatusOr<LibreTranslateRequest> ParseLibreTranslateRequest(
    const nlohmann::json& body, int max_alternatives) {
  if (!body.is_object()) {
    return absl::InvalidArgumentError("Invalid JSON format");
  }
  LibreTranslateRequest request;
  if (absl::Status status = ReadQ(body, &request); !status.ok()) {
    return status;
  }
  absl::StatusOr<std::string> source = RequiredString(body, "source");
  if (!source.ok()) return source.status();
  request.source = *std::move(source);
  absl::StatusOr<std::string> target = RequiredString(body, "target");
  if (!target.ok()) return target.status();
  request.target = *std::move(target);
  if (auto it = body.find("format"); it != body.end() && !it->is_null()) {
    const std::string format =
        it->is_string() ? it->get<std::string>() : it->dump();
    if (format == "html") {
      request.format = transformer::v1::INPUT_FORMAT_HTML;
    } else if (format != "text" && !format.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(format, " format is not supported"));
    }
  }
  absl::StatusOr<int> alternatives = ReadAlternatives(body, max_alternatives);
  if (!alternatives.ok()) return alternatives.status();
  request.alternatives = *alternatives;
  return request;
}

nlohmann::json LibreTranslateResponse(
    const LibreTranslateRequest& request,
    const transformer::v1::TranslateResponse& response,
    const std::vector<DetectedLanguage>* detected) {
  const int texts = static_cast<int>(request.texts.size());
  nlohmann::json result = nlohmann::json::object();
  if (!request.q_is_list) {
    result["translatedText"] = HypothesisText(response, 0, 0);
    if (request.alternatives > 0) {
      result["alternatives"] = Alternatives(response, 0, request.alternatives);
    }
    if (detected != nullptr && !detected->empty()) {
      result["detectedLanguage"] = DetectedJson(detected->front());
    }
    return result;
  }
  nlohmann::json translated = nlohmann::json::array();
  for (int i = 0; i < texts; ++i) {
    translated.push_back(HypothesisText(response, i, 0));
  }
  result["translatedText"] = std::move(translated);
  if (request.alternatives > 0) {
    nlohmann::json alternatives = nlohmann::json::array();
    for (int i = 0; i < texts; ++i) {
      alternatives.push_back(Alternatives(response, i, request.alternatives));
    }
    result["alternatives"] = std::move(alternatives);
  }
  if (detected != nullptr && !detected->empty()) {
    nlohmann::json languages = nlohmann::json::array();
    for (int i = 0; i < texts; ++i) {
      // One for all texts, or one per text.
      const size_t d = std::min<size_t>(i, detected->size() - 1);
      languages.push_back(DetectedJson((*detected)[d]));
    }
    result["detectedLanguage"] = std::move(languages);
  }
  return result;
}

nlohmann::json LanguagesJson(
    const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::map<std::string, std::set<std::string>> targets;
  for (const auto& [source, target] : pairs) {
    targets[source].insert(target);
    targets.try_emplace(target);
  }
  nlohmann::json languages = nlohmann::json::array();
  for (const auto& [code, codes] : targets) {
    languages.push_back({{"code", code},
                         {"name", LanguageName(code)},
                         {"targets", nlohmann::json(codes)}});
  }
  return languages;
}

nlohmann::json DetectJson(const std::vector<DetectedLanguage>& detected) {
  nlohmann::json languages = nlohmann::json::array();
  for (const DetectedLanguage& language : detected) {
    languages.push_back(DetectedJson(language));
  }
  return languages;
}

nlohmann::json LibreTranslateError(std::string_view message) {
  return {{"error", std::string(message)}};
}

int LibreTranslateHttpStatus(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return 403;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    default:
      return 500;
  }
}

}  // namespace ts::server
