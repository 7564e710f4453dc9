#include "core/decoding/sequence_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/ops/kernels.h"

namespace ts::core {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Hypothesis score of transformers' BeamHypotheses.add: computed in double
// there, since sum_logprobs arrives as a Python float.
double NormalizedScore(double sum_logprobs, int length, float length_penalty) {
  return sum_logprobs / std::pow(static_cast<double>(length), length_penalty);
}

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

}  // namespace

int MaxLengthFactorLimit(const TranslationOptions& options, int source_length) {
  if (!(options.max_length_factor > 0.0) || source_length <= 0) {
    return options.max_length;
  }
  const double generated =
      std::ceil(options.max_length_factor * source_length) + 10.0;
  // + 1: the decoder start token.
  if (generated + 1.0 >= options.max_length) return options.max_length;
  return static_cast<int>(generated) + 1;
}

SequenceSearch::SequenceSearch(const SearchRules& rules,
                               const TranslationOptions& options,
                               SampleSource sample_source, int attention_length,
                               int source_length)
    : rules_(rules),
      options_(options),
      beam_(options.beam_size > 1 && !options.do_sample),
      samples_(options.do_sample ? options.num_hypotheses : 1),
      top_(beam_ ? 2 * options.beam_size : 1),
      length_limit_(MaxLengthFactorLimit(options, source_length)),
      tokens_(1, rules.decoder_start_id),
      attention_length_(attention_length) {
  if (beam_) {
    // One row at the first step: the other beams would be identical
    // (transformers starts all but the first at -1e9, so every first-step
    // candidate comes from the first).
    beam_ids_.resize(1);
    beam_scores_.assign(1, 0.0f);
  } else {
    sample_state_.resize(samples_);
    for (int q = 0; q < samples_; ++q) {
      sample_state_[q].stream_key = SampleStreamKey(sample_source, q);
    }
  }
  row_best_.resize(top_);
  row_scores_.resize(1);
}

void SequenceSearch::ScoreRow(int r, float* logits) {
  const int vocab = rules_.vocab_size;
  RowScores& scores = row_scores_[r];
  scores.log_sum = ops::kernels::LogSumExp(logits, vocab, &scores.max);
  scores.forced = ApplySearchRules(logits, rules_, options_, cur_len_);
  scores.logits = logits;
  scores.penalized.clear();
  if (scores.forced < 0) ApplyRepetitionRules(r, logits, &scores);
  std::pair<float, int>* out = row_best_.data() + static_cast<size_t>(r) * top_;
  if (options_.do_sample) return;  // drawn per sample in Advance
  if (scores.forced >= 0) {
    out[0] = {0.0f, scores.forced};
    std::fill(out + 1, out + top_, std::pair<float, int>{kNegInf, -1});
    return;
  }
  // log_softmax is increasing: the top logits are the top log-probs. Greedy
  // takes top 1: the first maximum, as torch.argmax.
  TopTokens(logits, vocab, top_, out);
  for (int i = 0; i < top_; ++i) {
    if (out[i].second >= 0) {
      // Greedy scores the model's log-prob; beam search the processed one.
      const float logit =
          beam_ ? out[i].first : scores.ModelLogit(out[i].second);
      out[i].first = (logit - scores.max) - scores.log_sum;
    }
  }
}

const std::vector<int>& SequenceSearch::RowIds(int r) const {
  if (beam_) return beam_ids_[r];
  for (const Sample& sample : sample_state_) {
    if (sample.row == r) return sample.ids;  // samples on one row are equal
  }
  static const std::vector<int> kNone;
  return kNone;
}

void SequenceSearch::ApplyRepetitionRules(int r, float* logits,
                                          RowScores* scores) const {
  const int ngram = options_.no_repeat_ngram_size;
  const float penalty = options_.repetition_penalty;
  if (ngram <= 0 && penalty == 1.0f) return;
  // generate's decoder input_ids: the decoder start token, then the ids.
  const std::vector<int>& ids = RowIds(r);
  const int length = static_cast<int>(ids.size()) + 1;  // cur_len
  auto token_at = [&](int i) {
    return i == 0 ? rules_.decoder_start_id : ids[i - 1];
  };
  const int vocab = rules_.vocab_size;
  if (penalty != 1.0f) {
    // RepetitionPenaltyLogitsProcessor: each distinct token once.
    std::vector<int> tokens = ids;
    tokens.push_back(rules_.decoder_start_id);
    std::sort(tokens.begin(), tokens.end());
    tokens.erase(std::unique(tokens.begin(), tokens.end()), tokens.end());
    // Beam search penalizes log-probs: kept as logits over the normalizer
    // taken before, so that (logit - max) - log_sum is the penalized one.
    const float offset = scores->max + scores->log_sum;
    for (int token : tokens) {
      if (token < 0 || token >= vocab) continue;
      float& logit = logits[token];
      scores->penalized.push_back({token, logit});
      if (beam_) {
        const float logprob = logit - offset;
        logit = (logprob < 0 ? logprob * penalty : logprob / penalty) + offset;
      } else {
        logit = logit < 0 ? logit * penalty : logit / penalty;
      }
    }
  }
  // NoRepeatNGramLogitsProcessor: each earlier n-gram whose first n - 1
  // tokens are the last n - 1 tokens bans its last token.
  for (int start = 0; ngram > 0 && start + ngram <= length; ++start) {
    bool same = true;
    for (int k = 0; k < ngram - 1 && same; ++k) {
      same = token_at(start + k) == token_at(length - ngram + 1 + k);
    }
    if (same) logits[token_at(start + ngram - 1)] = kNegInf;
  }
}

