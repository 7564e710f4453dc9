#include "core/decoding/search.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>

#include "core/decoding/attention_recorder.h"
#include "core/ops/kernels.h"

namespace ts::core {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Hypothesis score of transformers' BeamHypotheses.add: computed in double
// there, since sum_logprobs arrives as a Python float.
double NormalizedScore(double sum_logprobs, int length, float length_penalty) {
  return sum_logprobs / std::pow(static_cast<double>(length), length_penalty);
}

// transformers' BeamHypotheses: the best num_beams finished hypotheses.
struct FinishedHypotheses {
  struct Entry {
    double score;
    std::vector<int> ids;    // without the start token, without eos
    bool finished;           // ended with eos
    int64_t attention_mark;  // AttentionRecorder::Mark, or -1
  };
  std::vector<Entry> beams;
  double worst_score = 1e9;
  int num_beams = 1;
  float length_penalty = 1.0f;

  void Add(std::vector<int> ids, double sum_logprobs, bool finished,
           int64_t attention_mark) {
    // The length counts the decoder start token.
    const double score = NormalizedScore(
        sum_logprobs, static_cast<int>(ids.size()) + 1, length_penalty);
    if (static_cast<int>(beams.size()) < num_beams || score > worst_score) {
      beams.push_back({score, std::move(ids), finished, attention_mark});
      if (static_cast<int>(beams.size()) > num_beams) {
        auto worst = std::min_element(
            beams.begin(), beams.end(),
            [](const Entry& a, const Entry& b) { return a.score < b.score; });
        beams.erase(worst);
        worst_score = std::min_element(beams.begin(), beams.end(),
                                       [](const Entry& a, const Entry& b) {
                                         return a.score < b.score;
                                       })
                          ->score;
      } else {
        worst_score = std::min(score, worst_score);
      }
    }
  }

