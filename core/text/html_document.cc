#include "core/text/html_document.h"

#include <gumbo.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ts::core::text {
namespace {

// Deeper elements are kept whole (not translated): bounds our recursion.
constexpr int kMaxDepth = 256;

// Elements that bound blocks (HTML's block-level and table, list and form
// structure, plus title, option, label and button, whose text stands alone).
const absl::flat_hash_set<std::string_view>& BlockTags() {
  static const auto* tags = new absl::flat_hash_set<std::string_view>{
      "address", "article",  "aside",      "blockquote", "body",     "br",
      "button",  "caption",  "center",     "col",        "colgroup", "datalist",
      "dd",      "details",  "dialog",     "dir",        "div",      "dl",
      "dt",      "fieldset", "figcaption", "figure",     "footer",   "form",
      "frame",   "frameset", "h1",         "h2",         "h3",       "h4",
      "h5",      "h6",       "head",       "header",     "hgroup",   "hr",
      "html",    "label",    "legend",     "li",         "listing",  "main",
      "menu",    "meter",    "nav",        "ol",         "optgroup", "option",
      "p",       "picture",  "plaintext",  "pre",        "progress", "section",
      "select",  "summary",  "table",      "tbody",      "td",       "tfoot",
      "th",      "thead",    "title",      "tr",         "ul",       "xmp",
  };
  return *tags;
}

// Never translated. Their text reaches the model only for the code-like ones
// (TextShownTags), so a sentence keeps its words.
const absl::flat_hash_set<std::string_view>& UntranslatedTags() {
  static const auto* tags = new absl::flat_hash_set<std::string_view>{
      "audio",    "canvas",  "code",     "iframe",   "kbd",    "listing",
      "math",     "noembed", "noframes", "noscript", "object", "plaintext",
      "pre",      "samp",    "script",   "style",    "svg",    "template",
      "textarea", "video",   "xmp",
  };
  return *tags;
}
const absl::flat_hash_set<std::string_view>& TextShownTags() {
  static const auto* tags =
      new absl::flat_hash_set<std::string_view>{"code", "kbd", "samp"};
  return *tags;
}

const absl::flat_hash_set<std::string_view>& VoidTags() {
  static const auto* tags = new absl::flat_hash_set<std::string_view>{
      "area",  "base",  "basefont", "bgsound", "br",    "col",    "embed",
      "frame", "hr",    "image",    "img",     "input", "keygen", "link",
      "meta",  "param", "source",   "track",   "wbr",
  };
  return *tags;
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

bool IsAllSpace(std::string_view text) {
  return std::all_of(text.begin(), text.end(), IsSpace);
}

struct ByteRange {
  size_t begin = 0;
  size_t end = 0;
};

// What an element is inside a run of inline content.
enum class Kind {
  kBoundary,  // ends the run; its content is walked as structure
  kOpaque,    // ends the run; kept whole (untranslated, or too deep)
  kAtom,      // kept whole inside the run
  kSpan,      // an inline element whose text is translated
};

// One step of a run of inline content, in tree order.
struct Event {
  enum Type { kText, kOpen, kClose, kAtom } type = kText;
  std::string text;  // kText: decoded text; kAtom: text shown to the model
  bool has_bytes = false;
  ByteRange bytes;                  // source bytes (kText, kAtom)
  const GumboNode* node = nullptr;  // kOpen, kClose, kAtom
};

// A recorded range of source bytes and the block that owns it (-1: the
// document's structure, kept as it is).
struct OwnedRange {
  ByteRange range;
  int owner = -1;
};

class Walker {
 public:
  explicit Walker(const std::string& source) : source_(source) {}

  void WalkContainer(const GumboNode* node, int depth);

  std::vector<Block> blocks;
  std::vector<ByteRange> regions;
  std::vector<std::vector<ByteRange>> block_ranges;  // per block
  std::vector<ByteRange> structure;                  // owned by nobody

 private:
  bool PieceRange(const GumboStringPiece& piece, ByteRange* range) const {
    if (piece.data == nullptr || piece.length == 0) return false;
    const char* base = source_.data();
    if (piece.data < base || piece.data + piece.length > base + source_.size())
      return false;
    range->begin = static_cast<size_t>(piece.data - base);
    range->end = range->begin + piece.length;
    return true;
  }

  bool OpenTagRange(const GumboNode* node, ByteRange* range) const {
    if (node->parse_flags &
        (GUMBO_INSERTION_BY_PARSER | GUMBO_INSERTION_ADOPTION_AGENCY_CLONED |
         GUMBO_INSERTION_RECONSTRUCTED_FORMATTING_ELEMENT)) {
      return false;
    }
    return PieceRange(node->v.element.original_tag, range);
  }
  // Gumbo records the end tag that popped an element as its end tag: the
  // </p> closing <p><b>... is also <b>'s. Only a tag of the element's own
  // name counts.
  bool CloseTagRange(const GumboNode* node, ByteRange* range) const {
    GumboStringPiece piece = node->v.element.original_end_tag;
    if (!PieceRange(piece, range)) return false;
    if (piece.length < 3 || piece.data[1] != '/') return false;
    gumbo_tag_from_original_text(&piece);
    auto it = names_.find(node);
    const std::string name = it != names_.end() ? it->second : Name(node);
    return absl::EqualsIgnoreCase(absl::string_view(piece.data, piece.length),
                                  name);
  }

  std::string Name(const GumboNode* node) const;
  bool Untranslated(const GumboNode* node, const std::string& name) const;
  Kind Classify(const GumboNode* node, int depth);
  bool HasText(const GumboNode* node) const;
  // [min, max) of the real source bytes of the subtree; false if none.
  bool SubtreeRange(const GumboNode* node, ByteRange* range) const;
  std::string SubtreeText(const GumboNode* node) const;

  // An atom whose text the model sees: code, kbd, samp, and HTML elements
  // with translate="no" (not script, style, svg, ...).
  bool ShowsText(const GumboNode* node) {
    const std::string& name = names_[node];
    if (TextShownTags().contains(name)) return true;
    return node->type == GUMBO_NODE_ELEMENT &&
           node->v.element.tag_namespace == GUMBO_NAMESPACE_HTML &&
           !VoidTags().contains(name) && !UntranslatedTags().contains(name) &&
           Untranslated(node, name);
  }

  // A text, whitespace or CDATA node as a text event of the current run.
  void AddText(const GumboNode* node);
  void AddInline(const GumboNode* node, int depth);
  void AddAtom(const GumboNode* node, bool show_text);
  void Flush();

  const std::string& source_;
  std::unordered_map<const GumboNode*, Kind> kinds_;
  std::unordered_map<const GumboNode*, std::string> names_;
  std::vector<Event> run_;
};

std::string Walker::Name(const GumboNode* node) const {
  const GumboElement& element = node->v.element;
  if (element.tag != GUMBO_TAG_UNKNOWN) {
    return gumbo_normalized_tagname(element.tag);
  }
  GumboStringPiece piece = element.original_tag;
  if (piece.data == nullptr || piece.length < 2) return std::string();
  gumbo_tag_from_original_text(&piece);
  return absl::AsciiStrToLower(std::string(piece.data, piece.length));
}

bool Walker::Untranslated(const GumboNode* node,
                          const std::string& name) const {
  if (node->type == GUMBO_NODE_TEMPLATE) return true;
  if (node->v.element.tag_namespace != GUMBO_NAMESPACE_HTML) return true;
  if (UntranslatedTags().contains(name)) return true;
  const GumboAttribute* translate =
      gumbo_get_attribute(&node->v.element.attributes, "translate");
  return translate != nullptr &&
         absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(translate->value),
                                "no");
}

bool Walker::HasText(const GumboNode* node) const {
  std::vector<const GumboNode*> stack = {node};
  while (!stack.empty()) {
    const GumboNode* n = stack.back();
    stack.pop_back();
    if (n->type == GUMBO_NODE_TEXT || n->type == GUMBO_NODE_WHITESPACE ||
        n->type == GUMBO_NODE_CDATA) {
      if (n->v.text.text != nullptr && n->v.text.text[0] != '\0') return true;
    } else if (n->type == GUMBO_NODE_ELEMENT) {
      const GumboVector& children = n->v.element.children;
      for (unsigned i = 0; i < children.length; ++i) {
        stack.push_back(static_cast<const GumboNode*>(children.data[i]));
      }
    }
  }
  return false;
}

Kind Walker::Classify(const GumboNode* node, int depth) {
  auto it = kinds_.find(node);
  if (it != kinds_.end()) return it->second;
  Kind kind;
  const std::string name = Name(node);
  if (depth > kMaxDepth) {
    kind = Kind::kOpaque;
  } else if (Untranslated(node, name)) {
    // Kept whole: inside a run if it is inline content, else as structure.
    kind = BlockTags().contains(name) ? Kind::kOpaque : Kind::kAtom;
    if (kind == Kind::kAtom && node->type == GUMBO_NODE_ELEMENT) {
      std::vector<const GumboNode*> stack = {node};
      while (!stack.empty() && kind == Kind::kAtom) {
        const GumboNode* n = stack.back();
        stack.pop_back();
        if (n->type != GUMBO_NODE_ELEMENT) continue;
        if (n != node && BlockTags().contains(Name(n))) kind = Kind::kOpaque;
        const GumboVector& children = n->v.element.children;
        for (unsigned i = 0; i < children.length; ++i) {
          stack.push_back(static_cast<const GumboNode*>(children.data[i]));
        }
      }
    }
  } else if (BlockTags().contains(name)) {
    kind = Kind::kBoundary;
  } else if (VoidTags().contains(name)) {
    kind = Kind::kAtom;
  } else {
    kind = Kind::kSpan;
    const GumboVector& children = node->v.element.children;
    for (unsigned i = 0; i < children.length; ++i) {
      const auto* child = static_cast<const GumboNode*>(children.data[i]);
      if (child->type != GUMBO_NODE_ELEMENT &&
          child->type != GUMBO_NODE_TEMPLATE) {
        continue;
      }
      const Kind child_kind = Classify(child, depth + 1);
      if (child_kind == Kind::kBoundary || child_kind == Kind::kOpaque) {
        kind = Kind::kBoundary;  // an inline element holding blocks
        break;
      }
    }
    if (kind == Kind::kSpan && !HasText(node)) kind = Kind::kAtom;
  }
  names_[node] = name;
  kinds_[node] = kind;
  return kind;
}

bool Walker::SubtreeRange(const GumboNode* node, ByteRange* out) const {
  bool any = false;
  auto add = [&](const ByteRange& r) {
    if (!any) {
      *out = r;
      any = true;
    } else {
      out->begin = std::min(out->begin, r.begin);
      out->end = std::max(out->end, r.end);
    }
  };
  std::vector<const GumboNode*> stack = {node};
  while (!stack.empty()) {
    const GumboNode* n = stack.back();
    stack.pop_back();
    ByteRange r;
    if (n->type == GUMBO_NODE_ELEMENT || n->type == GUMBO_NODE_TEMPLATE) {
      if (OpenTagRange(n, &r)) add(r);
      if (CloseTagRange(n, &r)) add(r);
      const GumboVector& children = n->v.element.children;
      for (unsigned i = 0; i < children.length; ++i) {
        stack.push_back(static_cast<const GumboNode*>(children.data[i]));
      }
    } else if (n->type != GUMBO_NODE_DOCUMENT) {
      if (PieceRange(n->v.text.original_text, &r)) add(r);
    }
  }
  return any;
}

std::string Walker::SubtreeText(const GumboNode* node) const {
  std::string text;
  // Depth-first in document order.
  std::vector<const GumboNode*> stack = {node};
  while (!stack.empty()) {
    const GumboNode* n = stack.back();
    stack.pop_back();
    if (n->type == GUMBO_NODE_TEXT || n->type == GUMBO_NODE_WHITESPACE ||
        n->type == GUMBO_NODE_CDATA) {
      if (n->v.text.text != nullptr) text += n->v.text.text;
    } else if (n->type == GUMBO_NODE_ELEMENT) {
      const GumboVector& children = n->v.element.children;
      for (unsigned i = children.length; i > 0; --i) {
        stack.push_back(static_cast<const GumboNode*>(children.data[i - 1]));
      }
    }
  }
  return text;
}

void Walker::AddText(const GumboNode* node) {
  Event text;
  text.text = node->v.text.text != nullptr ? node->v.text.text : "";
  text.has_bytes = PieceRange(node->v.text.original_text, &text.bytes);
  run_.push_back(std::move(text));
}

void Walker::AddAtom(const GumboNode* node, bool show_text) {
  Event event;
  event.type = Event::kAtom;
  event.node = node;
  event.has_bytes = SubtreeRange(node, &event.bytes);
  if (show_text) event.text = SubtreeText(node);
  run_.push_back(std::move(event));
}

void Walker::AddInline(const GumboNode* node, int depth) {
  Event open;
  open.type = Event::kOpen;
  open.node = node;
  run_.push_back(open);
  const GumboVector& children = node->v.element.children;
  for (unsigned i = 0; i < children.length; ++i) {
    const auto* child = static_cast<const GumboNode*>(children.data[i]);
    switch (child->type) {
      case GUMBO_NODE_TEXT:
      case GUMBO_NODE_WHITESPACE:
      case GUMBO_NODE_CDATA: {
        AddText(child);
        break;
      }
      case GUMBO_NODE_COMMENT:
        AddAtom(child, /*show_text=*/false);
        break;
      case GUMBO_NODE_ELEMENT:
      case GUMBO_NODE_TEMPLATE: {
        // Classify found no boundary below a span.
        const Kind kind = Classify(child, depth + 1);
        if (kind == Kind::kSpan) {
          AddInline(child, depth + 1);
        } else {
          AddAtom(child, ShowsText(child));
        }
        break;
      }
      default:
        break;
    }
  }
  Event close;
  close.type = Event::kClose;
  close.node = node;
  run_.push_back(close);
}

void Walker::Flush() {
  std::vector<Event> events = std::move(run_);
  run_.clear();
  // Leading and trailing whitespace stay outside the block.
  size_t first = 0;
  size_t last = events.size();
  auto to_structure = [&](const Event& e) {
    if (e.has_bytes) structure.push_back(e.bytes);
  };
  while (first < last && events[first].type == Event::kText &&
         IsAllSpace(events[first].text)) {
    to_structure(events[first++]);
  }
  while (last > first && events[last - 1].type == Event::kText &&
         IsAllSpace(events[last - 1].text)) {
    to_structure(events[--last]);
  }
  bool has_text = false;
  for (size_t i = first; i < last; ++i) {
    if (events[i].type == Event::kText && !IsAllSpace(events[i].text)) {
      has_text = true;
    }
  }
  if (!has_text) {
    for (size_t i = first; i < last; ++i) {
      const Event& e = events[i];
      ByteRange r;
      if (e.type == Event::kText || e.type == Event::kAtom) {
        to_structure(e);
      } else if (e.type == Event::kOpen && OpenTagRange(e.node, &r)) {
        structure.push_back(r);
      } else if (e.type == Event::kClose && CloseTagRange(e.node, &r)) {
        structure.push_back(r);
      }
    }
    return;
  }
  // Trim whitespace at the edges of the first and last text when the source
  // bytes there are whitespace too (not an entity such as &#32;).
  auto trim = [&](Event& e, bool front) {
    if (e.type != Event::kText || !e.has_bytes) return;
    std::string_view raw(source_.data() + e.bytes.begin,
                         e.bytes.end - e.bytes.begin);
    size_t decoded = 0;
    size_t bytes = 0;
    if (front) {
      while (decoded < e.text.size() && IsSpace(e.text[decoded])) ++decoded;
      while (bytes < raw.size() && IsSpace(raw[bytes])) ++bytes;
      if (decoded == 0 || bytes == 0) return;
      structure.push_back({e.bytes.begin, e.bytes.begin + bytes});
      e.text.erase(0, decoded);
      e.bytes.begin += bytes;
    } else {
      while (decoded < e.text.size() &&
             IsSpace(e.text[e.text.size() - 1 - decoded])) {
        ++decoded;
      }
      while (bytes < raw.size() && IsSpace(raw[raw.size() - 1 - bytes])) {
        ++bytes;
      }
      if (decoded == 0 || bytes == 0) return;
      structure.push_back({e.bytes.end - bytes, e.bytes.end});
      e.text.resize(e.text.size() - decoded);
      e.bytes.end -= bytes;
    }
  };
  trim(events[first], /*front=*/true);
  trim(events[last - 1], /*front=*/false);

  Block block;
  std::vector<ByteRange> owned;
  std::vector<int> open;  // span indices
  for (size_t i = first; i < last; ++i) {
    const Event& e = events[i];
    ByteRange r;
    switch (e.type) {
      case Event::kText:
        block.text += e.text;
        if (e.has_bytes) owned.push_back(e.bytes);
        break;
      case Event::kOpen: {
        InlineSpan span;
        span.begin = block.text.size();
        span.parent = open.empty() ? -1 : open.back();
        span.name = names_[e.node];
        if (OpenTagRange(e.node, &r)) {
          span.opening_tag = source_.substr(r.begin, r.end - r.begin);
          owned.push_back(r);
        }
        open.push_back(static_cast<int>(block.spans.size()));
        block.spans.push_back(std::move(span));
        break;
      }
      case Event::kClose: {
        InlineSpan& span = block.spans[open.back()];
        span.end = block.text.size();
        if (CloseTagRange(e.node, &r)) {
          span.closing_tag = source_.substr(r.begin, r.end - r.begin);
          owned.push_back(r);
        }
        open.pop_back();
        break;
      }
      case Event::kAtom: {
        InlineAtom atom;
        atom.begin = block.text.size();
        block.text += e.text;
        atom.end = block.text.size();
        atom.parent = open.empty() ? -1 : open.back();
        if (e.has_bytes) {
          atom.bytes =
              source_.substr(e.bytes.begin, e.bytes.end - e.bytes.begin);
          owned.push_back(e.bytes);
        }
        block.atoms.push_back(std::move(atom));
        break;
      }
    }
  }
  // Spans left open by trimming (cannot happen: trimming removes only text)
  // would be closed at the end.
  for (int index : open) block.spans[index].end = block.text.size();
  if (owned.empty()) return;
  ByteRange region = owned.front();
  for (const ByteRange& r : owned) {
    region.begin = std::min(region.begin, r.begin);
    region.end = std::max(region.end, r.end);
  }
  blocks.push_back(std::move(block));
  regions.push_back(region);
  block_ranges.push_back(std::move(owned));
}

void Walker::WalkContainer(const GumboNode* node, int depth) {
  const GumboVector* children = node->type == GUMBO_NODE_DOCUMENT
                                    ? &node->v.document.children
                                    : &node->v.element.children;
  for (unsigned i = 0; i < children->length; ++i) {
    const auto* child = static_cast<const GumboNode*>(children->data[i]);
    switch (child->type) {
      case GUMBO_NODE_TEXT:
      case GUMBO_NODE_WHITESPACE:
      case GUMBO_NODE_CDATA: {
        AddText(child);
        break;
      }
      case GUMBO_NODE_COMMENT:
        AddAtom(child, /*show_text=*/false);
        break;
      case GUMBO_NODE_ELEMENT:
      case GUMBO_NODE_TEMPLATE: {
        const Kind kind = Classify(child, depth + 1);
        if (kind == Kind::kSpan) {
          AddInline(child, depth + 1);
        } else if (kind == Kind::kAtom) {
          AddAtom(child, ShowsText(child));
        } else {
          Flush();
          ByteRange r;
          if (kind == Kind::kOpaque) {
            if (SubtreeRange(child, &r)) structure.push_back(r);
          } else {
            if (OpenTagRange(child, &r)) structure.push_back(r);
            if (CloseTagRange(child, &r)) structure.push_back(r);
            WalkContainer(child, depth + 1);
          }
        }
        break;
      }
      default:
        break;
    }
  }
  Flush();
}

// The spans enclosing span `leaf`, outermost first.
std::vector<int> Chain(const Block& block, int leaf) {
  std::vector<int> chain;
  for (int s = leaf; s >= 0; s = block.spans[s].parent) chain.push_back(s);
  std::reverse(chain.begin(), chain.end());
  return chain;
}

// Writes a block's translation with its markup (see HtmlDocument::Render).
class BlockWriter {
 public:
  BlockWriter(const Block& block, std::string* out)
      : block_(block), out_(*out) {
    depth_.resize(block.spans.size());
    for (size_t s = 0; s < block.spans.size(); ++s) {
      const int parent = block.spans[s].parent;
      depth_[s] = parent < 0 ? 1 : depth_[parent] + 1;
    }
  }

