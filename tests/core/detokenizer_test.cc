// IncrementalDetokenizer (core/text/incremental_detokenizer.h): the deltas
// joined equal MarianTokenizer::DecodeTarget byte for byte, every delta is
// valid UTF-8 and never changes afterwards. Checked on the demo model's golden
// greedy outputs and, for byte-fallback pieces (which the demo vocabulary
// does not have), on a hand-built SentencePiece model with all 256 byte
// pieces, written as a ModelProto by the test itself.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/model/marian_model.h"
#include "core/text/incremental_detokenizer.h"
#include "core/translator.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/core/json_lines.h"

namespace ts::core {
namespace {

// Feeds `ids` one at a time; returns the deltas of Add for each id, then the
// one of Finish. Checks on the way that each delta is valid UTF-8
// (MarianTokenizer's check, IsValidUtf8) and that
// the text so far is a prefix of `final_text` (nothing handed out changes).
std::vector<std::string> Stream(const MarianTokenizer& tokenizer,
                                const std::vector<int>& ids,
                                const std::string& final_text) {
  IncrementalDetokenizer detokenizer(tokenizer);
  std::vector<std::string> deltas;
  std::string joined;
  for (int id : ids) {
    deltas.push_back(detokenizer.Add(id));
    EXPECT_TRUE(IsValidUtf8(deltas.back())) << "after id " << id;
    joined += deltas.back();
    EXPECT_EQ(final_text.compare(0, joined.size(), joined), 0)
        << "text so far \"" << joined << "\" is not a prefix of \""
        << final_text << "\"";
  }
  deltas.push_back(detokenizer.Finish());
  EXPECT_TRUE(IsValidUtf8(deltas.back()));
  EXPECT_EQ(detokenizer.ids(), ids);
  return deltas;
}

std::string Join(const std::vector<std::string>& deltas) {
  std::string text;
  for (const std::string& delta : deltas) text += delta;
  return text;
}

// --- Protocol buffer wire format, for the hand-built ModelProto ----------

void PutVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

void PutVarintField(int field, uint64_t value, std::string* out) {
  PutVarint(static_cast<uint64_t>(field) << 3, out);  // wire type 0
  PutVarint(value, out);
}

void PutBytesField(int field, const std::string& bytes, std::string* out) {
  PutVarint((static_cast<uint64_t>(field) << 3) | 2, out);
  PutVarint(bytes.size(), out);
  out->append(bytes);
}

void PutFloatField(int field, float value, std::string* out) {
  PutVarint((static_cast<uint64_t>(field) << 3) | 5, out);
  char bytes[4];
  std::memcpy(bytes, &value, 4);  // little-endian on x86
  out->append(bytes, 4);
}

// sentencepiece_model.proto: SentencePiece.Type.
enum PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6 };

std::string ByteName(int byte) {
  char name[8];
  std::snprintf(name, sizeof(name), "<0x%02X>", byte);
  return name;
}

// A unigram ModelProto with byte_fallback: <unk>, <s>, </s>, the 256 byte
// pieces and `words`; identity normalization with the default dummy prefix.
std::string ByteFallbackModel(const std::vector<std::string>& words) {
  std::string model;
  auto add_piece = [&model](const std::string& piece, float score,
                            PieceType type) {
    std::string entry;
    PutBytesField(1, piece, &entry);  // piece
    PutFloatField(2, score, &entry);  // score
    PutVarintField(3, type, &entry);  // type
    PutBytesField(1, entry, &model);  // ModelProto.pieces
  };
  add_piece("<unk>", 0.0f, kUnknown);
  add_piece("<s>", 0.0f, kControl);
  add_piece("</s>", 0.0f, kControl);
  for (int b = 0; b < 256; ++b) add_piece(ByteName(b), 0.0f, kByte);
  float score = -1.0f;
  for (const std::string& word : words) add_piece(word, score -= 0.1f, kNormal);
  std::string trainer;
  PutVarintField(3, 1, &trainer);                       // model_type: UNIGRAM
  PutVarintField(4, 3 + 256 + words.size(), &trainer);  // vocab_size
  PutVarintField(35, 1, &trainer);                      // byte_fallback
  PutBytesField(2, trainer, &model);                    // trainer_spec
  std::string normalizer;
  PutBytesField(1, "identity", &normalizer);  // name
  PutVarintField(3, 1, &normalizer);          // add_dummy_prefix
  PutVarintField(4, 1, &normalizer);          // remove_extra_whitespaces
  PutVarintField(5, 1, &normalizer);          // escape_whitespaces
  PutBytesField(3, normalizer, &model);       // normalizer_spec
  return model;
}

// Pieces of the hand-built model, besides the special and byte pieces.
const std::vector<std::string>& Words() {
  static const auto* words = new std::vector<std::string>{
      "\xE2\x96\x81"
      "Ein",
      "\xE2\x96\x81Mann",
      "\xE2\x96\x81",
      "es",
      "\xC3\xA4",  // ä
      "\xE2\x96\x81gro",
      "\xC3\x9F",
      ".",
      "\xE2\x96\x81\xC3\xBC"
      "ber"};
  return *words;
}

class ByteFallbackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string((std::filesystem::temp_directory_path() /
                            ("detokenizer_test_" + std::to_string(getpid())))
                               .string());
    std::filesystem::create_directories(*dir_);
    const std::string spm = ByteFallbackModel(Words());
    for (const char* name : {"source.spm", "target.spm"}) {
      std::ofstream(*dir_ + "/" + name, std::ios::binary) << spm;
    }
    // vocab.json: Marian ids, in another order than the SentencePiece ids;
    // "▁Fremd" is a vocabulary entry the SentencePiece model does not know.
    nlohmann::json vocab = {{"</s>", 0}, {"<unk>", 1}, {"<pad>", 2}};
    int next = 3;
    for (const std::string& word : Words()) vocab[word] = next++;
    vocab
        ["\xE2\x96\x81"
         "Fremd"] = next++;
    for (int b = 0; b < 256; ++b) vocab[ByteName(b)] = next++;
    std::ofstream(*dir_ + "/vocab.json") << vocab.dump();
    auto tokenizer = MarianTokenizer::Load(*dir_);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = new MarianTokenizer(std::move(*tokenizer));
    vocab_ = new nlohmann::json(vocab);
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete vocab_;
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  static int Id(const std::string& piece) { return (*vocab_)[piece]; }
  static int Byte(int b) { return Id(ByteName(b)); }
  static const MarianTokenizer& tokenizer() { return *tokenizer_; }

