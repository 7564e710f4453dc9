// LibreTranslate's JSON shapes, written out by hand from its app.py and API
// guide: /translate with a string or a list q, alternatives, source "auto",
// its error messages; /languages; /detect.
#include "server/libretranslate.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ts::server {
namespace {

using nlohmann::json;
using transformer::v1::TranslateResponse;

// A response with one Translation per entry, hypotheses best first.
TranslateResponse Response(const std::vector<std::vector<std::string>>& texts) {
  TranslateResponse response;
  for (const std::vector<std::string>& hypotheses : texts) {
    transformer::v1::Translation* translation = response.add_translations();
    for (const std::string& text : hypotheses) {
      translation->add_hypotheses()->set_text(text);
    }
  }
  return response;
}

TEST(ParseLibreTranslateRequestTest, StringQWithDefaults) {
  const absl::StatusOr<LibreTranslateRequest> request =
      ParseLibreTranslateRequest(json::parse(
          R"({"q": "Hello!", "source": "en", "target": "de", "api_key": "x"})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->texts, std::vector<std::string>{"Hello!"});
  EXPECT_FALSE(request->q_is_list);
  EXPECT_EQ(request->source, "en");
  EXPECT_EQ(request->target, "de");
  EXPECT_EQ(request->format, transformer::v1::INPUT_FORMAT_TEXT);
  EXPECT_EQ(request->alternatives, 0);
}

TEST(ParseLibreTranslateRequestTest, ListQHtmlAlternativesAuto) {
  const absl::StatusOr<LibreTranslateRequest> request =
      ParseLibreTranslateRequest(
          json::parse(R"({"q": ["<p>Hello</p>", "World"], "source": "auto",
                          "target": "fr", "format": "html",
                          "alternatives": 2})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->texts,
            (std::vector<std::string>{"<p>Hello</p>", "World"}));
  EXPECT_TRUE(request->q_is_list);
  EXPECT_EQ(request->source, "auto");
  EXPECT_EQ(request->format, transformer::v1::INPUT_FORMAT_HTML);
  EXPECT_EQ(request->alternatives, 2);
}

TEST(ParseLibreTranslateRequestTest, AlternativesAsLibreTranslateReadsThem) {
  // max(0, int(alternatives)): numbers, integral floats, digit strings;
  // negative is 0.
  const std::vector<std::pair<std::string, int>> table = {
      {"0", 0}, {"3", 3}, {"2.0", 2}, {"\"1\"", 1}, {"-4", 0}, {"null", 0},
  };
  for (const auto& [value, expected] : table) {
    const absl::StatusOr<LibreTranslateRequest> request =
        ParseLibreTranslateRequest(json::parse(
            R"({"q": "a", "source": "en", "target": "de", "alternatives": )" +
            value + "}"));
    ASSERT_TRUE(request.ok()) << value << ": " << request.status();
    EXPECT_EQ(request->alternatives, expected) << value;
  }
}

TEST(ParseLibreTranslateRequestTest, ErrorsWithLibreTranslateMessages) {
  const std::vector<std::pair<std::string, std::string>> table = {
      {R"(["q"])", "Invalid JSON format"},
      {R"({"source": "en", "target": "de"})",
       "Invalid request: missing q parameter"},
      {R"({"q": "", "source": "en", "target": "de"})",
       "Invalid request: missing q parameter"},
      {R"({"q": [], "source": "en", "target": "de"})",
       "Invalid request: missing q parameter"},
      {R"({"q": 5, "source": "en", "target": "de"})",
       "Invalid request: q parameter must be a string or a list of strings"},
      {R"({"q": ["a", 5], "source": "en", "target": "de"})",
       "Invalid request: q parameter must be a string or a list of strings"},
      {R"({"q": "a", "target": "de"})",
       "Invalid request: missing source parameter"},
      {R"({"q": "a", "source": "", "target": "de"})",
       "Invalid request: missing source parameter"},
      {R"({"q": "a", "source": "en"})",
       "Invalid request: missing target parameter"},
      {R"({"q": "a", "source": "en", "target": 7})",
       "Invalid request: target parameter must be a string"},
      {R"({"q": "a", "source": "en", "target": "de", "format": "markdown"})",
       "markdown format is not supported"},
      {R"({"q": "a", "source": "en", "target": "de", "alternatives": "x"})",
       "Invalid request: alternatives parameter is not a number"},
      {R"({"q": "a", "source": "en", "target": "de", "alternatives": [1]})",
       "Invalid request: alternatives parameter is not a number"},
      {R"({"q": "a", "source": "en", "target": "de", "alternatives": 4})",
       "Invalid request: alternatives parameter must be <= 3"},
  };
  for (const auto& [body, message] : table) {
    const absl::StatusOr<LibreTranslateRequest> request =
        ParseLibreTranslateRequest(json::parse(body));
    ASSERT_FALSE(request.ok()) << body;
    EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(request.status().message(), message) << body;
  }
}

TEST(ParseLibreTranslateRequestTest, AlternativesBoundIsTheCallers) {
  const json body = json::parse(
      R"({"q": "a", "source": "en", "target": "de", "alternatives": 7})");
  EXPECT_TRUE(ParseLibreTranslateRequest(body, 15).ok());
  EXPECT_EQ(ParseLibreTranslateRequest(body, 6).status().message(),
            "Invalid request: alternatives parameter must be <= 6");
}

TEST(LibreTranslateResponseTest, StringQIsJustTranslatedText) {
  LibreTranslateRequest request;
  request.texts = {"Hello!"};
  EXPECT_EQ(LibreTranslateResponse(request, Response({{"Hallo!"}}), nullptr),
            json::parse(R"({"translatedText": "Hallo!"})"));
}

TEST(LibreTranslateResponseTest, StringQWithAlternativesAndAuto) {
  LibreTranslateRequest request;
  request.texts = {"Bonjour!"};
  request.source = "auto";
  request.alternatives = 3;
  const std::vector<DetectedLanguage> detected = {{"fr", 90.0, true}};
  // Hypothesis 2 repeats hypothesis 0: LibreTranslate's filter_unique drops
  // it, leaving fewer alternatives than asked.
  EXPECT_EQ(
      LibreTranslateResponse(
          request, Response({{"Hello!", "Hi!", "Hello!", "Good morning!"}}),
          &detected),
      json::parse(R"({"translatedText": "Hello!",
                      "alternatives": ["Hi!", "Good morning!"],
                      "detectedLanguage": {"confidence": 90.0,
                                           "language": "fr"}})"));
}

TEST(LibreTranslateResponseTest, AlternativesStopAtTheRequestedCount) {
  LibreTranslateRequest request;
  request.texts = {"a"};
  request.alternatives = 1;
  EXPECT_EQ(
      LibreTranslateResponse(request, Response({{"x", "y", "z"}}), nullptr),
      json::parse(R"({"translatedText": "x", "alternatives": ["y"]})"));
}

TEST(LibreTranslateResponseTest, ListQGivesListsAndADetectionPerText) {
  LibreTranslateRequest request;
  request.texts = {"Hallo", "Welt"};
  request.q_is_list = true;
  request.source = "auto";
  request.alternatives = 1;
  // One detection for the whole request is repeated for each text.
  const std::vector<DetectedLanguage> detected = {{"de", 97.0, true}};
  EXPECT_EQ(LibreTranslateResponse(
                request, Response({{"Hello", "Hi"}, {"World"}}), &detected),
            json::parse(R"({"translatedText": ["Hello", "World"],
                            "alternatives": [["Hi"], []],
                            "detectedLanguage": [
                              {"confidence": 97.0, "language": "de"},
                              {"confidence": 97.0, "language": "de"}]})"));

  // One detection per text.
  const std::vector<DetectedLanguage> per_text = {{"de", 97.0, true},
                                                  {"nl", 60.0, false}};
  request.alternatives = 0;
  EXPECT_EQ(LibreTranslateResponse(
                request, Response({{"Hello", "Hi"}, {"World"}}), &per_text),
            json::parse(R"({"translatedText": ["Hello", "World"],
                            "detectedLanguage": [
                              {"confidence": 97.0, "language": "de"},
                              {"confidence": 60.0, "language": "nl"}]})"));
}

TEST(LibreTranslateResponseTest, ListQWithoutAutoHasNoDetectedLanguage) {
  LibreTranslateRequest request;
  request.texts = {"a", "b"};
  request.q_is_list = true;
  EXPECT_EQ(LibreTranslateResponse(request, Response({{"x"}, {"y"}}), nullptr),
            json::parse(R"({"translatedText": ["x", "y"]})"));
}

TEST(LibreTranslateResponseTest, MissingTranslationsAreEmpty) {
  LibreTranslateRequest request;
  request.texts = {"a", "b"};
  request.q_is_list = true;
  EXPECT_EQ(LibreTranslateResponse(request, Response({{"x"}}), nullptr),
            json::parse(R"({"translatedText": ["x", ""]})"));
}

TEST(LanguagesJsonTest, EveryLanguageSortedWithItsTargets) {
  EXPECT_EQ(LanguagesJson({{"en", "fr"},
                           {"en", "de"},
                           {"de", "en"},
                           {"de", "fr"},
                           {"en", "de"}}),
            json::parse(R"([
              {"code": "de", "name": "German", "targets": ["en", "fr"]},
              {"code": "en", "name": "English", "targets": ["de", "fr"]},
              {"code": "fr", "name": "French", "targets": []}])"));
  EXPECT_EQ(LanguagesJson({}), json::array());
}

TEST(DetectJsonTest, BestFirstList) {
  EXPECT_EQ(DetectJson({{"en", 92.0, true}, {"de", 8.0, true}}),
            json::parse(R"([{"confidence": 92.0, "language": "en"},
                            {"confidence": 8.0, "language": "de"}])"));
  EXPECT_EQ(DetectJson({}), json::array());
}

TEST(LibreTranslateErrorTest, ErrorBodyAndStatus) {
  EXPECT_EQ(LibreTranslateError("xx is not supported"),
            json::parse(R"({"error": "xx is not supported"})"));
  EXPECT_EQ(LibreTranslateHttpStatus(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(LibreTranslateHttpStatus(absl::StatusCode::kNotFound), 400);
  EXPECT_EQ(LibreTranslateHttpStatus(absl::StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(LibreTranslateHttpStatus(absl::StatusCode::kResourceExhausted),
            429);
  EXPECT_EQ(LibreTranslateHttpStatus(absl::StatusCode::kInternal), 500);
  EXPECT_EQ(LibreTranslateHttpStatus(absl::StatusCode::kDeadlineExceeded), 500);
}

}  // namespace
}  // namespace ts::server
