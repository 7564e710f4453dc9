// HTML quality with the real engine (issue 22, done-when "HTML quality"): on
// golden sources of the demo model with <b> around one English noun, the tag
// lands on the German noun in >= 90% of the cases whose plain translation
// holds that noun. The nouns come from a small English -> German dictionary
// below; the first dictionary noun of a source whose German appears in the
// golden greedy translation is tagged, for the first 50 such sources.
//
// Path: HtmlDocument::Parse -> block text -> MarianTokenizer::EncodeSource
// -> Translator (greedy, return_attention) -> argmax source token per
// target row -> AlignTokens over EncodeSourceWithRanges /
// DecodeTargetWithRanges -> HtmlDocument::Render; a case counts when the
// output holds <b>German</b>.
#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/model/marian_model.h"
#include "core/text/html_document.h"
#include "core/text/token_spans.h"
#include "core/text/tokenizer.h"
#include "core/translator.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ts::core::text {
namespace {

// English noun -> its German translations (the forms the demo model uses).
const std::map<std::string, std::vector<std::string>>& Dictionary() {
  static const auto* dictionary =
      new std::map<std::string, std::vector<std::string>>{
          {"man", {"Mann"}},
          {"woman", {"Frau"}},
          {"men", {"Männer", "Männern"}},
          {"women", {"Frauen"}},
          {"girl", {"Mädchen"}},
          {"girls", {"Mädchen"}},
          {"boy", {"Junge", "Jungen"}},
          {"boys", {"Jungen"}},
          {"child", {"Kind"}},
          {"kid", {"Kind"}},
          {"children", {"Kinder", "Kindern"}},
          {"people", {"Personen", "Menschen", "Leute"}},
          {"person", {"Person"}},
          {"dog", {"Hund"}},
          {"dogs", {"Hunde"}},
          {"hat", {"Hut"}},
          {"building", {"Gebäude"}},
          {"chair", {"Stuhl"}},
          {"table", {"Tisch"}},
          {"kitchen", {"Küche"}},
          {"roof", {"Dach"}},
          {"snow", {"Schnee"}},
          {"grass", {"Gras", "Rasen"}},
          {"fence", {"Zaun"}},
          {"water", {"Wasser"}},
          {"beach", {"Strand"}},
          {"ball", {"Ball"}},
          {"bench", {"Bank"}},
          {"car", {"Auto"}},
          {"city", {"Stadt"}},
          {"street", {"Straße"}},
          {"camera", {"Kamera"}},
          {"truck", {"Lastwagen"}},
          {"train", {"Zug"}},
          {"forest", {"Wald"}},
          {"sand", {"Sand"}},
          {"shirt", {"Hemd", "T-Shirt"}},
          {"group", {"Gruppe"}},
          {"bowl", {"Schüssel"}},
          {"vest", {"Weste"}},
          {"bag", {"Tasche"}},
          {"field", {"Feld"}},
          {"bar", {"Bar"}},
          {"tree", {"Baum"}},
          {"trees", {"Bäumen", "Bäume"}},
          {"food", {"Essen"}},
          {"mother", {"Mutter"}},
          {"stove", {"Herd"}},
          {"air", {"Luft"}},
          {"head", {"Kopf"}},
          {"face", {"Gesicht"}},
          {"park", {"Park"}},
          {"guitar", {"Gitarre"}},
          {"club", {"Club"}},
          {"backyard", {"Hinterhof"}},
          {"brother", {"Bruder"}},
          {"playground", {"Spielplatz"}},
          {"pizza", {"Pizza"}},
          {"rocks", {"Felsen"}},
          {"uniform", {"Uniform"}},
          {"sweater", {"Pullover"}},
          {"teenager", {"Teenager"}},
          {"toddler", {"Kleinkind"}},
          {"market", {"Markt"}},
          {"mountain", {"Berg"}},
          {"bike", {"Fahrrad"}},
          {"bicycle", {"Fahrrad"}},
          {"horse", {"Pferd"}},
          {"stage", {"Bühne"}},
          {"crowd", {"Menschenmenge", "Menge"}},
          {"wall", {"Wand", "Mauer"}},
          {"boat", {"Boot"}},
          {"river", {"Fluss"}},
          {"jacket", {"Jacke"}},
          {"helmet", {"Helm"}},
          {"sidewalk", {"Bürgersteig", "Gehweg"}},
          {"restaurant", {"Restaurant"}},
          {"ocean", {"Meer", "Ozean"}},
          {"pool", {"Pool", "Schwimmbecken"}},
          {"sun", {"Sonne"}},
          {"road", {"Straße"}},
          {"player", {"Spieler"}},
          {"baby", {"Baby"}},
      };
  return *dictionary;
}

bool IsWordByte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || std::isalnum(u) || c == '-';
}

