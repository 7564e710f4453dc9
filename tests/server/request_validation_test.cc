// Request validation against the demo model's real tokenizer and config:
// every INVALID_ARGUMENT names the limit it enforces.
#include "server/request_validation.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ts::server {
namespace {

using ::testing::HasSubstr;

class RequestValidationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = core::MarianModel::Load(TS_DEMO_MODEL_DIR);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = new std::shared_ptr<const core::MarianModel>(*std::move(model));
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }

  static RequestLimits Limits() {
    RequestLimits limits;
    limits.max_texts_per_request = 3;
    limits.max_input_tokens = 12;
    limits.max_length_cap = 100;
    limits.max_beam_size = 6;
    limits.max_text_bytes = 200;
    limits.max_length_factor = 2.5;
    return limits;
  }

  RequestValidator validator_{*model_, Limits()};

  grpc::Status Translate(const transformer::v1::TranslateRequest& request) {
    TranslateWork work;
    return validator_.ValidateTranslate(request, &work);
  }
  static transformer::v1::TranslateRequest OneText(const std::string& text) {
    transformer::v1::TranslateRequest request;
    request.add_texts(text);
    return request;
  }

  static std::shared_ptr<const core::MarianModel>* model_;
};

std::shared_ptr<const core::MarianModel>* RequestValidationTest::model_ =
    nullptr;

void ExpectInvalid(const grpc::Status& status, const std::string& needle) {
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr(needle));
}

TEST_F(RequestValidationTest, ValidRequestIsTokenizedAndResolved) {
  transformer::v1::TranslateRequest request;
  request.add_texts("A man is riding a bike.");
  request.add_texts("Two dogs.");
  TranslateWork work;
  ASSERT_TRUE(validator_.ValidateTranslate(request, &work).ok());
  ASSERT_EQ(work.texts.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    auto expected = (*model_)->tokenizer().EncodeSource(request.texts(i));
    ASSERT_TRUE(expected.ok());
    ASSERT_EQ(work.texts[i].segments.size(), 1u);
    const SegmentWork& segment = work.texts[i].segments[0];
    EXPECT_EQ(segment.source_ids, *expected);
    EXPECT_EQ(segment.source_ids.back(), (*model_)->tokenizer().eos_id());
    EXPECT_EQ(segment.begin, 0);
    EXPECT_EQ(segment.end, static_cast<int>(request.texts(i).size()));
  }
  const core::ModelConfig& config = (*model_)->config();
  EXPECT_EQ(work.options.beam_size, config.num_beams);
  // The model's default max_length is capped by the server.
  EXPECT_EQ(work.options.max_length, std::min(config.max_length, 100));
  EXPECT_EQ(work.options.num_hypotheses, 1);
  EXPECT_FLOAT_EQ(work.options.length_penalty, config.length_penalty);
}

TEST_F(RequestValidationTest, RequestedOptionsAreKept) {
  transformer::v1::TranslateRequest request = OneText("A dog.");
  request.mutable_options()->set_beam_size(2);
  request.mutable_options()->set_num_hypotheses(2);
  request.mutable_options()->set_max_length(40);
  request.mutable_options()->set_length_penalty(0.5f);
  TranslateWork work;
  ASSERT_TRUE(validator_.ValidateTranslate(request, &work).ok());
  EXPECT_EQ(work.options.beam_size, 2);
  EXPECT_EQ(work.options.num_hypotheses, 2);
  EXPECT_EQ(work.options.max_length, 40);
  EXPECT_FLOAT_EQ(work.options.length_penalty, 0.5f);
}

