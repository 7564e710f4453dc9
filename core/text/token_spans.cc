#include "core/text/token_spans.h"

namespace ts::core::text {

std::vector<TokenAlignment> AlignTokens(
    absl::Span<const TokenRange> source_ranges,
    absl::Span<const TokenRange> target_ranges,
    absl::Span<const int> argmax_source) {
  std::vector<TokenAlignment> alignment;
  const size_t count = std::min(target_ranges.size(), argmax_source.size());
  alignment.reserve(count);
  for (size_t t = 0; t < count; ++t) {
    const TokenRange& target = target_ranges[t];
    if (target.begin >= target.end) continue;
    TokenAlignment token;
    token.target_begin = target.begin;
    token.target_end = target.end;
    const int s = argmax_source[t];
    if (s >= 0 && static_cast<size_t>(s) < source_ranges.size()) {
      token.source_begin = source_ranges[s].begin;
      token.source_end = source_ranges[s].end;
    }
    alignment.push_back(token);
  }
  return alignment;
}

}  // namespace ts::core::text
