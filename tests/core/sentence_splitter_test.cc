// Sentence segmentation (core/text/sentence_splitter.h): a table of cases per
// language, whitespace kept byte for byte (newline modes, a property test
// over random gaps), and the cutting of long sentences with a word counter
// and with the demo model's tokenizer.
#include "core/text/sentence_splitter.h"

#include <unicode/brkiter.h>
#include <unicode/utext.h>

#include <map>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/text/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/core/json_lines.h"

namespace ts::core::text {
namespace {

const SentenceSplitter& Splitter(const std::string& language) {
  static auto* splitters = new std::map<std::string, SentenceSplitter>();
  auto it = splitters->find(language);
  if (it == splitters->end()) {
    auto splitter = SentenceSplitter::Create(language);
    EXPECT_TRUE(splitter.ok()) << splitter.status();
    it = splitters->emplace(language, std::move(*splitter)).first;
  }
  return it->second;
}

// Whitespace as these tests write it: ASCII, NBSP, ideographic space.
bool IsAsciiOrUnicodeSpace(std::string_view gap) {
  while (!gap.empty()) {
    if (gap.starts_with("\xC2\xA0")) {
      gap.remove_prefix(2);
    } else if (gap.starts_with("\xE3\x80\x80")) {
      gap.remove_prefix(3);
    } else if (gap[0] == ' ' || gap[0] == '\t' || gap[0] == '\n' ||
               gap[0] == '\r') {
      gap.remove_prefix(1);
    } else {
      return false;
    }
  }
  return true;
}

// The span texts; checks that spans are in order, trimmed and that the gaps
// between them are whitespace only.
std::vector<std::string> Sentences(const std::string& language,
                                   std::string_view text,
                                   NewlineMode mode = NewlineMode::kBreak) {
  const std::vector<SentenceSpan> spans =
      Splitter(language).Segment(text, mode);
  std::vector<std::string> sentences;
  size_t gap_begin = 0;
  for (const SentenceSpan& span : spans) {
    EXPECT_LE(gap_begin, span.begin);
    EXPECT_LT(span.begin, span.end);
    EXPECT_LE(span.end, text.size());
    if (span.begin < gap_begin || span.end > text.size()) break;
    EXPECT_TRUE(
        IsAsciiOrUnicodeSpace(text.substr(gap_begin, span.begin - gap_begin)));
    sentences.emplace_back(text.substr(span.begin, span.size()));
    gap_begin = span.end;
  }
  EXPECT_TRUE(IsAsciiOrUnicodeSpace(text.substr(gap_begin)));
  return sentences;
}

struct SplitCase {
  std::string language;
  std::string text;
  std::vector<std::string> sentences;
};

void PrintTo(const SplitCase& c, std::ostream* os) {
  *os << c.language << ": " << c.text;
}

class SplitTableTest : public ::testing::TestWithParam<SplitCase> {};

TEST_P(SplitTableTest, Sentences) {
  const SplitCase& c = GetParam();
  EXPECT_EQ(Sentences(c.language, c.text), c.sentences);
}

INSTANTIATE_TEST_SUITE_P(
    English, SplitTableTest,
    ::testing::Values(
        // Prefixes before a name or a lowercase word.
        SplitCase{"en",
                  "Dr. Smith is here. He said hi.",
                  {"Dr. Smith is here.", "He said hi."}},
        SplitCase{"en",
                  "We met Gen. Patton. He was tall.",
                  {"We met Gen. Patton.", "He was tall."}},
        SplitCase{"en",
                  "I saw Dr. smith and Gen. lee today. Then I left.",
                  {"I saw Dr. smith and Gen. lee today.", "Then I left."}},
        SplitCase{"en",
                  "It was 5 p.m. when we left. Then it rained.",
                  {"It was 5 p.m. when we left.", "Then it rained."}},
        SplitCase{"en",
                  "Eat fruit, e.g. apples or pears. Fine.",
                  {"Eat fruit, e.g. apples or pears.", "Fine."}},
        SplitCase{"en",
                  "Mr. Brown met Mrs. Green on Jan. 5. They talked.",
                  {"Mr. Brown met Mrs. Green on Jan. 5.", "They talked."}},
        SplitCase{"en",
                  "John F. Kennedy was president. He died in 1963.",
                  {"John F. Kennedy was president.", "He died in 1963."}},
        SplitCase{"en",
                  "See No. 5 on the list. I agree.",
                  {"See No. 5 on the list.", "I agree."}},
        SplitCase{"en",
                  "See Sec. 3 for details. Thanks.",
                  {"See Sec. 3 for details.", "Thanks."}},
        // ICU keeps "." + number + lowercase word together (UAX #29 SB8).
        SplitCase{"en",
                  "He sat by the water. 3 boys are on a pier.",
                  {"He sat by the water.", "3 boys are on a pier."}},
        SplitCase{"en",
                  "He voted no. Then he left.",
                  {"He voted no.", "Then he left."}},
        // ! and ? before a lowercase word.
        SplitCase{"en",
                  "Stop! he said. Why? she asked.",
                  {"Stop! he said.", "Why? she asked."}},
        SplitCase{"en",
                  "Stop! He ran. Why? Nobody knows.",
                  {"Stop!", "He ran.", "Why?", "Nobody knows."}},
        SplitCase{"en", "Really?! Yes.", {"Really?!", "Yes."}},
        // Numbers, abbreviations, URLs.
        SplitCase{"en",
                  "He paid $3.50 for it. Then he left.",
                  {"He paid $3.50 for it.", "Then he left."}},
        SplitCase{"en",
                  "Version 2.0 is out. Try it.",
                  {"Version 2.0 is out.", "Try it."}},
        SplitCase{"en",
                  "The U.S. is big. So is Canada.",
                  {"The U.S. is big.", "So is Canada."}},
        SplitCase{"en",
                  "Visit https://example.com/a.b?x=1. It is good.",
                  {"Visit https://example.com/a.b?x=1.", "It is good."}},
        SplitCase{"en",
                  "Mail me at a.b@example.org. Thanks!",
                  {"Mail me at a.b@example.org.", "Thanks!"}},
        // Quotes and brackets stay with their sentence.
        SplitCase{"en", "\"Go home.\" She did.", {"\"Go home.\"", "She did."}},
        SplitCase{"en",
                  "He said \"Go home.\" Then he left.",
                  {"He said \"Go home.\"", "Then he left."}},
        SplitCase{"en",
                  "She said, \xE2\x80\x9CGo.\xE2\x80\x9D Then she left.",
                  {"She said, \xE2\x80\x9CGo.\xE2\x80\x9D", "Then she left."}},
        SplitCase{"en",
                  "He left (see below). (Then he came back.) Fine.",
                  {"He left (see below).", "(Then he came back.)", "Fine."}},
        // Ellipses.
        SplitCase{"en",
                  "Wait... what happened? Nothing.",
                  {"Wait... what happened?", "Nothing."}},
        SplitCase{"en",
                  "Wait... What happened? Nothing.",
                  {"Wait...", "What happened?", "Nothing."}},
        SplitCase{"en",
                  "Well\xE2\x80\xA6 maybe. Yes.",
                  {"Well\xE2\x80\xA6 maybe.", "Yes."}},
        // No final punctuation; a sentence split by ICU's own rules.
        SplitCase{"en",
                  "A child is splashing in the water",
                  {"A child is splashing in the water"}},
        SplitCase{"en", "One. Two", {"One.", "Two"}},
        SplitCase{"en",
                  "A man in an orange hat starring at something. A Boston "
                  "Terrier is running on lush green grass in front of a white "
                  "fence.",
                  {"A man in an orange hat starring at something.",
                   "A Boston Terrier is running on lush green grass in front "
                   "of a white fence."}}));

INSTANTIATE_TEST_SUITE_P(
    German, SplitTableTest,
    ::testing::Values(
        SplitCase{"de",
                  "Wir treffen uns am 3. Oktober in Berlin. Kommst du?",
                  {"Wir treffen uns am 3. Oktober in Berlin.", "Kommst du?"}},
        SplitCase{"de",
                  "Er kam im 19. Jahrhundert. Dann ging er.",
                  {"Er kam im 19. Jahrhundert.", "Dann ging er."}},
        // ICU's "@ss=standard" would not split here: it matches the
        // abbreviation "r." as the end of "Vater.".
        SplitCase{"de",
                  "Das ist mein Vater. Das ist gut.",
                  {"Das ist mein Vater.", "Das ist gut."}},
        SplitCase{"de",
                  "Das ist Peter. Er ist nett.",
                  {"Das ist Peter.", "Er ist nett."}},
        SplitCase{"de",
                  "Das war 1990. Dann kam die Wende.",
                  {"Das war 1990.", "Dann kam die Wende."}},
        SplitCase{"de",
                  "Siehe z. B. das Buch. Gut.",
                  {"Siehe z. B. das Buch.", "Gut."}},
        SplitCase{"de",
                  "Siehe z.B. Seite 120. Gut.",
                  {"Siehe z.B. Seite 120.", "Gut."}},
        // The price of the ordinal rule: a number of one or two digits at
        // the end of a sentence before a capitalized word (as Moses).
        SplitCase{"de", "Er ist 3. Das ist gut.", {"Er ist 3. Das ist gut."}},
        SplitCase{"de",
                  "Herr Dr. Müller kommt. Er ist nett.",
                  {"Herr Dr. Müller kommt.", "Er ist nett."}},
        SplitCase{
            "de", "Es gibt u.a. Brot. Gut.", {"Es gibt u.a. Brot.", "Gut."}},
        SplitCase{"de",
                  "Siehe Nr. 5 der Liste. Gut.",
                  {"Siehe Nr. 5 der Liste.", "Gut."}},
        SplitCase{"de",
                  "Halt! sagte er. Warum? fragte sie.",
                  {"Halt! sagte er.", "Warum? fragte sie."}},
        SplitCase{"de",
                  "Das kostet 3,50 Euro. Gut.",
                  {"Das kostet 3,50 Euro.", "Gut."}},
        SplitCase{"de",
                  "\xE2\x80\x9E"
                  "Komm!\xE2\x80\x9C Er ging.",
                  {"\xE2\x80\x9E"
                   "Komm!\xE2\x80\x9C",
                   "Er ging."}},
        SplitCase{"de", "Ein Satz ohne Punkt", {"Ein Satz ohne Punkt"}}));

INSTANTIATE_TEST_SUITE_P(
    French, SplitTableTest,
    ::testing::Values(
        SplitCase{"fr",
                  "M. Dupont est là. Il arrive.",
                  {"M. Dupont est là.", "Il arrive."}},
        SplitCase{"fr",
                  "Le Dr. Martin est là. Bien.",
                  {"Le Dr. Martin est là.", "Bien."}},
        SplitCase{"fr",
                  "Voir p. ex. le livre. Bien.",
                  {"Voir p. ex. le livre.", "Bien."}},
        // Spaced French punctuation: the closing guillemet stays.
        SplitCase{"fr",
                  "\xC2\xAB Bonjour ! \xC2\xBB dit-il. Puis il part.",
                  {"\xC2\xAB Bonjour ! \xC2\xBB dit-il.", "Puis il part."}},
        SplitCase{"fr",
                  "\xC2\xAB Bonjour ! \xC2\xBB Il part.",
                  {"\xC2\xAB Bonjour ! \xC2\xBB", "Il part."}},
        SplitCase{"fr",
                  "Quoi ? Il est parti ! Oui.",
                  {"Quoi ?", "Il est parti !", "Oui."}},
        SplitCase{"fr", "Arrête ! dit-il.", {"Arrête ! dit-il."}},
        SplitCase{"fr",
                  "Il a payé 3,50 €. Puis il est parti.",
                  {"Il a payé 3,50 €.", "Puis il est parti."}}));

INSTANTIATE_TEST_SUITE_P(
    ChineseJapanese, SplitTableTest,
    ::testing::Values(
        // 。！？ end a sentence with no space after them.
        SplitCase{"zh",
                  "今天天气很好。我们去公园吧！你来吗？好的",
                  {"今天天气很好。", "我们去公园吧！", "你来吗？", "好的"}},
        SplitCase{
            "zh", "我用iPhone。iPhone很好。", {"我用iPhone。", "iPhone很好。"}},
        SplitCase{
            "zh", "价格是3.50元。很便宜。", {"价格是3.50元。", "很便宜。"}},
        SplitCase{
            "zh", "他说：“你好。”然后走了。", {"他说：“你好。”", "然后走了。"}},
        SplitCase{"zh",
                  "He said 你好。Then he left.",
                  {"He said 你好。", "Then he left."}},
        SplitCase{"ja",
                  "東京は大きい。大阪も大きい！本当？はい。",
                  {"東京は大きい。", "大阪も大きい！", "本当？", "はい。"}},
        SplitCase{"ja",
                  "これはペンです。　あれは本です。",
                  {"これはペンです。", "あれは本です。"}},
        SplitCase{"ja", "句点のない文", {"句点のない文"}}));

INSTANTIATE_TEST_SUITE_P(
    OtherLanguages, SplitTableTest,
    ::testing::Values(
        // Unknown or malformed languages: ICU's root rules, no prefixes.
        SplitCase{"xx",
                  "Hello there. How are you?",
                  {"Hello there.", "How are you?"}},
        SplitCase{"",
                  "Hello there. Stop! he said.",
                  {"Hello there.", "Stop! he said."}},
        SplitCase{
            "en-US", "Dr. Smith is here. Hi.", {"Dr. Smith is here.", "Hi."}},
        SplitCase{
            "EN", "Dr. Smith is here. Hi.", {"Dr. Smith is here.", "Hi."}}));

// Why the splitter matches CLDR's abbreviations itself instead of using
// ICU's "@ss=standard" filter: ICU 72's filter matches an abbreviation as the
// end of a word, so no German word ending in "r" (abbreviation "r.") ends a
// sentence. If a later ICU fixes this, the filter could be used again.
TEST(SentenceSplitterTest, IcuStandardSuppressionsMatchWordEnds) {
  const std::string text = "Das ist mein Vater. Das ist gut.";
  UErrorCode status = U_ZERO_ERROR;
  std::unique_ptr<icu::BreakIterator> iterator(
      icu::BreakIterator::createSentenceInstance(icu::Locale("de@ss=standard"),
                                                 status));
  ASSERT_TRUE(U_SUCCESS(status)) << u_errorName(status);
  UText* utext = utext_openUTF8(nullptr, text.data(),
                                static_cast<int64_t>(text.size()), &status);
  iterator->setText(utext, status);
  std::vector<int32_t> breaks;
  for (int32_t at = iterator->first(); at != icu::BreakIterator::DONE;
       at = iterator->next()) {
    breaks.push_back(at);
  }
  utext_close(utext);
  EXPECT_EQ(breaks, (std::vector<int32_t>{0, 32}));  // no break after "Vater."
  EXPECT_EQ(Splitter("de").Segment(text).size(), 2u);
}

TEST(SentenceSplitterTest, LanguageIsThePrimarySubtag) {
  EXPECT_EQ(Splitter("en-US").language(), "en");
  EXPECT_EQ(Splitter("de_AT").language(), "de");
  EXPECT_EQ(Splitter("xx").language(), "xx");
  EXPECT_EQ(Splitter("").language(), "");
  EXPECT_EQ(Splitter("e n!").language(), "");
}

// Paragraphs and newlines ------------------------------------------------

TEST(SegmentTest, NewlineBreaksASentenceByDefault) {
  EXPECT_EQ(
      Sentences("en", "A line without a stop\nand another one"),
      (std::vector<std::string>{"A line without a stop", "and another one"}));
  EXPECT_EQ(Sentences("en", "One.\r\nTwo.\r\n"),
            (std::vector<std::string>{"One.", "Two."}));
}

TEST(SegmentTest, NewlineInsideAParagraphIsASpaceInSpaceMode) {
  const std::string text =
      "  This is a wrapped\nsentence. And another\r\none, wrapped too.\n";
  EXPECT_EQ(Sentences("en", text, NewlineMode::kSpace),
            (std::vector<std::string>{"This is a wrapped\nsentence.",
                                      "And another\r\none, wrapped too."}));
  const std::vector<SentenceSpan> spans =
      Splitter("en").Segment(text, NewlineMode::kSpace);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0], (SentenceSpan{2, 29}));
  EXPECT_EQ(ModelText(text, spans[0]), "This is a wrapped sentence.");
  EXPECT_EQ(ModelText(text, spans[1]), "And another  one, wrapped too.");
  // "Dr." before a wrapped line.
  EXPECT_EQ(Sentences("en", "We saw Dr.\nSmith today.", NewlineMode::kSpace),
            (std::vector<std::string>{"We saw Dr.\nSmith today."}));
}