// The byte limit holds for every text before any is tokenized; Encode too.
TEST_F(RequestValidationTest, TextOverMaxTextBytesNamesIndexBytesAndLimit) {
  transformer::v1::TranslateRequest request;
  request.add_texts("A dog.");
  request.add_texts(std::string(201, 'a'));
  ExpectInvalid(Translate(request),
                "texts[1] has 201 bytes, more than max_text_bytes 200");
  // Checked before UTF-8 and tokens: an invalid first text of 201 bytes is
  // refused for its size.
  ExpectInvalid(Translate(OneText(std::string(201, '\xff'))),
                "texts[0] has 201 bytes, more than max_text_bytes 200");
  transformer::v1::EncodeRequest encode;
  encode.add_texts(std::string(300, 'b'));
  EncodeWork work;
  ExpectInvalid(validator_.ValidateEncode(encode, &work),
                "texts[0] has 300 bytes, more than max_text_bytes 200");
  // At the limit is fine for bytes (and then refused for its tokens).
  const grpc::Status at_limit = Translate(OneText(std::string(200, 'a')));
  EXPECT_EQ(at_limit.error_message().find("bytes"), std::string::npos)
      << at_limit.error_message();
}

TEST_F(RequestValidationTest, RepetitionControlsAndLengthFactorAreResolved) {
  transformer::v1::TranslateRequest request = OneText("A dog.");
  TranslateWork work;
  ASSERT_TRUE(validator_.ValidateTranslate(request, &work).ok());
  EXPECT_EQ(work.options.no_repeat_ngram_size, 0);
  EXPECT_FLOAT_EQ(work.options.repetition_penalty, 1.0f);
  EXPECT_DOUBLE_EQ(work.options.max_length_factor, 2.5) << "the server's";
  request.mutable_options()->set_no_repeat_ngram_size(3);
  request.mutable_options()->set_repetition_penalty(1.25f);
  ASSERT_TRUE(validator_.ValidateTranslate(request, &work).ok());
  EXPECT_EQ(work.options.no_repeat_ngram_size, 3);
  EXPECT_FLOAT_EQ(work.options.repetition_penalty, 1.25f);
  {
    auto bad = OneText("A dog.");
    bad.mutable_options()->set_no_repeat_ngram_size(-1);
    ExpectInvalid(Translate(bad), "options.no_repeat_ngram_size is -1");
    ExpectInvalid(Translate(bad), ">= 0");
  }
  for (float penalty : {0.0f, -1.0f, std::numeric_limits<float>::infinity()}) {
    auto bad = OneText("A dog.");
    bad.mutable_options()->set_repetition_penalty(penalty);
    ExpectInvalid(Translate(bad), "options.repetition_penalty is");
    ExpectInvalid(Translate(bad), "> 0");
  }
}

TEST_F(RequestValidationTest, NoTexts) {
  ExpectInvalid(Translate(transformer::v1::TranslateRequest()), "no texts");
}

TEST_F(RequestValidationTest, TooManyTexts) {
  transformer::v1::TranslateRequest request;
  for (int i = 0; i < 4; ++i) request.add_texts("A dog.");
  ExpectInvalid(Translate(request),
                "4 texts, more than max_texts_per_request 3");
}

TEST_F(RequestValidationTest, EmptyText) {
  transformer::v1::TranslateRequest request;
  request.add_texts("A dog.");
  request.add_texts("");
  ExpectInvalid(Translate(request), "texts[1] is empty");
}

TEST_F(RequestValidationTest, InvalidUtf8) {
  ExpectInvalid(Translate(OneText("caf\xC3")), "texts[0] is not valid UTF-8");
}

TEST_F(RequestValidationTest, TooManyTokensSaysCountAndLimit) {
  const std::string text =
      "A group of people standing in front of an igloo while a man in a red "
      "jacket watches them.";
  auto ids = (*model_)->tokenizer().EncodeSource(text);
  ASSERT_TRUE(ids.ok());
  ASSERT_GT(ids->size(), 12u) << "the test sentence must exceed the limit";
  // INPUT_FORMAT_SENTENCE: the text is one sequence, refused over the limit.
  auto sentence = OneText(text);
  sentence.mutable_options()->set_input_format(
      transformer::v1::INPUT_FORMAT_SENTENCE);
  ExpectInvalid(Translate(sentence),
                "has " + std::to_string(ids->size()) +
                    " tokens (</s> included), more than max_input_tokens 12");
}

