// HtmlDocument: an HTML document as translation units ("blocks") of plain
// text with their inline markup as spans, and the document rebuilt around
// translated blocks with the markup carried over through token alignment.
// Follows Bergamot (browsermt/bergamot-translator src/translator/html.cpp):
// tags are taken out into spans over the text and put back on the translated
// words through the hard (argmax) alignment, every piece of a word keeping
// one set of tags. Parsing is gumbo's (the HTML5 algorithm); every byte that
// is not translated text is kept from the source.
#ifndef TRANSFORMER_SERVING_CORE_TEXT_HTML_DOCUMENT_H_
#define TRANSFORMER_SERVING_CORE_TEXT_HTML_DOCUMENT_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/text/token_spans.h"

namespace ts::core::text {

// An inline element (b, i, a, span, ...) over bytes [begin, end) of its
// block's text. Spans nest: `parent` is the index of the enclosing span in
// Block::spans (-1 at the top); a parent comes before its children.
struct InlineSpan {
  size_t begin = 0;
  size_t end = 0;
  int parent = -1;
  std::string name;         // lower-case tag name, e.g. "b"
  std::string opening_tag;  // source bytes, e.g. `<a href="x">`; "" if the
                            // parser implied the element
  std::string closing_tag;  // source bytes, e.g. `</a>`; "" if the source
                            // has none (an unclosed `<b>`)
};

// Markup kept whole inside a block's inline flow: a void element (img, wbr,
// input), an empty element (`<a id="x"></a>`), a comment, or an element
// never translated (code, kbd, samp, script, translate="no", ...). `bytes`
// is its source. Its text, if any, is in the block's text as [begin, end)
// so the model sees the sentence whole; a void element has begin == end.
struct InlineAtom {
  size_t begin = 0;
  size_t end = 0;
  int parent = -1;  // enclosing InlineSpan, -1 at the top
  std::string bytes;
};

// One translation unit: a run of inline content bounded by block elements
// (p, div, li, td, h1, title, ...) or <br>.
struct Block {
  // Plain text for the model: entities decoded, inline tags taken out,
  // whitespace as in the source except leading and trailing whitespace
  // (kept outside the block in the document). UTF-8.
  std::string text;
  std::vector<InlineSpan> spans;  // in document order
  std::vector<InlineAtom> atoms;  // in document order
};

// The translation of one block.
struct BlockTranslation {
  std::string text;  // translated plain text (not escaped)
  // Per target token: its bytes in `text` and the bytes in the block's
  // source text of the source token it attended to most; see
  // TokenAlignment. Empty: no alignment (see HtmlDocument::Render).
  std::vector<TokenAlignment> alignment;
};

class HtmlDocument {
 public:
  // Parses `html` (UTF-8; invalid bytes reach the text as U+FFFD) with
  // gumbo. Malformed markup is repaired as the HTML5 parser does (an
  // unclosed <b> ends with its block, a stray </i> is dropped). Never
  // translated, their bytes kept: script, style, code, pre, textarea,
  // noscript, kbd, samp, template, svg, math, comments, doctype, attributes,
  // and the subtree of any element with translate="no". A block whose pieces
  // the parser moved out of source order (foster parenting in tables) is not
  // translated either. Errors: Internal if gumbo returns nothing.
  static absl::StatusOr<HtmlDocument> Parse(std::string_view html);

  const std::vector<Block>& blocks() const { return blocks_; }

  // The document with block i's text replaced by translations[i] (missing
  // entries keep the source text; extra ones are ignored): bytes outside the
  // blocks as in the source, translated text escaped (& < >), and each
  // block's inline markup put back on the translated words:
  // - A word (bytes of the target text between whitespace, a punctuation
  //   character being a word of its own) takes the elements of one source
  //   token: the one most of its tokens align to (ties: the first), as
  //   Bergamot gives all pieces of a word one span. A source token's
  //   elements are the deepest chain of spans overlapping it.
  // - Consecutive words with the same elements share one element (opened
  //   once, closed once); an element that covers words split apart by the
  //   reordering is written again around each run, with its source opening
  //   tag (attributes, an id included, are repeated).
  // - Closing tags go before whitespace, opening tags after it.
  // - Atoms keep their place relative to the aligned words: before the first
  //   word aligned at or after them, or right after a word they touched in
  //   the source; a word aligned into an atom's text is replaced by the atom
  //   (once; other such words are dropped); atoms not placed by then close
  //   the block.
  // - Unaligned words (empty source range, or no token) take the elements
  //   shared by the aligned words around them.
  // - With no alignment at all (Bergamot refuses to restore markup without
  //   alignments) the translation is written without the inline elements,
  //   and the atoms go after it.
  // An opening tag the parser implied is written only where needed (not at
  // the block start); a closing tag absent from the source is written only
  // where an element ends before its block does.
  std::string Render(const std::vector<BlockTranslation>& translations) const;

  // Render with every block's own text and an identity alignment of its
  // whitespace-separated words: the document with the markup re-serialized
  // through the same path (for tests and the fuzzer).
  std::string RenderIdentity() const;

 private:
  struct Region {
    size_t begin = 0;  // bytes of the source the block's output replaces
    size_t end = 0;
  };

  std::string source_;
  std::vector<Block> blocks_;
  std::vector<Region> regions_;  // one per block, ascending, disjoint
};

// `text` with & < > escaped as &amp; &lt; &gt;.
std::string EscapeHtmlText(std::string_view text);

}  // namespace ts::core::text

#endif  // TRANSFORMER_SERVING_CORE_TEXT_HTML_DOCUMENT_H_
