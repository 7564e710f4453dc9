// Greedy and beam search (core/decoding) over a bigram step model whose
// log-probs are known in closed form: outputs are checked against a plain
// double-precision greedy loop, and every returned score is recomputed from
// the bigram table. Covers the rules of generate (pad never generated, bad
// words, min_length, forced eos at max_length) and finished rows leaving.
#include "core/decoding/search.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "core/decoding/sequence_search.h"
#include "gtest/gtest.h"

namespace ts::core {
namespace {

constexpr int kVocab = 40;  // more than a 16-wide block, not a multiple
constexpr int kPad = 0;     // also the decoder start token, as in MarianMT
constexpr int kEos = 1;

// logits of the next token = table[last token]; <pad> banned, as MarianMT
// adjusts its logits. Each row's state is its last token.
class BigramModel : public StepModel {
 public:
  BigramModel(int batch, uint32_t seed, float eos_bias)
      : table_(kVocab * kVocab), rows_(batch, kPad) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
    for (float& v : table_) v = dist(rng);
    // Makes eos likelier after some tokens, so sentences end at different
    // steps and finished rows leave the batch.
    for (int t = 2; t < kVocab; t += 3) table_[t * kVocab + kEos] += eos_bias;
  }

  void Step(const std::vector<int>& tokens, float* logits) override {
    ASSERT_EQ(tokens.size(), rows_.size());
    for (size_t r = 0; r < tokens.size(); ++r) {
      ASSERT_EQ(rows_[r], expected_last_[r]) << "row " << r;
      std::copy_n(table_.begin() + tokens[r] * kVocab, kVocab,
                  logits + r * kVocab);
      logits[r * kVocab + kPad] = -std::numeric_limits<float>::infinity();
      rows_[r] = tokens[r];
    }
    expected_last_ = rows_;
    ++steps_;
  }

  void Reorder(const std::vector<int>& parents) override {
    std::vector<int> rows;
    for (int p : parents) rows.push_back(rows_[p]);
    rows_ = rows;
    expected_last_ = rows_;
  }

  // log_softmax(table[prev])[next] in double, <pad> excluded.
  double LogProb(int prev, int next) const {
    const float* row = table_.data() + prev * kVocab;
    double max = -1e300, sum = 0.0;
    for (int t = 1; t < kVocab; ++t) max = std::max<double>(max, row[t]);
    for (int t = 1; t < kVocab; ++t) sum += std::exp(row[t] - max);
    return row[next] - max - std::log(sum);
  }

  int steps() const { return steps_; }

