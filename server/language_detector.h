// The source language of a text, for requests whose source is "auto": CLD2
// (Compact Language Detector 2, Debian libcld2), as the Opus-MT server's
// router uses it (through pycld2).
#ifndef TRANSFORMER_SERVING_SERVER_LANGUAGE_DETECTOR_H_
#define TRANSFORMER_SERVING_SERVER_LANGUAGE_DETECTOR_H_

#include <string>
#include <string_view>
#include <vector>

namespace ts::server {

struct DetectedLanguage {
  // Canonical code (CanonicalLanguage), e.g. "de".
  std::string language;
  // 0..100, as LibreTranslate's /detect reports it: CLD2's percent3, the
  // share of the text's letters CLD2 scored as this language. A one-language
  // sentence gets 90..99.
  double confidence = 0;
  // CLD2's is_reliable for the whole text: the best language is clearly
  // ahead of the second, given the text's length. Short texts ("Guten Tag")
  // and gibberish are not reliable (CLD2 does call some 2-word texts such as
  // "Hello world" reliable).
  bool reliable = false;
};

// Up to 3 languages of `text` (UTF-8 plain text; markup is not skipped),
// best first, from CLD2's ExtDetectLanguageSummaryCheckUTF8 (the small
// table set, libcld2: over 80 languages). CLD2's "unknown" and its
// pseudo-languages (Klingon, Pig Latin, script names) are left out, so the
// result may be empty: too short, gibberish, or invalid UTF-8. When
// `candidates` (canonical codes, e.g. the sources that reach the requested
// target) is not empty, only languages among them are kept: "auto" picks
// among the sources the server can translate. Thread-safe (CLD2 keeps no
// state).
std::vector<DetectedLanguage> DetectLanguages(
    std::string_view text, const std::vector<std::string>& candidates = {});

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_LANGUAGE_DETECTOR_H_