// INPUT_FORMAT_TEXT (the default): the same sentence is cut at a word
// boundary into pieces of at most 12 tokens, which rebuild it in order.
TEST_F(RequestValidationTest, ALongSentenceIsCutIntoPiecesThatFit) {
  const std::string text =
      "A group of people standing in front of an igloo while a man in a red "
      "jacket watches them.";
  TranslateWork work;
  ASSERT_TRUE(validator_.ValidateTranslate(OneText(text), &work).ok());
  ASSERT_EQ(work.texts.size(), 1u);
  const std::vector<SegmentWork>& segments = work.texts[0].segments;
  ASSERT_GT(segments.size(), 1u);
  int at = 0;
  for (const SegmentWork& segment : segments) {
    EXPECT_LE(segment.source_ids.size(), 12u);
    EXPECT_GE(segment.begin, at);
    EXPECT_EQ(text.substr(segment.begin, segment.end - segment.begin),
              segment.source);
    EXPECT_EQ(segment.source_ids,
              *(*model_)->tokenizer().EncodeSource(segment.source));
    at = segment.end;
  }
  EXPECT_EQ(segments.back().end, static_cast<int>(text.size()));
}

// A multi-target model's >>xxx<< token (reserved_tokens 1) leaves 11 of
// the 12 tokens to each piece of a cut sentence, and a SENTENCE text of
// exactly 12 tokens is refused, naming the reserve.
TEST_F(RequestValidationTest, AReservedLanguageTokenTakesOneOfTheLimit) {
  const std::string text =
      "A group of people standing in front of an igloo while a man in a red "
      "jacket watches them.";
  TranslateWork work;
  ASSERT_TRUE(validator_.ValidateTranslate(OneText(text), &work, 1).ok());
  size_t longest = 0;
  for (const SegmentWork& segment : work.texts[0].segments) {
    longest = std::max(longest, segment.source_ids.size());
  }
  EXPECT_LE(longest, 11u);
  // A SENTENCE text of exactly 12 tokens: fits alone, not with the token.
  std::string twelve;
  for (const char* word : {"A", "man", "in", "a", "red", "jacket", "and", "a",
                           "dog", "run", "home", "."}) {
    std::string candidate = twelve.empty() ? word : twelve + " " + word;
    if ((*model_)->tokenizer().EncodeSource(candidate)->size() > 12) break;
    twelve = candidate;
  }
  ASSERT_EQ((*model_)->tokenizer().EncodeSource(twelve)->size(), 12u);
  auto sentence = OneText(twelve);
  sentence.mutable_options()->set_input_format(
      transformer::v1::INPUT_FORMAT_SENTENCE);
  EXPECT_TRUE(validator_.ValidateTranslate(sentence, &work).ok());
  TranslateWork reserved;
  ExpectInvalid(validator_.ValidateTranslate(sentence, &reserved, 1),
                "has 12 tokens (</s> included), more than max_input_tokens 12 "
                "less 1 for the target language token");
}

// Sentences and paragraphs: spans between the gaps, and an unknown
// input_format or newline_mode is refused with the known values.
TEST_F(RequestValidationTest, TextIsSplitIntoSentencesAndEnumsAreChecked) {
  const std::string text = "  A dog runs.\n\nTwo men sit. A girl\r\n";
  TranslateWork work;
  ASSERT_TRUE(validator_.ValidateTranslate(OneText(text), &work).ok());
  std::vector<std::string> sources;
  for (const SegmentWork& segment : work.texts[0].segments) {
    sources.push_back(segment.source);
  }
  EXPECT_EQ(sources, (std::vector<std::string>{"A dog runs.", "Two men sit.",
                                               "A girl"}));
  auto bad = OneText(text);
  bad.mutable_options()->set_input_format(
      static_cast<transformer::v1::InputFormat>(9));
  ExpectInvalid(Translate(bad), "input_format 9 is not a known InputFormat");
  bad = OneText(text);
  bad.mutable_options()->set_newline_mode(
      static_cast<transformer::v1::NewlineMode>(5));
  ExpectInvalid(Translate(bad), "newline_mode 5 is not a known NewlineMode");
}

