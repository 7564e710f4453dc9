#include "server/language_codes.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "unicode/locid.h"
#include "unicode/unistr.h"

namespace ts::server {
namespace {

// Longer than any language tag with script, region and variants; ICU's own
// bound for a full locale ID is 157 bytes (ULOC_FULLNAME_CAPACITY).
constexpr size_t kMaxCodeBytes = 64;

// The language subtag of `code` canonicalized by ICU, "" if ICU cannot parse
// it. Only letters, digits, '-' and '_' reach ICU: a '@' or '.' would be read
// as keywords or a charset.
std::string CanonicalSubtag(std::string_view code) {
  if (code.empty() || code.size() > kMaxCodeBytes) return "";
  for (char c : code) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_') {
      return "";
    }
  }
  const icu::Locale locale =
      icu::Locale::createCanonical(std::string(code).c_str());
  if (locale.isBogus()) return "";
  return absl::AsciiStrToLower(locale.getLanguage());
}

}  // namespace

std::string CanonicalLanguage(std::string_view code) {
  std::string language = CanonicalSubtag(code);
  if (language.size() < 2 || language.size() > 3) return "";
  for (char c : language) {
    if (!absl::ascii_isalpha(static_cast<unsigned char>(c))) return "";
  }
  // BCP 47's "undetermined" and "no linguistic content" are not languages a
  // model translates.
  if (language == "und" || language == "zxx") return "";
  return language;
}

std::string LanguageName(std::string_view code) {
  const std::string language = CanonicalLanguage(code);
  if (language.empty()) return std::string(code);
  icu::UnicodeString name;
  icu::Locale(language.c_str())
      .getDisplayLanguage(icu::Locale::getEnglish(), name);
  std::string utf8;
  name.toUTF8String(utf8);
  // ICU answers with the code itself when it has no name.
  if (utf8.empty() || utf8 == language) return std::string(code);
  return utf8;
}

std::vector<TargetLanguageToken> MultiTargetLanguages(
    const std::vector<std::string>& vocabulary_tokens) {
  std::vector<TargetLanguageToken> targets;
  for (const std::string& token : vocabulary_tokens) {
    if (token.size() <= 4 || !absl::StartsWith(token, ">>") ||
        !absl::EndsWith(token, "<<")) {
      continue;
    }
    std::string language =
        CanonicalLanguage(std::string_view(token).substr(2, token.size() - 4));
    if (language.empty()) continue;
    targets.push_back({token, std::move(language)});
  }
  return targets;
}

}  // namespace ts::server
