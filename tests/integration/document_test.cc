// Documents through the real server: texts of many sentences are split,
// each sentence translated on its own, and the translations put back between
// the source's own gaps, byte for byte; long sentences are cut, not refused;
// HTML keeps its markup. Expectations are the golden translations of the
// demo model (each golden source is one sentence).
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/test_server.h"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace ts::testing {
namespace {

using transformer::v1::TranslateRequest;
using transformer::v1::TranslateResponse;

class DocumentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    golden_ = new std::vector<GoldenTranslation>(ReadGoldenTranslations());
    ASSERT_EQ(golden_->size(), 200u);
    metrics_port_ = FreePort();
    server_ = new ServerProcess();
    // A small token limit, so that a long sentence is easy to write; the
    // golden sources are all below it.
    const absl::Status started = server_->Start(
        {absl::StrCat("--metrics_port=", metrics_port_),
         "--metrics_address=127.0.0.1", "--num_workers=2", "--intra_threads=1",
         "--max_input_tokens=64", "--max_sentences_per_request=300",
         "--max_queue_size=1024"});
    ASSERT_TRUE(started.ok()) << started;
    channel_ = new std::shared_ptr<grpc::Channel>(grpc::CreateChannel(
        server_->target(), grpc::InsecureChannelCredentials()));
  }
  static void TearDownTestSuite() {
    delete channel_;
    delete server_;
    delete golden_;
  }

  static grpc::Status Translate(const TranslateRequest& request,
                                TranslateResponse* response) {
    auto stub = transformer::v1::TransformerService::NewStub(*channel_);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(300)));
    return stub->Translate(&context, request, response);
  }

  static TranslateRequest Request(const std::string& text, int beam_size) {
    TranslateRequest request;
    request.add_texts(text);
    request.mutable_options()->set_beam_size(beam_size);
    request.mutable_options()->set_max_length(128);  // as golden/
    return request;
  }

  static std::string Golden(int i, int beam_size) {
    return beam_size == 1 ? (*golden_)[i].greedy_text
                          : (*golden_)[i].beam4_text;
  }

  static std::vector<GoldenTranslation>* golden_;
  static ServerProcess* server_;
  static int metrics_port_;
  static std::shared_ptr<grpc::Channel>* channel_;
};

std::vector<GoldenTranslation>* DocumentTest::golden_ = nullptr;
ServerProcess* DocumentTest::server_ = nullptr;
int DocumentTest::metrics_port_ = 0;
std::shared_ptr<grpc::Channel>* DocumentTest::channel_ = nullptr;

// Random whitespace between sentences: spaces, tabs, \n, \r\n, blank lines
// (a new paragraph). A single newline breaks a sentence (NEWLINE_MODE_BREAK),
// so every gap keeps the sources apart.
std::string RandomGap(std::mt19937& random, bool edge) {
  static const char* const kPieces[] = {
      " ", "  ", "\t", "\n", "\r\n", "\n\n", "\r\n\r\n", " \n \n", "\n\t"};
  std::uniform_int_distribution<int> count(edge ? 0 : 1, 3);
  std::uniform_int_distribution<int> piece(0, 8);
  std::string gap;
  for (int n = count(random); n > 0; --n) gap += kPieces[piece(random)];
  return gap;
}

// A text of golden sources [first, first + count) joined by random gaps
// (leading and trailing too) gives exactly their golden translations joined
// by the same gaps, byte for byte; one segment per source, with its bytes.
TEST_F(DocumentTest, GoldenParagraphsKeepTheirGapsGreedyAndBeam4) {
  std::mt19937 random(20261203);
  for (int beam_size : {1, 4}) {
    for (int round = 0; round < 3; ++round) {
      SCOPED_TRACE(absl::StrCat("beam ", beam_size, " round ", round));
      const int first = round * 12;
      const int count = 4 + round * 4;
      std::vector<std::string> gaps;
      std::string text;
      std::string expected;
      for (int i = 0; i <= count; ++i) {
        gaps.push_back(RandomGap(random, i == 0 || i == count));
        text += gaps.back();
        expected += gaps.back();
        if (i == count) break;
        text += (*golden_)[first + i].source;
        expected += Golden(first + i, beam_size);
      }
      TranslateResponse response;
      const grpc::Status status =
          Translate(Request(text, beam_size), &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      const auto& translation = response.translations(0);
      EXPECT_EQ(translation.hypotheses(0).text(), expected);
      ASSERT_EQ(translation.segments_size(), count);
      size_t at = 0;
      for (int i = 0; i < count; ++i) {
        at += gaps[i].size();
        const auto& segment = translation.segments(i);
        EXPECT_EQ(segment.source_begin(), static_cast<int>(at));
        EXPECT_EQ(segment.source(), (*golden_)[first + i].source);
        EXPECT_EQ(segment.hypotheses(0).text(), Golden(first + i, beam_size));
        at += (*golden_)[first + i].source.size();
        EXPECT_EQ(segment.source_end(), static_cast<int>(at));
      }
    }
  }
}

// Every golden source as one document of 200 lines (over 3,000 tokens):
// answered in full and exactly, the sentences batched like separate texts.
TEST_F(DocumentTest, ADocumentOf200GoldenSentencesIsTranslatedExactly) {
  std::string text;
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    // A line per source: a few golden sources lack final punctuation, and
    // "street A woman" would rightly stay one sentence.
    const char* gap = i == 0 ? "" : (i % 5 == 0 ? "\n\n" : "\n");
    text += gap;
    expected += gap;
    text += (*golden_)[i].source;
    expected += (*golden_)[i].greedy_text;
  }
  TranslateResponse response;
  const grpc::Status status = Translate(Request(text, 1), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const auto& translation = response.translations(0);
  EXPECT_EQ(translation.segments_size(), 200);
  EXPECT_GT(translation.input_token_count(), 3000);
  EXPECT_EQ(translation.hypotheses(0).text(), expected);
}

// The whitespace property: random gap strings (not only between sentences)
// come through the whole server unchanged, around repeated short sentences.
TEST_F(DocumentTest, RandomGapsComeThroughUnchanged) {
  std::mt19937 random(7);
  const std::vector<int> sources = {3, 5, 8, 13};
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE(round);
    std::string text;
    std::string expected;
    std::uniform_int_distribution<int> pick(0, 3);
    const int count = 1 + round % 4;
    for (int i = 0; i <= count; ++i) {
      const std::string gap = RandomGap(random, i == 0 || i == count);
      text += gap;
      expected += gap;
      if (i == count) break;
      const int s = sources[pick(random)];
      text += (*golden_)[s].source;
      expected += (*golden_)[s].greedy_text;
    }
    TranslateResponse response;
    const grpc::Status status = Translate(Request(text, 1), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.translations(0).hypotheses(0).text(), expected);
  }
}

