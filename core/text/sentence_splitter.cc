#include "core/text/sentence_splitter.h"

#include <unicode/brkiter.h>
#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/udata.h>
#include <unicode/unistr.h>
#include <unicode/ures.h>
#include <unicode/utext.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/text/language_data.h"

namespace ts::core::text {

namespace internal {

struct SplitterState {
  std::unique_ptr<icu::BreakIterator> sentence_iterator;
  std::unique_ptr<icu::BreakIterator> word_iterator;
  std::unique_ptr<icu::BreakIterator> character_iterator;
  // Abbreviations with their final ".", e.g. "Dr.", "z. B.", keyed by their
  // last word ("B."): no break after them (CLDR's list and data/<lang>.txt).
  std::unordered_map<std::string, std::vector<std::string>> abbreviations;
  // Prefixes with their "." ("No.", "Art.") that end no sentence before a
  // digit (#NUMERIC_ONLY#).
  std::unordered_set<std::string> numeric_only;
  // "3." before a word is an ordinal (German) for numbers of at most this
  // many digits; 0 = no ordinal rule (#ORDINAL_MAX_DIGITS#).
  int ordinal_max_digits = 0;
  // clone() only reads the prototype, but ICU does not promise that clones
  // of one iterator may be made concurrently: they are made one at a time.
  std::mutex clone_mutex;

  std::unique_ptr<icu::BreakIterator> Clone(
      const icu::BreakIterator& prototype) {
    std::lock_guard<std::mutex> lock(clone_mutex);
    return std::unique_ptr<icu::BreakIterator>(prototype.clone());
  }