TEST_F(RequestValidationTest, BadTranslationOptions) {
  {
    auto request = OneText("A dog.");
    request.mutable_options()->set_beam_size(-1);
    ExpectInvalid(Translate(request), "beam_size is -1");
  }
  {
    auto request = OneText("A dog.");
    request.mutable_options()->set_beam_size(7);
    ExpectInvalid(Translate(request), "max_beam_size 6");
  }
  {
    auto request = OneText("A dog.");
    request.mutable_options()->set_beam_size(2);
    request.mutable_options()->set_num_hypotheses(3);
    // Checked by the server or by MarianModel::ResolveOptions, whose wording
    // differs; both name the option, its value and the limit.
    const grpc::Status status = Translate(request);
    ExpectInvalid(status, "num_hypotheses 3");
    ExpectInvalid(status, "beam_size");
    ExpectInvalid(status, "2");
  }
  {
    auto request = OneText("A dog.");
    request.mutable_options()->set_max_length(101);
    ExpectInvalid(Translate(request), "max_length_cap 100");
  }
  {
    auto request = OneText("A dog.");
    request.mutable_options()->set_max_length(10);
    request.mutable_options()->set_min_length(20);
    ExpectInvalid(Translate(request), "min_length");
  }
  {
    auto request = OneText("A dog.");
    request.mutable_options()->set_num_hypotheses(-2);
    ExpectInvalid(Translate(request), "num_hypotheses is -2");
  }
}

TEST_F(RequestValidationTest, AttentionLayerDefaultsToLastAndCountsFromEnd) {
  const int layers = (*model_)->config().decoder_layers;
  ASSERT_GT(layers, 1);
  auto request = OneText("A dog.");
  TranslateWork work;
  ASSERT_TRUE(validator_.ValidateTranslate(request, &work).ok());
  EXPECT_FALSE(work.options.return_attention);
  EXPECT_EQ(work.options.attention_layer, layers - 1);
  request.mutable_options()->set_return_attention(true);
  // -layers .. layers - 1 are the valid indices; negative count from the end.
  for (int requested = -layers; requested < layers; ++requested) {
    request.mutable_options()->set_attention_layer(requested);
    ASSERT_TRUE(validator_.ValidateTranslate(request, &work).ok()) << requested;
    EXPECT_TRUE(work.options.return_attention);
    EXPECT_EQ(work.options.attention_layer,
              requested < 0 ? requested + layers : requested);
  }
}

TEST_F(RequestValidationTest, AttentionLayerOutOfRangeNamesTheRange) {
  const int layers = (*model_)->config().decoder_layers;
  const std::string range =
      "[" + std::to_string(-layers) + ", " + std::to_string(layers) + ")";
  for (int layer : {layers, -layers - 1, 1000}) {
    auto request = OneText("A dog.");
    request.mutable_options()->set_return_attention(true);
    request.mutable_options()->set_attention_layer(layer);
    const grpc::Status status = Translate(request);
    ExpectInvalid(status, "options.attention_layer " + std::to_string(layer));
    ExpectInvalid(status, range);
  }
}

