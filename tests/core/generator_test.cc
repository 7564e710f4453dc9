// Continuous batching: a sequence's hypotheses do not depend on when it
// joins the decoder or on what else decodes with it (Generator).
#include "core/generator.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/model/marian_model.h"
#include "core/translator.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/core/json_lines.h"

namespace ts::core {
namespace {

class GeneratorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = MarianModel::Load(TS_DEMO_MODEL_DIR);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = new std::shared_ptr<const MarianModel>(*model);
    sources_ = new std::vector<std::vector<int>>();
    for (const auto& entry : ReadJsonLines(std::string(TS_DEMO_MODEL_DIR) +
                                           "/golden/translations.jsonl")) {
      sources_->push_back(entry["source_ids"].get<std::vector<int>>());
    }
    ASSERT_EQ(sources_->size(), 200u);
  }
  static void TearDownTestSuite() {
    delete model_;
    delete sources_;
  }

  TranslationOptions Options(int beam_size, int max_length = 128) const {
    TranslationOptions options;
    options.beam_size = beam_size;
    options.num_hypotheses = beam_size;
    options.max_length = max_length;
    auto resolved = (*model_)->ResolveOptions(options);
    EXPECT_TRUE(resolved.ok()) << resolved.status();
    return *resolved;
  }

  // Golden sources i..i+count joined into one long source (a paragraph):
  // each one's </s> dropped but the last's.
  static std::vector<int> Paragraph(int first, int count) {
    std::vector<int> ids;
    for (int i = first; i < first + count; ++i) {
      const auto& source = (*sources_)[i];
      ids.insert(ids.end(), source.begin(), source.end() - 1);
    }
    ids.push_back(sources_->front().back());  // </s>
    return ids;
  }

  static void ExpectSameHypotheses(const TranslationResult& got,
                                   const TranslationResult& want,
                                   const std::string& what) {
    ASSERT_EQ(got.hypotheses.size(), want.hypotheses.size()) << what;
    for (size_t h = 0; h < want.hypotheses.size(); ++h) {
      EXPECT_EQ(got.hypotheses[h].ids, want.hypotheses[h].ids)
          << what << " hypothesis " << h;
      EXPECT_NEAR(got.hypotheses[h].score, want.hypotheses[h].score, 1e-5)
          << what << " hypothesis " << h;
    }
  }

  static std::shared_ptr<const MarianModel>* model_;
  static std::vector<std::vector<int>>* sources_;
};

std::shared_ptr<const MarianModel>* GeneratorTest::model_ = nullptr;
std::vector<std::vector<int>>* GeneratorTest::sources_ = nullptr;

// The check: a sentence gives the same ids alone as when it joins a
// running batch at step 0, 5 or 50, greedy and beam; the running batch uses
// the other search, so options differ within a step.
TEST_F(GeneratorTest, JoiningAtAnyStepGivesTheSameHypotheses) {
  Translator translator(*model_);
  const std::vector<std::vector<int>> targets = {
      (*sources_)[3], (*sources_)[17], (*sources_)[42], (*sources_)[150]};
  std::vector<std::vector<int>> background = {Paragraph(60, 6),
                                              Paragraph(80, 5)};
  for (int i = 100; i < 108; ++i) background.push_back((*sources_)[i]);
  for (int beam_size : {1, 4}) {
    const TranslationOptions options = Options(beam_size);
    // The running batch uses the other search and decodes at least 70
    // tokens (min_length), so it is still running at step 50.
    TranslationOptions other = Options(beam_size == 1 ? 4 : 1);
    other.min_length = 70;
    auto alone = translator.Translate(targets, options);
    ASSERT_TRUE(alone.ok()) << alone.status();
    for (int join_step : {0, 5, 50}) {
      const std::string what = "beam " + std::to_string(beam_size) +
                               ", joining at step " + std::to_string(join_step);
      auto owned_generator = translator.NewGenerator();
      Generator& generator = *owned_generator;
      ASSERT_TRUE(generator.Admit(background, other).ok());
      for (int step = 0; step < join_step; ++step) generator.Step();
      // The batch is still decoding.
      ASSERT_GT(generator.active_sequences(), 0) << what;
      auto ids = generator.Admit(targets, options);
      ASSERT_TRUE(ids.ok()) << ids.status();
      std::map<int64_t, TranslationResult> results;
      while (generator.active_sequences() > 0) {
        generator.Step();
        for (auto& [id, result] : generator.TakeFinished()) {
          results[id] = std::move(result);
        }
      }
      for (size_t i = 0; i < targets.size(); ++i) {
        ASSERT_EQ(results.count((*ids)[i]), 1u) << what;
        ExpectSameHypotheses(results[(*ids)[i]], (*alone)[i],
                             what + ", target " + std::to_string(i));
      }
      EXPECT_EQ(generator.kv_bytes(), 0) << what << ": blocks left in use";
    }
  }
}

// Streamed tokens spell out each greedy sequence's ids; beam sequences
// stream nothing.
TEST_F(GeneratorTest, StreamedTokensAreTheFinalIds) {
  Translator translator(*model_);
  auto owned_generator = translator.NewGenerator();
  Generator& generator = *owned_generator;
  auto greedy = generator.Admit({(*sources_)[5], (*sources_)[6]}, Options(1));
  auto beam = generator.Admit({(*sources_)[7]}, Options(4));
  ASSERT_TRUE(greedy.ok() && beam.ok());
  std::map<int64_t, std::vector<int>> streamed;
  std::map<int64_t, TranslationResult> results;
  while (generator.active_sequences() > 0) {
    generator.Step();
    for (const auto& [id, token] : generator.streamed()) {
      streamed[id].push_back(token);
    }
    for (auto& [id, result] : generator.TakeFinished()) {
      results[id] = std::move(result);
    }
  }
  for (int64_t id : *greedy) {
    EXPECT_EQ(streamed[id], results[id].hypotheses.at(0).ids) << id;
  }
  EXPECT_EQ(streamed.count(beam->front()), 0u);
  EXPECT_EQ(results[beam->front()].hypotheses.size(), 4u);
}