 private:
  std::vector<float> table_;  // [kVocab, kVocab]
  std::vector<int> rows_;     // last token fed to each row
  std::vector<int> expected_last_ = rows_;
  int steps_ = 0;
};

SearchRules Rules() {
  SearchRules rules;
  rules.vocab_size = kVocab;
  rules.eos_id = kEos;
  rules.pad_id = kPad;
  rules.decoder_start_id = kPad;
  return rules;
}

TranslationOptions Options(int beam_size, int max_length, int min_length = 0) {
  TranslationOptions options;
  options.beam_size = beam_size;
  options.max_length = max_length;
  options.min_length = min_length;
  options.num_hypotheses = 1;
  return options;
}

// The score the search must report for `ids` (eos included if finished):
// sum of log-probs over length^penalty, length = start token + ids - eos.
double ExpectedScore(const BigramModel& model, const std::vector<int>& ids,
                     const SearchRules& rules, const TranslationOptions& o) {
  double sum = 0.0;
  int prev = rules.decoder_start_id;
  for (size_t i = 0; i < ids.size(); ++i) {
    const bool forced =
        rules.forced_eos_id >= 0 && static_cast<int>(i) + 1 == o.max_length - 1;
    sum += forced ? 0.0 : model.LogProb(prev, ids[i]);
    prev = ids[i];
  }
  const int ended = !ids.empty() && ids.back() == rules.eos_id ? 1 : 0;
  const int length = 1 + static_cast<int>(ids.size()) - ended;
  return sum / std::pow(length, o.length_penalty);
}

// Plain greedy: argmax of the double log-probs with the rules applied.
std::vector<int> ReferenceGreedy(const BigramModel& model,
                                 const SearchRules& rules,
                                 const TranslationOptions& o) {
  std::vector<int> ids;
  int prev = rules.decoder_start_id;
  for (int cur_len = 1; cur_len < o.max_length; ++cur_len) {
    if (rules.forced_eos_id >= 0 && cur_len == o.max_length - 1) {
      ids.push_back(rules.forced_eos_id);
      break;
    }
    int best = -1;
    for (int t = 1; t < kVocab; ++t) {
      if (std::count(rules.bad_words_ids.begin(), rules.bad_words_ids.end(),
                     t) > 0 ||
          (t == rules.eos_id && cur_len < o.min_length)) {
        continue;
      }
      if (best < 0 || model.LogProb(prev, t) > model.LogProb(prev, best)) {
        best = t;
      }
    }
    ids.push_back(best);
    if (best == rules.eos_id) break;
    prev = best;
  }
  return ids;
}

TEST(SearchTest, GreedyMatchesPlainLoopAndScores) {
  const int batch = 6;
  for (uint32_t seed : {1u, 2u, 3u}) {
    BigramModel model(batch, seed, /*eos_bias=*/2.5f);
    // Each source starts from the same start token: one reference per seed.
    const SearchRules rules = Rules();
    const TranslationOptions o = Options(1, 12);
    const std::vector<TranslationResult> results =
        Search(model, batch, rules, o);
    const std::vector<int> expected = ReferenceGreedy(model, rules, o);
    ASSERT_EQ(results.size(), static_cast<size_t>(batch));
    for (const TranslationResult& result : results) {
      ASSERT_EQ(result.hypotheses.size(), 1u);
      EXPECT_EQ(result.hypotheses[0].ids, expected) << "seed " << seed;
      EXPECT_NEAR(result.hypotheses[0].score,
                  ExpectedScore(model, expected, rules, o), 1e-5);
    }
  }
}

// A bigram model with one table per source (row b starts as source b), so
// sources really differ: each source's eos gets its own bias, and its
// sentence ends at its own step. Tracks every row's source through Reorder
// and records how many rows each step was fed.
class PerSourceBigramModel : public StepModel {
 public:
  PerSourceBigramModel(int batch, uint32_t seed)
      : tables_(batch, std::vector<float>(kVocab * kVocab)),
        sources_(batch),
        last_(batch, kPad) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
    for (int b = 0; b < batch; ++b) {
      sources_[b] = b;
      for (float& v : tables_[b]) v = dist(rng);
      // Source 0 ends soonest, the last one latest (or at max_length).
      for (int t = 0; t < kVocab; ++t) {
        tables_[b][t * kVocab + kEos] += 6.0f - 2.0f * static_cast<float>(b);
      }
    }
  }

  void Step(const std::vector<int>& tokens, float* logits) override {
    ASSERT_EQ(tokens.size(), sources_.size());
    rows_per_step_.push_back(static_cast<int>(tokens.size()));
    for (size_t r = 0; r < tokens.size(); ++r) {
      std::copy_n(tables_[sources_[r]].begin() + tokens[r] * kVocab, kVocab,
                  logits + r * kVocab);
      logits[r * kVocab + kPad] = -std::numeric_limits<float>::infinity();
      last_[r] = tokens[r];
    }
  }

  void Reorder(const std::vector<int>& parents) override {
    std::vector<int> sources, last;
    for (int p : parents) {
      sources.push_back(sources_[p]);
      last.push_back(last_[p]);
    }
    sources_ = sources;
    last_ = last;
  }

  // log_softmax(table_source[prev])[next] in double, <pad> excluded.
  double LogProb(int source, int prev, int next) const {
    const float* row = tables_[source].data() + prev * kVocab;
    double max = -1e300, sum = 0.0;
    for (int t = 1; t < kVocab; ++t) max = std::max<double>(max, row[t]);
    for (int t = 1; t < kVocab; ++t) sum += std::exp(row[t] - max);
    return row[next] - max - std::log(sum);
  }