TEST_F(RequestValidationTest, SamplingOptionsAreResolved) {
  transformer::v1::TranslateRequest request = OneText("Two dogs play.");
  request.mutable_options()->set_do_sample(true);
  request.mutable_options()->set_num_hypotheses(4);
  request.mutable_options()->set_top_k(10);
  request.mutable_options()->set_top_p(0.9f);
  request.mutable_options()->set_temperature(0.7f);
  request.mutable_options()->set_seed(12345);
  TranslateWork work;
  ASSERT_TRUE(validator_.ValidateTranslate(request, &work).ok());
  EXPECT_TRUE(work.options.do_sample);
  EXPECT_EQ(work.options.beam_size, 1);  // unset means 1 when sampling
  EXPECT_EQ(work.options.num_hypotheses, 4);
  EXPECT_EQ(work.options.top_k, 10);
  EXPECT_FLOAT_EQ(work.options.top_p, 0.9f);
  EXPECT_FLOAT_EQ(work.options.temperature, 0.7f);
  EXPECT_EQ(work.options.seed, 12345u);

  // Unset: no filters, temperature 1, and a fresh seed each time.
  request.mutable_options()->clear_top_p();
  request.mutable_options()->clear_temperature();
  request.mutable_options()->clear_seed();
  request.mutable_options()->set_top_k(0);
  TranslateWork first, second;
  ASSERT_TRUE(validator_.ValidateTranslate(request, &first).ok());
  ASSERT_TRUE(validator_.ValidateTranslate(request, &second).ok());
  EXPECT_FLOAT_EQ(first.options.top_p, 1.0f);
  EXPECT_FLOAT_EQ(first.options.temperature, 1.0f);
  EXPECT_NE(first.options.seed, second.options.seed);

  // Without do_sample the sampling fields are ignored (as generate does).
  transformer::v1::TranslateRequest greedy = OneText("Two dogs play.");
  greedy.mutable_options()->set_beam_size(1);
  greedy.mutable_options()->set_top_k(5);
  greedy.mutable_options()->set_seed(9);
  ASSERT_TRUE(validator_.ValidateTranslate(greedy, &work).ok());
  EXPECT_FALSE(work.options.do_sample);
  EXPECT_EQ(work.options.top_k, 0);
  EXPECT_EQ(work.options.seed, 0u);
}

TEST_F(RequestValidationTest, BadSamplingOptionsNameTheirLimits) {
  auto with = [](auto set) {
    transformer::v1::TranslateRequest request = OneText("Two dogs play.");
    request.mutable_options()->set_do_sample(true);
    set(request.mutable_options());
    return request;
  };
  using Options = transformer::v1::TranslationOptions;
  ExpectInvalid(Translate(with([](Options* o) { o->set_beam_size(4); })),
                "beam search cannot sample");
  ExpectInvalid(Translate(with([](Options* o) { o->set_top_k(-1); })),
                "options.top_k is -1; it must be >= 0");
  ExpectInvalid(Translate(with([](Options* o) { o->set_top_p(0.0f); })),
                "options.top_p is 0; it must be in (0, 1]");
  ExpectInvalid(Translate(with([](Options* o) { o->set_top_p(1.5f); })),
                "must be in (0, 1]");
  ExpectInvalid(Translate(with([](Options* o) { o->set_temperature(0.0f); })),
                "options.temperature is 0; it must be a finite number > 0");
  ExpectInvalid(Translate(with([](Options* o) { o->set_temperature(-1.0f); })),
                "> 0");
  // Samples per text: at most max_beam_size (6 here), not beam_size.
  ExpectInvalid(Translate(with([](Options* o) { o->set_num_hypotheses(7); })),
                "options.num_hypotheses 7 is more than max_beam_size 6");
  EXPECT_TRUE(
      Translate(with([](Options* o) { o->set_num_hypotheses(6); })).ok());
}

TEST_F(RequestValidationTest, EncodeChecksPoolingAndTexts) {
  transformer::v1::EncodeRequest request;
  request.add_texts("A dog.");
  request.set_pooling(static_cast<transformer::v1::Pooling>(7));
  EncodeWork work;
  ExpectInvalid(validator_.ValidateEncode(request, &work),
                "pooling 7 is not a known Pooling value");

  request.set_pooling(transformer::v1::POOLING_FIRST);
  request.set_normalize(true);
  ASSERT_TRUE(validator_.ValidateEncode(request, &work).ok());
  EXPECT_EQ(work.options.pooling, core::Pooling::kFirst);
  EXPECT_TRUE(work.options.normalize);
  ASSERT_EQ(work.source_ids.size(), 1u);

  request.add_texts("");
  ExpectInvalid(validator_.ValidateEncode(request, &work), "texts[1] is empty");
}

TEST(Utf8Test, AcceptsValidAndRejectsMalformedSequences) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("Grüße, 日本語, \xF0\x9F\x98\x80"));
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_FALSE(IsValidUtf8("\xFF"));              // never a lead byte
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(
      IsValidUtf8("ab\xE2\x82"
                  "c"));  // bad continuation
}

}  // namespace
}  // namespace ts::server
