// Cross-attention returned with hypotheses (TranslationOptions::
// return_attention) against the reference PyTorch MarianMT
// (models/marian-en-de-multi30k/golden/attention.jsonl: 20 sentences, greedy
// and beam 4, every decoder layer averaged over heads), alone and in a
// batch; and the recorder's rows following beam reorders on a scripted model.
#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/decoding/search.h"
#include "core/model/marian_model.h"
#include "core/translator.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/core/json_lines.h"

namespace ts::core {
namespace {

// The golden values are rounded to 6 decimals; the issue asks for 1e-4.
constexpr float kTolerance = 1e-4f;

class AttentionGoldenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = MarianModel::Load(TS_DEMO_MODEL_DIR);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = new std::shared_ptr<const MarianModel>(*model);
    golden_ = new std::vector<nlohmann::json>(ReadJsonLines(
        std::string(TS_DEMO_MODEL_DIR) + "/golden/attention.jsonl"));
    ASSERT_EQ(golden_->size(), 40u);
  }
  static void TearDownTestSuite() {
    delete model_;
    delete golden_;
  }

  const MarianModel& model() const { return **model_; }
  int layers() const { return model().config().decoder_layers; }

  TranslationOptions Options(int beam_size, int layer) const {
    TranslationOptions options;
    options.beam_size = beam_size;
    options.max_length = 128;  // as the golden files were made
    options.return_attention = true;
    options.attention_layer = layer;
    auto resolved = model().ResolveOptions(options);
    EXPECT_TRUE(resolved.ok()) << resolved.status();
    return *resolved;
  }

  // Golden lines of one search ("greedy" or "beam4").
  std::vector<nlohmann::json> Lines(const std::string& search) const {
    std::vector<nlohmann::json> lines;
    for (const auto& line : *golden_) {
      if (line["search"] == search) lines.push_back(line);
    }
    EXPECT_EQ(lines.size(), 20u);
    return lines;
  }

  // The hypothesis has the golden ids and, for decoder layer `layer`, the
  // golden attention [target_len][source_len] within kTolerance.
  void ExpectMatches(const Hypothesis& hypothesis, const nlohmann::json& line,
                     int layer, const std::string& where) const {
    const auto ids = line["ids"].get<std::vector<int>>();
    const auto expected =
        line["cross_attention"][layer].get<std::vector<std::vector<float>>>();
    const size_t source_len = line["source_ids"].size();
    ASSERT_EQ(hypothesis.ids, ids) << where;
    ASSERT_EQ(expected.size(), ids.size()) << where;
    ASSERT_EQ(hypothesis.attention.size(), ids.size() * source_len) << where;
    for (size_t t = 0; t < ids.size(); ++t) {
      ASSERT_EQ(expected[t].size(), source_len) << where;
      for (size_t s = 0; s < source_len; ++s) {
        ASSERT_NEAR(hypothesis.attention[t * source_len + s], expected[t][s],
                    kTolerance)
            << where << " layer " << layer << " row " << t << " column " << s;
      }
    }
  }

  void CheckAlone(const std::string& search, int beam_size) {
    Translator translator(*model_);
    for (const auto& line : Lines(search)) {
      const auto source = line["source_ids"].get<std::vector<int>>();
      for (int layer = 0; layer < layers(); ++layer) {
        auto out = translator.Translate({source}, Options(beam_size, layer));
        ASSERT_TRUE(out.ok()) << out.status();
        ExpectMatches((*out)[0].hypotheses[0], line, layer,
                      search + " line " + line["line"].dump() + " alone");
      }
    }
  }

  // All 20 sentences in one padded batch (different lengths).
  void CheckBatch(const std::string& search, int beam_size) {
    Translator translator(*model_);
    const auto lines = Lines(search);
    std::vector<std::vector<int>> sources;
    for (const auto& line : lines) {
      sources.push_back(line["source_ids"].get<std::vector<int>>());
    }
    // -layers() .. -1 name the same layers from the end.
    for (int layer = -layers(); layer < layers(); ++layer) {
      auto out = translator.Translate(sources, Options(beam_size, layer));
      ASSERT_TRUE(out.ok()) << out.status();
      const int index = layer < 0 ? layer + layers() : layer;
      for (size_t i = 0; i < lines.size(); ++i) {
        ExpectMatches((*out)[i].hypotheses[0], lines[i], index,
                      search + " line " + lines[i]["line"].dump() +
                          " in a batch of 20, layer " + std::to_string(layer));
      }
    }
  }

