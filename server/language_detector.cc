#include "server/language_detector.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <string>

// Needs <cstdio> (above) first: it declares a function taking a FILE*.
#include "cld2/public/compact_lang_det.h"
#include "server/language_codes.h"

namespace ts::server {

std::vector<DetectedLanguage> DetectLanguages(
    std::string_view text, const std::vector<std::string>& candidates) {
  // CLD2 leaves these as they were when the text is not valid UTF-8.
  CLD2::Language language3[3] = {CLD2::UNKNOWN_LANGUAGE, CLD2::UNKNOWN_LANGUAGE,
                                 CLD2::UNKNOWN_LANGUAGE};
  int percent3[3] = {0, 0, 0};
  double normalized_score3[3] = {0, 0, 0};
  int text_bytes = 0;
  bool is_reliable = false;
  int valid_prefix_bytes = 0;
  const size_t length = std::min<size_t>(text.size(), INT_MAX);
  CLD2::ExtDetectLanguageSummaryCheckUTF8(
      text.data(), static_cast<int>(length),
      /*is_plain_text=*/true, /*cld_hints=*/nullptr, /*flags=*/0, language3,
      percent3, normalized_score3, /*resultchunkvector=*/nullptr, &text_bytes,
      &is_reliable, &valid_prefix_bytes);
  std::vector<DetectedLanguage> detected;
  if (static_cast<size_t>(valid_prefix_bytes) < length) return detected;
  for (int i = 0; i < 3; ++i) {
    const CLD2::Language language = language3[i];
    // X_BORK_BORK_BORK and above are CLD2's pseudo-languages (Pig Latin,
    // Klingon, ..., then one per script: "xx-Latn").
    if (language == CLD2::UNKNOWN_LANGUAGE ||
        language == CLD2::TG_UNKNOWN_LANGUAGE ||
        language >= CLD2::X_BORK_BORK_BORK) {
      continue;
    }
    std::string code = CanonicalLanguage(CLD2::LanguageCode(language));
    if (code.empty()) continue;
    if (!candidates.empty() && std::find(candidates.begin(), candidates.end(),
                                         code) == candidates.end()) {
      continue;
    }
    // CLD2's CHINESE ("zh") and CHINESE_T ("zh-Hant") are one language here.
    auto same = std::find_if(
        detected.begin(), detected.end(),
        [&](const DetectedLanguage& d) { return d.language == code; });
    if (same != detected.end()) {
      same->confidence += percent3[i];
      continue;
    }
    detected.push_back(
        {std::move(code), static_cast<double>(percent3[i]), is_reliable});
  }
  return detected;
}

}  // namespace ts::server
