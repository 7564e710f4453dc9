// The JSON of LibreTranslate's HTTP API (POST /translate, POST /detect,
// GET /languages), so LibreTranslate's own clients can use this server. Pure
// conversions between its JSON and our types; the gateway does the routing
// and the translating.
//
// Followed: LibreTranslate's libretranslate/app.py (its /translate, /detect
// and /languages handlers and their error messages) and the API usage guide
// (docs.libretranslate.com/guides/api_usage): "translatedText" is a string
// for a string q and a list for a list q; "alternatives" only when asked for
// (a list, or a list per text); "detectedLanguage" ({"confidence": 0..100,
// "language": code}, one per text for a list q) only when source was "auto";
// errors are {"error": message} with HTTP 400, 403, 429 or 500.
#ifndef TRANSFORMER_SERVING_SERVER_LIBRETRANSLATE_H_
#define TRANSFORMER_SERVING_SERVER_LIBRETRANSLATE_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/language_detector.h"
#include "transformer/v1/transformer_service.pb.h"

namespace ts::server {

// Our bound on "alternatives" when the caller names none. Each alternative
// is one more beam hypothesis (num_hypotheses = 1 + alternatives), so a
// caller may pass up to max_beam_size - 1 instead. LibreTranslate's own bound
// is its --alternatives-limit option.
inline constexpr int kDefaultMaxAlternatives = 3;

// A POST /translate body.
struct LibreTranslateRequest {
  std::vector<std::string> texts;  // q: one text, or the list's texts
  bool q_is_list = false;          // q was a list: answer with lists
  std::string source;              // as sent (not canonicalized); may be "auto"
  std::string target;              // as sent (not canonicalized)
  // format "text" (the default) -> INPUT_FORMAT_TEXT, "html" ->
  // INPUT_FORMAT_HTML.
  transformer::v1::InputFormat format = transformer::v1::INPUT_FORMAT_TEXT;
  int alternatives = 0;  // 0..max_alternatives
};

// Reads a /translate JSON body. api_key and unknown fields are ignored.
// InvalidArgument, with LibreTranslate's message where it has one:
//   body not an object           "Invalid JSON format"
//   q absent, "", [] or null     "Invalid request: missing q parameter"
//   q not a string or strings    "Invalid request: q parameter must be a
//                                 string or a list of strings"
//   source/target absent or ""   "Invalid request: missing source parameter"
//   source/target not a string   "Invalid request: source parameter must be
//                                 a string"
//   format not "text"/"html"     "<format> format is not supported"
//   alternatives not an integer  "Invalid request: alternatives parameter is
//                                 not a number"
//   alternatives > max           "Invalid request: alternatives parameter
//                                 must be <= <max>"
// As LibreTranslate does (max(0, int(alternatives))), a negative
// alternatives is 0, and a string of digits ("2", as HTML forms send it) is
// a number.
absl::StatusOr<LibreTranslateRequest> ParseLibreTranslateRequest(
    const nlohmann::json& body, int max_alternatives = kDefaultMaxAlternatives);

// The /translate answer for `request` from `response` (one Translation per
// text, in order; asked with num_hypotheses = 1 + request.alternatives):
// translatedText is each Translation's first hypothesis; alternatives (only
// when request.alternatives > 0) are hypotheses 1.. that differ from it and
// from each other, at most request.alternatives, as LibreTranslate's
// filter_unique. `detected` is nullptr when the source was given; when it was
// "auto", the language each text was translated from: one per text, or one
// for all texts (LibreTranslate detects once per request and repeats it). A
// missing translation or hypothesis gives "".
nlohmann::json LibreTranslateResponse(
    const LibreTranslateRequest& request,
    const transformer::v1::TranslateResponse& response,
    const std::vector<DetectedLanguage>* detected);

// GET /languages from the (source, target) pairs of canonical codes the
// server translates, directly or through a pivot: [{"code", "name",
// "targets"}], one entry per language of any pair (a language that is only a
// target has "targets": [], as LibreTranslate lists every installed
// language), sorted by code, targets sorted and unique; "name" is
// LanguageName(code).
nlohmann::json LanguagesJson(
    const std::vector<std::pair<std::string, std::string>>& pairs);

// POST /detect: [{"confidence": 0..100, "language": code}], best first.
nlohmann::json DetectJson(const std::vector<DetectedLanguage>& detected);

// {"error": message}, LibreTranslate's error body.
nlohmann::json LibreTranslateError(std::string_view message);

// The HTTP status LibreTranslate answers an error with: 400 for a bad
// request (InvalidArgument, NotFound: an unsupported language,
// FailedPrecondition, OutOfRange), 403 (PermissionDenied, Unauthenticated),
// 429 (ResourceExhausted), else 500. LibreTranslate uses no other codes.
int LibreTranslateHttpStatus(absl::StatusCode code);

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_LIBRETRANSLATE_H_