  static std::shared_ptr<const MarianModel>* model_;
  static std::vector<nlohmann::json>* golden_;
};

std::shared_ptr<const MarianModel>* AttentionGoldenTest::model_ = nullptr;
std::vector<nlohmann::json>* AttentionGoldenTest::golden_ = nullptr;

TEST_F(AttentionGoldenTest, GreedyAloneEveryLayer) { CheckAlone("greedy", 1); }

TEST_F(AttentionGoldenTest, BeamFourAloneEveryLayer) { CheckAlone("beam4", 4); }

TEST_F(AttentionGoldenTest, GreedyInBatchEveryLayer) {
  CheckBatch("greedy", 1);
}

TEST_F(AttentionGoldenTest, BeamFourInBatchEveryLayer) {
  CheckBatch("beam4", 4);
}

TEST_F(AttentionGoldenTest, DefaultLayerIsTheLast) {
  TranslationOptions options;
  options.beam_size = 1;
  options.max_length = 128;
  options.return_attention = true;
  auto resolved = model().ResolveOptions(options);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->attention_layer, layers() - 1);
  const auto line = Lines("greedy")[3];
  Translator translator(*model_);
  auto out = translator.Translate({line["source_ids"].get<std::vector<int>>()},
                                  *resolved);
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectMatches((*out)[0].hypotheses[0], line, layers() - 1, "default layer");
}

TEST_F(AttentionGoldenTest, OffByDefaultAndSameTokens) {
  Translator translator(*model_);
  std::vector<std::vector<int>> sources;
  for (const auto& line : Lines("beam4")) {
    sources.push_back(line["source_ids"].get<std::vector<int>>());
  }
  for (int beam_size : {1, 4}) {
    TranslationOptions off = Options(beam_size, -1);
    off.return_attention = false;
    auto plain = translator.Translate(sources, off);
    auto with = translator.Translate(sources, Options(beam_size, -1));
    ASSERT_TRUE(plain.ok() && with.ok());
    for (size_t i = 0; i < sources.size(); ++i) {
      ASSERT_EQ((*plain)[i].hypotheses.size(), (*with)[i].hypotheses.size());
      for (size_t h = 0; h < (*plain)[i].hypotheses.size(); ++h) {
        EXPECT_TRUE((*plain)[i].hypotheses[h].attention.empty());
        EXPECT_EQ((*plain)[i].hypotheses[h].ids, (*with)[i].hypotheses[h].ids);
        EXPECT_EQ((*plain)[i].hypotheses[h].score,
                  (*with)[i].hypotheses[h].score);
      }
    }
  }
}

TEST_F(AttentionGoldenTest, EveryHypothesisOfABeamHasItsOwnRows) {
  // num_hypotheses 4: each row is a distribution over the source, one per
  // token of that hypothesis; hypotheses that share a prefix share its rows
  // (teacher forcing gives the same attention for the same prefix).
  Translator translator(*model_);
  const auto line = Lines("beam4")[5];
  const auto source = line["source_ids"].get<std::vector<int>>();
  TranslationOptions options = Options(4, -1);
  options.num_hypotheses = 4;
  auto out = translator.Translate({source}, options);
  ASSERT_TRUE(out.ok()) << out.status();
  const auto& hypotheses = (*out)[0].hypotheses;
  ASSERT_EQ(hypotheses.size(), 4u);
  const size_t n = source.size();
  for (const Hypothesis& hypothesis : hypotheses) {
    ASSERT_EQ(hypothesis.attention.size(), hypothesis.ids.size() * n);
    for (size_t t = 0; t < hypothesis.ids.size(); ++t) {
      float sum = 0.0f;
      for (size_t s = 0; s < n; ++s) sum += hypothesis.attention[t * n + s];
      EXPECT_NEAR(sum, 1.0f, 1e-4f);
    }
  }
  for (size_t a = 0; a < hypotheses.size(); ++a) {
    for (size_t b = a + 1; b < hypotheses.size(); ++b) {
      // Rows depend on the tokens before them: equal while prefixes agree.
      size_t common = 0;
      while (common < hypotheses[a].ids.size() &&
             common < hypotheses[b].ids.size() &&
             hypotheses[a].ids[common] == hypotheses[b].ids[common]) {
        ++common;
      }
      const size_t same_rows = std::min(
          common + 1,
          std::min(hypotheses[a].ids.size(), hypotheses[b].ids.size()));
      for (size_t i = 0; i < same_rows * n; ++i) {
        EXPECT_NEAR(hypotheses[a].attention[i], hypotheses[b].attention[i],
                    1e-5f)
            << a << " vs " << b << " element " << i;
      }
    }
  }
}

