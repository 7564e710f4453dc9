// Puts a text's translation back together from its sentences' results: the
// source's gaps (whitespace, paragraphs) byte for byte, each sentence
// replaced by its translation, and the per-sentence Segments.
#ifndef TRANSFORMER_SERVING_SERVER_TRANSLATION_ASSEMBLY_H_
#define TRANSFORMER_SERVING_SERVER_TRANSLATION_ASSEMBLY_H_

#include <string>
#include <string_view>
#include <vector>

#include "core/decoding/options.h"
#include "core/text/tokenizer.h"
#include "server/request_validation.h"
#include "transformer/v1/transformer_service.pb.h"

namespace ts::server {

// The bytes of `text` before segment `index` of `work` (after the previous
// segment); index == segments.size() gives the trailing gap. For a text
// without segments, the whole text.
std::string_view GapBefore(std::string_view text, const TextWork& work,
                           size_t index);

// Fills `translation` for `text` from `results` (one per segment of `work`,
// in order): Translation.segments, and hypotheses whose text is the source
// with each segment replaced by that segment's hypothesis (see the proto's
// Translation.segments). A text of one segment keeps its hypotheses'
// attention and source_tokens at the top level too (options.return_attention).
void AssembleTranslation(std::string_view text, const TextWork& work,
                         const std::vector<core::TranslationResult>& results,
                         const core::TranslationOptions& options,
                         const core::MarianTokenizer& tokenizer,
                         transformer::v1::Translation* translation);

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_TRANSLATION_ASSEMBLY_H_