// A sentence over max_input_tokens (64 here) is cut at commas into pieces
// that fit, each translated in order; INPUT_FORMAT_SENTENCE still refuses it.
TEST_F(DocumentTest, ALongSentenceIsCutIntoPiecesNotRefused) {
  std::string text = "A man in a blue shirt";
  for (int i = 0; i < 12; ++i) {
    text += ", a woman with a red umbrella";
  }
  text += " and two dogs are walking down the street.";
  TranslateResponse response;
  const grpc::Status status = Translate(Request(text, 1), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const auto& translation = response.translations(0);
  ASSERT_GT(translation.segments_size(), 1);
  std::string rebuilt;
  int last_end = 0;
  for (const auto& segment : translation.segments()) {
    EXPECT_LE(segment.input_token_count(), 64);
    EXPECT_GE(segment.source_begin(), last_end);
    rebuilt += text.substr(last_end, segment.source_begin() - last_end);
    rebuilt += segment.source();
    last_end = segment.source_end();
    EXPECT_FALSE(segment.hypotheses(0).text().empty());
  }
  rebuilt += text.substr(last_end);
  EXPECT_EQ(rebuilt, text);
  // Cut after a comma: every piece but the last ends with one.
  for (int i = 0; i + 1 < translation.segments_size(); ++i) {
    EXPECT_TRUE(absl::EndsWith(translation.segments(i).source(), ","))
        << translation.segments(i).source();
  }

  TranslateRequest sentence = Request(text, 1);
  sentence.mutable_options()->set_input_format(
      transformer::v1::INPUT_FORMAT_SENTENCE);
  const grpc::Status refused = Translate(sentence, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(refused.error_message(), "max_input_tokens 64"))
      << refused.error_message();
}

// Too many sentences in one request: INVALID_ARGUMENT naming the count and
// both limits, before anything is queued.
TEST_F(DocumentTest, TooManySentencesAreRefusedWithTheLimit) {
  std::string text;
  for (int i = 0; i < 301; ++i) text += "A dog runs. ";
  TranslateResponse response;
  const grpc::Status status = Translate(Request(text, 1), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(status.error_message(),
                                "301 sentences, more than "
                                "max_sentences_per_request 300"))
      << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "max_queue_size 1024"))
      << status.error_message();
}

