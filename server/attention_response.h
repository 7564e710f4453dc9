// The attention fields of a Translate response (options.return_attention):
// the per-hypothesis matrix, alignment and target pieces, and the source
// pieces of each translation.
#ifndef TRANSFORMER_SERVING_SERVER_ATTENTION_RESPONSE_H_
#define TRANSFORMER_SERVING_SERVER_ATTENTION_RESPONSE_H_

#include <vector>

#include "core/decoding/options.h"
#include "core/text/tokenizer.h"
#include "transformer/v1/transformer_service.pb.h"

namespace ts::server {

// Argmax source position of each row of attention [target_len, source_len]
// (the first on ties); target_len entries.
std::vector<int> AlignmentOf(const std::vector<float>& attention,
                             int source_len);

// Sets out->attention ([ids, source_len] row-major), out->alignment and
// out->target_tokens from `hypothesis` (whose attention the translator
// recorded: hypothesis.ids.size() * source_len floats).
void SetHypothesisAttention(const core::Hypothesis& hypothesis, int source_len,
                            const core::MarianTokenizer& tokenizer,
                            transformer::v1::Hypothesis* out);

// Sets out->source_tokens: the pieces of `source_ids` (</s> included).
void SetSourceTokens(const std::vector<int>& source_ids,
                     const core::MarianTokenizer& tokenizer,
                     transformer::v1::Translation* out);

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_ATTENTION_RESPONSE_H_