  void AddAbbreviation(std::string entry) {
    const size_t space = entry.rfind(' ');
    std::string last_word =
        space == std::string::npos ? entry : entry.substr(space + 1);
    auto& entries = abbreviations[last_word];
    if (std::find(entries.begin(), entries.end(), entry) == entries.end()) {
      entries.push_back(std::move(entry));
    }
  }
};

}  // namespace internal

namespace {

using internal::SplitterState;

// Code points of UTF-8 through ICU's macros; byte offsets are int32_t as
// ICU's (texts are at most INT32_MAX bytes, see Segment). Ill-formed bytes
// give a negative code point, which no class below matches.
const uint8_t* Bytes(std::string_view s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

UChar32 CodePointAt(std::string_view s, int32_t i, int32_t* next) {
  UChar32 c;
  U8_NEXT(Bytes(s), i, static_cast<int32_t>(s.size()), c);
  *next = i;
  return c;
}

// The code point that ends before byte `i` (not before `start`).
UChar32 CodePointBefore(std::string_view s, int32_t start, int32_t i,
                        int32_t* begin) {
  UChar32 c;
  U8_PREV(Bytes(s), start, i, c);
  *begin = i;
  return c;
}

bool IsWhiteSpace(UChar32 c) { return c >= 0 && u_isUWhiteSpace(c); }
bool IsLower(UChar32 c) { return c >= 0 && u_islower(c); }
bool IsDigit(UChar32 c) { return c >= 0 && u_isdigit(c); }
bool IsAlpha(UChar32 c) { return c >= 0 && u_isalpha(c); }
bool IsAlnum(UChar32 c) { return c >= 0 && u_isalnum(c); }

// East Asian Wide or Fullwidth (。！？」 ，): CJK punctuation, which ends a
// sentence with no space after it.
bool IsWide(UChar32 c) {
  if (c < 0) return false;
  const int width = u_getIntPropertyValue(c, UCHAR_EAST_ASIAN_WIDTH);
  return width == U_EA_WIDE || width == U_EA_FULLWIDTH;
}

// Closing punctuation (Pe: ) ] 」; Pf: » ” ’), which belongs to the
// sentence before it.
bool IsClosing(UChar32 c) {
  if (c < 0) return false;
  const int8_t type = u_charType(c);
  return type == U_END_PUNCTUATION || type == U_FINAL_PUNCTUATION;
}

// Comma and semicolon, Latin, CJK/fullwidth, small form and Arabic.
bool IsCommaOrSemicolon(UChar32 c) {
  switch (c) {
    case U',':
    case U';':
    case U'\uFF0C':  // ，
    case U'\uFF1B':  // ；
    case U'\u3001':  // 、
    case U'\uFE50':  // ﹐
    case U'\uFE54':  // ﹔
    case U'\u060C':  // ،
    case U'\u061B':  // ؛
      return true;
    default:
      return false;
  }
}

// [begin, end) without its trailing whitespace: the new end.
int32_t TrimEnd(std::string_view s, int32_t begin, int32_t end) {
  while (end > begin) {
    int32_t previous;
    if (!IsWhiteSpace(CodePointBefore(s, begin, end, &previous))) break;
    end = previous;
  }
  return end;
}

// [begin, end) without its leading whitespace: the new begin.
int32_t TrimStart(std::string_view s, int32_t begin, int32_t end) {
  while (begin < end) {
    int32_t next;
    if (!IsWhiteSpace(CodePointAt(s, begin, &next))) break;
    begin = next;
  }
  return begin;
}

bool IsBlank(std::string_view s, int32_t begin, int32_t end) {
  return TrimStart(s, begin, end) == end;
}

// Adds [begin, end), trimmed, to `spans` if anything is left.
void AddTrimmed(std::string_view s, int32_t begin, int32_t end,
                std::vector<SentenceSpan>& spans) {
  begin = TrimStart(s, begin, end);
  end = TrimEnd(s, begin, end);
  if (begin < end) {
    spans.push_back({static_cast<size_t>(begin), static_cast<size_t>(end)});
  }
}

// Closes a UText opened by utext_openUTF8 at scope end.
struct UTextCloser {
  void operator()(UText* text) const { utext_close(text); }
};
using UTextPtr = std::unique_ptr<UText, UTextCloser>;

// `iterator` set to the UTF-8 bytes `s` (which must outlive its use).
UTextPtr SetText(icu::BreakIterator& iterator, std::string_view s) {
  UErrorCode status = U_ZERO_ERROR;
  UTextPtr text(utext_openUTF8(nullptr, s.data(),
                               static_cast<int64_t>(s.size()), &status));
  iterator.setText(text.get(), status);
  return text;
}

// The sentence-break exceptions CLDR lists for `language` (what ICU's
// "@ss=standard" suppresses), e.g. "Mr.", "z. B.", from ICU's own data. Only
// the language's own bundle is read (no fallback to the default locale).
std::vector<std::string> CldrAbbreviations(const std::string& language) {
  std::vector<std::string> entries;
  if (language.empty()) return entries;
  UErrorCode status = U_ZERO_ERROR;
  UResourceBundle* bundle =
      ures_openDirect(U_ICUDATA_NAME U_TREE_SEPARATOR_STRING "brkitr",
                      language.c_str(), &status);
  UResourceBundle* exceptions =
      ures_getByKey(bundle, "exceptions", nullptr, &status);
  UResourceBundle* sentence_break =
      ures_getByKey(exceptions, "SentenceBreak", nullptr, &status);
  if (U_SUCCESS(status)) {
    const int32_t size = ures_getSize(sentence_break);
    for (int32_t i = 0; i < size; ++i) {
      int32_t length = 0;
      UErrorCode entry_status = U_ZERO_ERROR;
      const UChar* entry =
          ures_getStringByIndex(sentence_break, i, &length, &entry_status);
      if (U_FAILURE(entry_status)) continue;
      std::string utf8;
      icu::UnicodeString(entry, length).toUTF8String(utf8);
      entries.push_back(std::move(utf8));
    }
  }
  ures_close(sentence_break);
  ures_close(exceptions);
  ures_close(bundle);
  return entries;
}

// ASCII spaces, tabs and line ends (of the data files).
std::string_view StripAscii(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  const size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(kSpace) - begin + 1);
}

// Reads data/<language>.txt (format in language_data.h) into `state`.
void AddLanguageData(std::string_view data, SplitterState& state) {
  constexpr std::string_view kNumericOnly = "#NUMERIC_ONLY#";
  constexpr std::string_view kOrdinalMaxDigits = "#ORDINAL_MAX_DIGITS#";
  for (size_t line_begin = 0; line_begin < data.size();) {
    size_t line_end = data.find('\n', line_begin);
    if (line_end == std::string_view::npos) line_end = data.size();
    std::string_view line =
        StripAscii(data.substr(line_begin, line_end - line_begin));
    line_begin = line_end + 1;
    if (line.starts_with(kOrdinalMaxDigits)) {
      int digits = 0;
      for (char c : line.substr(kOrdinalMaxDigits.size())) {
        if (c >= '0' && c <= '9') digits = digits * 10 + (c - '0');
      }
      state.ordinal_max_digits = digits;
      continue;
    }
    if (line.empty() || line.front() == '#') continue;
    const bool numeric_only = line.ends_with(kNumericOnly);
    if (numeric_only) {
      line = StripAscii(line.substr(0, line.size() - kNumericOnly.size()));
    }
    if (line.empty()) continue;
    std::string entry = std::string(line) + ".";
    if (numeric_only) {
      state.numeric_only.insert(std::move(entry));
    } else {
      state.AddAbbreviation(std::move(entry));
    }
  }
}

// The primary language subtag, lower case: "en-US" -> "en"; "" unless it is
// 2-3 ASCII letters.
std::string PrimaryLanguage(std::string_view language) {
  const size_t end = language.find_first_of("-_@");
  std::string primary(language.substr(0, end));
  if (primary.size() < 2 || primary.size() > 3) return "";
  for (char& c : primary) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c < 'a' || c > 'z') return "";
  }
  return primary;
}