  const std::vector<int>& rows_per_step() const { return rows_per_step_; }

 private:
  std::vector<std::vector<float>> tables_;  // [batch][kVocab * kVocab]
  std::vector<int> sources_;                // source of each row
  std::vector<int> last_;                   // last token fed to each row
  std::vector<int> rows_per_step_;
};

// Plain greedy for one source of PerSourceBigramModel (no rules but pad).
std::vector<int> ReferenceGreedyOf(const PerSourceBigramModel& model,
                                   int source, int max_length) {
  std::vector<int> ids;
  int prev = kPad;
  for (int cur_len = 1; cur_len < max_length; ++cur_len) {
    int best = 1;
    for (int t = 2; t < kVocab; ++t) {
      if (model.LogProb(source, prev, t) > model.LogProb(source, prev, best)) {
        best = t;
      }
    }
    ids.push_back(best);
    if (best == kEos) break;
    prev = best;
  }
  return ids;
}

// Sources that end at different steps: each output is its own source's
// plain-loop greedy, the lengths really differ, and finished rows leave (the
// model is fed fewer rows as sentences end), for greedy and beam search.
TEST(SearchTest, RowsFinishAtDifferentSteps) {
  const int batch = 5, max_length = 16;
  // Seeds whose five sentences end at 4 different steps (1 to 15 tokens;
  // others let two sources end together, which the test would not notice).
  for (uint32_t seed : {14u, 17u, 18u, 20u}) {
    PerSourceBigramModel model(batch, seed);
    const TranslationOptions o = Options(1, max_length);
    const std::vector<TranslationResult> results =
        Search(model, batch, Rules(), o);
    ASSERT_EQ(results.size(), static_cast<size_t>(batch));
    std::vector<size_t> lengths;
    for (int b = 0; b < batch; ++b) {
      ASSERT_EQ(results[b].hypotheses.size(), 1u);
      const std::vector<int>& ids = results[b].hypotheses[0].ids;
      EXPECT_EQ(ids, ReferenceGreedyOf(model, b, max_length))
          << "seed " << seed << " source " << b;
      lengths.push_back(ids.size());
    }
    std::vector<size_t> distinct = lengths;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()),
                   distinct.end());
    EXPECT_GE(distinct.size(), 3u) << "seed " << seed << ": sentences must "
                                   << "end at different steps";
    const std::vector<int>& rows = model.rows_per_step();
    ASSERT_FALSE(rows.empty());
    EXPECT_EQ(rows.front(), batch);
    EXPECT_TRUE(std::is_sorted(rows.rbegin(), rows.rend()))
        << "rows fed per step never grow";
    EXPECT_LT(rows.back(), batch) << "finished rows leave the batch";
    // One step per token of the longest sentence.
    EXPECT_EQ(rows.size(), *std::max_element(lengths.begin(), lengths.end()));

    PerSourceBigramModel beam_model(batch, seed);
    const TranslationOptions beam = Options(3, max_length);
    const std::vector<TranslationResult> beam_results =
        Search(beam_model, batch, Rules(), beam);
    ASSERT_EQ(beam_results.size(), static_cast<size_t>(batch));
    std::vector<size_t> beam_lengths;
    for (int b = 0; b < batch; ++b) {
      ASSERT_FALSE(beam_results[b].hypotheses.empty());
      const std::vector<int>& ids = beam_results[b].hypotheses[0].ids;
      beam_lengths.push_back(ids.size());
      // The score is recomputed from this source's own table.
      double sum = 0.0;
      int prev = kPad;
      for (int id : ids) {
        sum += beam_model.LogProb(b, prev, id);
        prev = id;
      }
      const int length =
          1 + static_cast<int>(ids.size()) - (ids.back() == kEos ? 1 : 0);
      EXPECT_NEAR(beam_results[b].hypotheses[0].score, sum / length, 1e-4)
          << "seed " << seed << " source " << b;
    }
    const std::vector<int>& beam_rows = beam_model.rows_per_step();
    EXPECT_EQ(beam_rows.front(), batch);  // first step: one row per source
    EXPECT_LT(beam_rows.back(), batch * 3) << "finished sources leave";
  }
}

