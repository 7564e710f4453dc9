// Cost of the HTML path per MB (issue 22, "the cost of HTML rebuilding per
// MB"): HtmlDocument::Parse and HtmlDocument::Render (identity translation
// with a word alignment) over a document built from the demo model's golden
// sources wrapped in paragraphs, lists, tables, inline tags, links, images,
// comments and scripts. Prints MB/s of source HTML for each step.
//
//   build/bin/html-bench [--megabytes=4] [--repeats=5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "core/text/html_document.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(double, megabytes, 4.0, "size of the generated document in MB");
ABSL_FLAG(int, repeats, 5, "timed runs; the best is reported");

namespace {

using ts::core::text::BlockTranslation;
using ts::core::text::HtmlDocument;

std::vector<std::string> GoldenSources() {
  std::ifstream in(std::string(TS_DEMO_MODEL_DIR) +
                   "/golden/translations.jsonl");
  std::vector<std::string> sources;
  std::string line;
  while (std::getline(in, line)) {
    sources.push_back(nlohmann::json::parse(line)["source"]);
  }
  return sources;
}

// The sentence with its third word in <b> and its fifth in a link.
std::string Marked(const std::string& sentence, size_t i) {
  std::string out;
  size_t word = 0;
  for (size_t p = 0; p < sentence.size();) {
    size_t q = sentence.find(' ', p);
    if (q == std::string::npos) q = sentence.size();
    const std::string w = sentence.substr(p, q - p);
    if (word == 2) {
      out += "<b>" + w + "</b>";
    } else if (word == 4) {
      out += "<a href=\"/x?i=" + std::to_string(i) + "&amp;q=1\">" + w + "</a>";
    } else {
      out += w;
    }
    if (q < sentence.size()) out += ' ';
    p = q + 1;
    ++word;
  }
  return out;
}

std::string Document(const std::vector<std::string>& sources, size_t bytes) {
  std::string html =
      "<!DOCTYPE html>\n<html><head><title>Golden sources</title>"
      "<style>p > b { color: red; }</style></head><body>\n";
  for (size_t i = 0; html.size() < bytes; ++i) {
    const std::string& s = sources[i % sources.size()];
    switch (i % 4) {
      case 0:
        html += "<p>" + Marked(s, i) + " <img src=\"i.png\" alt=\"\"></p>\n";
        break;
      case 1:
        html +=
            "<ul><li>" + Marked(s, i) + "</li><li><i>" + s + "</i></li></ul>\n";
        break;
      case 2:
        html += "<table><tr><td>" + s + "</td><td>" + std::to_string(i) +
                "</td></tr></table><!-- row -->\n";
        break;
      default:
        html += "<div>" + Marked(s, i) +
                "<br><script>var i = " + std::to_string(i) +
                " < 3;</script></div>\n";
    }
  }
  return html + "</body></html>\n";
}

std::vector<BlockTranslation> Identity(const HtmlDocument& document) {
  std::vector<BlockTranslation> translations;
  for (const auto& block : document.blocks()) {
    BlockTranslation t;
    t.text = block.text;
    for (size_t i = 0; i < t.text.size();) {
      if (t.text[i] == ' ') {
        ++i;
        continue;
      }
      size_t j = t.text.find(' ', i);
      if (j == std::string::npos) j = t.text.size();
      t.alignment.push_back({i, j, i, j});
      i = j;
    }
    translations.push_back(std::move(t));
  }
  return translations;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string html = Document(
      GoldenSources(),
      static_cast<size_t>(absl::GetFlag(FLAGS_megabytes) * 1024 * 1024));
  const double megabytes = html.size() / (1024.0 * 1024.0);
  double best_parse = 1e30, best_render = 1e30;
  size_t blocks = 0, out_bytes = 0;
  for (int r = 0; r < std::max(1, absl::GetFlag(FLAGS_repeats)); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    auto document = HtmlDocument::Parse(html);
    const auto t1 = std::chrono::steady_clock::now();
    if (!document.ok()) return 1;
    const std::vector<BlockTranslation> translations = Identity(*document);
    const auto t2 = std::chrono::steady_clock::now();
    const std::string out = document->Render(translations);
    const auto t3 = std::chrono::steady_clock::now();
    blocks = document->blocks().size();
    out_bytes = out.size();
    best_parse =
        std::min(best_parse, std::chrono::duration<double>(t1 - t0).count());
    best_render =
        std::min(best_render, std::chrono::duration<double>(t3 - t2).count());
  }
  std::printf(
      "document %.2f MB, %zu blocks, output %.2f MB\n"
      "parse:  %.3f s = %.1f MB/s\nrender: %.3f s = %.1f MB/s\n"
      "parse + render: %.1f MB/s\n",
      megabytes, blocks, out_bytes / (1024.0 * 1024.0), best_parse,
      megabytes / best_parse, best_render, megabytes / best_render,
      megabytes / (best_parse + best_render));
  return 0;
}
