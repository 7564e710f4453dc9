// Fuzzes the HTML path (core/text/html_document.h): any bytes parse; the
// document rebuilt around its own text (identity alignment) and around
// scrambled translations and alignments (word order reversed, ranges past
// the text) never crashes and always parses back, with as many blocks for
// the identity.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/text/html_document.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ts::core::text::BlockTranslation;
  using ts::core::text::HtmlDocument;
  const std::string_view html(reinterpret_cast<const char*>(data), size);
  auto document = HtmlDocument::Parse(html);
  if (!document.ok()) __builtin_trap();
  const std::string identity = document->RenderIdentity();
  auto again = HtmlDocument::Parse(identity);
  if (!again.ok()) __builtin_trap();

  // Reversed words, each aligned to its source word, plus one token whose
  // ranges point past both texts.
  std::vector<BlockTranslation> translations;
  for (const auto& block : document->blocks()) {
    const std::string& text = block.text;
    std::vector<std::pair<size_t, size_t>> words;
    for (size_t i = 0; i < text.size();) {
      if (text[i] == ' ' || text[i] == '\n' || text[i] == '\t') {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < text.size() && text[j] != ' ' && text[j] != '\n' &&
             text[j] != '\t') {
        ++j;
      }
      words.emplace_back(i, j);
      i = j;
    }
    BlockTranslation translation;
    for (size_t w = words.size(); w > 0; --w) {
      const auto [begin, end] = words[w - 1];
      if (!translation.text.empty()) translation.text += ' ';
      const size_t target_begin = translation.text.size();
      translation.text += text.substr(begin, end - begin);
      translation.alignment.push_back(
          {target_begin, translation.text.size(), begin, end});
    }
    translation.alignment.push_back({translation.text.size(),
                                     translation.text.size() + 7,
                                     text.size() + 3, text.size() + 9});
    translations.push_back(std::move(translation));
  }
  const std::string reversed = document->Render(translations);
  if (!HtmlDocument::Parse(reversed).ok()) __builtin_trap();
  // No alignment at all.
  for (auto& translation : translations) translation.alignment.clear();
  if (!HtmlDocument::Parse(document->Render(translations)).ok()) {
    __builtin_trap();
  }
  return 0;
}