TEST(SearchTest, RulesBanWordsDelayEosAndForceIt) {
  BigramModel model(3, 5, /*eos_bias=*/8.0f);  // eos wins whenever it can
  SearchRules rules = Rules();
  rules.bad_words_ids = {2, 3, 7};
  rules.forced_eos_id = kEos;
  for (int beam : {1, 3}) {
    for (int min_length : {0, 4}) {
      const TranslationOptions o = Options(beam, 9, min_length);
      BigramModel fresh = model;
      const auto results = Search(fresh, 3, rules, o);
      for (const TranslationResult& result : results) {
        ASSERT_FALSE(result.hypotheses.empty());
        const std::vector<int>& ids = result.hypotheses[0].ids;
        for (size_t i = 0; i < ids.size(); ++i) {
          EXPECT_NE(ids[i], kPad) << "beam " << beam;
          EXPECT_EQ(std::count(rules.bad_words_ids.begin(),
                               rules.bad_words_ids.end(), ids[i]),
                    0)
              << "bad word " << ids[i] << " at " << i << ", beam " << beam;
          // eos only last, and not before min_length (cur_len = i + 1).
          if (ids[i] == kEos) {
            EXPECT_EQ(i + 1, ids.size());
            EXPECT_GE(static_cast<int>(i) + 1, min_length);
          }
        }
        // Every sequence ends with eos by max_length - 1 (forced).
        ASSERT_EQ(ids.back(), kEos);
        EXPECT_LE(static_cast<int>(ids.size()), o.max_length - 1);
        if (beam == 1) {
          EXPECT_EQ(ids, ReferenceGreedy(model, rules, o));
        }
        EXPECT_NEAR(result.hypotheses[0].score,
                    ExpectedScore(model, ids, rules, o), 1e-5);
      }
    }
  }
  // With eos made unlikely, the forced eos ends every sequence at
  // max_length - 1 with log-prob 0.
  for (int beam : {1, 3}) {
    BigramModel no_eos(2, 6, /*eos_bias=*/-50.0f);
    const TranslationOptions o = Options(beam, 7);
    const BigramModel reference = no_eos;
    const auto results = Search(no_eos, 2, rules, o);
    for (const TranslationResult& result : results) {
      const std::vector<int>& ids = result.hypotheses[0].ids;
      ASSERT_EQ(static_cast<int>(ids.size()), o.max_length - 1) << beam;
      EXPECT_EQ(ids.back(), kEos);
      EXPECT_NEAR(result.hypotheses[0].score,
                  ExpectedScore(reference, ids, rules, o), 1e-5)
          << "beam " << beam;
    }
  }
}

// Marian's --max-length-factor: ceil(factor x source tokens) + 10 generated
// tokens, + 1 for the decoder start, when below max_length.
TEST(SearchTest, MaxLengthFactorLimitCountsSourceTokens) {
  TranslationOptions o;
  o.max_length = 512;
  EXPECT_EQ(MaxLengthFactorLimit(o, 11), 512) << "factor 0: off";
  o.max_length_factor = 3.0;
  EXPECT_EQ(MaxLengthFactorLimit(o, 11), 33 + 10 + 1);
  EXPECT_EQ(MaxLengthFactorLimit(o, 1), 3 + 10 + 1);
  EXPECT_EQ(MaxLengthFactorLimit(o, 0), 512) << "no source length: off";
  EXPECT_EQ(MaxLengthFactorLimit(o, 166), 498 + 10 + 1);
  EXPECT_EQ(MaxLengthFactorLimit(o, 167), 512) << "501 + 10 + 1: max_length";
  EXPECT_EQ(MaxLengthFactorLimit(o, 4000), 512);
  o.max_length_factor = 1.5;
  EXPECT_EQ(MaxLengthFactorLimit(o, 3), 5 + 10 + 1) << "ceil(4.5)";
  EXPECT_EQ(MaxLengthFactorLimit(o, 4), 6 + 10 + 1);
  o.max_length_factor = 0.25;
  EXPECT_EQ(MaxLengthFactorLimit(o, 9), 3 + 10 + 1) << "ceil(2.25)";
  o.max_length = 20;
  EXPECT_EQ(MaxLengthFactorLimit(o, 40), 20) << "20 > max_length";
}