TEST(SegmentTest, BlankLineEndsAParagraphInBothModes) {
  for (NewlineMode mode : {NewlineMode::kBreak, NewlineMode::kSpace}) {
    EXPECT_EQ(
        Sentences("en", "First paragraph\n\nsecond paragraph", mode),
        (std::vector<std::string>{"First paragraph", "second paragraph"}));
    EXPECT_EQ(Sentences("en", "A\r\n \t\r\nb", mode),
              (std::vector<std::string>{"A", "b"}));
  }
}

TEST(SegmentTest, WhitespaceOnlyGivesNoSpans) {
  for (NewlineMode mode : {NewlineMode::kBreak, NewlineMode::kSpace}) {
    EXPECT_TRUE(Splitter("en").Segment("", mode).empty());
    EXPECT_TRUE(Splitter("en").Segment(" \t\r\n\n  \r\n", mode).empty());
    // NBSP and the ideographic space are whitespace too.
    EXPECT_TRUE(
        Splitter("en").Segment("\xC2\xA0 \xE3\x80\x80\n", mode).empty());
  }
}

TEST(SegmentTest, UnicodeSpacesAreGaps) {
  const std::string text = "\xC2\xA0One.\xC2\xA0Two.\xE3\x80\x80";
  const std::vector<SentenceSpan> spans = Splitter("en").Segment(text);
  EXPECT_EQ(spans, (std::vector<SentenceSpan>{{2, 6}, {8, 12}}));
}

