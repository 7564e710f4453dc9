// Token byte ranges of MarianTokenizer (EncodeSourceWithRanges,
// DecodeTargetWithRanges) on the demo model's tokenizer, and AlignTokens.
#include "core/text/token_spans.h"

#include <string>
#include <vector>

#include "core/text/tokenizer.h"
#include "gtest/gtest.h"

namespace ts::core::text {
namespace {

class TokenRangesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tokenizer = MarianTokenizer::Load(TS_DEMO_MODEL_DIR);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = new MarianTokenizer(*std::move(tokenizer));
  }
  static void TearDownTestSuite() { delete tokenizer_; }
  static MarianTokenizer* tokenizer_;
};
MarianTokenizer* TokenRangesTest::tokenizer_ = nullptr;

// The pieces' ranges are ascending, disjoint, inside the text, and every
// byte outside them is whitespace.
void ExpectCover(const std::string& text, const std::vector<TokenRange>& r) {
  size_t position = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_LE(r[i].begin, r[i].end) << i;
    EXPECT_LE(r[i].end, text.size()) << i;
    EXPECT_GE(r[i].begin, position) << i;
    for (size_t k = position; k < r[i].begin && k < text.size(); ++k) {
      EXPECT_EQ(text[k], ' ') << "uncovered byte " << k << " of " << text;
    }
    position = std::max(position, r[i].end);
  }
  for (size_t k = position; k < text.size(); ++k) {
    EXPECT_EQ(text[k], ' ') << "uncovered byte " << k << " of " << text;
  }
}

TEST_F(TokenRangesTest, SourceRangesAgreeWithIds) {
  for (const std::string text :
       {"A man in an orange hat starring at something.",
        "Zwei Männer über größere Straßen à la café — naïve “quotes”.",
        "  extra   spaces  ", "", "x"}) {
    auto ids = tokenizer_->EncodeSource(text);
    auto encoded = tokenizer_->EncodeSourceWithRanges(text);
    ASSERT_TRUE(ids.ok() && encoded.ok());
    EXPECT_EQ(encoded->ids, *ids) << text;  // EncodeSource unchanged
    ASSERT_EQ(encoded->ranges.size(), ids->size());
    // </s>: empty at the end.
    EXPECT_EQ(encoded->ranges.back().begin, text.size());
    EXPECT_EQ(encoded->ranges.back().end, text.size());
    ExpectCover(text, encoded->ranges);
    // Each piece is the range's bytes with a leading space as "▁".
    const std::vector<std::string> pieces = tokenizer_->Pieces(encoded->ids);
    for (size_t i = 0; i + 1 < pieces.size(); ++i) {
      std::string bytes =
          text.substr(encoded->ranges[i].begin,
                      encoded->ranges[i].end - encoded->ranges[i].begin);
      std::string piece = pieces[i];
      const std::string mark = "\u2581";
      if (piece.rfind(mark, 0) == 0) piece = piece.substr(mark.size());
      while (!bytes.empty() && bytes.front() == ' ') bytes.erase(0, 1);
      if (ids->at(i) != tokenizer_->unk_id()) {
        EXPECT_EQ(bytes, piece) << text << " piece " << i;
      }
    }
  }
}

TEST_F(TokenRangesTest, SourceRangesPointAtTheUnnormalizedBytes) {
  // NFKC folds the ligature "ﬁ" (3 bytes) into "fi" and the full-width
  // "Ａ" into "A": a range covers the input bytes the piece came from.
  const std::string text = "a \xEF\xAC\x81ne \xEF\xBC\xA1pple";
  auto encoded = tokenizer_->EncodeSourceWithRanges(text);
  ASSERT_TRUE(encoded.ok());
  ExpectCover(text, encoded->ranges);
  auto plain = tokenizer_->EncodeSource("a fine Apple");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(encoded->ids, *plain);  // the same pieces after folding
  // The ligature's bytes [2, 5) lie in one piece's range (SentencePiece
  // gives a character folded into several to one of the pieces).
  int holders = 0;
  for (const TokenRange& r : encoded->ranges) {
    if (r.begin < 5 && 2 < r.end) {
      EXPECT_TRUE(r.begin <= 2 && r.end >= 5) << r.begin << "-" << r.end;
      ++holders;
    }
  }
  EXPECT_EQ(holders, 1);
}

TEST_F(TokenRangesTest, LanguageTokenKeepsItsBytes) {
  const std::string text = ">>deu<< Two dogs.";
  auto encoded = tokenizer_->EncodeSourceWithRanges(text);
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(encoded->ids, *tokenizer_->EncodeSource(text));
  EXPECT_EQ(encoded->ranges[0].begin, 0u);
  EXPECT_EQ(encoded->ranges[0].end, 7u);
  ExpectCover(text, encoded->ranges);
  // The space after the language token is no piece's (normalization drops
  // leading whitespace).
  EXPECT_EQ(encoded->ranges[1].begin, 8u);
}

TEST_F(TokenRangesTest, InvalidUtf8IsRefused) {
  EXPECT_FALSE(tokenizer_->EncodeSourceWithRanges("\xff").ok());
}

TEST_F(TokenRangesTest, TargetRangesAgreeWithDecode) {
  for (const std::string text :
       {"Ein Mann mit einem orangefarbenen Hut starrt etwas an.",
        "Zwei Männer über größere Straßen — „Zitat“."}) {
    auto encoded = tokenizer_->EncodeSource(text);  // shared vocabulary
    ASSERT_TRUE(encoded.ok());
    std::vector<int> ids = *encoded;
    ids.push_back(tokenizer_->pad_id());
    ids.push_back(-5);  // outside the vocabulary: skipped
    const DecodedTarget decoded = tokenizer_->DecodeTargetWithRanges(ids);
    EXPECT_EQ(decoded.text, tokenizer_->DecodeTarget(ids));
    ASSERT_EQ(decoded.ranges.size(), ids.size());
    ExpectCover(decoded.text, decoded.ranges);
    // Decoding each prefix gives the text up to that token's end.
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::string prefix =
          tokenizer_->DecodeTarget(absl::Span<const int>(ids.data(), i + 1));
      EXPECT_EQ(decoded.text.substr(0, decoded.ranges[i].end), prefix) << i;
    }
    // </s>, <pad> and the unknown id: empty ranges at the end.
    for (size_t i = ids.size() - 3; i < ids.size(); ++i) {
      EXPECT_EQ(decoded.ranges[i].begin, decoded.text.size());
      EXPECT_EQ(decoded.ranges[i].end, decoded.text.size());
    }
  }
}

TEST(AlignTokensTest, TakesTheArgmaxSourceRange) {
  const std::vector<TokenRange> source = {{0, 1}, {1, 5}, {5, 5}};
  const std::vector<TokenRange> target = {{0, 3}, {3, 8}, {8, 8}};
  const std::vector<TokenAlignment> alignment =
      AlignTokens(source, target, {1, 0, 2});
  ASSERT_EQ(alignment.size(), 2u);  // the empty target token is left out
  EXPECT_EQ(alignment[0].target_begin, 0u);
  EXPECT_EQ(alignment[0].source_begin, 1u);
  EXPECT_EQ(alignment[0].source_end, 5u);
  EXPECT_EQ(alignment[1].source_begin, 0u);
  EXPECT_EQ(alignment[1].source_end, 1u);
  // An index outside the source: unaligned.
  const auto unaligned = AlignTokens(source, target, {7, -1});
  ASSERT_EQ(unaligned.size(), 2u);
  EXPECT_EQ(unaligned[0].source_begin, unaligned[0].source_end);
}

}  // namespace
}  // namespace ts::core::text
