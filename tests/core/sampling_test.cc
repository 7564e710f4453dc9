// Sampling (core/decoding/sampling.h) on the demo model: degenerate settings
// give the golden greedy ids, a seed gives the same samples alone and in a
// batch, first-step samples follow the model's softmax (chi-square), and the
// top-k/top-p filters never let a token outside their set through. The
// softmax and the allowed sets are computed here in double from the decoder's
// logits, which are checked against the golden log-probs first.
#include "core/decoding/sampling.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/model/marian_decoder.h"
#include "core/model/marian_model.h"
#include "core/ops/execution_context.h"
#include "core/translator.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/core/json_lines.h"

namespace ts::core {
namespace {

// Upper tail of the chi-square distribution with an even number of degrees
// of freedom, P(X > x) = Q(df / 2, x / 2) = exp(-x/2) sum_{i < df/2}
// (x/2)^i / i! (the regularized upper incomplete gamma function at an
// integer order).
double ChiSquarePValueEvenDf(double x, int df) {
  const double half = x / 2.0;
  double term = 1.0, sum = 1.0;
  for (int i = 1; i < df / 2; ++i) {
    term *= half / i;
    sum += term;
  }
  return std::exp(-half) * sum;
}

class SamplingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = MarianModel::Load(TS_DEMO_MODEL_DIR);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = new std::shared_ptr<const MarianModel>(*model);
    translations_ = new std::vector<nlohmann::json>(ReadJsonLines(
        std::string(TS_DEMO_MODEL_DIR) + "/golden/translations.jsonl"));
    ASSERT_EQ(translations_->size(), 200u);
  }
  static void TearDownTestSuite() {
    delete model_;
    delete translations_;
  }

  const MarianModel& model() const { return **model_; }

  std::vector<int> Source(size_t i) const {
    return (*translations_)[i]["source_ids"].get<std::vector<int>>();
  }

  TranslationOptions Sampling(int num_hypotheses, int top_k, float top_p,
                              float temperature, int max_length = 128) const {
    TranslationOptions options;
    options.do_sample = true;
    options.num_hypotheses = num_hypotheses;
    options.top_k = top_k;
    options.top_p = top_p;
    options.temperature = temperature;
    options.max_length = max_length;
    options.seed = 20240917;
    auto resolved = model().ResolveOptions(options);
    EXPECT_TRUE(resolved.ok()) << resolved.status();
    return *resolved;
  }

  // One translator for the helpers below, so oneDNN primitives are created
  // once.
  Translator* SharedTranslator() {
    static auto* translator = new Translator(*model_);
    return translator;
  }

  // log_softmax over the full vocabulary of the decoder's first-step logits
  // for `source` (nothing banned), in double.
  std::vector<double> FirstStepLogProbs(const std::vector<int>& source) {
    Translator* translator = SharedTranslator();
    static auto* ctx = new ExecutionContext();
    static auto* workspace = new DecoderWorkspace();
    auto hidden = translator->EncoderHiddenStates({source});
    EXPECT_TRUE(hidden.ok()) << hidden.status();
    const ModelConfig& config = model().config();
    const int src_len = static_cast<int>(source.size());
    MarianDecoder decoder(model().network(), config, *ctx, (*hidden)[0].data(),
                          /*batch=*/1, src_len, {src_len}, workspace);
    std::vector<float> logits(config.vocab_size);
    decoder.Step({config.decoder_start_token_id}, logits.data());
    // The decoder already gives <pad> -inf (MarianMT's logits adjustment),
    // as the sampler sees it; the normalizer leaves it out.
    double max = -1e300;
    for (int t = 0; t < config.vocab_size; ++t) {
      if (t != config.pad_token_id) max = std::max<double>(max, logits[t]);
    }
    double sum = 0.0;
    for (int t = 0; t < config.vocab_size; ++t) {
      if (t != config.pad_token_id) sum += std::exp(logits[t] - max);
    }
    std::vector<double> log_probs(config.vocab_size);
    for (int t = 0; t < config.vocab_size; ++t) {
      log_probs[t] = t == config.pad_token_id ? -INFINITY
                                              : logits[t] - max - std::log(sum);
    }
    return log_probs;
  }