void SequenceSearch::RecordAttention(const float* probs, int num_heads,
                                     int stride) {
  if (attention_length_ <= 0) return;
  const int rows = this->rows();
  AttentionStep step;
  if (attention_.empty()) {
    step.parents.assign(rows, -1);
  } else {
    step.parents = pending_parents_;
  }
  // [rows, heads, stride] -> [rows, length]: the mean over heads, as
  // transformers' cross_attentions averaged with torch.mean(dim=heads).
  const int length = attention_length_;
  step.mean.assign(static_cast<size_t>(rows) * length, 0.0f);
  const float inv_heads = 1.0f / static_cast<float>(num_heads);
  for (int r = 0; r < rows; ++r) {
    float* mean = step.mean.data() + static_cast<size_t>(r) * length;
    for (int h = 0; h < num_heads; ++h) {
      const float* p =
          probs + (static_cast<size_t>(r) * num_heads + h) * stride;
      for (int j = 0; j < length; ++j) mean[j] += p[j];
    }
    for (int j = 0; j < length; ++j) mean[j] *= inv_heads;
  }
  attention_.push_back(std::move(step));
}

int64_t SequenceSearch::Mark(int row) const {
  if (attention_length_ <= 0 || attention_.empty()) return -1;
  return (static_cast<int64_t>(attention_.size()) - 1) << 32 | row;
}

std::vector<float> SequenceSearch::AttentionRows(int64_t mark) const {
  if (mark < 0) return {};
  const int length = attention_length_;
  int step = static_cast<int>(mark >> 32);
  int row = static_cast<int>(mark & 0xffffffff);
  std::vector<float> rows(static_cast<size_t>(step + 1) * length);
  for (; step >= 0; --step) {
    const AttentionStep& s = attention_[step];
    std::copy_n(s.mean.data() + static_cast<size_t>(row) * length, length,
                rows.data() + static_cast<size_t>(step) * length);
    row = s.parents[row];
  }
  return rows;
}

Hypothesis SequenceSearch::MakeHypothesis(const std::vector<int>& ids, bool eos,
                                          double score, int64_t mark) const {
  Hypothesis hypothesis;
  hypothesis.ids = ids;
  if (eos) hypothesis.ids.push_back(rules_.eos_id);
  hypothesis.score = static_cast<float>(score);
  if (options_.return_attention) hypothesis.attention = AttentionRows(mark);
  return hypothesis;
}

void SequenceSearch::Advance(std::vector<int>* parents) {
  std::vector<int> own;
  if (beam_) {
    AdvanceBeams(&own);
  } else {
    AdvanceSamples(&own);
  }
  ++cur_len_;
  pending_parents_ = own;
  parents->insert(parents->end(), own.begin(), own.end());
  const int rows = static_cast<int>(tokens_.size());
  row_best_.resize(static_cast<size_t>(rows) * top_);
  row_scores_.resize(rows);
}

void SequenceSearch::AdvanceSamples(std::vector<int>* parents) {
  last_token_ = -1;
  std::vector<int> next_tokens;
  const bool last_step = cur_len_ + 1 >= length_limit_;
  for (Sample& sample : sample_state_) {
    if (sample.row < 0) continue;
    const int r = sample.row;
    std::pair<float, int> chosen;  // (log-prob, token)
    if (!options_.do_sample) {
      chosen = row_best_[static_cast<size_t>(r) * top_];
    } else {
      const RowScores& scores = row_scores_[r];
      if (scores.forced >= 0) {
        chosen = {0.0f, scores.forced};
      } else {
        const int token =
            SampleToken(scores.logits, rules_.vocab_size, options_,
                        SampleUniform(sample.stream_key, cur_len_));
        chosen =
            token < 0  // every token banned: end the sequence
                ? std::pair<float, int>{kNegInf, rules_.eos_id}
                : std::pair<float, int>{
                      (scores.ModelLogit(token) - scores.max) - scores.log_sum,
                      token};
      }
    }
    sample.sum_logprobs += chosen.first;
    if (streams()) last_token_ = chosen.second;
    const double score = [&] {
      const bool eos = chosen.second == rules_.eos_id;
      const int length = static_cast<int>(sample.ids.size()) + (eos ? 1 : 2);
      return NormalizedScore(sample.sum_logprobs, length,
                             options_.length_penalty);
    }();
    if (chosen.second == rules_.eos_id) {
      sample.result = MakeHypothesis(sample.ids, true, score, Mark(r));
      sample.row = -1;
      continue;
    }
    sample.ids.push_back(chosen.second);
    if (last_step) {  // max_length (or the factor's bound) without eos
      sample.result = MakeHypothesis(sample.ids, false, score, Mark(r));
      sample.row = -1;
      continue;
    }
    sample.row = static_cast<int>(next_tokens.size());
    parents->push_back(r);
    next_tokens.push_back(chosen.second);
  }
  tokens_ = std::move(next_tokens);
  done_ = tokens_.empty();
}