TEST(SegmentTest, IllFormedUtf8StaysInsideSpansOrGaps) {
  const std::string text = "Bad \xFF\xFE bytes. Next \xE2\x82 one.\n\xC3";
  for (NewlineMode mode : {NewlineMode::kBreak, NewlineMode::kSpace}) {
    const std::vector<SentenceSpan> spans = Splitter("en").Segment(text, mode);
    ASSERT_EQ(spans.size(), 3u);
    EXPECT_EQ(text.substr(spans[0].begin, spans[0].size()),
              "Bad \xFF\xFE bytes.");
    EXPECT_EQ(text.substr(spans[1].begin, spans[1].size()),
              "Next \xE2\x82 one.");
    EXPECT_EQ(text.substr(spans[2].begin, spans[2].size()), "\xC3");
  }
}

// Random gaps: spans + gaps give the text back byte for byte, and each
// sentence is found whole, in both newline modes. Gaps that hold no newline
// put two sentences on one line; single newlines join lines in kSpace mode.
class RandomGapsTest : public ::testing::TestWithParam<NewlineMode> {};

std::vector<std::string> GoldenSentences() {
  std::vector<std::string> sentences = {
      "Dr. Smith paid $3.50 for it.",
      "Version 2.0 is out, e.g. on https://example.com/a?b=1.",
      "Stop! he said.",
      "Why? she asked.",
      "The U.S. is big.",
      "\"Go home.\"",
      "Wait... what happened?",
  };
  for (const nlohmann::json& line : ReadJsonLines(
           std::string(TS_DEMO_MODEL_DIR) + "/golden/translations.jsonl")) {
    const std::string source = line["source"];
    // Sentences without final punctuation would run into the next one.
    const char last = source.back();
    if (last == '.' || last == '!' || last == '?') sentences.push_back(source);
  }
  EXPECT_GT(sentences.size(), 150u);
  return sentences;
}