  // FirstStepLogProbs of golden line i, computed once per test suite.
  const std::vector<double>& FirstStepLogProbsOfLine(size_t i) {
    static auto* cache = new std::vector<std::vector<double>>(200);
    if ((*cache)[i].empty()) (*cache)[i] = FirstStepLogProbs(Source(i));
    return (*cache)[i];
  }

  // First generated token of `count` samples of `source`, over distinct
  // streams (text indices), in batches of 100 texts x 10 samples.
  std::vector<int> FirstTokens(const std::vector<int>& source, int count,
                               const TranslationOptions& base) {
    // max_length 3: the first token is sampled, the second forced to eos.
    TranslationOptions options = base;
    options.max_length = 3;
    options.num_hypotheses = 10;
    Translator& translator = *SharedTranslator();
    std::vector<int> tokens;
    const int texts = 100;
    for (int call = 0; static_cast<int>(tokens.size()) < count; ++call) {
      std::vector<std::vector<int>> batch(texts, source);
      std::vector<SampleSource> streams;
      for (int b = 0; b < texts; ++b) {
        streams.push_back({options.seed, call * texts + b});
      }
      auto results = translator.Translate(batch, options, streams);
      EXPECT_TRUE(results.ok()) << results.status();
      for (const TranslationResult& result : *results) {
        EXPECT_EQ(result.hypotheses.size(), 10u);
        for (const Hypothesis& h : result.hypotheses) {
          tokens.push_back(h.ids.at(0));
        }
      }
    }
    tokens.resize(count);
    return tokens;
  }

  static std::shared_ptr<const MarianModel>* model_;
  static std::vector<nlohmann::json>* translations_;
};

std::shared_ptr<const MarianModel>* SamplingTest::model_ = nullptr;
std::vector<nlohmann::json>* SamplingTest::translations_ = nullptr;

TEST_F(SamplingTest, TopKOneAndTinyTemperatureGiveGoldenGreedyIds) {
  Translator translator(*model_);
  std::vector<std::vector<int>> sources;
  for (size_t i = 0; i < translations_->size(); ++i) {
    sources.push_back(Source(i));
  }
  for (const TranslationOptions& options :
       {Sampling(1, /*top_k=*/1, 1.0f, 1.0f),
        Sampling(1, /*top_k=*/0, 1.0f, /*temperature=*/1e-6f),
        Sampling(2, /*top_k=*/1, /*top_p=*/0.5f, /*temperature=*/3.0f)}) {
    SCOPED_TRACE(testing::Message()
                 << "top_k " << options.top_k << " top_p " << options.top_p
                 << " temperature " << options.temperature);
    // Every golden source with top_k 1; the first 100 with the others.
    const size_t count = options.num_hypotheses == 1 && options.top_k == 1
                             ? sources.size()
                             : 100;
    int matches = 0;
    for (size_t start = 0; start < count; start += 50) {
      std::vector<std::vector<int>> batch(sources.begin() + start,
                                          sources.begin() + start + 50);
      auto results = translator.Translate(batch, options);
      ASSERT_TRUE(results.ok()) << results.status();
      for (size_t i = 0; i < batch.size(); ++i) {
        const auto expected =
            (*translations_)[start + i]["greedy_ids"].get<std::vector<int>>();
        ASSERT_EQ((*results)[i].hypotheses.size(),
                  static_cast<size_t>(options.num_hypotheses));
        for (const Hypothesis& h : (*results)[i].hypotheses) {
          EXPECT_EQ(h.ids, expected) << "line " << start + i;
          matches += h.ids == expected;
        }
      }
    }
    EXPECT_EQ(matches, static_cast<int>(count) * options.num_hypotheses);
  }
}