  // Streams `ids`, checks the joined deltas against DecodeTarget and
  // returns the deltas.
  static std::vector<std::string> StreamChecked(const std::vector<int>& ids) {
    const std::string unary = tokenizer().DecodeTarget(ids);
    std::vector<std::string> deltas = Stream(tokenizer(), ids, unary);
    EXPECT_EQ(Join(deltas), unary);
    return deltas;
  }

  static std::string* dir_;
  static MarianTokenizer* tokenizer_;
  static nlohmann::json* vocab_;
};

std::string* ByteFallbackTest::dir_ = nullptr;
MarianTokenizer* ByteFallbackTest::tokenizer_ = nullptr;
nlohmann::json* ByteFallbackTest::vocab_ = nullptr;

const std::string kEin =
    "\xE2\x96\x81"
    "Ein";
const std::string kMann =
    "\xE2\x96\x81"
    "Mann";
const std::string kFffd = "\xEF\xBF\xBD";  // U+FFFD

TEST_F(ByteFallbackTest, CharacterOfBytePiecesWaitsUntilComplete) {
  // あ = E3 81 82.
  const std::vector<std::string> deltas = StreamChecked(
      {Id(kEin), Byte(0xE3), Byte(0x81), Byte(0x82), Id(kMann), 0});
  EXPECT_EQ(deltas, (std::vector<std::string>{"Ein", "", "", "\xE3\x81\x82",
                                              " Mann", "", ""}));
  // Four bytes: U+1F600.
  EXPECT_EQ(
      StreamChecked(
          {Byte(0xF0), Byte(0x9F), Byte(0x98), Byte(0x80), Id("."), 0}),
      (std::vector<std::string>{"", "", "", "\xF0\x9F\x98\x80", ".", "", ""}));
}