// True if the break ICU found at `at` in `s`, between the sentence
// [begin, at) and the unit's rest [at, end), is not a sentence end.
bool SuppressBreak(const SplitterState& state, std::string_view s,
                   int32_t begin, int32_t at, int32_t end) {
  const int32_t sentence_end = TrimEnd(s, begin, at);
  const int32_t next_begin = TrimStart(s, at, end);
  if (sentence_end == begin || next_begin == end) return false;
  int32_t last_begin;
  const UChar32 last = CodePointBefore(s, begin, sentence_end, &last_begin);
  int32_t unused;
  const UChar32 next = CodePointAt(s, next_begin, &unused);

  // CJK punctuation ends a sentence with or without a space after it, and
  // before any letter ("我用iPhone。iPhone很好"), also inside closing marks
  // ("“你好。”然后").
  UChar32 terminator = last;
  for (int32_t i = last_begin; i > begin && IsClosing(terminator);) {
    terminator = CodePointBefore(s, begin, i, &i);
  }
  if (IsWide(terminator)) return false;
  // No space after a narrow terminator: a URL, "a.b?x=1", "3.50".
  if (sentence_end == next_begin) return true;
  // "Stop! he said", "Why? because": ICU breaks after ! and ? before a
  // lowercase word (after "." it already does not).
  if (IsLower(next)) return true;
  if (last != '.') return false;

  // The sentence's last word, from its last whitespace, without leading
  // opening punctuation: "(Dr." -> "Dr.".
  int32_t word_begin = sentence_end;
  while (word_begin > begin) {
    int32_t previous;
    if (IsWhiteSpace(CodePointBefore(s, begin, word_begin, &previous))) break;
    word_begin = previous;
  }
  int32_t key_begin = word_begin;
  while (key_begin < sentence_end) {
    int32_t next_index;
    if (IsAlnum(CodePointAt(s, key_begin, &next_index))) break;
    key_begin = next_index;
  }
  const std::string_view key = s.substr(key_begin, sentence_end - key_begin);
  if (key.size() <= 1) return false;

  // An abbreviation, matched on whole words ("Vater." does not end in the
  // abbreviation "r."), possibly of several words ("z. B.").
  if (auto it = state.abbreviations.find(std::string(key));
      it != state.abbreviations.end()) {
    const std::string_view before = s.substr(begin, sentence_end - begin);
    for (const std::string& entry : it->second) {
      if (!before.ends_with(entry)) continue;
      const int32_t entry_begin =
          sentence_end - static_cast<int32_t>(entry.size());
      int32_t previous;
      if (entry_begin == begin ||
          !IsAlnum(CodePointBefore(s, begin, entry_begin, &previous))) {
        return true;
      }
    }
  }
  // "No. 5", "Art. 3".
  if (IsDigit(next) && state.numeric_only.contains(std::string(key))) {
    return true;
  }
  // A German ordinal, "am 3. Oktober": digits only, then a word.
  if (state.ordinal_max_digits > 0 && key_begin == word_begin &&
      IsAlpha(next)) {
    int digits = 0;
    int32_t i = key_begin;
    while (i < sentence_end - 1) {
      if (!IsDigit(CodePointAt(s, i, &i))) return false;
      ++digits;
    }
    return digits <= state.ordinal_max_digits;
  }
  return false;
}

