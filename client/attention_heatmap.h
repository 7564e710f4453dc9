// The attention heatmap of one translation as an SVG image: source pieces
// across the top, target pieces down the left, one cell per (target, source)
// pair shaded by its weight, as the figures of "Attention Is All You Need"
// draw it.
#ifndef TRANSFORMER_SERVING_CLIENT_ATTENTION_HEATMAP_H_
#define TRANSFORMER_SERVING_CLIENT_ATTENTION_HEATMAP_H_

#include <string>
#include <vector>

namespace ts::client {

// An SVG document of attention [target_tokens.size(), source_tokens.size()]
// (row-major, weights in [0, 1]): white is 0, dark blue is 1; each cell is a
// <rect class="cell"> with a <title> "target -> source: weight" tooltip.
// Pieces are XML-escaped. Cells missing from a short `attention` are left
// out.
std::string AttentionHeatmapSvg(const std::vector<std::string>& source_tokens,
                                const std::vector<std::string>& target_tokens,
                                const std::vector<float>& attention);

}  // namespace ts::client

#endif  // TRANSFORMER_SERVING_CLIENT_ATTENTION_HEATMAP_H_