TEST_F(ByteFallbackTest, BytesThatNeverFormACharacterBecomeU_FFFD) {
  // A lead byte cut short by a word: SentencePiece gives U+FFFD per byte.
  EXPECT_EQ(StreamChecked({Id(kEin), Byte(0xE3), Byte(0x81), Id(kMann), 0}),
            (std::vector<std::string>{"Ein", "", "", kFffd + kFffd + " Mann",
                                      "", ""}));
  // Cut short by the end of the sequence: Finish hands them out.
  EXPECT_EQ(StreamChecked({Id(kEin), Byte(0xC3)}),
            (std::vector<std::string>{"Ein", "", kFffd}));
  // A lone continuation byte cannot become anything else, but waits too.
  EXPECT_EQ(StreamChecked({Byte(0x81), Id("."), 0}),
            (std::vector<std::string>{"", kFffd + ".", "", ""}));
}

TEST_F(ByteFallbackTest, SpecialAndUnknownIdsAsTheUnaryText) {
  // </s>, <pad> and ids outside the vocabulary are dropped.
  EXPECT_EQ(StreamChecked({2, Id(kEin), 2, 100000, -1, Id("es"), 0}),
            (std::vector<std::string>{"", "Ein", "", "", "", "es", "", ""}));
  // <unk> reads " ⁇ " (SentencePiece's unk surface).
  const std::vector<std::string> deltas =
      StreamChecked({Id(kEin), 1, Id("."), 0});
  EXPECT_EQ(Join(deltas), "Ein \xE2\x81\x87 .");
  // A word mark alone first, a piece SentencePiece does not know: whatever
  // DecodeTarget makes of them (StreamChecked compares).
  StreamChecked({Id("\xE2\x96\x81"), Id(kMann),
                 Id("\xE2\x96\x81"
                    "Fremd"),
                 Id("\xC3\xA4"), 0});
}

// Random id sequences over the whole vocabulary (bytes likely, so partial
// characters are common; up to 60 ids, so the detokenizer's anchor moves
// many times): the deltas never change what they handed out and join to the
// unary text.
TEST_F(ByteFallbackTest, RandomSequencesJoinToTheUnaryText) {
  std::mt19937 rng(7);
  const int vocab = tokenizer().target_vocab_size();
  std::uniform_int_distribution<int> any_id(0, vocab - 1);
  std::uniform_int_distribution<int> length(1, 60);
  // Byte pieces of multi-byte characters (leads and continuations) and ASCII
  // ones (a space, a letter).
  const std::vector<int> bytes = {0xC3, 0xA4, 0xE3, 0x81, 0x82, 0xF0, 0x9F,
                                  0x98, 0x80, 0xBC, 0xE2, 0x96, 0x20, 0x41};
  std::uniform_int_distribution<int> any_byte(0, bytes.size() - 1);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<int> ids;
    const int n = length(rng);
    for (int i = 0; i < n; ++i) {
      ids.push_back(rng() % 2 == 0 ? Byte(bytes[any_byte(rng)]) : any_id(rng));
    }
    SCOPED_TRACE(::testing::PrintToString(ids));
    StreamChecked(ids);
    if (HasFailure()) return;
  }
}

// The demo model ---------------------------------------------------------

class DemoModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tokenizer = MarianTokenizer::Load(TS_DEMO_MODEL_DIR);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = new MarianTokenizer(std::move(*tokenizer));
  }
  static void TearDownTestSuite() { delete tokenizer_; }
  static MarianTokenizer* tokenizer_;
};

MarianTokenizer* DemoModelTest::tokenizer_ = nullptr;

// The golden greedy outputs, id by id: the deltas join to the golden text,
// and all of it is out by the final </s> (the demo vocabulary has no byte
// pieces, so nothing waits for Finish).
TEST_F(DemoModelTest, GoldenGreedyOutputsStreamToTheGoldenText) {
  const std::vector<nlohmann::json> golden = ReadJsonLines(
      std::string(TS_DEMO_MODEL_DIR) + "/golden/translations.jsonl");
  ASSERT_EQ(golden.size(), 200u);
  int non_ascii = 0;
  for (const nlohmann::json& entry : golden) {
    const std::vector<int> ids = entry["greedy_ids"];
    const std::string text = entry["greedy_text"];
    std::vector<std::string> deltas = Stream(*tokenizer_, ids, text);
    EXPECT_EQ(Join(deltas), text) << entry["source"];
    EXPECT_EQ(deltas.back(), "") << entry["source"];
    // One delta per id; non-empty for every piece but </s>.
    ASSERT_EQ(deltas.size(), ids.size() + 1);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] != tokenizer_->target_eos_id()) {
        EXPECT_NE(deltas[i], "")
            << "id " << ids[i] << " of " << entry["source"];
      }
    }
    for (char c : text) non_ascii += (static_cast<unsigned char>(c) >= 0x80);
  }
  EXPECT_GT(non_ascii, 0) << "the golden texts have umlauts";
}

