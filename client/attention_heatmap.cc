#include "client/attention_heatmap.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ts::client {
namespace {

constexpr int kCell = 24;           // cell side, px
constexpr int kCharWidth = 8;       // approximate label glyph width, px
constexpr int kMargin = 8;          // px around the picture
constexpr int kMaxLabelChars = 24;  // longer pieces are cut with "…"

std::string EscapeXml(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Code points of UTF-8 `text` (for the label width; continuation bytes do
// not count).
int CodePoints(const std::string& text) {
  return static_cast<int>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

// `text` cut to kMaxLabelChars code points.
std::string Label(const std::string& text) {
  if (CodePoints(text) <= kMaxLabelChars) return text;
  int seen = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 &&
        ++seen > kMaxLabelChars - 1) {
      return text.substr(0, i) + "…";
    }
  }
  return text;
}

int LongestLabel(const std::vector<std::string>& pieces) {
  int longest = 1;
  for (const std::string& piece : pieces) {
    longest = std::max(longest, CodePoints(Label(piece)));
  }
  return longest;
}

}  // namespace

std::string AttentionHeatmapSvg(const std::vector<std::string>& source_tokens,
                                const std::vector<std::string>& target_tokens,
                                const std::vector<float>& attention) {
  const int columns = static_cast<int>(source_tokens.size());
  const int rows = static_cast<int>(target_tokens.size());
  // Target labels on the left; source labels above, turned 90 degrees.
  const int left = kMargin + LongestLabel(target_tokens) * kCharWidth + 6;
  const int top = kMargin + LongestLabel(source_tokens) * kCharWidth + 6;
  const int width = left + columns * kCell + kMargin;
  const int height = top + rows * kCell + kMargin;
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      width, height, width, height);
  for (int s = 0; s < columns; ++s) {
    const int x = left + s * kCell + kCell / 2 + 4;
    absl::StrAppendFormat(&svg,
                          "<text class=\"source\" x=\"%d\" y=\"%d\" "
                          "transform=\"rotate(-90 %d %d)\">%s</text>\n",
                          x, top - 4, x, top - 4,
                          EscapeXml(Label(source_tokens[s])));
  }
  for (int t = 0; t < rows; ++t) {
    absl::StrAppendFormat(&svg,
                          "<text class=\"target\" x=\"%d\" y=\"%d\" "
                          "text-anchor=\"end\">%s</text>\n",
                          left - 4, top + t * kCell + kCell / 2 + 4,
                          EscapeXml(Label(target_tokens[t])));
  }
  for (int t = 0; t < rows; ++t) {
    for (int s = 0; s < columns; ++s) {
      const size_t index = static_cast<size_t>(t) * columns + s;
      if (index >= attention.size()) break;
      const float weight = std::clamp(attention[index], 0.0f, 1.0f);
      // White (0) to dark blue rgb(8, 48, 107) (1).
      const auto channel = [weight](int dark) {
        return static_cast<int>(std::lround(255 - (255 - dark) * weight));
      };
      absl::StrAppendFormat(
          &svg,
          "<rect class=\"cell\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
          "fill=\"rgb(%d,%d,%d)\"><title>%s -&gt; %s: %.4f</title></rect>\n",
          left + s * kCell, top + t * kCell, kCell, kCell, channel(8),
          channel(48), channel(107), EscapeXml(target_tokens[t]),
          EscapeXml(source_tokens[s]), attention[index]);
    }
  }
  absl::StrAppendFormat(
      &svg,
      "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
      "stroke=\"#888\"/>\n</svg>\n",
      left, top, columns * kCell, rows * kCell);
  return svg;
}

}  // namespace ts::client