// A scripted step model: row r's "attention" at step k is a one-hot on the
// column that encodes (the token it was fed) mod src_len, so the rows of a
// hypothesis spell out its own token history. Beam search must hand each
// hypothesis the rows of its own beam, whatever the reorders.
class ScriptedModel : public StepModel {
 public:
  ScriptedModel(int vocab, int src_len) : vocab_(vocab), src_len_(src_len) {}
  void set_probs(std::vector<float>* probs) { probs_ = probs; }

  void Step(const std::vector<int>& tokens, float* logits) override {
    const int rows = static_cast<int>(tokens.size());
    probs_->assign(static_cast<size_t>(rows) * src_len_, 0.0f);  // one head
    for (int r = 0; r < rows; ++r) {
      (*probs_)[static_cast<size_t>(r) * src_len_ + tokens[r] % src_len_] =
          1.0f;
      // Scores depend on the fed token, so beams swap places: token k+1 is
      // best after k for even k, and eos (0) becomes likely late.
      for (int v = 0; v < vocab_; ++v) {
        const int distance = (v - tokens[r] + vocab_) % vocab_;
        logits[static_cast<size_t>(r) * vocab_ + v] =
            -0.5f * static_cast<float>(distance) -
            (v == 0 ? 3.0f - 0.4f * static_cast<float>(step_) : 0.0f);
      }
      logits[static_cast<size_t>(r) * vocab_ + 1] = -1e9f;  // pad
    }
    ++step_;
  }
  void Reorder(const std::vector<int>&) override {}

 private:
  int vocab_;
  int src_len_;
  int step_ = 0;
  std::vector<float>* probs_ = nullptr;
};

TEST(AttentionHistoryTest, RowsFollowTheirBeamThroughReorders) {
  constexpr int kVocab = 7;
  constexpr int kSrcLen = kVocab;  // one column per token
  for (int beam_size : {1, 2, 3}) {
    ScriptedModel model(kVocab, kSrcLen);
    std::vector<std::vector<float>> probs(1);  // one decoder layer
    model.set_probs(&probs[0]);
    const AttentionFeed feed{
        &probs, /*num_heads=*/1, kSrcLen, {kSrcLen, kSrcLen}};
    SearchRules rules;
    rules.vocab_size = kVocab;
    rules.eos_id = 0;
    rules.pad_id = 1;
    rules.decoder_start_id = 1;
    TranslationOptions options;
    options.beam_size = beam_size;
    options.num_hypotheses = beam_size;
    options.max_length = 12;
    options.return_attention = true;
    auto results = Search(model, 2, rules, options, &feed);
    for (const TranslationResult& result : results) {
      ASSERT_FALSE(result.hypotheses.empty());
      for (const Hypothesis& hypothesis : result.hypotheses) {
        ASSERT_EQ(hypothesis.attention.size(), hypothesis.ids.size() * kSrcLen);
        // Row t was produced after feeding the token before ids[t].
        for (size_t t = 0; t < hypothesis.ids.size(); ++t) {
          const int fed =
              t == 0 ? rules.decoder_start_id : hypothesis.ids[t - 1];
          for (int s = 0; s < kSrcLen; ++s) {
            EXPECT_EQ(hypothesis.attention[t * kSrcLen + s],
                      s == fed % kSrcLen ? 1.0f : 0.0f)
                << "beam " << beam_size << " row " << t << " column " << s;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace ts::core