// A cancelled sequence gives its rows and blocks back before the next step;
// the others finish as if it never ran.
TEST_F(GeneratorTest, CancelFreesRowsAndKeepsOthersIntact) {
  Translator translator(*model_);
  const std::vector<std::vector<int>> sources = {
      (*sources_)[20], Paragraph(30, 4), (*sources_)[21]};
  auto alone = translator.Translate(sources, Options(4));
  ASSERT_TRUE(alone.ok());
  auto owned_generator = translator.NewGenerator();
  Generator& generator = *owned_generator;
  auto ids = generator.Admit(sources, Options(4));
  ASSERT_TRUE(ids.ok());
  for (int step = 0; step < 3; ++step) generator.Step();
  ASSERT_EQ(generator.active_sequences(), 3);
  EXPECT_EQ(generator.active_rows(), 12);
  const int64_t before = generator.kv_bytes();
  generator.Cancel((*ids)[1]);
  EXPECT_EQ(generator.active_sequences(), 2);
  EXPECT_EQ(generator.active_rows(), 8);
  EXPECT_LT(generator.kv_bytes(), before);
  std::map<int64_t, TranslationResult> results;
  while (generator.active_sequences() > 0) {
    generator.Step();
    for (auto& [id, result] : generator.TakeFinished()) {
      results[id] = std::move(result);
    }
  }
  EXPECT_EQ(results.count((*ids)[1]), 0u);
  ExpectSameHypotheses(results[(*ids)[0]], (*alone)[0], "first");
  ExpectSameHypotheses(results[(*ids)[2]], (*alone)[2], "third");
  EXPECT_EQ(generator.kv_bytes(), 0);
}

// KV memory follows the tokens decoded, not max_length: the same sources
// hold the same blocks after each step at max_length 64 and 512, and what
// Admit adds is what AdmissionBytes promised.
TEST_F(GeneratorTest, KvMemoryDoesNotDependOnMaxLength) {
  Translator translator(*model_);
  std::vector<std::vector<int>> sources(sources_->begin(),
                                        sources_->begin() + 32);
  std::vector<int64_t> bytes[2];
  int index = 0;
  for (int max_length : {64, 512}) {
    auto owned_generator = translator.NewGenerator();
    Generator& generator = *owned_generator;
    const int64_t expected = generator.AdmissionBytes(sources);
    ASSERT_TRUE(generator.Admit(sources, Options(4, max_length)).ok());
    // Cross-attention blocks now; the first self-attention block comes with
    // the first step.
    EXPECT_LE(generator.kv_bytes(), expected);
    for (int step = 0; step < 10; ++step) {
      generator.Step();
      bytes[index].push_back(generator.kv_bytes());
    }
    ++index;
  }
  EXPECT_EQ(bytes[0], bytes[1]);
}

// max_length_factor per sequence (Marian's --max-length-factor): sources of
// 11 to ~50 tokens decode in one batch with eos banned (min_length =
// max_length), so each runs to its bound: exactly ceil(1.5 x its tokens) + 10
// generated tokens without </s>, or, where that is not below max_length - 1,
// max_length - 1 tokens ending in the forced </s>. Factor 0: all reach
// max_length. Greedy and beam 4.
TEST_F(GeneratorTest, MaxLengthFactorBoundsEachSequenceOfAMixedBatch) {
  Translator translator(*model_);
  const std::vector<std::vector<int>> sources = {
      (*sources_)[0], Paragraph(30, 4), (*sources_)[1], (*sources_)[14],
      Paragraph(40, 2)};
  const int eos = (*model_)->config().eos_token_id;
  constexpr int kMaxLength = 64;
  for (int beam : {1, 4}) {
    for (double factor : {0.0, 1.5}) {
      TranslationOptions options = Options(beam, kMaxLength);
      options.num_hypotheses = 1;
      options.min_length = kMaxLength;
      options.max_length_factor = factor;
      auto results = translator.Translate(sources, options);
      ASSERT_TRUE(results.ok()) << results.status();
      int bounded = 0;
      for (size_t b = 0; b < sources.size(); ++b) {
        const int tokens = static_cast<int>(sources[b].size());
        // ceil(1.5 x tokens) in integers.
        const int bound = factor > 0 ? (3 * tokens + 1) / 2 + 10 : 1 << 20;
        const std::vector<int>& ids = (*results)[b].hypotheses.at(0).ids;
        const std::string what = "beam " + std::to_string(beam) + " factor " +
                                 std::to_string(factor) + " source " +
                                 std::to_string(b) + " (" +
                                 std::to_string(tokens) + " tokens)";
        if (bound < kMaxLength - 1) {
          ++bounded;
          EXPECT_EQ(static_cast<int>(ids.size()), bound) << what;
          EXPECT_NE(ids.back(), eos) << what;
        } else {
          EXPECT_EQ(static_cast<int>(ids.size()), kMaxLength - 1) << what;
          EXPECT_EQ(ids.back(), eos) << what << ": the forced eos";
        }
      }
      if (factor > 0) {
        EXPECT_GE(bounded, 3) << "sources the bound cuts";
        EXPECT_LT(bounded, static_cast<int>(sources.size()))
            << "sources max_length ends";
      }
    }
  }
}

}  // namespace
}  // namespace ts::core