void SequenceSearch::AddFinished(std::vector<int> ids, double sum_logprobs,
                                 bool eos, int64_t mark) {
  // transformers' BeamHypotheses.add: the length counts the decoder start.
  const int beams = options_.beam_size;
  const double score = NormalizedScore(
      sum_logprobs, static_cast<int>(ids.size()) + 1, options_.length_penalty);
  if (static_cast<int>(finished_.size()) < beams || score > worst_score_) {
    finished_.push_back({score, std::move(ids), eos, mark});
    auto by_score = [](const Finished& a, const Finished& b) {
      return a.score < b.score;
    };
    if (static_cast<int>(finished_.size()) > beams) {
      finished_.erase(
          std::min_element(finished_.begin(), finished_.end(), by_score));
      worst_score_ =
          std::min_element(finished_.begin(), finished_.end(), by_score)->score;
    } else {
      worst_score_ = std::min(score, worst_score_);
    }
  }
}

// early_stopping=False: done when no live beam can beat the worst kept one.
bool SequenceSearch::BeamsDone(double best_sum_logprobs) const {
  if (static_cast<int>(finished_.size()) < options_.beam_size) return false;
  return worst_score_ >=
         NormalizedScore(best_sum_logprobs, cur_len_, options_.length_penalty);
}

void SequenceSearch::AdvanceBeams(std::vector<int>* parents) {
  const int vocab = rules_.vocab_size;
  const int beams = options_.beam_size;
  const int rows = this->rows();
  // (accumulated score, beam * vocab + token), best first; ties go to the
  // lower index, as the flattened topk of transformers.
  std::vector<std::pair<float, int>> candidates;
  for (int k = 0; k < rows; ++k) {
    const auto* best = row_best_.data() + static_cast<size_t>(k) * top_;
    for (int i = 0; i < top_; ++i) {
      if (best[i].second < 0) continue;
      candidates.push_back(
          {best[i].first + beam_scores_[k], k * vocab + best[i].second});
    }
  }
  std::sort(
      candidates.begin(), candidates.end(), [](const auto& a, const auto& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
      });
  std::vector<std::vector<int>> next_ids;
  std::vector<float> next_scores;
  std::vector<int> next_tokens;
  const int ranks = std::min<int>(top_, static_cast<int>(candidates.size()));
  for (int rank = 0;
       rank < ranks && static_cast<int>(next_tokens.size()) < beams; ++rank) {
    const int beam_row = candidates[rank].second / vocab;
    const int token = candidates[rank].second % vocab;
    const float score = candidates[rank].first;
    if (token == rules_.eos_id) {
      // An eos below the top `beams` ranks is not a finished hypothesis.
      if (rank >= beams) continue;
      AddFinished(beam_ids_[beam_row], score, true, Mark(beam_row));
      continue;
    }
    parents->push_back(beam_row);
    std::vector<int> ids = beam_ids_[beam_row];
    ids.push_back(token);
    next_ids.push_back(std::move(ids));
    next_scores.push_back(score);
    next_tokens.push_back(token);
  }
  done_ = candidates.empty() || BeamsDone(candidates[0].first);
  if (!done_ && cur_len_ + 1 >= length_limit_) {
    // Live at max_length (or the length factor's bound): the beams become
    // hypotheses.
    for (size_t r = 0; r < next_ids.size(); ++r) {
      AddFinished(next_ids[r], next_scores[r], false, Mark((*parents)[r]));
    }
    done_ = true;
  }
  if (done_) {
    parents->clear();
    next_tokens.clear();
  }
  beam_ids_ = std::move(next_ids);
  beam_scores_ = std::move(next_scores);
  tokens_ = std::move(next_tokens);
}

TranslationResult SequenceSearch::TakeResult() {
  TranslationResult result;
  if (!beam_) {
    for (Sample& sample : sample_state_) {
      result.hypotheses.push_back(std::move(sample.result));
    }
    return result;
  }
  std::stable_sort(
      finished_.begin(), finished_.end(),
      [](const Finished& a, const Finished& b) { return a.score > b.score; });
  for (int i = 0;
       i < options_.num_hypotheses && i < static_cast<int>(finished_.size());
       ++i) {
    const Finished& f = finished_[i];
    result.hypotheses.push_back(MakeHypothesis(f.ids, f.eos, f.score, f.mark));
  }
  return result;
}

}  // namespace ts::core