  // early_stopping=False: done when no live beam can beat the worst kept one.
  bool IsDone(double best_sum_logprobs, int cur_len) const {
    if (static_cast<int>(beams.size()) < num_beams) return false;
    return worst_score >=
           NormalizedScore(best_sum_logprobs, cur_len, length_penalty);
  }
};

// The `k` largest of values[n] as (value, index), best first (ties: lower
// index first); missing entries (k > n) get index -1.
void TopTokens(const float* values, int n, int k, std::pair<float, int>* out) {
  auto better = [](const std::pair<float, int>& a,
                   const std::pair<float, int>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  // Min-heap (by `better`) of the best k seen so far.
  std::vector<std::pair<float, int>> heap;
  heap.reserve(k);
  auto offer = [&](int i) {
    const std::pair<float, int> item{values[i], i};
    if (static_cast<int>(heap.size()) < k) {
      heap.push_back(item);
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (better(item, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = item;
      std::push_heap(heap.begin(), heap.end(), better);
    }
  };
  // Once the heap is full, few values beat its worst: jump to the next one
  // that may (a vectorized scan). >= keeps ties, which `better` then orders
  // by index.
  int i = 0;
  for (; i < n && static_cast<int>(heap.size()) < k; ++i) offer(i);
  while (i < n) {
    i += static_cast<int>(
        ops::kernels::FindAtLeast(values + i, n - i, heap.front().first));
    if (i < n) offer(i++);
  }
  std::sort(heap.begin(), heap.end(), better);
  for (int r = 0; r < k; ++r) {
    out[r] = r < static_cast<int>(heap.size())
                 ? heap[r]
                 : std::pair<float, int>{kNegInf, -1};
  }
}

Hypothesis MakeHypothesis(const std::vector<int>& ids, bool finished,
                          double score, int eos_id) {
  Hypothesis hypothesis;
  hypothesis.ids = ids;
  if (finished) hypothesis.ids.push_back(eos_id);
  hypothesis.score = static_cast<float>(score);
  return hypothesis;
}

// The best `top` continuations of one row of logits [vocab] as (log-prob,
// token), best first; missing ones (-inf, -1). Greedy takes top = 1: the
// first maximum, as torch.argmax.
void BestTokens(float* logits, const SearchRules& rules,
                const TranslationOptions& options, int cur_len, int top,
                std::pair<float, int>* out) {
  const int vocab = rules.vocab_size;
  float max = 0.0f;
  const float log_sum = ops::kernels::LogSumExp(logits, vocab, &max);
  const int forced = ApplySearchRules(logits, rules, options, cur_len);
  if (forced >= 0) {
    out[0] = {0.0f, forced};
    std::fill(out + 1, out + top, std::pair<float, int>{kNegInf, -1});
    return;
  }
  // log_softmax is increasing: the top logits are the top log-probs.
  TopTokens(logits, vocab, top, out);
  for (int i = 0; i < top; ++i) {
    if (out[i].second >= 0) out[i].first = (out[i].first - max) - log_sum;
  }
}

// Sampling's choice for each live sequence i, whose logits are row
// active_row[i] of logits [rows, vocab]: (log-prob under the model, token).
// The model's rules run once per row (rows are shared at the first step);
// then each sequence draws from its own stream at this step.
void ChooseSampledTokens(float* logits, int rows, const SearchRules& rules,
                         const TranslationOptions& options, int cur_len,
                         const std::vector<int>& active,
                         const std::vector<int>& active_row,
                         const std::vector<uint64_t>& stream_keys,
                         std::pair<float, int>* chosen) {
  const int vocab = rules.vocab_size;
  struct RowState {
    float max = 0.0f;
    float log_sum = 0.0f;
    int forced = -1;
  };
  std::vector<RowState> row_state(rows);
#pragma omp parallel for schedule(static) if (rows * vocab >= (1 << 18))
  for (int r = 0; r < rows; ++r) {
    float* row = logits + static_cast<size_t>(r) * vocab;
    RowState& state = row_state[r];
    // As BestTokens: the normalizer is taken before the rules.
    state.log_sum = ops::kernels::LogSumExp(row, vocab, &state.max);
    state.forced = ApplySearchRules(row, rules, options, cur_len);
  }
  const int live = static_cast<int>(active.size());
#pragma omp parallel for schedule(static) if (live * vocab >= (1 << 18))
  for (int i = 0; i < live; ++i) {
    const int r = active_row[i];
    const RowState& state = row_state[r];
    if (state.forced >= 0) {
      chosen[i] = {0.0f, state.forced};
      continue;
    }
    const float* row = logits + static_cast<size_t>(r) * vocab;
    const int token = SampleToken(
        row, vocab, options, SampleUniform(stream_keys[active[i]], cur_len));
    if (token < 0) {  // every token banned: end the sequence
      chosen[i] = {kNegInf, rules.eos_id};
      continue;
    }
    chosen[i] = {(row[token] - state.max) - state.log_sum, token};
  }
}

// Greedy search, or sampling (options.do_sample) of `samples` sequences per
// source: sequence q is sample q % samples of source q / samples. Every
// sequence reads its source's row at the first step; then each has its own.
// With one sequence per source, `on_token` (if set) gets each chosen token.
std::vector<TranslationResult> GreedySearch(
    StepModel& model, int batch, const SearchRules& rules,
    const TranslationOptions& options, const AttentionRecorder* attention,
    const std::vector<SampleSource>& sample_sources,
    const TokenCallback& on_token) {
  const int vocab = rules.vocab_size;
  const int samples = options.do_sample ? options.num_hypotheses : 1;
  const bool streams = on_token && samples == 1 && options.num_hypotheses <= 1;
  const int sequences = batch * samples;
  std::vector<uint64_t> stream_keys;
  if (options.do_sample) {
    stream_keys.resize(sequences);
    for (int q = 0; q < sequences; ++q) {
      const int source = q / samples;
      stream_keys[q] = SampleStreamKey(sample_sources.empty()
                                           ? SampleSource{options.seed, source}
                                           : sample_sources[source],
                                       q % samples);
    }
  }
  std::vector<std::vector<int>> ids(sequences);
  std::vector<double> sum_logprobs(sequences, 0.0);
  std::vector<Hypothesis> ended(sequences);
  std::vector<int> active(sequences);  // live sequences
  std::iota(active.begin(), active.end(), 0);
  std::vector<int> active_row(sequences);  // their logits rows in this step
  for (int q = 0; q < sequences; ++q) active_row[q] = q / samples;
  std::vector<int> tokens(batch, rules.decoder_start_id);
  std::vector<float> logits;
  for (int cur_len = 1; cur_len < options.max_length && !active.empty();
       ++cur_len) {
    const int rows = static_cast<int>(tokens.size());
    const int live = static_cast<int>(active.size());
    logits.resize(static_cast<size_t>(rows) * vocab);
    model.Step(tokens, logits.data());
    std::vector<std::pair<float, int>> chosen(live);  // (log-prob, token)
    if (options.do_sample) {
      ChooseSampledTokens(logits.data(), rows, rules, options, cur_len, active,
                          active_row, stream_keys, chosen.data());
    } else {
#pragma omp parallel for schedule(static) if (rows * vocab >= (1 << 18))
      for (int r = 0; r < rows; ++r) {
        BestTokens(logits.data() + static_cast<size_t>(r) * vocab, rules,
                   options, cur_len, /*top=*/1, &chosen[r]);
      }
    }
    if (streams) {  // sequence q is source q
      for (int i = 0; i < live; ++i) on_token(active[i], chosen[i].second);
    }
    std::vector<int> keep;
    std::vector<int> next_active;
    std::vector<int> next_tokens;
    for (int i = 0; i < live; ++i) {
      const int token = chosen[i].second;
      const int q = active[i];
      sum_logprobs[q] += chosen[i].first;
      if (token == rules.eos_id) {
        ended[q] =
            MakeHypothesis(ids[q], true,
                           NormalizedScore(sum_logprobs[q],
                                           static_cast<int>(ids[q].size()) + 1,
                                           options.length_penalty),
                           rules.eos_id);
        if (attention != nullptr) {
          ended[q].attention =
              attention->Rows(attention->Mark(active_row[i]), q / samples);
        }
        continue;
      }
      ids[q].push_back(token);
      keep.push_back(active_row[i]);
      next_active.push_back(q);
      next_tokens.push_back(token);
    }
    bool same_rows = static_cast<int>(keep.size()) == rows;
    for (size_t i = 0; same_rows && i < keep.size(); ++i) {
      same_rows = keep[i] == static_cast<int>(i);
    }
    if (!same_rows && !keep.empty()) model.Reorder(keep);
    active = std::move(next_active);
    active_row.resize(active.size());
    std::iota(active_row.begin(), active_row.end(), 0);
    tokens = std::move(next_tokens);
  }
  for (size_t i = 0; i < active.size(); ++i) {  // max_length without eos
    const int q = active[i];
    ended[q] = MakeHypothesis(
        ids[q], false,
        NormalizedScore(sum_logprobs[q], static_cast<int>(ids[q].size()) + 1,
                        options.length_penalty),
        rules.eos_id);
    if (attention != nullptr) {
      ended[q].attention =
          attention->Rows(attention->Mark(static_cast<int>(i)), q / samples);
    }
  }
  std::vector<TranslationResult> results(batch);
  for (int q = 0; q < sequences; ++q) {
    results[q / samples].hypotheses.push_back(std::move(ended[q]));
  }
  return results;
}

std::vector<TranslationResult> BeamSearch(StepModel& model, int batch,
                                          const SearchRules& rules,
                                          const TranslationOptions& options,
                                          const AttentionRecorder* attention) {
  const int vocab = rules.vocab_size;
  const int beams = options.beam_size;
  std::vector<FinishedHypotheses> finished(batch);
  for (auto& f : finished) {
    f.num_beams = beams;
    f.length_penalty = options.length_penalty;
  }
  std::vector<bool> done(batch, false);
  // Live rows, in source order: one per source at the first step (its beams
  // would be identical: transformers starts all but the first at -1e9, so
  // every first-step candidate comes from the first), then `beams` per
  // source that is not done.
  std::vector<int> row_source(batch);
  std::iota(row_source.begin(), row_source.end(), 0);
  int width = 1;  // rows per source in this step
  std::vector<std::vector<int>> row_ids(batch);
  std::vector<float> beam_scores(batch, 0.0f);
  std::vector<int> tokens(batch, rules.decoder_start_id);
  std::vector<float> logits;
  int cur_len = 1;
  while (cur_len < options.max_length && !row_source.empty()) {
    const int rows = static_cast<int>(row_source.size());
    logits.resize(static_cast<size_t>(rows) * vocab);
    model.Step(tokens, logits.data());
    // Each row's best 2 * beams tokens; the best 2 * beams continuations of
    // a source are among its rows' ones.
    const int top = 2 * beams;
    std::vector<std::pair<float, int>> row_best(static_cast<size_t>(rows) *
                                                top);
#pragma omp parallel for schedule(static) if (rows * vocab >= (1 << 18))
    for (int r = 0; r < rows; ++r) {
      BestTokens(logits.data() + static_cast<size_t>(r) * vocab, rules, options,
                 cur_len, top, row_best.data() + static_cast<size_t>(r) * top);
    }
    std::vector<int> next_parents;
    std::vector<int> next_source;
    std::vector<std::vector<int>> next_ids;
    std::vector<float> next_scores;
    std::vector<int> next_tokens;
    for (int first = 0; first < rows; first += width) {
      const int source = row_source[first];
      // (accumulated score, beam * vocab + token), best first; ties go to the
      // lower index, as the flattened topk of transformers.
      std::vector<std::pair<float, int>> candidates;
      for (int k = 0; k < width; ++k) {
        const auto* best =
            row_best.data() + static_cast<size_t>(first + k) * top;
        for (int i = 0; i < top; ++i) {
          if (best[i].second < 0) continue;
          candidates.push_back({best[i].first + beam_scores[first + k],
                                k * vocab + best[i].second});
        }
      }
      std::sort(candidates.begin(), candidates.end(),
                [](const auto& a, const auto& b) {
                  return a.first > b.first ||
                         (a.first == b.first && a.second < b.second);
                });
      int added = 0;
      const int ranks = std::min<int>(top, static_cast<int>(candidates.size()));
      for (int rank = 0; rank < ranks && added < beams; ++rank) {
        const int index = candidates[rank].second;
        const int beam_row = first + index / vocab;
        const int token = index % vocab;
        const float score = candidates[rank].first;
        if (token == rules.eos_id) {
          // An eos below the top `beams` ranks is not a finished hypothesis.
          if (rank >= beams) continue;
          finished[source].Add(row_ids[beam_row], score, true,
                               attention ? attention->Mark(beam_row) : -1);
          continue;
        }
        next_parents.push_back(beam_row);
        next_source.push_back(source);
        std::vector<int> ids = row_ids[beam_row];
        ids.push_back(token);
        next_ids.push_back(std::move(ids));
        next_scores.push_back(score);
        next_tokens.push_back(token);
        ++added;
      }
      done[source] = finished[source].IsDone(candidates[0].first, cur_len);
      if (done[source]) {  // drop this source's rows from the batch
        next_parents.resize(next_parents.size() - added);
        next_source.resize(next_source.size() - added);
        next_ids.resize(next_ids.size() - added);
        next_scores.resize(next_scores.size() - added);
        next_tokens.resize(next_tokens.size() - added);
      }
    }
    ++cur_len;
    width = beams;
    row_source = std::move(next_source);
    row_ids = std::move(next_ids);
    beam_scores = std::move(next_scores);
    tokens = std::move(next_tokens);
    if (!row_source.empty()) model.Reorder(next_parents);
  }
  // Sources still live at max_length: their beams become hypotheses.
  for (size_t r = 0; r < row_source.size(); ++r) {
    finished[row_source[r]].Add(
        row_ids[r], beam_scores[r], false,
        attention ? attention->Mark(static_cast<int>(r)) : -1);
  }
  std::vector<TranslationResult> results(batch);
  for (int b = 0; b < batch; ++b) {
    auto& entries = finished[b].beams;
    std::stable_sort(
        entries.begin(), entries.end(),
        [](const auto& a, const auto& c) { return a.score > c.score; });
    for (int i = 0;
         i < options.num_hypotheses && i < static_cast<int>(entries.size());
         ++i) {
      results[b].hypotheses.push_back(MakeHypothesis(
          entries[i].ids, entries[i].finished, entries[i].score, rules.eos_id));
      if (attention != nullptr) {
        results[b].hypotheses.back().attention =
            attention->Rows(entries[i].attention_mark, b);
      }
    }
  }
  return results;
}

}  // namespace

int ApplySearchRules(float* scores, const SearchRules& rules,
                     const TranslationOptions& options, int cur_len) {
  if (rules.forced_eos_id >= 0 && cur_len == options.max_length - 1) {
    return rules.forced_eos_id;
  }
  const int vocab = rules.vocab_size;
  for (int id : rules.bad_words_ids) {
    if (id >= 0 && id < vocab) scores[id] = kNegInf;
  }
  if (cur_len < options.min_length) scores[rules.eos_id] = kNegInf;
  return -1;
}

std::vector<TranslationResult> Search(
    StepModel& model, int batch, const SearchRules& rules,
    const TranslationOptions& options, const AttentionRecorder* attention,
    const std::vector<SampleSource>& sample_sources,
    const TokenCallback& on_token) {
  if (options.beam_size <= 1 || options.do_sample) {
    return GreedySearch(model, batch, rules, options, attention, sample_sources,
                        on_token);
  }
  return BeamSearch(model, batch, rules, options, attention);
}

}  // namespace ts::core
