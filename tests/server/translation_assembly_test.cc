// AssembleTranslation: the HTML path puts inline markup back through the
// recorded cross-attention, whether or not the server prefixed a
// multi-target model's >>xxx<< token to the sentence.
#include "server/translation_assembly.h"

#include <memory>
#include <string>
#include <vector>

#include "core/text/html_document.h"
#include "core/text/tokenizer.h"
#include "gtest/gtest.h"

namespace ts::server {
namespace {

constexpr char kHtml[] = "<p>Two <b>dogs</b> play in the snow.</p>";
constexpr char kGerman[] = "Zwei Hunde spielen im Schnee.";

// Source token each target piece of kGerman attends to: ▁Zwei ▁Hunde
// ▁spielen ▁im ▁Schnee . </s> over ▁Two ▁dogs ▁play ▁in ▁the ▁snow . </s>.
const std::vector<int> kAligned = {0, 1, 2, 3, 5, 6, 7};

// The rendered HTML of one hypothesis `target_ids` whose target token t
// attends only to source token kAligned[t]; with
// `prefix_id` >= 0 that id leads the source ids and takes column 0 of the
// attention, which it never wins.
std::string Render(const core::MarianTokenizer& tokenizer,
                   const std::vector<int>& target_ids, int prefix_id) {
  auto document = core::text::HtmlDocument::Parse(kHtml);
  EXPECT_TRUE(document.ok()) << document.status();
  TextWork work;
  work.html =
      std::make_shared<const core::text::HtmlDocument>(*std::move(document));
  const std::string& text = work.html->blocks().at(0).text;
  SegmentWork segment;
  segment.begin = 0;
  segment.end = static_cast<int>(text.size());
  segment.block = 0;
  segment.source = text;
  segment.source_ids = *tokenizer.EncodeSource(text);
  const int offset = prefix_id >= 0 ? 1 : 0;
  if (prefix_id >= 0) {
    segment.source_ids.insert(segment.source_ids.begin(), prefix_id);
  }
  const int source_len = static_cast<int>(segment.source_ids.size());
  work.segments.push_back(segment);

  core::Hypothesis hypothesis;
  hypothesis.ids = target_ids;
  hypothesis.attention.assign(target_ids.size() * source_len, 0.0f);
  for (size_t t = 0; t < target_ids.size(); ++t) {
    const int s = kAligned.at(t) + offset;
    hypothesis.attention[t * source_len + s] = 1.0f;
  }
  std::vector<core::TranslationResult> results(1);
  results[0].hypotheses.push_back(hypothesis);
  transformer::v1::Translation translation;
  AssembleTranslation(kHtml, work, results, core::TranslationOptions{},
                      tokenizer, &translation);
  EXPECT_EQ(translation.hypotheses_size(), 1);
  return translation.hypotheses_size() > 0 ? translation.hypotheses(0).text()
                                           : "";
}

TEST(TranslationAssemblyTest, HtmlMarkupIgnoresALeadingLanguageToken) {
  auto tokenizer = core::MarianTokenizer::Load(TS_DEMO_MODEL_DIR);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  // The demo vocabulary is shared: these ids decode to kGerman.
  auto target_ids = tokenizer->EncodeSource(kGerman);
  ASSERT_TRUE(target_ids.ok()) << target_ids.status();
  ASSERT_EQ(tokenizer->DecodeTarget(*target_ids), kGerman);
  ASSERT_EQ(target_ids->size(), kAligned.size());

  const std::string plain = Render(*tokenizer, *target_ids, -1);
  EXPECT_EQ(plain, "<p>Zwei <b>Hunde</b> spielen im Schnee.</p>");
  // Any id works as the language token: the ranges are the sentence's.
  EXPECT_EQ(Render(*tokenizer, *target_ids, tokenizer->unk_id()), plain);
}

}  // namespace
}  // namespace ts::server