  void Write(const BlockTranslation& translation);

 private:
  // The deepest span overlapping source bytes [begin, end) (whitespace at
  // its edges left out); -1 for none.
  int SourceLeaf(size_t begin, size_t end) const {
    const std::string& text = block_.text;
    end = std::min(end, text.size());
    while (begin < end && IsSpace(text[begin])) ++begin;
    while (end > begin && IsSpace(text[end - 1])) --end;
    if (begin >= end) return -1;
    int best = -1;
    for (size_t s = 0; s < block_.spans.size(); ++s) {
      const InlineSpan& span = block_.spans[s];
      if (span.begin < end && begin < span.end &&
          (best < 0 || depth_[s] > depth_[best])) {
        best = static_cast<int>(s);
      }
    }
    return best;
  }

  // The deepest span enclosing both leaves (-1: none).
  int CommonLeaf(int a, int b) const {
    if (a < 0 || b < 0) return -1;
    const std::vector<int> ca = Chain(block_, a);
    const std::vector<int> cb = Chain(block_, b);
    int common = -1;
    for (size_t i = 0; i < ca.size() && i < cb.size() && ca[i] == cb[i]; ++i) {
      common = ca[i];
    }
    return common;
  }

  void OpenSpan(int s) {
    const InlineSpan& span = block_.spans[s];
    if (!span.opening_tag.empty()) {
      out_ += span.opening_tag;
    } else if (wrote_content_ && !span.name.empty()) {
      absl::StrAppend(&out_, "<", span.name, ">");
    }
  }
  void CloseSpan(int s, bool at_end) {
    const InlineSpan& span = block_.spans[s];
    if (!span.closing_tag.empty()) {
      out_ += span.closing_tag;
    } else if (!at_end && !span.name.empty()) {
      absl::StrAppend(&out_, "</", span.name, ">");
    }
  }