// Appends the sentences of one unit (a line, or a paragraph in kSpace mode)
// `text[begin, end)` to `spans`. `icu_text` is `text` as ICU and the rules
// see it (kSpace: its \r and \n turned into spaces; same offsets).
void SplitUnit(const SplitterState& state, std::string_view text,
               std::string_view icu_text, int32_t begin, int32_t end,
               icu::BreakIterator& iterator, std::vector<SentenceSpan>& spans) {
  const std::string_view unit = icu_text.substr(begin, end - begin);
  const int32_t unit_end = end - begin;
  std::vector<int32_t> breaks;
  {
    UTextPtr utext = SetText(iterator, unit);
    iterator.first();
    for (int32_t at = iterator.next(); at != icu::BreakIterator::DONE;
         at = iterator.next()) {
      if (at < unit_end) breaks.push_back(at);
    }
  }
  // ICU does not break after "." before a number followed by a lowercase
  // word ("... water. 3 boys are ..."; UAX #29 rule SB8): those places are
  // breaks too, unless the rules below suppress them ("No. 5 is").
  bool added = false;
  for (size_t dot = unit.find('.'); dot != std::string_view::npos;
       dot = unit.find('.', dot + 1)) {
    int32_t at = static_cast<int32_t>(dot) + 1;
    for (int32_t next;
         at < unit_end && IsClosing(CodePointAt(unit, at, &next));) {
      at = next;
    }
    const int32_t word = TrimStart(unit, at, unit_end);
    int32_t unused;
    if (word > at && word < unit_end &&
        IsDigit(CodePointAt(unit, word, &unused))) {
      breaks.push_back(word);
      added = true;
    }
  }
  if (added) {
    std::sort(breaks.begin(), breaks.end());
    breaks.erase(std::unique(breaks.begin(), breaks.end()), breaks.end());
  }
  int32_t sentence_begin = 0;
  int32_t consumed = 0;  // the rest moved past ICU's break (closing marks)
  for (int32_t at : breaks) {
    if (at <= consumed) continue;
    // Closing marks after a space ("« Bonjour ! » dit-il") end the sentence
    // before them: the break moves past them and the space after.
    int32_t moved = at;
    for (int32_t next;
         moved < unit_end && IsClosing(CodePointAt(unit, moved, &next));) {
      moved = next;
    }
    if (moved != at) {
      at = TrimStart(unit, moved, unit_end);
      consumed = at;
      if (at >= unit_end) continue;
    }
    if (SuppressBreak(state, unit, sentence_begin, at, unit_end)) continue;
    AddTrimmed(text, begin + sentence_begin, begin + at, spans);
    sentence_begin = at;
  }
  AddTrimmed(text, begin + sentence_begin, end, spans);
}