TEST_F(SamplingTest, SameSeedSameSamplesAloneAndInABatch) {
  const TranslationOptions options = Sampling(4, 0, 1.0f, 1.0f, 64);
  Translator translator(*model_);
  const std::vector<int> source = Source(7);
  const SampleSource stream{options.seed, /*text_index=*/3};
  auto alone = translator.Translate({source}, options, {stream});
  ASSERT_TRUE(alone.ok()) << alone.status();
  ASSERT_EQ((*alone)[0].hypotheses.size(), 4u);
  // The four samples differ from each other (independent streams).
  std::set<std::vector<int>> distinct;
  for (const Hypothesis& h : (*alone)[0].hypotheses) distinct.insert(h.ids);
  EXPECT_GE(distinct.size(), 2u);

  // The same source at row 5 of 9 others with other streams, as a batch
  // from several requests would hold it.
  std::vector<std::vector<int>> batch;
  std::vector<SampleSource> streams;
  for (int b = 0; b < 10; ++b) {
    batch.push_back(b == 5 ? source : Source(20 + b));
    streams.push_back(b == 5 ? stream : SampleSource{options.seed + b, b});
  }
  auto batched = translator.Translate(batch, options, streams);
  ASSERT_TRUE(batched.ok()) << batched.status();
  ASSERT_EQ((*batched)[5].hypotheses.size(), 4u);
  for (int s = 0; s < 4; ++s) {
    EXPECT_EQ((*batched)[5].hypotheses[s].ids, (*alone)[0].hypotheses[s].ids)
        << "sample " << s;
    EXPECT_NEAR((*batched)[5].hypotheses[s].score,
                (*alone)[0].hypotheses[s].score, 1e-4);
  }

  // Another seed gives other samples.
  auto reseeded = translator.Translate({source}, options,
                                       {SampleSource{options.seed + 1, 3}});
  ASSERT_TRUE(reseeded.ok());
  int equal = 0;
  for (int s = 0; s < 4; ++s) {
    equal += (*reseeded)[0].hypotheses[s].ids == (*alone)[0].hypotheses[s].ids;
  }
  EXPECT_LT(equal, 4);
}

TEST_F(SamplingTest, SampleScoresAreTheModelsLogProbs) {
  // The score of a sample is sum(log_softmax) / length, as greedy's: the
  // teacher-forced log-probs of the same ids give it back.
  const TranslationOptions options = Sampling(3, 0, 1.0f, 1.0f, 64);
  Translator translator(*model_);
  const std::vector<int> source = Source(11);
  auto results = translator.Translate({source}, options);
  ASSERT_TRUE(results.ok());
  for (const Hypothesis& h : (*results)[0].hypotheses) {
    ASSERT_FALSE(h.ids.empty());
    ASSERT_EQ(h.ids.back(), model().config().eos_token_id);
    auto log_probs = translator.ScoreTargets({source}, {h.ids});
    ASSERT_TRUE(log_probs.ok());
    double sum = 0.0;
    for (float lp : (*log_probs)[0]) sum += lp;
    // length counts the start token and the tokens, not the final eos
    EXPECT_NEAR(h.score, sum / static_cast<double>(h.ids.size()), 1e-3);
  }
}