  // Moves from the open chain to the chain of `leaf`: closing tags, the
  // pending whitespace, opening tags.
  void Enter(int leaf, bool at_end) {
    const std::vector<int> next =
        leaf < 0 ? std::vector<int>() : Chain(block_, leaf);
    size_t common = 0;
    while (common < open_.size() && common < next.size() &&
           open_[common] == next[common]) {
      ++common;
    }
    for (size_t i = open_.size(); i > common; --i)
      CloseSpan(open_[i - 1], at_end);
    out_ += gap_;
    gap_.clear();
    for (size_t i = common; i < next.size(); ++i) OpenSpan(next[i]);
    open_ = next;
  }

  void WriteContent(int leaf, std::string_view bytes) {
    Enter(leaf, /*at_end=*/false);
    out_ += bytes;
    wrote_content_ = true;
  }

  // Writes atom `a` once. Pending whitespace goes on the side(s) of the atom
  // where the source had whitespace (split in two if both).
  void WriteAtom(size_t a) {
    if (atom_written_[a]) return;
    atom_written_[a] = true;
    const InlineAtom& atom = block_.atoms[a];
    const std::string& source = block_.text;
    const bool before = atom.begin > 0 && atom.begin <= source.size() &&
                        IsSpace(source[atom.begin - 1]);
    const bool after = atom.end < source.size() && IsSpace(source[atom.end]);
    const size_t split = before && after ? (gap_.size() + 1) / 2
                         : after         ? 0
                                         : gap_.size();
    std::string rest = gap_.substr(split);
    gap_.resize(split);
    WriteContent(atom.parent, atom.bytes);
    gap_ = std::move(rest);
  }

