#include "server/attention_response.h"

#include <algorithm>
#include <string>

namespace ts::server {

std::vector<int> AlignmentOf(const std::vector<float>& attention,
                             int source_len) {
  std::vector<int> alignment;
  if (source_len <= 0) return alignment;
  const size_t rows = attention.size() / source_len;
  alignment.reserve(rows);
  for (size_t t = 0; t < rows; ++t) {
    const float* row = attention.data() + t * source_len;
    alignment.push_back(
        static_cast<int>(std::max_element(row, row + source_len) - row));
  }
  return alignment;
}

void SetHypothesisAttention(const core::Hypothesis& hypothesis, int source_len,
                            const core::MarianTokenizer& tokenizer,
                            transformer::v1::Hypothesis* out) {
  out->mutable_attention()->Add(hypothesis.attention.begin(),
                                hypothesis.attention.end());
  const std::vector<int> alignment =
      AlignmentOf(hypothesis.attention, source_len);
  out->mutable_alignment()->Add(alignment.begin(), alignment.end());
  for (std::string& piece : tokenizer.Pieces(hypothesis.ids)) {
    out->add_target_tokens(std::move(piece));
  }
}

void SetSourceTokens(const std::vector<int>& source_ids,
                     const core::MarianTokenizer& tokenizer,
                     transformer::v1::Translation* out) {
  for (std::string& piece : tokenizer.Pieces(source_ids)) {
    out->add_source_tokens(std::move(piece));
  }
}

}  // namespace ts::server