TEST_F(SamplingTest, FirstStepSamplesFollowTheSoftmax) {
  // The decoder's first step agrees with the golden teacher-forced log-probs.
  for (const auto& entry : ReadJsonLines(std::string(TS_DEMO_MODEL_DIR) +
                                         "/golden/logprobs.jsonl")) {
    const auto log_probs =
        FirstStepLogProbs(entry["source_ids"].get<std::vector<int>>());
    EXPECT_NEAR(log_probs[entry["labels"][0].get<int>()],
                entry["token_logprobs"][0].get<double>(), 1e-3);
  }
  // Of the first 60 golden sources, the one whose 20th likeliest first token
  // is likeliest, so every one of the 21 bins expects enough samples for the
  // chi-square approximation.
  std::vector<double> probs;
  std::vector<int> order;
  double best_p20 = -1.0;
  size_t chosen = 0;
  for (size_t i = 0; i < 60; ++i) {
    const std::vector<double>& log_probs = FirstStepLogProbsOfLine(i);
    std::vector<int> by_prob(log_probs.size());
    std::iota(by_prob.begin(), by_prob.end(), 0);
    std::partial_sort(
        by_prob.begin(), by_prob.begin() + 20, by_prob.end(),
        [&](int a, int b) { return log_probs[a] > log_probs[b]; });
    if (std::exp(log_probs[by_prob[19]]) > best_p20) {
      best_p20 = std::exp(log_probs[by_prob[19]]);
      chosen = i;
      probs.resize(log_probs.size());
      for (size_t t = 0; t < log_probs.size(); ++t) {
        probs[t] = std::exp(log_probs[t]);
      }
      order.assign(by_prob.begin(), by_prob.begin() + 20);
    }
  }
  const int n = 20000;
  std::printf("source line %zu; 20th likeliest first token p = %.4f\n", chosen,
              best_p20);
  ASSERT_GE(best_p20 * n, 5.0);  // every bin expects at least 5 samples

  const std::vector<int> tokens =
      FirstTokens(Source(chosen), n, Sampling(1, 0, 1.0f, 1.0f));
  std::vector<double> observed(21, 0.0), expected(21, 0.0);
  double top_mass = 0.0;
  for (int b = 0; b < 20; ++b) {
    expected[b] = probs[order[b]] * n;
    top_mass += probs[order[b]];
  }
  expected[20] = (1.0 - top_mass) * n;
  for (int token : tokens) {
    const auto it = std::find(order.begin(), order.end(), token);
    observed[it - order.begin()] += 1.0;  // the end is bin 20, "the rest"
  }
  double chi2 = 0.0;
  for (int b = 0; b < 21; ++b) {
    chi2 +=
        (observed[b] - expected[b]) * (observed[b] - expected[b]) / expected[b];
  }
  // 21 bins, probabilities known: 20 degrees of freedom. p > 0.01 is
  // chi2 < 37.566, the 0.99 quantile of chi-square(20).
  const double p_value = ChiSquarePValueEvenDf(chi2, 20);
  std::printf("chi2 = %.3f over 21 bins, p = %.4f\n", chi2, p_value);
  EXPECT_GT(p_value, 0.01);
  EXPECT_LT(chi2, 37.566);
  // The p-value function itself, at the tabulated quantiles of
  // chi-square(20): 0.99 -> 37.566, 0.95 -> 31.410, 0.5 -> 19.337.
  EXPECT_NEAR(ChiSquarePValueEvenDf(37.566, 20), 0.01, 1e-4);
  EXPECT_NEAR(ChiSquarePValueEvenDf(31.410, 20), 0.05, 1e-4);
  EXPECT_NEAR(ChiSquarePValueEvenDf(19.337, 20), 0.5, 1e-4);
}

TEST_F(SamplingTest, TopKAndTopPNeverLeaveTheAllowedSet) {
  const int top_k = 10;
  const float top_p = 0.9f;
  // Three golden sources with a flat first step (the 3rd likeliest token
  // above 3%), so several tokens pass the filters.
  std::vector<size_t> lines;
  for (size_t i = 0; i < 60 && lines.size() < 3; ++i) {
    std::vector<double> p = FirstStepLogProbsOfLine(i);
    std::nth_element(p.begin(), p.begin() + 2, p.end(), std::greater<>());
    if (std::exp(p[2]) > 0.03) lines.push_back(i);
  }
  ASSERT_EQ(lines.size(), 3u);
  for (size_t line : lines) {
    const std::vector<double>& log_probs = FirstStepLogProbsOfLine(line);
    // Allowed: of the 10 likeliest, renormalized, those whose likelier
    // tokens hold less than top_p.
    std::vector<int> by_prob(log_probs.size());
    std::iota(by_prob.begin(), by_prob.end(), 0);
    std::sort(by_prob.begin(), by_prob.end(),
              [&](int a, int b) { return log_probs[a] > log_probs[b]; });
    double top_mass = 0.0;
    for (int i = 0; i < top_k; ++i) top_mass += std::exp(log_probs[by_prob[i]]);
    std::set<int> allowed;
    double above = 0.0;
    for (int i = 0; i < top_k && above < top_p; ++i) {
      allowed.insert(by_prob[i]);
      above += std::exp(log_probs[by_prob[i]]) / top_mass;
    }
    const std::vector<int> tokens =
        FirstTokens(Source(line), 2000, Sampling(1, top_k, top_p, 1.0f));
    std::set<int> seen(tokens.begin(), tokens.end());
    for (int token : seen) {
      EXPECT_TRUE(allowed.count(token))
          << "line " << line << " token " << token << " is not allowed";
    }
    std::printf("line %zu: %zu tokens allowed, %zu seen\n", line,
                allowed.size(), seen.size());
    // Every allowed token of probability >= 1% shows up in 2000 draws.
    for (int token : allowed) {
      if (std::exp(log_probs[token]) / top_mass >= 0.01) {
        EXPECT_TRUE(seen.count(token)) << "line " << line << " token " << token;
      }
    }
  }
}