// Byte offsets of whole-word occurrences of `word` in `text`.
std::vector<size_t> FindWord(const std::string& text, const std::string& word,
                             bool ignore_first_case) {
  std::vector<size_t> found;
  for (size_t i = 0; i + word.size() <= text.size(); ++i) {
    bool match = true;
    for (size_t k = 0; k < word.size() && match; ++k) {
      char c = text[i + k];
      if (k == 0 && ignore_first_case) c = static_cast<char>(std::tolower(c));
      match = c == word[k];
    }
    if (!match) continue;
    if (i > 0 && IsWordByte(text[i - 1])) continue;
    if (i + word.size() < text.size() && IsWordByte(text[i + word.size()])) {
      continue;
    }
    found.push_back(i);
  }
  return found;
}

struct Case {
  std::string source;
  size_t noun_begin = 0;
  std::string noun;
  std::vector<std::string> german;
  std::string golden_text;
};

// `field`: the golden translation the cases are chosen on ("greedy_text" or
// "beam4_text").
std::vector<Case> Cases(size_t limit, const std::string& field) {
  std::ifstream in(std::string(TS_DEMO_MODEL_DIR) +
                   "/golden/translations.jsonl");
  std::vector<Case> cases;
  std::string line;
  while (cases.size() < limit && std::getline(in, line)) {
    const nlohmann::json golden = nlohmann::json::parse(line);
    Case c;
    c.source = golden["source"];
    c.golden_text = golden[field];
    // The first dictionary noun (in source order) whose German is there.
    size_t best = std::string::npos;
    for (const auto& [english, german] : Dictionary()) {
      const auto at = FindWord(c.source, english, /*ignore_first_case=*/true);
      if (at.empty() || at.front() >= best) continue;
      bool present = false;
      for (const std::string& g : german) {
        present |= !FindWord(c.golden_text, g, false).empty();
      }
      if (!present) continue;
      best = at.front();
      c.noun_begin = best;
      c.noun = english;
      c.german = german;
    }
    if (best != std::string::npos) cases.push_back(c);
  }
  return cases;
}

// The source token of each target row with the largest attention;
// `skip_eos` leaves the source </s> (last column) out, as Bergamot's hard
// alignment does.
std::vector<int> Argmax(const std::vector<float>& attention, int source_len,
                        bool skip_eos) {
  std::vector<int> argmax;
  const int columns = skip_eos && source_len > 1 ? source_len - 1 : source_len;
  for (size_t t = 0; t * source_len < attention.size(); ++t) {
    const float* row = attention.data() + t * source_len;
    argmax.push_back(
        static_cast<int>(std::max_element(row, row + columns) - row));
  }
  return argmax;
}

// Translates each case's block (beam_size 1 = greedy, or 4) with the
// default attention layer (the last) and counts where the <b> lands.
class HtmlQualityTest : public ::testing::TestWithParam<int> {};