// A document's repeated sentences are computed once (cache and in-flight
// coalescing), and whitespace-only texts come back as they are.
TEST_F(DocumentTest, RepeatedSentencesAreComputedOnce) {
  const double misses_before =
      ScrapeMetric(metrics_port_, "transformer_cache_misses_total");
  const std::string sentence = (*golden_)[150].source;
  std::string text;
  for (int i = 0; i < 6; ++i) text += sentence + "\n";
  TranslateRequest request = Request(text, 4);
  request.add_texts(" \n\t ");
  TranslateResponse response;
  const grpc::Status status = Translate(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::string expected;
  for (int i = 0; i < 6; ++i) expected += (*golden_)[150].beam4_text + "\n";
  EXPECT_EQ(response.translations(0).hypotheses(0).text(), expected);
  EXPECT_EQ(response.translations(1).hypotheses(0).text(), " \n\t ");
  EXPECT_EQ(response.translations(1).segments_size(), 0);
  EXPECT_EQ(ScrapeMetric(metrics_port_, "transformer_cache_misses_total"),
            misses_before + 1);
}

// TranslateStream sends a document's sentences in order, each with the gap
// before it; the messages spell the final translation.
TEST_F(DocumentTest, StreamSendsSentencesInOrder) {
  std::string text;
  std::string expected;
  for (int i = 0; i < 8; ++i) {
    text += (*golden_)[40 + i].source + (i % 3 == 2 ? "\n\n" : " ");
    expected += (*golden_)[40 + i].beam4_text + (i % 3 == 2 ? "\n\n" : " ");
  }
  auto stub = transformer::v1::TransformerService::NewStub(*channel_);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
  auto reader = stub->TranslateStream(&context, Request(text, 4));
  transformer::v1::TranslateStreamResponse message;
  std::string spelled;
  int messages = 0;
  std::string final_text;
  while (reader->Read(&message)) {
    ++messages;
    spelled += message.text_delta();
    if (message.has_translation()) {
      final_text = message.translation().hypotheses(0).text();
    }
  }
  ASSERT_TRUE(reader->Finish().ok());
  // One per sentence at most (a slow reader gets several merged).
  EXPECT_GT(messages, 1);
  EXPECT_LE(messages, 8);
  EXPECT_EQ(spelled, expected);
  EXPECT_EQ(final_text, expected);
}

// HTML: markup kept byte for byte outside the translated text, the text of
// each block translated, an inline <b> carried onto the German noun, script
// and translate="no" untouched, entities escaped again.
TEST_F(DocumentTest, HtmlKeepsMarkupAndMovesInlineTags) {
  const std::string html =
      "<!DOCTYPE html><html><head><title>A dog.</title>"
      "<script>if (a < b) { x = \"</div>\"; }</script></head><body>\n"
      "<p class=\"x\">A black <b>dog</b> is running on the grass.</p>\n"
      "<p translate=\"no\">A man is sleeping.</p>\n"
      "<ul><li>Two men are playing soccer.</li>"
      "<li translate=\"no\">Tom &amp; Jerry</li></ul>\n"
      "</body></html>";
  TranslateRequest request = Request(html, 1);
  request.mutable_options()->set_input_format(
      transformer::v1::INPUT_FORMAT_HTML);
  TranslateResponse response;
  const grpc::Status status = Translate(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::string out = response.translations(0).hypotheses(0).text();
  EXPECT_TRUE(
      absl::StrContains(out, "<script>if (a < b) { x = \"</div>\"; }</script>"))
      << out;
  EXPECT_TRUE(
      absl::StrContains(out, "<p translate=\"no\">A man is sleeping.</p>"))
      << out;
  EXPECT_TRUE(absl::StrContains(out, "<b>Hund</b>")) << out;
  EXPECT_TRUE(absl::StrContains(out, "<p class=\"x\">")) << out;
  EXPECT_TRUE(absl::StartsWith(out, "<!DOCTYPE html><html><head><title>"))
      << out;
  EXPECT_FALSE(absl::StrContains(out, "A black")) << out;
  EXPECT_TRUE(
      absl::StrContains(out, "<li translate=\"no\">Tom &amp; Jerry</li>"))
      << out;
  // Segments name their blocks: the title, the first <p>, the first <li>.
  const auto& segments = response.translations(0).segments();
  ASSERT_EQ(segments.size(), 3);
  EXPECT_EQ(segments[0].source(), "A dog.");
  EXPECT_EQ(segments[1].source(), "A black dog is running on the grass.");
  EXPECT_LT(segments[0].block(), segments[1].block());
  EXPECT_LT(segments[1].block(), segments[2].block());
}

// The client's --document: a whole .txt file as one text, written back as
// the server returns it (no line added), and a .html file read as HTML.
TEST_F(DocumentTest, ClientTranslatesAWholeFile) {
  TempDir dir;
  std::string text;
  std::string expected;
  for (int i = 0; i < 5; ++i) {
    const char* gap = i == 2 ? "\n\n" : (i == 4 ? "\n" : " ");
    text += (*golden_)[60 + i].source + gap;
    expected += (*golden_)[60 + i].beam4_text + gap;
  }
  {
    std::ofstream(dir.File("letter.txt"), std::ios::binary) << text;
    std::ofstream(dir.File("page.html"), std::ios::binary)
        << "<p>" << (*golden_)[70].source << "</p>\n";
  }
  const std::string client =
      absl::StrCat(TS_CLIENT_BINARY, " translate --server=", server_->target(),
                   " --beam_size=4 --max_length=128 --document=");
  const CommandResult txt = RunCommand(client + dir.File("letter.txt"));
  ASSERT_EQ(txt.exit_code, 0) << txt.err;
  EXPECT_EQ(txt.out, expected);
  const CommandResult html = RunCommand(client + dir.File("page.html"));
  ASSERT_EQ(html.exit_code, 0) << html.err;
  EXPECT_EQ(html.out, "<p>" + (*golden_)[70].beam4_text + "</p>\n");
}

}  // namespace
}  // namespace ts::testing