TEST(SearchTest, BeamHypothesesAreSortedAndScoredFromTheModel) {
  const int batch = 4, beams = 4;
  BigramModel model(batch, 11, /*eos_bias=*/2.0f);
  const SearchRules rules = Rules();
  TranslationOptions o = Options(beams, 10);
  o.num_hypotheses = beams;
  o.length_penalty = 0.8f;
  BigramModel fresh = model;
  const auto results = Search(fresh, batch, rules, o);
  const std::vector<int> greedy = ReferenceGreedy(model, rules, Options(1, 10));
  for (const TranslationResult& result : results) {
    ASSERT_EQ(result.hypotheses.size(), static_cast<size_t>(beams));
    for (size_t i = 0; i < result.hypotheses.size(); ++i) {
      const Hypothesis& h = result.hypotheses[i];
      EXPECT_NEAR(h.score, ExpectedScore(model, h.ids, rules, o), 1e-5) << i;
      if (i > 0) {
        EXPECT_GE(result.hypotheses[i - 1].score, h.score);
      }
    }
    // Beam search finds a sequence at least as good as greedy's.
    EXPECT_GE(result.hypotheses[0].score + 1e-6,
              ExpectedScore(model, greedy, rules, o));
  }
}

// Token streaming (TokenCallback): greedy search calls back once per step
// for each live source, on the calling thread outside OpenMP regions, and
// each source's calls spell out exactly its hypothesis (eos included) while
// sources end at different steps; sampling one sequence streams too; beam
// search and several samples per source never call.
TEST(SearchTest, GreedyStreamsEachSourcesTokensAsChosen) {
  const int batch = 5, max_length = 16;
  for (uint32_t seed : {14u, 17u}) {
    for (bool sample : {false, true}) {
      PerSourceBigramModel model(batch, seed);
      TranslationOptions o = Options(1, max_length);
      o.do_sample = sample;
      o.seed = seed;
      std::vector<std::vector<int>> streamed(batch);
      std::vector<int> calls_per_step;  // calls between two model steps
      size_t steps_seen = 0;
      const std::thread::id caller = std::this_thread::get_id();
      const std::vector<TranslationResult> results = Search(
          model, batch, Rules(), o, nullptr, {}, [&](int source, int token) {
            EXPECT_EQ(std::this_thread::get_id(), caller);
            EXPECT_FALSE(omp_in_parallel());
            ASSERT_GE(source, 0);
            ASSERT_LT(source, batch);
            if (model.rows_per_step().size() != steps_seen) {
              steps_seen = model.rows_per_step().size();
              calls_per_step.push_back(0);
            }
            ++calls_per_step.back();
            streamed[source].push_back(token);
          });
      for (int b = 0; b < batch; ++b) {
        ASSERT_EQ(results[b].hypotheses.size(), 1u);
        EXPECT_EQ(streamed[b], results[b].hypotheses[0].ids)
            << "seed " << seed << " sample " << sample << " source " << b;
      }
      // Every live row gets its token in the step that chose it.
      EXPECT_EQ(calls_per_step, model.rows_per_step());
    }
  }
}

TEST(SearchTest, BeamSearchAndSeveralSamplesDoNotStream) {
  const int batch = 3;
  int calls = 0;
  const TokenCallback count = [&calls](int, int) { ++calls; };
  PerSourceBigramModel beam_model(batch, 14);
  const auto beam =
      Search(beam_model, batch, Rules(), Options(3, 12), nullptr, {}, count);
  EXPECT_FALSE(beam[0].hypotheses.empty());
  PerSourceBigramModel sample_model(batch, 14);
  TranslationOptions o = Options(1, 12);
  o.do_sample = true;
  o.num_hypotheses = 2;
  const auto samples =
      Search(sample_model, batch, Rules(), o, nullptr, {}, count);
  EXPECT_EQ(samples[0].hypotheses.size(), 2u);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace ts::core
