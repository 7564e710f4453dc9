#include "server/translation_assembly.h"

#include <algorithm>

#include "core/text/token_spans.h"
#include "server/attention_response.h"

namespace ts::server {

std::string_view GapBefore(std::string_view text, const TextWork& work,
                           size_t index) {
  const std::vector<SegmentWork>& segments = work.segments;
  const size_t begin = index == 0 ? 0 : segments[index - 1].end;
  const size_t end =
      index < segments.size() ? segments[index].begin : text.size();
  return text.substr(begin, end - begin);
}

namespace {

// Hypothesis `index` of an HTML text: each block's sentences translated and
// joined by the block's own gaps, the inline markup carried over through each
// target token's argmax source token (the attention the computation
// recorded), the document rendered around them. Also adds the joined
// token_ids and the mean score to `out`.
std::string RenderHtml(const TextWork& work,
                       const std::vector<core::TranslationResult>& results,
                       size_t index, const core::MarianTokenizer& tokenizer,
                       transformer::v1::Hypothesis* out) {
  const std::vector<core::text::Block>& blocks = work.html->blocks();
  std::vector<core::text::BlockTranslation> translations(blocks.size());
  std::vector<size_t> written(blocks.size(), 0);  // source bytes consumed
  float score = 0.0f;
  for (size_t s = 0; s < work.segments.size(); ++s) {
    const SegmentWork& segment = work.segments[s];
    const std::string& block_text = blocks[segment.block].text;
    core::text::BlockTranslation& block = translations[segment.block];
    size_t& consumed = written[segment.block];
    block.text.append(block_text, consumed, segment.begin - consumed);
    consumed = segment.end;
    const core::Hypothesis& hypothesis = results[s].hypotheses[index];
    out->mutable_token_ids()->Add(hypothesis.ids.begin(), hypothesis.ids.end());
    score += hypothesis.score;
    const size_t target_offset = block.text.size();
    const core::DecodedTarget target =
        tokenizer.DecodeTargetWithRanges(hypothesis.ids);
    block.text += target.text;
    absl::StatusOr<core::EncodedSource> source =
        tokenizer.EncodeSourceWithRanges(segment.source);
    const int source_len = static_cast<int>(segment.source_ids.size());
    if (!source.ok() || hypothesis.attention.empty()) continue;
    std::vector<int> argmax = AlignmentOf(hypothesis.attention, source_len);
    // A multi-target model's >>xxx<< token leads source_ids (the server adds
    // it), but the ranges are the sentence's alone: shift the indices, and a
    // token that attended most to the language token stays unaligned.
    const int prefix = source_len - static_cast<int>(source->ids.size());
    if (prefix > 0) {
      for (int& index : argmax) index -= prefix;
    }
    for (core::text::TokenAlignment alignment :
         core::text::AlignTokens(source->ranges, target.ranges, argmax)) {
      alignment.target_begin += target_offset;
      alignment.target_end += target_offset;
      if (alignment.source_begin != alignment.source_end) {
        // ModelText keeps every byte's place, so source offsets shift by the
        // segment's start in the block.
        alignment.source_begin += segment.begin;
        alignment.source_end += segment.begin;
      }
      block.alignment.push_back(alignment);
    }
  }
  for (size_t b = 0; b < blocks.size(); ++b) {
    translations[b].text.append(blocks[b].text, written[b]);
  }
  if (!work.segments.empty()) {
    out->set_score(score / static_cast<float>(work.segments.size()));
  }
  return work.html->Render(translations);
}

}  // namespace

void AssembleTranslation(std::string_view text, const TextWork& work,
                         const std::vector<core::TranslationResult>& results,
                         const core::TranslationOptions& options,
                         const core::MarianTokenizer& tokenizer,
                         transformer::v1::Translation* translation) {
  const size_t count = work.segments.size();
  if (options.do_sample) translation->set_seed(options.seed);
  // Every segment has num_hypotheses hypotheses; take the fewest to be safe.
  size_t hypotheses = count == 0 ? 1 : results[0].hypotheses.size();
  int input_tokens = 0;
  for (size_t s = 0; s < count; ++s) {
    const SegmentWork& segment = work.segments[s];
    const core::TranslationResult& result = results[s];
    hypotheses = std::min(hypotheses, result.hypotheses.size());
    const int source_len = static_cast<int>(segment.source_ids.size());
    input_tokens += source_len;
    transformer::v1::Segment* out = translation->add_segments();
    out->set_source_begin(segment.begin);
    out->set_source_end(segment.end);
    out->set_source(segment.source);
    out->set_input_token_count(source_len);
    if (segment.block >= 0) out->set_block(segment.block);
    if (options.return_attention) {
      transformer::v1::Translation pieces;
      SetSourceTokens(segment.source_ids, tokenizer, &pieces);
      *out->mutable_source_tokens() = pieces.source_tokens();
    }
    for (const core::Hypothesis& hypothesis : result.hypotheses) {
      transformer::v1::Hypothesis* h = out->add_hypotheses();
      h->set_text(tokenizer.DecodeTarget(hypothesis.ids));
      h->mutable_token_ids()->Add(hypothesis.ids.begin(), hypothesis.ids.end());
      h->set_score(hypothesis.score);
      if (options.return_attention) {
        SetHypothesisAttention(hypothesis, source_len, tokenizer, h);
      }
    }
  }
  translation->set_input_token_count(input_tokens);
  if (work.html != nullptr) {
    for (size_t i = 0; i < hypotheses; ++i) {
      transformer::v1::Hypothesis* out = translation->add_hypotheses();
      out->set_text(RenderHtml(work, results, i, tokenizer, out));
    }
    return;
  }
  if (count == 1) {
    // One sentence: its hypotheses, attention included, with the gaps.
    const transformer::v1::Segment& only = translation->segments(0);
    *translation->mutable_source_tokens() = only.source_tokens();
    const std::string lead(GapBefore(text, work, 0));
    const std::string trail(GapBefore(text, work, 1));
    for (const transformer::v1::Hypothesis& h : only.hypotheses()) {
      transformer::v1::Hypothesis* out = translation->add_hypotheses();
      *out = h;
      out->set_text(lead + h.text() + trail);
    }
    return;
  }
  for (size_t i = 0; i < hypotheses; ++i) {
    transformer::v1::Hypothesis* out = translation->add_hypotheses();
    std::string joined;
    float score = 0.0f;
    for (size_t s = 0; s < count; ++s) {
      const transformer::v1::Hypothesis& h =
          translation->segments(static_cast<int>(s))
              .hypotheses(static_cast<int>(i));
      joined.append(GapBefore(text, work, s));
      joined.append(h.text());
      out->mutable_token_ids()->MergeFrom(h.token_ids());
      score += h.score();
    }
    joined.append(GapBefore(text, work, count));
    out->set_text(std::move(joined));
    if (count > 0) out->set_score(score / static_cast<float>(count));
  }
}

}  // namespace ts::server