TEST_P(RandomGapsTest, SpansAndGapsRebuildTheText) {
  const NewlineMode mode = GetParam();
  const std::vector<std::string> sentences = GoldenSentences();
  const std::vector<std::string> inner_gaps = {
      " ",    "  ",       "\t",       " \t ",        "\n",     "\r\n",
      "\n\n", "\r\n\r\n", " \n \t\n", "\r\n \r\n  ", "\n\n\n", " \r\n"};
  std::mt19937 random(22);
  for (int trial = 0; trial < 300; ++trial) {
    const int count = 1 + static_cast<int>(random() % 12);
    std::string text;
    std::vector<std::string> expected;
    std::vector<std::string> gaps;
    auto gap = [&](bool may_be_empty) {
      std::string g;
      const int parts = static_cast<int>(random() % 3) + (may_be_empty ? 0 : 1);
      for (int p = 0; p < parts; ++p) {
        g += inner_gaps[random() % inner_gaps.size()];
      }
      return g;
    };
    gaps.push_back(gap(true));
    text += gaps.back();
    for (int i = 0; i < count; ++i) {
      expected.push_back(sentences[random() % sentences.size()]);
      text += expected.back();
      gaps.push_back(gap(i + 1 == count));
      text += gaps.back();
    }
    const std::vector<SentenceSpan> spans = Splitter("en").Segment(text, mode);
    ASSERT_EQ(spans.size(), expected.size()) << text;
    std::string rebuilt;
    size_t at = 0;
    for (size_t i = 0; i < spans.size(); ++i) {
      EXPECT_EQ(text.substr(at, spans[i].begin - at), gaps[i]);
      EXPECT_EQ(text.substr(spans[i].begin, spans[i].size()), expected[i]);
      rebuilt += text.substr(at, spans[i].begin - at);
      rebuilt += text.substr(spans[i].begin, spans[i].size());
      at = spans[i].end;
    }
    rebuilt += text.substr(at);
    ASSERT_EQ(rebuilt, text);
    if (HasFailure()) return;
  }
}

