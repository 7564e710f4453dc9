#include "core/decoding/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace ts::core {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// SplitMix64's increment: 2^64 / golden ratio, odd.
constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ULL;

// SplitMix64's output function (Stafford's Mix13 variant).
uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Index of the draw in `weights` (unnormalized, summing to `total`) that
// `uniform` in [0, 1) selects by inverse CDF.
template <typename WeightAt>
int Pick(int n, double total, double uniform, WeightAt weight_at) {
  const double target = uniform * total;
  double cumulative = 0.0;
  int last_positive = -1;
  for (int i = 0; i < n; ++i) {
    const double w = weight_at(i);
    if (w <= 0.0) continue;
    cumulative += w;
    last_positive = i;
    if (target < cumulative) return i;
  }
  return last_positive;  // rounding left target at the very end
}

}  // namespace

uint64_t SampleStreamKey(const SampleSource& source, int sample_index) {
  uint64_t key = Mix(source.seed + kGamma);
  key = Mix(key + kGamma * (static_cast<uint64_t>(
                                static_cast<uint32_t>(source.text_index)) +
                            1));
  key =
      Mix(key +
          kGamma *
              (static_cast<uint64_t>(static_cast<uint32_t>(sample_index)) + 1));
  return key;
}

double SampleUniform(uint64_t key, int cur_len) {
  const uint64_t bits = Mix(key + kGamma * static_cast<uint64_t>(cur_len));
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

int SampleToken(const float* scores, int vocab,
                const TranslationOptions& options, double uniform) {
  // The maximum after the rules: one taken before them may be a banned
  // token, and at a temperature near 0 every weight would underflow.
  float max = kNegInf;
  for (int i = 0; i < vocab; ++i) max = std::max(max, scores[i]);
  if (max == kNegInf) return -1;
  const double temperature = options.temperature;
  // exp((s - max) / T) <= 1; division, not a product with 1 / T, keeps
  // 0 / T = 0 for the tiniest T.
  auto weight = [&](float score) {
    return std::exp((static_cast<double>(score) - max) / temperature);
  };
  const bool top_k_on = options.top_k > 0 && options.top_k < vocab;
  const bool top_p_on = options.top_p < 1.0f;
  if (!top_k_on && !top_p_on) {
    double total = 0.0;
    for (int i = 0; i < vocab; ++i) total += weight(scores[i]);
    return Pick(vocab, total, uniform,
                [&](int i) { return weight(scores[i]); });
  }

  // (score, token) of the tokens still allowed.
  std::vector<std::pair<float, int>> candidates;
  candidates.reserve(vocab);
  for (int i = 0; i < vocab; ++i) {
    if (scores[i] > kNegInf) candidates.push_back({scores[i], i});
  }
  auto better = [](const std::pair<float, int>& a,
                   const std::pair<float, int>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  if (top_k_on && static_cast<int>(candidates.size()) > options.top_k) {
    // Temperature keeps the order, so the top_k-th score decides; every
    // token scoring at least that stays, as `scores < topk(...)[-1]`.
    std::nth_element(candidates.begin(), candidates.begin() + options.top_k - 1,
                     candidates.end(), better);
    const float threshold = candidates[options.top_k - 1].first;
    candidates.erase(
        std::remove_if(candidates.begin(), candidates.end(),
                       [&](const auto& c) { return c.first < threshold; }),
        candidates.end());
  }
  std::sort(candidates.begin(), candidates.end(), better);
  std::vector<double> weights(candidates.size());
  double total = 0.0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    weights[i] = weight(candidates[i].first);
    total += weights[i];
  }
  size_t kept = candidates.size();
  if (top_p_on) {
    // TopPLogitsWarper drops a token when the tokens likelier than it
    // already hold at least top_p of the probability; the likeliest stays.
    const double limit = static_cast<double>(options.top_p) * total;
    double above = 0.0;
    kept = 0;
    while (kept < candidates.size() && (kept == 0 || above < limit)) {
      above += weights[kept];
      ++kept;
    }
    total = above;
  }
  const int index = Pick(static_cast<int>(kept), total, uniform,
                         [&](int i) { return weights[i]; });
  return index < 0 ? -1 : candidates[index].second;
}

}  // namespace ts::core