// Positions of `iterator`'s boundaries over `s`, strictly inside it.
std::vector<int32_t> InnerBoundaries(icu::BreakIterator& iterator,
                                     std::string_view s) {
  UTextPtr utext = SetText(iterator, s);
  std::vector<int32_t> boundaries;
  iterator.first();
  for (int32_t at = iterator.next(); at != icu::BreakIterator::DONE;
       at = iterator.next()) {
    if (at > 0 && at < static_cast<int32_t>(s.size())) {
      boundaries.push_back(at);
    }
  }
  return boundaries;
}

}  // namespace

absl::StatusOr<SentenceSplitter> SentenceSplitter::Create(
    std::string_view language) {
  std::string primary = PrimaryLanguage(language);
  auto state = std::make_unique<internal::SplitterState>();
  const icu::Locale locale =
      primary.empty() ? icu::Locale::getRoot() : icu::Locale(primary.c_str());
  UErrorCode status = U_ZERO_ERROR;
  state->sentence_iterator.reset(
      icu::BreakIterator::createSentenceInstance(locale, status));
  state->word_iterator.reset(
      icu::BreakIterator::createWordInstance(locale, status));
  state->character_iterator.reset(
      icu::BreakIterator::createCharacterInstance(locale, status));
  if (U_FAILURE(status) || state->sentence_iterator == nullptr ||
      state->word_iterator == nullptr || state->character_iterator == nullptr) {
    return absl::InternalError(
        absl::StrCat("ICU cannot create its break iterators for language \"",
                     primary, "\": ", u_errorName(status)));
  }
  for (std::string& entry : CldrAbbreviations(primary)) {
    if (entry.ends_with(".")) state->AddAbbreviation(std::move(entry));
  }
  AddLanguageData(LanguageData(primary), *state);
  return SentenceSplitter(std::move(primary), std::move(state));
}

SentenceSplitter::SentenceSplitter(
    std::string language, std::unique_ptr<internal::SplitterState> state)
    : language_(std::move(language)), state_(std::move(state)) {}
SentenceSplitter::SentenceSplitter(SentenceSplitter&&) noexcept = default;
SentenceSplitter& SentenceSplitter::operator=(SentenceSplitter&&) noexcept =
    default;
SentenceSplitter::~SentenceSplitter() = default;

std::vector<SentenceSpan> SentenceSplitter::Segment(std::string_view text,
                                                    NewlineMode mode) const {
  std::vector<SentenceSpan> spans;
  if (text.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    // Past ICU's int32_t offsets (2 GiB): one span (servers refuse such
    // texts long before).
    const std::string_view trimmed = StripAscii(text);
    if (!trimmed.empty()) {
      const size_t begin = trimmed.data() - text.data();
      spans.push_back({begin, begin + trimmed.size()});
    }
    return spans;
  }
  std::unique_ptr<icu::BreakIterator> iterator =
      state_->Clone(*state_->sentence_iterator);
  std::string joined;  // kSpace: the text with newlines as spaces, for ICU
  std::string_view icu_text = text;
  if (mode == NewlineMode::kSpace) {
    joined.assign(text);
    std::replace(joined.begin(), joined.end(), '\n', ' ');
    std::replace(joined.begin(), joined.end(), '\r', ' ');
    icu_text = joined;
  }
  const int32_t size = static_cast<int32_t>(text.size());
  int32_t paragraph_begin = -1;  // kSpace: the open paragraph's bytes
  int32_t paragraph_end = -1;
  for (int32_t line_begin = 0; line_begin < size;) {
    const size_t newline = text.find('\n', line_begin);
    const int32_t line_end = newline == std::string_view::npos
                                 ? size
                                 : static_cast<int32_t>(newline);
    const bool blank = IsBlank(text, line_begin, line_end);
    if (mode == NewlineMode::kBreak) {
      if (!blank) {
        SplitUnit(*state_, text, icu_text, line_begin, line_end, *iterator,
                  spans);
      }
    } else if (blank) {
      if (paragraph_begin >= 0) {
        SplitUnit(*state_, text, icu_text, paragraph_begin, paragraph_end,
                  *iterator, spans);
        paragraph_begin = -1;
      }
    } else {
      if (paragraph_begin < 0) paragraph_begin = line_begin;
      paragraph_end = line_end;
    }
    line_begin = line_end + 1;
  }
  if (paragraph_begin >= 0) {
    SplitUnit(*state_, text, icu_text, paragraph_begin, paragraph_end,
              *iterator, spans);
  }
  return spans;
}