// Chinese: sentences need no space between them.
TEST_P(RandomGapsTest, ChineseWithAndWithoutGaps) {
  const NewlineMode mode = GetParam();
  const std::vector<std::string> sentences = {"今天天气很好。",
                                              "我们去公园吧！", "你来吗？",
                                              "价格是3.50元。", "我用iPhone。"};
  const std::vector<std::string> gaps_to_draw = {
      "", "", " ", "\n", "\r\n\r\n", "\xE3\x80\x80"};
  std::mt19937 random(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int count = 1 + static_cast<int>(random() % 8);
    std::string text = gaps_to_draw[random() % gaps_to_draw.size()];
    std::vector<std::string> expected;
    for (int i = 0; i < count; ++i) {
      expected.push_back(sentences[random() % sentences.size()]);
      text += expected.back();
      text += gaps_to_draw[random() % gaps_to_draw.size()];
    }
    const std::vector<SentenceSpan> spans = Splitter("zh").Segment(text, mode);
    std::vector<std::string> found;
    for (const SentenceSpan& span : spans) {
      found.emplace_back(text.substr(span.begin, span.size()));
    }
    ASSERT_EQ(found, expected) << text;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, RandomGapsTest,
                         ::testing::Values(NewlineMode::kBreak,
                                           NewlineMode::kSpace),
                         [](const ::testing::TestParamInfo<NewlineMode>& info) {
                           return info.param == NewlineMode::kBreak ? "Break"
                                                                    : "Space";
                         });

int CountWords(std::string_view piece);

// Random strings of words, punctuation, spaces, newlines and ill-formed
// UTF-8 in every mode and language: spans are in order, non-empty, trimmed,
// gaps are whitespace, and every span cut into pieces rebuilds itself.
TEST(SegmentTest, RandomTextKeepsTheInvariants) {
  const std::vector<std::string> fragments = {"a",           "B",
                                              ".",           "!",
                                              "?",           " ",
                                              "\n",          "\r\n",
                                              "\t",          "Dr.",
                                              "3",           "\xE3\x80\x82",
                                              "\xC2\xBB",    "\xC2\xA0",
                                              "\xFF",        "\xE2\x82",
                                              ",",           "\"",
                                              "(",           ")",
                                              "e.g.",        "\xE4\xBD\xA0",
                                              "\xEF\xBC\x8C"};
  std::mt19937 random(1);
  for (const std::string language : {"en", "de", "fr", "zh", "ja", "xx"}) {
    for (int trial = 0; trial < 300; ++trial) {
      std::string text;
      const int length = static_cast<int>(random() % 40);
      for (int i = 0; i < length; ++i) {
        text += fragments[random() % fragments.size()];
      }
      for (NewlineMode mode : {NewlineMode::kBreak, NewlineMode::kSpace}) {
        const std::vector<SentenceSpan> spans =
            Splitter(language).Segment(text, mode);
        size_t at = 0;
        for (const SentenceSpan& span : spans) {
          ASSERT_LE(at, span.begin) << text;
          ASSERT_LT(span.begin, span.end) << text;
          ASSERT_LE(span.end, text.size()) << text;
          EXPECT_TRUE(IsAsciiOrUnicodeSpace(text.substr(at, span.begin - at)))
              << text;
          const std::string_view sentence =
              std::string_view(text).substr(span.begin, span.size());
          EXPECT_FALSE(IsAsciiOrUnicodeSpace(sentence.substr(0, 1))) << text;
          EXPECT_FALSE(IsAsciiOrUnicodeSpace(sentence.substr(span.size() - 1)))
              << text;
          const int max_tokens = 2 + static_cast<int>(random() % 4);
          size_t piece_at = span.begin;
          for (const SentenceSpan& piece : Splitter(language).CutLongSentence(
                   text, span, max_tokens, CountWords)) {
            ASSERT_LE(piece_at, piece.begin) << text;
            ASSERT_LT(piece.begin, piece.end) << text;
            ASSERT_LE(piece.end, span.end) << text;
            EXPECT_TRUE(IsAsciiOrUnicodeSpace(
                text.substr(piece_at, piece.begin - piece_at)))
                << text;
            piece_at = piece.end;
          }
          EXPECT_EQ(piece_at, span.end) << text;
          at = span.end;
        }
        EXPECT_TRUE(IsAsciiOrUnicodeSpace(text.substr(at))) << text;
        if (HasFailure()) return;
      }
    }
  }
}

TEST(SegmentTest, ConcurrentCallsGiveTheSameSpans) {
  const SentenceSplitter& splitter = Splitter("de");
  const std::string text =
      "Wir treffen uns am 3. Oktober. Das ist mein Vater. Halt! sagte er.\n\n"
      "Siehe z. B. das Buch.\r\nEnde";
  const std::vector<SentenceSpan> expected = splitter.Segment(text);
  ASSERT_EQ(expected.size(), 5u);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        if (splitter.Segment(text) != expected) ++mismatches[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

// Long sentences ----------------------------------------------------------

// Words (runs of non-space bytes) + 1 for </s>.
int CountWords(std::string_view piece) {
  int words = 0;
  bool in_word = false;
  for (char c : piece) {
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words + 1;
}

// Code points (UTF-8 lead bytes) + 1 for </s>.
int CountCharacters(std::string_view piece) {
  int characters = 0;
  for (char c : piece) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++characters;
  }
  return characters + 1;
}

std::vector<std::string> Cut(const std::string& language, std::string_view text,
                             int max_tokens, const TokenCounter& count) {
  const SentenceSpan whole{0, text.size()};
  const std::vector<SentenceSpan> pieces =
      Splitter(language).CutLongSentence(text, whole, max_tokens, count);
  std::vector<std::string> out;
  size_t at = 0;
  for (const SentenceSpan& piece : pieces) {
    EXPECT_LE(at, piece.begin);
    if (piece.begin < at) break;
    EXPECT_TRUE(IsAsciiOrUnicodeSpace(text.substr(at, piece.begin - at)));
    out.emplace_back(text.substr(piece.begin, piece.size()));
    at = piece.end;
  }
  EXPECT_TRUE(IsAsciiOrUnicodeSpace(text.substr(at)));
  return out;
}

TEST(CutLongSentenceTest, FittingSentenceIsWhole) {
  EXPECT_EQ(Cut("en", "One two three.", 4, CountWords),
            (std::vector<std::string>{"One two three."}));
}

TEST(CutLongSentenceTest, PrefersACommaThenASpace) {
  EXPECT_EQ(Cut("en", "one two three, four five six seven eight nine ten", 5,
                CountWords),
            (std::vector<std::string>{"one two three,", "four five six seven",
                                      "eight nine ten"}));
  EXPECT_EQ(Cut("en", "a b c d e f g h", 4, CountWords),
            (std::vector<std::string>{"a b c", "d e f", "g h"}));
  EXPECT_EQ(Cut("en", "a b; c d e f g h", 5, CountWords),
            (std::vector<std::string>{"a b;", "c d e f", "g h"}));
  // A comma too early (a piece under half the limit) loses to a space.
  EXPECT_EQ(Cut("en", "a, b c d e f g h i j", 9, CountWords),
            (std::vector<std::string>{"a, b c d e f g h", "i j"}));
}

TEST(CutLongSentenceTest, CjkCutsAtFullwidthCommasThenWords) {
  EXPECT_EQ(
      Cut("zh", "今天天气很好，我们去公园吧，你来吗", 9, CountCharacters),
      (std::vector<std::string>{"今天天气很好，", "我们去公园吧，", "你来吗"}));
  // No comma, no space: ICU's dictionary words, else characters.
  const std::vector<std::string> pieces =
      Cut("zh", "我们今天去公园散步然后吃饭", 5, CountCharacters);
  std::string joined;
  for (const std::string& piece : pieces) {
    EXPECT_LE(CountCharacters(piece), 5) << piece;
    joined += piece;
  }
  EXPECT_EQ(joined, "我们今天去公园散步然后吃饭");
}

TEST(CutLongSentenceTest, OversizedCharacterIsAPieceOfItsOwn) {
  // Every character counts 100: each becomes its own piece (the only case
  // where a piece exceeds the limit); graphemes stay whole ("é" as e + ◌́).
  const auto heavy = [](std::string_view) { return 100; };
  EXPECT_EQ(Cut("en", "ab e\xCC\x81", 5, heavy),
            (std::vector<std::string>{"a", "b", "e\xCC\x81"}));
}

TEST(CutLongSentenceTest, RandomSentencesWithAWordCounter) {
  std::mt19937 random(3);
  const std::vector<std::string> words = {"alpha",   "beta,", "gamma", "delta;",
                                          "epsilon", "zeta",  "eta",   "theta"};
  for (int trial = 0; trial < 200; ++trial) {
    std::string text;
    const int count = 1 + static_cast<int>(random() % 60);
    for (int i = 0; i < count; ++i) {
      if (i > 0) text += random() % 5 == 0 ? "  " : " ";
      text += words[random() % words.size()];
    }
    const int max_tokens = 2 + static_cast<int>(random() % 12);
    const std::vector<std::string> pieces =
        Cut("en", text, max_tokens, CountWords);
    int total_words = 0;
    for (const std::string& piece : pieces) {
      EXPECT_LE(CountWords(piece), max_tokens) << piece;
      total_words += CountWords(piece) - 1;
    }
    EXPECT_EQ(total_words, count) << text;
  }
}

// The counter reads a few times the sentence's bytes, not the rest of the
// sentence once per piece (a 100 KB sentence would take seconds).
TEST(CutLongSentenceTest, CountsAFewTimesTheSentence) {
  std::string text;
  std::mt19937 random(5);
  while (text.size() < 100000) {
    text += random() % 9 == 0 ? "word, " : "word ";
  }
  text += "end";
  size_t bytes_counted = 0;
  const auto count = [&](std::string_view piece) {
    bytes_counted += piece.size();
    return CountWords(piece);
  };
  const std::vector<std::string> pieces = Cut("en", text, 256, count);
  EXPECT_GE(pieces.size(), text.size() / 5 / 255);
  EXPECT_LE(bytes_counted, 4 * text.size());
}

// The demo model's tokenizer: the pieces' ids, without their </s>, are the
// sentence's ids (cuts fall where SentencePiece starts a token).
TEST(CutLongSentenceTest, DemoTokenizer) {
  auto tokenizer = MarianTokenizer::Load(TS_DEMO_MODEL_DIR);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const auto count = [&](std::string_view piece) {
    auto ids = tokenizer->EncodeSource(piece);
    EXPECT_TRUE(ids.ok());
    return ids.ok() ? static_cast<int>(ids->size()) : 0;
  };
  std::string text;
  for (const nlohmann::json& line : ReadJsonLines(
           std::string(TS_DEMO_MODEL_DIR) + "/golden/translations.jsonl")) {
    std::string source = line["source"];
    if (source.back() == '.') source.pop_back();
    if (!text.empty())
      text += line["line"].get<int>() % 3 == 0 ? "; " : " and ";
    text += source;
    if (text.size() > 3000) break;
  }
  const std::vector<int> all = *tokenizer->EncodeSource(text);
  ASSERT_GT(all.size(), 500u);
  for (int max_tokens : {16, 40, 100, 256}) {
    SCOPED_TRACE(max_tokens);
    const std::vector<std::string> pieces = Cut("en", text, max_tokens, count);
    ASSERT_GE(pieces.size(), all.size() / max_tokens);
    std::vector<int> joined;
    for (size_t i = 0; i < pieces.size(); ++i) {
      const std::string& piece = pieces[i];
      std::vector<int> ids = *tokenizer->EncodeSource(piece);
      EXPECT_LE(static_cast<int>(ids.size()), max_tokens) << piece;
      if (i + 1 < pieces.size()) {
        EXPECT_GE(static_cast<int>(ids.size()), max_tokens / 2) << piece;
        // A semicolon comes every third source (under 50 tokens): from 100
        // tokens on, every cut falls after one or after a comma.
        if (max_tokens >= 100) {
          EXPECT_TRUE(piece.back() == ';' || piece.back() == ',') << piece;
        }
      }
      joined.insert(joined.end(), ids.begin(), ids.end() - 1);
    }
    joined.push_back(all.back());
    EXPECT_EQ(joined, all);
  }
}

// The model sees a kSpace span's newlines as spaces either way.
TEST(ModelTextTest, NewlinesTokenizeAsSpaces) {
  auto tokenizer = MarianTokenizer::Load(TS_DEMO_MODEL_DIR);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::string text = "A man in\nan orange\r\nhat.";
  const std::string model_text = ModelText(text, {0, text.size()});
  EXPECT_EQ(model_text, "A man in an orange  hat.");
  const std::vector<int> ids =
      *tokenizer->EncodeSource("A man in an orange hat.");
  EXPECT_EQ(*tokenizer->EncodeSource(model_text), ids);
  // SentencePiece's nmt_nfkc normalization already reads \r and \n as spaces.
  EXPECT_EQ(*tokenizer->EncodeSource(text), ids);
}

}  // namespace
}  // namespace ts::core::text