// SampleToken on hand-made scores against the definitions of the warpers.
TEST(SampleTokenTest, TiesAtTheTopKBoundaryStay) {
  // Scores: token 0 best, tokens 1, 2, 3 tied second; top_k 2 keeps all four.
  const std::vector<float> scores = {2.0f, 1.0f, 1.0f, 1.0f, -1.0f, -2.0f};
  TranslationOptions options;
  options.do_sample = true;
  options.top_k = 2;
  std::set<int> seen;
  for (int i = 0; i < 4000; ++i) {
    seen.insert(SampleToken(scores.data(), 6, options, (i + 0.5) / 4000));
  }
  EXPECT_EQ(seen, (std::set<int>{0, 1, 2, 3}));
}

TEST(SampleTokenTest, InverseCdfOverTheWarpedDistribution) {
  // softmax([ln 4, ln 3, ln 2, ln 1]) = [0.4, 0.3, 0.2, 0.1]; temperature 1.
  const std::vector<float> scores = {std::log(4.0f), std::log(3.0f),
                                     std::log(2.0f), 0.0f};
  TranslationOptions options;
  options.do_sample = true;
  // No filter: the CDF in index order.
  EXPECT_EQ(SampleToken(scores.data(), 4, options, 0.39), 0);
  EXPECT_EQ(SampleToken(scores.data(), 4, options, 0.41), 1);
  EXPECT_EQ(SampleToken(scores.data(), 4, options, 0.69), 1);
  EXPECT_EQ(SampleToken(scores.data(), 4, options, 0.71), 2);
  EXPECT_EQ(SampleToken(scores.data(), 4, options, 0.95), 3);
  // top_p 0.69: [0.4, 0.3] hold 0.7 >= top_p, so tokens 2, 3 go; the kept
  // ones renormalize to [4/7, 3/7].
  options.top_p = 0.69f;
  EXPECT_EQ(SampleToken(scores.data(), 4, options, 0.56), 0);
  EXPECT_EQ(SampleToken(scores.data(), 4, options, 0.58), 1);
  EXPECT_EQ(SampleToken(scores.data(), 4, options, 0.999), 1);
  // top_p 0.71 keeps the third token too.
  options.top_p = 0.71f;
  EXPECT_EQ(SampleToken(scores.data(), 4, options, 0.999), 2);
  // Temperature 2 after top-k 3: weights sqrt(4), sqrt(3), sqrt(2).
  options.top_p = 1.0f;
  options.top_k = 3;
  options.temperature = 2.0f;
  const double total = 2.0 + std::sqrt(3.0) + std::sqrt(2.0);
  EXPECT_EQ(SampleToken(scores.data(), 4, options, 1.99 / total), 0);
  EXPECT_EQ(SampleToken(scores.data(), 4, options, 2.01 / total), 1);
  EXPECT_EQ(SampleToken(scores.data(), 4, options, 0.999), 2);
  // Banned tokens (-inf) are never drawn, and a banned maximum does not
  // starve a tiny temperature.
  const std::vector<float> banned = {-INFINITY, 5.0f, 4.0f};
  options = TranslationOptions();
  options.temperature = 1e-7f;
  EXPECT_EQ(SampleToken(banned.data(), 3, options, 0.999), 1);
}

TEST(SampleStreamTest, StreamsDependOnSeedTextAndSample) {
  const uint64_t key = SampleStreamKey({7, 0}, 0);
  EXPECT_EQ(key, SampleStreamKey({7, 0}, 0));
  EXPECT_NE(key, SampleStreamKey({8, 0}, 0));
  EXPECT_NE(key, SampleStreamKey({7, 1}, 0));
  EXPECT_NE(key, SampleStreamKey({7, 0}, 1));
  EXPECT_NE(SampleStreamKey({7, 1}, 0), SampleStreamKey({7, 0}, 1));
  for (int step = 1; step < 1000; ++step) {
    const double u = SampleUniform(key, step);
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
  EXPECT_NE(SampleUniform(key, 1), SampleUniform(key, 2));
}

}  // namespace
}  // namespace ts::core