  const Block& block_;
  std::string& out_;
  std::vector<int> depth_;
  std::vector<int> open_;
  std::vector<bool> atom_written_;
  std::string gap_;
  bool wrote_content_ = false;
};

bool IsPunct(char c) {
  return static_cast<unsigned char>(c) < 0x80 && absl::ascii_ispunct(c);
}

void BlockWriter::Write(const BlockTranslation& translation) {
  const std::string& text = translation.text;
  atom_written_.assign(block_.atoms.size(), false);

  // Words of the target text.
  struct Word {
    size_t begin, end;
    int leaf = -1;
    bool aligned = false;
    size_t source_begin = 0, source_end = 0;
  };
  std::vector<Word> words;
  for (size_t i = 0; i < text.size();) {
    if (IsSpace(text[i])) {
      ++i;
    } else if (IsPunct(text[i])) {
      words.push_back({i, i + 1});
      ++i;
    } else {
      size_t j = i;
      while (j < text.size() && !IsSpace(text[j]) && !IsPunct(text[j])) ++j;
      words.push_back({i, j});
      i = j;
    }
  }

  if (translation.alignment.empty()) {
    // No alignment: the elements that cover the whole source text wrap the
    // translation; the others are dropped; atoms follow.
    int leaf = -1;
    size_t begin = 0, end = block_.text.size();
    while (begin < end && IsSpace(block_.text[begin])) ++begin;
    while (end > begin && IsSpace(block_.text[end - 1])) --end;
    for (size_t s = 0; s < block_.spans.size(); ++s) {
      const InlineSpan& span = block_.spans[s];
      if (span.begin <= begin && span.end >= end &&
          (leaf < 0 || depth_[s] > depth_[leaf])) {
        leaf = static_cast<int>(s);
      }
    }
    size_t lead = 0;
    while (lead < text.size() && IsSpace(text[lead])) ++lead;
    gap_ = text.substr(0, lead);
    size_t trail = text.size();
    while (trail > lead && IsSpace(text[trail - 1])) --trail;
    if (trail > lead) {
      WriteContent(leaf, EscapeHtmlText(text.substr(lead, trail - lead)));
    }
    gap_ += text.substr(trail);
    for (size_t a = 0; a < block_.atoms.size(); ++a) WriteAtom(a);
    Enter(-1, /*at_end=*/true);
    return;
  }

  // Votes of the tokens: each word takes the leaf most of its aligned tokens
  // give (ties: the first).
  {
    std::vector<std::vector<std::pair<int, size_t>>> votes(words.size());
    for (size_t t = 0; t < translation.alignment.size(); ++t) {
      const TokenAlignment& token = translation.alignment[t];
      if (token.source_begin >= token.source_end ||
          token.source_begin >= block_.text.size()) {
        continue;
      }
      const size_t tb = std::min(token.target_begin, text.size());
      const size_t te = std::min(token.target_end, text.size());
      if (tb >= te) continue;
      auto it = std::upper_bound(
          words.begin(), words.end(), tb,
          [](size_t pos, const Word& w) { return pos < w.end; });
      for (; it != words.end() && it->begin < te; ++it) {
        votes[it - words.begin()].emplace_back(
            SourceLeaf(token.source_begin, token.source_end), t);
      }
    }
    for (size_t w = 0; w < words.size(); ++w) {
      if (votes[w].empty()) continue;
      size_t best = 0;
      int best_count = 0;
      for (size_t i = 0; i < votes[w].size(); ++i) {
        int count = 0;
        for (const auto& v : votes[w]) count += v.first == votes[w][i].first;
        if (count > best_count) best = i, best_count = count;
      }
      const TokenAlignment& token =
          translation.alignment[votes[w][best].second];
      words[w].aligned = true;
      words[w].leaf = votes[w][best].first;
      words[w].source_begin = token.source_begin;
      words[w].source_end = std::min(token.source_end, block_.text.size());
    }
  }
  // Unaligned words: the elements shared by the aligned words around them.
  {
    int previous = -2;  // -2: none yet
    for (size_t w = 0; w < words.size(); ++w) {
      if (words[w].aligned) {
        previous = words[w].leaf;
        continue;
      }
      size_t next = w + 1;
      while (next < words.size() && !words[next].aligned) ++next;
      words[w].leaf = previous == -2 || next == words.size()
                          ? -1
                          : CommonLeaf(previous, words[next].leaf);
    }
  }

  // Atoms with text that a word aligns into are placed by that word.
  std::vector<bool> claimed(block_.atoms.size(), false);
  for (const Word& word : words) {
    for (size_t a = 0; a < block_.atoms.size() && word.aligned; ++a) {
      const InlineAtom& atom = block_.atoms[a];
      if (atom.begin <= word.source_begin && word.source_begin < atom.end) {
        claimed[a] = true;
      }
    }
  }

  size_t position = 0;  // in `text`
  for (const Word& word : words) {
    gap_ += text.substr(position, word.begin - position);
    position = word.end;
    const std::string escaped = EscapeHtmlText(
        std::string_view(text).substr(word.begin, word.end - word.begin));
    if (!word.aligned) {
      WriteContent(word.leaf, escaped);
      continue;
    }
    const size_t sb = word.source_begin;
    // A word aligned into an atom's text is the atom.
    int holder = -1;
    for (size_t a = 0; a < block_.atoms.size(); ++a) {
      const InlineAtom& atom = block_.atoms[a];
      if (atom.begin <= sb && sb < atom.end) holder = static_cast<int>(a);
    }
    // Atoms before the word's source come first.
    for (size_t a = 0; a < block_.atoms.size(); ++a) {
      if (static_cast<int>(a) == holder) break;
      if (block_.atoms[a].end <= sb && !claimed[a]) WriteAtom(a);
    }
    if (holder >= 0) {
      if (atom_written_[holder]) {
        if (wrote_content_) gap_.clear();  // the word is dropped
      } else {
        WriteAtom(holder);
      }
      continue;
    }
    WriteContent(word.leaf, escaped);
    // Void and empty elements the word touched in the source follow it.
    for (size_t a = 0; a < block_.atoms.size(); ++a) {
      const InlineAtom& atom = block_.atoms[a];
      if (atom.begin == atom.end && atom.begin <= word.source_end) WriteAtom(a);
    }
  }
  gap_ += text.substr(std::min(position, text.size()));
  for (size_t a = 0; a < block_.atoms.size(); ++a) WriteAtom(a);
  Enter(-1, /*at_end=*/true);
}

}  // namespace

