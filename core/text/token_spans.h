// Byte ranges of tokens and the token alignment that carries markup from a
// source text to its translation (HtmlDocument::Render).
#ifndef TRANSFORMER_SERVING_CORE_TEXT_TOKEN_SPANS_H_
#define TRANSFORMER_SERVING_CORE_TEXT_TOKEN_SPANS_H_

#include <cstddef>
#include <vector>

#include "absl/types/span.h"
#include "core/text/tokenizer.h"

namespace ts::core::text {

// One target token of a translation: its bytes [target_begin, target_end) in
// the translated text, and the bytes [source_begin, source_end) in the source
// text of the source token it attended to most (argmax cross-attention). An
// empty source range (source_begin == source_end, e.g. the source </s>)
// means unaligned.
struct TokenAlignment {
  size_t target_begin = 0;
  size_t target_end = 0;
  size_t source_begin = 0;
  size_t source_end = 0;
};

// One TokenAlignment per target token: target token t (bytes
// target_ranges[t]) takes the source range source_ranges[argmax_source[t]].
// `argmax_source[t]`: the source token index of the largest cross-attention
// of row t (server/attention_response.cc AlignmentOf); an index outside
// source_ranges gives an unaligned token. Tokens with an empty target range
// (</s>, <pad>) are left out. Sizes of target_ranges and argmax_source may
// differ; the shorter one counts.
std::vector<TokenAlignment> AlignTokens(
    absl::Span<const TokenRange> source_ranges,
    absl::Span<const TokenRange> target_ranges,
    absl::Span<const int> argmax_source);

}  // namespace ts::core::text

#endif  // TRANSFORMER_SERVING_CORE_TEXT_TOKEN_SPANS_H_