TEST_P(HtmlQualityTest, BoldNounLandsOnTheGermanNoun) {
  const int beam_size = GetParam();
  auto model = MarianModel::Load(TS_DEMO_MODEL_DIR);
  ASSERT_TRUE(model.ok()) << model.status();
  const MarianTokenizer& tokenizer = (*model)->tokenizer();
  Translator translator(*model);
  TranslationOptions options;
  options.beam_size = beam_size;
  options.max_length = 128;  // as the golden files were made
  options.return_attention = true;
  auto resolved = (*model)->ResolveOptions(options);
  ASSERT_TRUE(resolved.ok()) << resolved.status();

  const std::vector<Case> cases =
      Cases(50, beam_size == 1 ? "greedy_text" : "beam4_text");
  ASSERT_EQ(cases.size(), 50u);
  int exact[2] = {0, 0};     // [skip_eos]: <b>Noun</b>
  int covering[2] = {0, 0};  // [skip_eos]: the <b> holds the noun
  for (const Case& c : cases) {
    const std::string html =
        "<p>" + c.source.substr(0, c.noun_begin) + "<b>" +
        c.source.substr(c.noun_begin, c.noun.size()) + "</b>" +
        c.source.substr(c.noun_begin + c.noun.size()) + "</p>";
    auto document = HtmlDocument::Parse(html);
    ASSERT_TRUE(document.ok());
    ASSERT_EQ(document->blocks().size(), 1u);
    const std::string& text = document->blocks()[0].text;
    ASSERT_EQ(text, c.source);
    auto source = tokenizer.EncodeSourceWithRanges(text);
    ASSERT_TRUE(source.ok());
    auto results = translator.Translate({source->ids}, *resolved);
    ASSERT_TRUE(results.ok()) << results.status();
    const Hypothesis& best = (*results)[0].hypotheses[0];
    const DecodedTarget target = tokenizer.DecodeTargetWithRanges(best.ids);
    // The plain translation is the golden one, which holds the noun.
    EXPECT_EQ(target.text, c.golden_text);
    for (bool skip_eos : {false, true}) {
      const std::vector<int> argmax = Argmax(
          best.attention, static_cast<int>(source->ids.size()), skip_eos);
      BlockTranslation translation;
      translation.text = target.text;
      translation.alignment =
          AlignTokens(source->ranges, target.ranges, argmax);
      const std::string out = document->Render({translation});
      bool hit = false;
      bool covers = false;
      const size_t open = out.find("<b>");
      const size_t close = out.find("</b>");
      for (const std::string& g : c.german) {
        hit |= out.find("<b>" + g + "</b>") != std::string::npos;
        if (open != std::string::npos && close != std::string::npos &&
            open < close) {
          covers |= !FindWord(out.substr(open + 3, close - open - 3), g, false)
                         .empty();
        }
      }
      exact[skip_eos] += hit;
      covering[skip_eos] += covers;
      if (!hit && skip_eos) std::cout << "not exact: " << out << "\n";
    }
  }
  for (bool skip_eos : {false, true}) {
    std::cout << "beam " << beam_size
              << (skip_eos ? ", </s> left out of the argmax"
                           : ", argmax over all source tokens")
              << ": <b>German noun</b> exactly in " << exact[skip_eos]
              << "/50, <b> holding the noun in " << covering[skip_eos]
              << "/50\n";
  }
  // The bar: the tag lands on the German noun in >= 90% (here: the
  // <b> holds the noun; an article aligned to the noun may join it).
  // Measured: 50/50 for greedy and beam 4. Exactly <b>Noun</b>: 43/50
  // greedy, 44/50 beam 4 (the misses are a sentence-initial article that
  // attends to its noun most: <b>Ein Mann</b>); this bounds regressions.
  EXPECT_GE(covering[1], 45);
  EXPECT_GE(exact[1], 40);
}

INSTANTIATE_TEST_SUITE_P(GreedyAndBeam4, HtmlQualityTest,
                         ::testing::Values(1, 4));

}  // namespace
}  // namespace ts::core::text