std::string EscapeHtmlText(std::string_view text) {
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
      default:
        out += c;
    }
  }
  return out;
}

absl::StatusOr<HtmlDocument> HtmlDocument::Parse(std::string_view html) {
  HtmlDocument document;
  document.source_ = std::string(html);
  const std::string& source = document.source_;
  std::unique_ptr<GumboOutput, void (*)(GumboOutput*)> output(
      gumbo_parse_with_options(&kGumboDefaultOptions, source.data(),
                               source.size()),
      [](GumboOutput* o) {
        if (o != nullptr) gumbo_destroy_output(&kGumboDefaultOptions, o);
      });
  if (output == nullptr || output->document == nullptr) {
    return absl::InternalError("gumbo returned no document");
  }
  Walker walker(source);
  walker.WalkContainer(output->document, 0);

  // A block may only replace bytes it owns: one whose region holds bytes of
  // the structure or of another block (the parser moved nodes out of source
  // order) stays untranslated, its bytes joining the structure.
  const size_t count = walker.blocks.size();
  std::vector<bool> kept(count, true);
  for (bool changed = true; changed;) {
    changed = false;
    std::vector<OwnedRange> ranges;
    for (const ByteRange& r : walker.structure) ranges.push_back({r, -1});
    for (size_t b = 0; b < count; ++b) {
      for (const ByteRange& r : walker.block_ranges[b]) {
        ranges.push_back({r, kept[b] ? static_cast<int>(b) : -1});
      }
    }
    std::vector<size_t> order;
    for (size_t b = 0; b < count; ++b) {
      if (kept[b]) order.push_back(b);
    }
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return walker.regions[a].begin < walker.regions[b].begin;
    });
    // Overlapping regions: the later block stays untranslated.
    for (size_t i = 1; i < order.size(); ++i) {
      if (walker.regions[order[i]].begin < walker.regions[order[i - 1]].end) {
        kept[order[i]] = false;
        changed = true;
      }
    }
    if (changed) continue;
    for (const OwnedRange& owned : ranges) {
      if (owned.range.begin >= owned.range.end) continue;
      // The kept regions are disjoint and sorted: find those it meets.
      auto it = std::upper_bound(
          order.begin(), order.end(), owned.range.begin,
          [&](size_t pos, size_t b) { return pos < walker.regions[b].end; });
      for (; it != order.end() && walker.regions[*it].begin < owned.range.end;
           ++it) {
        if (static_cast<int>(*it) != owned.owner && kept[*it]) {
          kept[*it] = false;
          changed = true;
        }
      }
    }
  }
  for (size_t b = 0; b < count; ++b) {
    if (!kept[b]) continue;
    document.blocks_.push_back(std::move(walker.blocks[b]));
    document.regions_.push_back(
        {walker.regions[b].begin, walker.regions[b].end});
  }
  // Blocks in source order.
  std::vector<size_t> order(document.blocks_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return document.regions_[a].begin < document.regions_[b].begin;
  });
  std::vector<Block> blocks;
  std::vector<Region> regions;
  for (size_t i : order) {
    blocks.push_back(std::move(document.blocks_[i]));
    regions.push_back(document.regions_[i]);
  }
  document.blocks_ = std::move(blocks);
  document.regions_ = std::move(regions);
  return document;
}

std::string HtmlDocument::Render(
    const std::vector<BlockTranslation>& translations) const {
  std::string out;
  out.reserve(source_.size() + source_.size() / 4);
  size_t position = 0;
  for (size_t b = 0; b < blocks_.size(); ++b) {
    out.append(source_, position, regions_[b].begin - position);
    position = regions_[b].end;
    BlockWriter writer(blocks_[b], &out);
    if (b < translations.size()) {
      writer.Write(translations[b]);
    } else {
      BlockTranslation identity;
      identity.text = blocks_[b].text;
      const std::string& text = identity.text;
      for (size_t i = 0; i < text.size();) {
        if (IsSpace(text[i])) {
          ++i;
          continue;
        }
        size_t j = i;
        while (j < text.size() && !IsSpace(text[j])) ++j;
        identity.alignment.push_back({i, j, i, j});
        i = j;
      }
      writer.Write(identity);
    }
  }
  out.append(source_, position);
  return out;
}

std::string HtmlDocument::RenderIdentity() const { return Render({}); }

}  // namespace ts::core::text
