// Canonical language codes against ISO 639's own tables (639-1, 639-2/T,
// 639-2/B and 639-3 codes of one language, as the Library of Congress lists
// them) and the English names of ISO 639-2's list.
#include "server/language_codes.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace ts::server {
namespace {

TEST(CanonicalLanguageTest, IsoCodesOfOneLanguageAreOneCode) {
  // {code, canonical}: 639-1, 639-2/T (= 639-3), 639-2/B.
  const std::vector<std::pair<std::string, std::string>> table = {
      {"en", "en"},  {"eng", "en"}, {"de", "de"},  {"deu", "de"}, {"ger", "de"},
      {"fr", "fr"},  {"fra", "fr"}, {"fre", "fr"}, {"zh", "zh"},  {"zho", "zh"},
      {"chi", "zh"}, {"nl", "nl"},  {"nld", "nl"}, {"dut", "nl"}, {"cs", "cs"},
      {"ces", "cs"}, {"cze", "cs"}, {"ja", "ja"},  {"jpn", "ja"}, {"pt", "pt"},
      {"por", "pt"},
  };
  for (const auto& [code, canonical] : table) {
    EXPECT_EQ(CanonicalLanguage(code), canonical) << code;
  }
}

TEST(CanonicalLanguageTest, CaseRegionAndScriptDoNotMatter) {
  EXPECT_EQ(CanonicalLanguage("EN"), "en");
  EXPECT_EQ(CanonicalLanguage("Deu"), "de");
  EXPECT_EQ(CanonicalLanguage("pt_BR"), "pt");
  EXPECT_EQ(CanonicalLanguage("pt-BR"), "pt");
  EXPECT_EQ(CanonicalLanguage("zh-Hans"), "zh");
  EXPECT_EQ(CanonicalLanguage("zh_Hant_TW"), "zh");
  EXPECT_EQ(CanonicalLanguage("zho_Hant"), "zh");
  EXPECT_EQ(CanonicalLanguage("en-US"), "en");
}

TEST(CanonicalLanguageTest, DeprecatedAndMacrolanguageAliasesFollowCldr) {
  // CLDR's languageAlias: Hebrew's withdrawn 639-1 code, Mandarin as its
  // macrolanguage (Chinese), Indonesian's withdrawn code.
  EXPECT_EQ(CanonicalLanguage("iw"), "he");
  EXPECT_EQ(CanonicalLanguage("heb"), "he");
  EXPECT_EQ(CanonicalLanguage("cmn"), "zh");
  EXPECT_EQ(CanonicalLanguage("in"), "id");
}

TEST(CanonicalLanguageTest, ThreeLetterCodesWithoutTwoLetterOnesStay) {
  // No ISO 639-1 code: Cantonese, Swiss German, Filipino; "mul" is OPUS-MT's
  // multilingual source.
  EXPECT_EQ(CanonicalLanguage("yue"), "yue");
  EXPECT_EQ(CanonicalLanguage("gsw"), "gsw");
  EXPECT_EQ(CanonicalLanguage("fil"), "fil");
  EXPECT_EQ(CanonicalLanguage("mul"), "mul");
}

TEST(CanonicalLanguageTest, WhatIsNotALanguageIsEmpty) {
  for (const char* code : {"", "auto", "123", "e1", "und", "zxx", "en@x=y",
                           "english", "de.UTF-8", " en"}) {
    EXPECT_EQ(CanonicalLanguage(code), "") << "'" << code << "'";
  }
  EXPECT_EQ(CanonicalLanguage(std::string(100, 'a')), "");
}

TEST(LanguageNameTest, EnglishNames) {
  EXPECT_EQ(LanguageName("en"), "English");
  EXPECT_EQ(LanguageName("eng"), "English");
  EXPECT_EQ(LanguageName("de"), "German");
  EXPECT_EQ(LanguageName("ger"), "German");
  EXPECT_EQ(LanguageName("fr"), "French");
  EXPECT_EQ(LanguageName("zh"), "Chinese");
  EXPECT_EQ(LanguageName("zho"), "Chinese");
  EXPECT_EQ(LanguageName("pt_BR"), "Portuguese");
}

TEST(LanguageNameTest, UnknownCodeIsItself) {
  EXPECT_EQ(LanguageName("qaa"), "qaa");
  EXPECT_EQ(LanguageName("auto"), "auto");
}

TEST(MultiTargetLanguagesTest, TokensBetweenChevronsWithTheirLanguage) {
  // The shape of opus-mt-en-ROMANCE's and opus-mt-en-zh's vocab.json keys.
  const std::vector<std::string> vocabulary = {
      "</s>",         "<unk>",        ">>fra<<",  "▁the",   ">>por<<",
      ">>zho_Hant<<", ">>cmn_Hans<<", ">>auto<<", ">><<",   ">>",
      "<<",           "a>>deu<<",     ">>deu<<b", ">>es<<", ">>ron<<",
  };
  const std::vector<TargetLanguageToken> targets =
      MultiTargetLanguages(vocabulary);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {">>fra<<", "fr"},      {">>por<<", "pt"}, {">>zho_Hant<<", "zh"},
      {">>cmn_Hans<<", "zh"}, {">>es<<", "es"},  {">>ron<<", "ro"},
  };
  ASSERT_EQ(targets.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(targets[i].token, expected[i].first) << i;
    EXPECT_EQ(targets[i].language, expected[i].second) << i;
  }
}

TEST(MultiTargetLanguagesTest, NoTokensNoTargets) {
  EXPECT_TRUE(MultiTargetLanguages({"▁Hallo", "</s>", "<pad>"}).empty());
}

}  // namespace
}  // namespace ts::server