std::vector<SentenceSpan> SentenceSplitter::CutLongSentence(
    std::string_view text, SentenceSpan sentence, int max_tokens,
    const TokenCounter& count_tokens) const {
  std::vector<SentenceSpan> pieces;
  sentence.end = std::min(sentence.end, text.size());
  sentence.begin = std::min(sentence.begin, sentence.end);
  const std::string_view s = text.substr(sentence.begin, sentence.size());
  if (s.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return {sentence};
  }
  const int32_t end = TrimEnd(s, 0, static_cast<int32_t>(s.size()));
  int32_t start = TrimStart(s, 0, end);
  if (start == end) return pieces;

  // Cut candidates over the whole sentence, best kind first.
  std::vector<int32_t> characters =
      InnerBoundaries(*state_->Clone(*state_->character_iterator), s);
  std::vector<int32_t> words =
      InnerBoundaries(*state_->Clone(*state_->word_iterator), s);
  std::vector<int32_t> commas;
  std::vector<int32_t> spaces;
  for (int32_t at : characters) {
    int32_t unused;
    const UChar32 before = CodePointBefore(s, 0, at, &unused);
    if (IsCommaOrSemicolon(before)) commas.push_back(at);
    if (!IsWhiteSpace(before) && IsWhiteSpace(CodePointAt(s, at, &unused))) {
      spaces.push_back(at);
    }
  }
  const std::vector<int32_t>* kinds[] = {&commas, &spaces, &words, &characters};

  // Estimated tokens: each word (a run between whitespace) counted alone.
  // SentencePiece tokenizes the words of a text separately, so at a space
  // cut the sum over a piece's words is its count; inside a word the word's
  // tokens are spread over its bytes. Cuts are chosen by the estimate and
  // checked with real counts, so the estimate only saves work: each piece
  // costs a few counts of its own size instead of counts of the whole rest.
  const int empty = count_tokens(std::string_view());
  std::vector<int32_t> word_begins;
  std::vector<int32_t> word_ends;
  std::vector<double> tokens_before_word = {0.0};
  for (int32_t i = TrimStart(s, start, end); i < end;
       i = TrimStart(s, i, end)) {
    int32_t j = i;
    for (int32_t next; j < end && !IsWhiteSpace(CodePointAt(s, j, &next));) {
      j = next;
    }
    word_begins.push_back(i);
    word_ends.push_back(j);
    tokens_before_word.push_back(
        tokens_before_word.back() +
        std::max(0, count_tokens(s.substr(i, j - i)) - empty));
    i = j;
  }
  // Estimated tokens of s[0, at), </s> not included.
  auto tokens_before = [&](int32_t at) {
    const size_t k =
        std::upper_bound(word_begins.begin(), word_begins.end(), at) -
        word_begins.begin();
    if (k == 0) return 0.0;
    const size_t w = k - 1;  // the last word starting before `at`
    const double word_tokens =
        tokens_before_word[w + 1] - tokens_before_word[w];
    if (at >= word_ends[w]) return tokens_before_word[w + 1];
    return tokens_before_word[w] + word_tokens * (at - word_begins[w]) /
                                       (word_ends[w] - word_begins[w]);
  };

  const int enough = std::max(1, max_tokens / 2);
  while (start < end) {
    std::unordered_map<int32_t, int> counts;  // cut -> tokens of the piece
    auto count = [&](int32_t cut) {
      auto [it, added] = counts.try_emplace(cut, 0);
      if (added) {
        const int32_t piece_end = TrimEnd(s, start, cut);
        it->second = count_tokens(s.substr(start, piece_end - start));
      }
      return it->second;
    };
    const double start_tokens = tokens_before(start);
    auto estimate = [&](int32_t cut) {
      return empty + tokens_before(cut) - start_tokens;
    };
    if (estimate(end) <= max_tokens && count(end) <= max_tokens) {
      pieces.push_back({sentence.begin + start, sentence.begin + end});
      break;
    }
    // The largest candidate of `kind` at or below index `p` whose piece
    // fits by a real count: `p`, else stepping down 1, 2, 4... candidates,
    // then a binary search (the count grows with the piece). -1 if none.
    auto last_fit = [&](const std::vector<int32_t>& kind, ptrdiff_t first,
                        ptrdiff_t p) -> int32_t {
      if (count(kind[p]) <= max_tokens) return kind[p];
      ptrdiff_t fits = first - 1;  // index known to fit (or before `first`)
      ptrdiff_t too_long = p;      // index known not to fit
      for (ptrdiff_t step = 1; p - step >= first; step *= 2) {
        if (count(kind[p - step]) <= max_tokens) {
          fits = p - step;
          break;
        }
        too_long = p - step;
      }
      while (too_long - fits > 1) {
        const ptrdiff_t middle = fits + (too_long - fits) / 2;
        if (count(kind[middle]) <= max_tokens) {
          fits = middle;
        } else {
          too_long = middle;
        }
      }
      return fits >= first ? kind[fits] : -1;
    };
    // Per kind, the last cut that fits; the first kind whose piece is big
    // enough wins, else the longest piece of any kind.
    int32_t best = -1;
    int32_t longest = -1;
    for (const std::vector<int32_t>* kind : kinds) {
      const ptrdiff_t first =
          std::upper_bound(kind->begin(), kind->end(), start) - kind->begin();
      const ptrdiff_t last =
          std::lower_bound(kind->begin() + first, kind->end(), end) -
          kind->begin();
      if (first == last) continue;
      // The last candidate whose estimate fits (at least the first one).
      ptrdiff_t p =
          std::upper_bound(
              kind->begin() + first, kind->begin() + last, max_tokens,
              [&](int limit, int32_t cut) { return estimate(cut) > limit; }) -
          kind->begin() - 1;
      p = std::max(p, first);
      if (estimate((*kind)[p]) < enough && kind != kinds[3]) continue;
      const int32_t fit = last_fit(*kind, first, p);
      if (fit < 0) continue;
      longest = std::max(longest, fit);
      if (count(fit) >= enough) {
        best = fit;
        break;
      }
    }
    if (best < 0) best = longest;
    if (best < 0) {
      // Not even one character fits: it becomes a piece of its own.
      auto next = std::upper_bound(characters.begin(), characters.end(), start);
      best = next == characters.end() ? end : std::min(*next, end);
    }
    pieces.push_back(
        {sentence.begin + start, sentence.begin + TrimEnd(s, start, best)});
    start = TrimStart(s, best, end);
  }
  return pieces;
}

std::string ModelText(std::string_view text, SentenceSpan span) {
  std::string model_text(text.substr(span.begin, span.size()));
  std::replace(model_text.begin(), model_text.end(), '\n', ' ');
  std::replace(model_text.begin(), model_text.end(), '\r', ' ');
  return model_text;
}

}  // namespace ts::core::text
