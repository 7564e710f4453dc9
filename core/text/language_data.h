// The per-language rule files core/text/data/<language>.txt, embedded into
// the binary at build time (embed_language_data.cmake writes
// language_data.cc), so the server needs no data path at run time.
//
// Format, one entry a line, as the Moses nonbreaking_prefix files:
//   # a comment
//   Dr                  "Dr." never ends a sentence
//   e.g                 nor "e.g." (inner periods are part of the prefix)
//   No #NUMERIC_ONLY#   "No." does not end a sentence before a digit
//   #ORDINAL_MAX_DIGITS# 2
//                       a number of 1-2 digits with "." before a word is an
//                       ordinal ("am 3. Oktober"), not a sentence end
#ifndef TRANSFORMER_SERVING_CORE_TEXT_LANGUAGE_DATA_H_
#define TRANSFORMER_SERVING_CORE_TEXT_LANGUAGE_DATA_H_

#include <string_view>

namespace ts::core::text {

// The text of data/<language>.txt ("en" -> data/en.txt); "" if there is no
// file for `language`.
std::string_view LanguageData(std::string_view language);

}  // namespace ts::core::text

#endif  // TRANSFORMER_SERVING_CORE_TEXT_LANGUAGE_DATA_H_
