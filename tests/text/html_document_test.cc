// HtmlDocument: blocks and spans from gumbo's parse, and the document rebuilt
// around fake translations whose alignment is known (identity, upper case,
// word reversal, a scripted permutation). Every rebuilt document is parsed
// again and must give the translated texts back.
#include "core/text/html_document.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "gtest/gtest.h"

namespace ts::core::text {
namespace {

struct Word {
  size_t begin, end;
};

std::vector<Word> Words(const std::string& text) {
  std::vector<Word> words;
  for (size_t i = 0; i < text.size();) {
    if (absl::ascii_isspace(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() &&
           !absl::ascii_isspace(static_cast<unsigned char>(text[j]))) {
      ++j;
    }
    words.push_back({i, j});
    i = j;
  }
  return words;
}

// The source words in the order `order` (indices of source words), joined by
// one space, each aligned to its source word; `upper` upper-cases them.
BlockTranslation Permute(const Block& block, const std::vector<int>& order,
                         bool upper = false) {
  const std::vector<Word> words = Words(block.text);
  BlockTranslation translation;
  for (int w : order) {
    if (!translation.text.empty()) translation.text += ' ';
    const size_t begin = translation.text.size();
    std::string word =
        block.text.substr(words[w].begin, words[w].end - words[w].begin);
    if (upper) absl::AsciiStrToUpper(&word);
    translation.text += word;
    translation.alignment.push_back(
        {begin, translation.text.size(), words[w].begin, words[w].end});
  }
  return translation;
}

std::vector<BlockTranslation> Upper(const HtmlDocument& document) {
  std::vector<BlockTranslation> translations;
  for (const Block& block : document.blocks()) {
    std::vector<int> order(Words(block.text).size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    translations.push_back(Permute(block, order, /*upper=*/true));
  }
  return translations;
}

std::vector<BlockTranslation> Reversed(const HtmlDocument& document) {
  std::vector<BlockTranslation> translations;
  for (const Block& block : document.blocks()) {
    std::vector<int> order(Words(block.text).size());
    for (size_t i = 0; i < order.size(); ++i) {
      order[i] = static_cast<int>(order.size() - 1 - i);
    }
    translations.push_back(Permute(block, order));
  }
  return translations;
}

std::vector<std::string> Texts(const HtmlDocument& document) {
  std::vector<std::string> texts;
  for (const Block& block : document.blocks()) texts.push_back(block.text);
  return texts;
}

HtmlDocument MustParse(const std::string& html) {
  auto document = HtmlDocument::Parse(html);
  EXPECT_TRUE(document.ok()) << document.status();
  return document.ok() ? *std::move(document) : HtmlDocument();
}

// Renders `translations`, parses the output again and checks that its blocks
// are the translated texts.
std::string RenderChecked(const HtmlDocument& document,
                          const std::vector<BlockTranslation>& translations) {
  const std::string out = document.Render(translations);
  const HtmlDocument again = MustParse(out);
  std::vector<std::string> expected;
  for (const BlockTranslation& t : translations) expected.push_back(t.text);
  EXPECT_EQ(Texts(again), expected) << out;
  return out;
}

TEST(HtmlDocumentTest, NestedInlineTags) {
  const std::string html = "<p>The <b>big <i>red</i> dog</b> runs.</p>";
  const HtmlDocument doc = MustParse(html);
  ASSERT_EQ(doc.blocks().size(), 1u);
  const Block& block = doc.blocks()[0];
  EXPECT_EQ(block.text, "The big red dog runs.");
  ASSERT_EQ(block.spans.size(), 2u);
  EXPECT_EQ(block.spans[0].name, "b");
  EXPECT_EQ(block.spans[0].begin, 4u);
  EXPECT_EQ(block.spans[0].end, 15u);
  EXPECT_EQ(block.spans[0].opening_tag, "<b>");
  EXPECT_EQ(block.spans[0].closing_tag, "</b>");
  EXPECT_EQ(block.spans[1].parent, 0);
  EXPECT_EQ(block.text.substr(block.spans[1].begin,
                              block.spans[1].end - block.spans[1].begin),
            "red");
  EXPECT_EQ(doc.RenderIdentity(), html);
  EXPECT_EQ(RenderChecked(doc, Upper(doc)),
            "<p>THE <b>BIG <i>RED</i> DOG</b> RUNS.</p>");
  EXPECT_EQ(RenderChecked(doc, Reversed(doc)),
            "<p>runs. <b>dog <i>red</i> big</b> The</p>");
}

TEST(HtmlDocumentTest, TagInsideAWordCoversTheWord) {
  const HtmlDocument doc = MustParse("<p>un<b>believ</b>able story</p>");
  ASSERT_EQ(doc.blocks().size(), 1u);
  EXPECT_EQ(doc.blocks()[0].text, "unbelievable story");
  // Every piece of a word keeps one span (Bergamot): the word is bold.
  EXPECT_EQ(doc.RenderIdentity(), "<p><b>unbelievable</b> story</p>");
  EXPECT_EQ(RenderChecked(doc, Reversed(doc)),
            "<p>story <b>unbelievable</b></p>");
}

TEST(HtmlDocumentTest, SameTagTwice) {
  const HtmlDocument doc = MustParse("<p><b>one</b> two <b>three</b></p>");
  EXPECT_EQ(doc.RenderIdentity(), "<p><b>one</b> two <b>three</b></p>");
  EXPECT_EQ(RenderChecked(doc, Reversed(doc)),
            "<p><b>three</b> two <b>one</b></p>");
}

TEST(HtmlDocumentTest, OneElementSplitByReorderingIsWrittenTwice) {
  const HtmlDocument doc = MustParse("<p><b class=\"k\">x y</b> z</p>");
  ASSERT_EQ(doc.blocks().size(), 1u);
  EXPECT_EQ(RenderChecked(doc, {Permute(doc.blocks()[0], {0, 2, 1})}),
            "<p><b class=\"k\">x</b> z <b class=\"k\">y</b></p>");
  // Consecutive words of one element share it.
  EXPECT_EQ(RenderChecked(doc, {Permute(doc.blocks()[0], {2, 1, 0})}),
            "<p>z <b class=\"k\">y x</b></p>");
}

TEST(HtmlDocumentTest, AttributesWithQuotesAndAmpersands) {
  const std::string html =
      "<p>Go <a href=\"a.html?x=1&amp;y=2\" title='say \"hi\"'>home</a> "
      "now</p>";
  const HtmlDocument doc = MustParse(html);
  ASSERT_EQ(doc.blocks().size(), 1u);
  EXPECT_EQ(doc.blocks()[0].text, "Go home now");
  EXPECT_EQ(doc.RenderIdentity(), html);
  EXPECT_EQ(RenderChecked(doc, Upper(doc)),
            "<p>GO <a href=\"a.html?x=1&amp;y=2\" title='say \"hi\"'>HOME</a> "
            "NOW</p>");
}

TEST(HtmlDocumentTest, VoidElementsAtStartMiddleAndEnd) {
  const std::string html =
      "<p><img src=\"a.png\"> Hello <input type=\"text\"> big<wbr>world "
      "<img alt=\"end\"></p>";
  const HtmlDocument doc = MustParse(html);
  ASSERT_EQ(doc.blocks().size(), 1u);
  const Block& block = doc.blocks()[0];
  EXPECT_EQ(block.text, " Hello  bigworld ");
  ASSERT_EQ(block.atoms.size(), 4u);
  EXPECT_EQ(block.atoms[0].begin, 0u);
  EXPECT_EQ(block.atoms[0].bytes, "<img src=\"a.png\">");
  EXPECT_EQ(block.atoms[2].begin, 11u);  // between "big" and "world"
  EXPECT_EQ(block.atoms[3].begin, 17u);
  // An atom inside a word follows the word; whitespace on each side of an
  // atom is the translation's whitespace there (none at its edges here).
  EXPECT_EQ(doc.RenderIdentity(),
            "<p><img src=\"a.png\"> Hello <input type=\"text\"> "
            "bigworld<wbr> <img alt=\"end\"></p>");
  EXPECT_EQ(RenderChecked(doc, Upper(doc)),
            "<p><img src=\"a.png\">HELLO <input type=\"text\">"
            "BIGWORLD<wbr><img alt=\"end\"></p>");
  // Reordered: atoms before a word's source go before it (as Bergamot).
  EXPECT_EQ(RenderChecked(doc, Reversed(doc)),
            "<p><img src=\"a.png\"><input type=\"text\">bigworld<wbr> "
            "Hello<img alt=\"end\"></p>");
}

TEST(HtmlDocumentTest, BrBoundsBlocks) {
  const std::string html = "<p>Line one<br>Line two<br/></p>";
  const HtmlDocument doc = MustParse(html);
  EXPECT_EQ(Texts(doc), (std::vector<std::string>{"Line one", "Line two"}));
  EXPECT_EQ(doc.RenderIdentity(), html);
  EXPECT_EQ(RenderChecked(doc, Reversed(doc)),
            "<p>one Line<br>two Line<br/></p>");
}

TEST(HtmlDocumentTest, EntitiesAreDecodedAndEscapedAgain) {
  const HtmlDocument doc =
      MustParse("<p>A&#8212;B &nbsp; &copy; 2024 & more &amp; less</p>");
  ASSERT_EQ(doc.blocks().size(), 1u);
  EXPECT_EQ(doc.blocks()[0].text, "A\u2014B \u00a0 \u00a9 2024 & more & less");
  EXPECT_EQ(RenderChecked(doc, Upper(doc)),
            "<p>A\u2014B \u00a0 \u00a9 2024 &amp; MORE &amp; LESS</p>");
}

TEST(HtmlDocumentTest, LessThanAndAmpersandSurvive) {
  const HtmlDocument doc =
      MustParse("<p>a <= b</p><p>x &lt;= y &amp;&amp; z</p>");
  EXPECT_EQ(Texts(doc), (std::vector<std::string>{"a <= b", "x <= y && z"}));
  EXPECT_EQ(RenderChecked(doc, Upper(doc)),
            "<p>A &lt;= B</p><p>X &lt;= Y &amp;&amp; Z</p>");
}

TEST(HtmlDocumentTest, ScriptAndStyleAreKept) {
  const std::string html =
      "<div><script>if (a < b) { s = \"</div>\"; }</script><p>Hi there</p>"
      "<style>p > a::after { content: \"</div>\"; }</style></div>";
  const HtmlDocument doc = MustParse(html);
  EXPECT_EQ(Texts(doc), (std::vector<std::string>{"Hi there"}));
  EXPECT_EQ(doc.RenderIdentity(), html);
  EXPECT_EQ(RenderChecked(doc, Upper(doc)),
            "<div><script>if (a < b) { s = \"</div>\"; }</script><p>HI "
            "THERE</p><style>p > a::after { content: \"</div>\"; }</style>"
            "</div>");
}

TEST(HtmlDocumentTest, TranslateNoIsKept) {
  const std::string html =
      "<p>Use <span translate=\"no\">Foo Bar</span> here.</p>"
      "<div translate=\"no\"><p>Keep this</p></div>"
      "<p>Run <code>make all</code> now</p><pre>pre text</pre>"
      "<textarea>typed</textarea>";
  const HtmlDocument doc = MustParse(html);
  // The model sees the kept words so the sentence stays whole.
  EXPECT_EQ(Texts(doc), (std::vector<std::string>{"Use Foo Bar here.",
                                                  "Run make all now"}));
  EXPECT_EQ(doc.RenderIdentity(), html);
  EXPECT_EQ(doc.Render(Upper(doc)),
            "<p>USE <span translate=\"no\">Foo Bar</span> HERE.</p>"
            "<div translate=\"no\"><p>Keep this</p></div>"
            "<p>RUN <code>make all</code> NOW</p><pre>pre text</pre>"
            "<textarea>typed</textarea>");
  // Reordered: the kept element goes where its first word went.
  EXPECT_EQ(doc.Render(Reversed(doc)),
            "<p>here. <span translate=\"no\">Foo Bar</span> Use</p>"
            "<div translate=\"no\"><p>Keep this</p></div>"
            "<p>now <code>make all</code> Run</p><pre>pre text</pre>"
            "<textarea>typed</textarea>");
}

TEST(HtmlDocumentTest, CommentsAndDoctypeAreKept) {
  const std::string html =
      "<!DOCTYPE html>\n<!-- top --><html><head><title>A title</title>"
      "</head><body><p>Hello <!-- inner --> world</p></body></html>\n";
  const HtmlDocument doc = MustParse(html);
  EXPECT_EQ(Texts(doc), (std::vector<std::string>{"A title", "Hello  world"}));
  EXPECT_EQ(doc.RenderIdentity(), html);
  EXPECT_EQ(doc.Render(Upper(doc)),
            "<!DOCTYPE html>\n<!-- top --><html><head><title>A TITLE</title>"
            "</head><body><p>HELLO <!-- inner -->WORLD</p></body></html>\n");
}

TEST(HtmlDocumentTest, TablesAndLists) {
  const std::string html =
      "<table>\n <tr><th>Name</th><td>Two <b>three</b></td></tr>\n</table>\n"
      "<ul>\n  <li>First</li>\n  <li>Second\n    <ol><li>Nested "
      "item</li></ol>\n  </li>\n</ul>";
  const HtmlDocument doc = MustParse(html);
  EXPECT_EQ(Texts(doc), (std::vector<std::string>{"Name", "Two three", "First",
                                                  "Second", "Nested item"}));
  EXPECT_EQ(doc.RenderIdentity(), html);
  EXPECT_EQ(
      RenderChecked(doc, Upper(doc)),
      "<table>\n <tr><th>NAME</th><td>TWO <b>THREE</b></td></tr>\n"
      "</table>\n<ul>\n  <li>FIRST</li>\n  <li>SECOND\n    <ol><li>NESTED "
      "ITEM</li></ol>\n  </li>\n</ul>");
}

TEST(HtmlDocumentTest, MalformedMarkupIsRepaired) {
  const std::string html =
      "<P>Unclosed <B>bold</P><p>stray</i> end</p><DIV>Upper <EM>case</EM>"
      "</DIV>";
  const HtmlDocument doc = MustParse(html);
  EXPECT_EQ(Texts(doc), (std::vector<std::string>{"Unclosed bold", "stray end",
                                                  "Upper case"}));
  const Block& first = doc.blocks()[0];
  ASSERT_EQ(first.spans.size(), 1u);
  EXPECT_EQ(first.spans[0].opening_tag, "<B>");
  EXPECT_EQ(first.spans[0].closing_tag, "");  // none in the source
  const std::string out = RenderChecked(doc, Upper(doc));
  EXPECT_EQ(out.substr(0, 29), "<P>UNCLOSED <B>BOLD</P><p>STR") << out;
  EXPECT_EQ(out.find("</i>"), std::string::npos) << out;  // dropped
  EXPECT_NE(out.find("<DIV>UPPER <EM>CASE</EM></DIV>"), std::string::npos)
      << out;
}

TEST(HtmlDocumentTest, WhitespaceAroundBlocksIsKept) {
  const std::string html = "<div>\n  <p>\n   Hello\tworld  \n  </p>\r\n</div>";
  const HtmlDocument doc = MustParse(html);
  EXPECT_EQ(Texts(doc), (std::vector<std::string>{"Hello\tworld"}));
  EXPECT_EQ(doc.RenderIdentity(), html);
  BlockTranslation translation;
  translation.text = "Hallo Welt";
  translation.alignment = {{0, 5, 0, 5}, {5, 10, 6, 11}};
  EXPECT_EQ(RenderChecked(doc, {translation}),
            "<div>\n  <p>\n   Hallo Welt  \n  </p>\r\n</div>");
}

TEST(HtmlDocumentTest, WithoutAlignmentWholeBlockElementsStay) {
  const HtmlDocument doc = MustParse(
      "<p><a href=\"x\">Click <b>here</b><img src=i></a></p>"
      "<p>Some <i>part</i> only</p>");
  std::vector<BlockTranslation> translations(2);
  translations[0].text = "Hier klicken";
  translations[1].text = "Nur ein Teil";
  EXPECT_EQ(doc.Render(translations),
            "<p><a href=\"x\">Hier klicken<img src=i></a></p>"
            "<p>Nur ein Teil</p>");
}

TEST(HtmlDocumentTest, UnalignedWordsJoinTheElementAroundThem) {
  const HtmlDocument doc = MustParse("<p>a <b>big dog</b> runs</p>");
  BlockTranslation translation;
  translation.text = "ein grosser alter Hund rennt";
  // "alter" is unaligned (empty source range).
  translation.alignment = {{0, 3, 0, 1},
                           {4, 11, 2, 5},
                           {12, 17, 0, 0},
                           {18, 22, 6, 9},
                           {23, 28, 10, 14}};
  EXPECT_EQ(RenderChecked(doc, {translation}),
            "<p>ein <b>grosser alter Hund</b> rennt</p>");
}

TEST(HtmlDocumentTest, PiecesOfAWordKeepOneSpan) {
  const HtmlDocument doc = MustParse("<p>the <b>bike</b> is red</p>");
  BlockTranslation translation;
  translation.text = "das Fahrrad ist rot";
  // The pieces "Fahr", "r", "ad" align to the, bike, bike: the majority
  // gives the whole word <b>.
  translation.alignment = {{0, 3, 0, 3},  {4, 8, 0, 3},    {8, 9, 4, 8},
                           {9, 11, 4, 8}, {12, 15, 9, 11}, {16, 19, 12, 15}};
  EXPECT_EQ(RenderChecked(doc, {translation}),
            "<p>das <b>Fahrrad</b> ist rot</p>");
}

TEST(HtmlDocumentTest, MissingTranslationsKeepTheSource) {
  const std::string html = "<p>one</p><p>two <b>2</b></p>";
  const HtmlDocument doc = MustParse(html);
  BlockTranslation first;
  first.text = "eins";
  first.alignment = {{0, 4, 0, 3}};
  EXPECT_EQ(doc.Render({first}), "<p>eins</p><p>two <b>2</b></p>");
}

TEST(HtmlDocumentTest, EmptyAndTextlessDocuments) {
  for (const std::string html :
       {"", "<html></html>", "<p></p>", "<img src=x>", "<!-- c -->", "   ",
        "<script>x</script>", "&", "<", "</p>", "<p>&"}) {
    const HtmlDocument doc = MustParse(html);
    const std::string out = doc.RenderIdentity();
    if (html == "&" || html == "<p>&") {
      EXPECT_EQ(Texts(doc), std::vector<std::string>{"&"});
      EXPECT_EQ(out, html + "amp;");
    } else if (html == "<") {
      EXPECT_EQ(Texts(doc), std::vector<std::string>{"<"});
      EXPECT_EQ(out, "&lt;");
    } else {
      EXPECT_TRUE(doc.blocks().empty()) << html;
      EXPECT_EQ(out, html);
    }
  }
}

TEST(HtmlDocumentTest, EscapeHtmlText) {
  EXPECT_EQ(EscapeHtmlText("a <b> & \"c\""), "a &lt;b&gt; &amp; \"c\"");
}

}  // namespace
}  // namespace ts::core::text