TEST_F(DemoModelTest, RandomSequencesJoinToTheUnaryText) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> any_id(
      0, tokenizer_->target_vocab_size() - 1);
  for (int trial = 0; trial < 500; ++trial) {
    std::vector<int> ids(1 + rng() % 200);
    for (int& id : ids) id = any_id(rng);
    const std::string unary = tokenizer_->DecodeTarget(ids);
    SCOPED_TRACE(::testing::PrintToString(ids));
    EXPECT_EQ(Join(Stream(*tokenizer_, ids, unary)), unary);
    if (HasFailure()) return;
  }
}

// Translator::Translate's token callback feeding one detokenizer per source,
// the golden sources in batches of 50: the streamed ids are the golden greedy
// ids and the streamed text is the golden text.
TEST_F(DemoModelTest, TranslatorStreamsTheGoldenGreedyOutputs) {
  const std::vector<nlohmann::json> golden = ReadJsonLines(
      std::string(TS_DEMO_MODEL_DIR) + "/golden/translations.jsonl");
  ASSERT_EQ(golden.size(), 200u);
  auto model = MarianModel::Load(TS_DEMO_MODEL_DIR);
  ASSERT_TRUE(model.ok()) << model.status();
  TranslationOptions options;
  options.beam_size = 1;
  options.max_length = 128;  // as the golden files were made
  auto resolved = (*model)->ResolveOptions(options);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  Translator translator(*model);
  int matches = 0;
  for (size_t start = 0; start < golden.size(); start += 50) {
    std::vector<std::vector<int>> sources;
    for (size_t i = start; i < start + 50; ++i) {
      sources.push_back(golden[i]["source_ids"].get<std::vector<int>>());
    }
    std::vector<IncrementalDetokenizer> detokenizers(
        sources.size(), IncrementalDetokenizer((*model)->tokenizer()));
    std::vector<std::string> texts(sources.size());
    auto results = translator.Translate(
        sources, *resolved, {}, [&](int source, int token) {
          texts[source] += detokenizers[source].Add(token);
        });
    ASSERT_TRUE(results.ok()) << results.status();
    for (size_t b = 0; b < sources.size(); ++b) {
      const nlohmann::json& expected = golden[start + b];
      texts[b] += detokenizers[b].Finish();
      EXPECT_EQ(detokenizers[b].ids(), (*results)[b].hypotheses[0].ids);
      EXPECT_EQ(detokenizers[b].ids(),
                expected["greedy_ids"].get<std::vector<int>>());
      EXPECT_EQ(texts[b], expected["greedy_text"].get<std::string>());
      matches += texts[b] == expected["greedy_text"].get<std::string>();
    }
  }
  std::printf("streamed text equals golden: %d/200\n", matches);
}

TEST(StableTextLengthTest, HoldsBackReplacementsAndCutCharacters) {
  EXPECT_EQ(StableTextLength(""), 0u);
  EXPECT_EQ(StableTextLength("abc"), 3u);
  EXPECT_EQ(StableTextLength("a\xC3\xA4"), 3u);      // aä
  EXPECT_EQ(StableTextLength("a\xEF\xBF\xBD"), 1u);  // a U+FFFD
  EXPECT_EQ(StableTextLength("\xEF\xBF\xBD\xEF\xBF\xBD"), 0u);
  EXPECT_EQ(StableTextLength("\xEF\xBF\xBDx"), 4u);      // settled
  EXPECT_EQ(StableTextLength("a\xE3\x81"), 1u);          // cut あ
  EXPECT_EQ(StableTextLength("a\xF0\x9F\x98"), 1u);      // cut U+1F600
  EXPECT_EQ(StableTextLength("a\xF0\x9F\x98\x80"), 5u);  // whole
}

}  // namespace
}  // namespace ts::core
