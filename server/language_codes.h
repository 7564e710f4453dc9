// Language codes as the model repository routes by them: ISO 639-1 and
// 639-3 (and 639-2/B) codes of one language made one canonical code, English
// language names, and the target-language tokens of multilingual OPUS-MT
// vocabularies. ICU's CLDR data decides; there is no table of our own.
#ifndef TRANSFORMER_SERVING_SERVER_LANGUAGE_CODES_H_
#define TRANSFORMER_SERVING_SERVER_LANGUAGE_CODES_H_

#include <string>
#include <string_view>
#include <vector>

namespace ts::server {

// The canonical code of the language `code` names, for routing: the language
// subtag of icu::Locale::createCanonical(code), which applies CLDR's language
// aliases (ICU 72: "eng" -> "en", "deu" and "ger" -> "de", "fra" and "fre" ->
// "fr", "zho" and "chi" -> "zh", "cmn" -> "zh", "iw" -> "he", "tl" -> "fil"),
// so the result is the ISO 639-1 code when the language has one, else its
// 3-letter code. Case and '-' or '_' do not matter. Region, script and
// variant are dropped: "pt_BR" -> "pt", "zh-Hant" -> "zh" (a model is routed
// by language alone). Returns "" for what is not a language code: empty, not
// 2 or 3 letters after canonicalization ("auto", "123", "e1"), "und" and
// "zxx". A well-formed code ICU does not know ("xx", "qaa") is kept as is
// (lower-cased), since OPUS-MT names languages ICU lacks.
std::string CanonicalLanguage(std::string_view code);

// The English name of `code`'s language from ICU's display names
// (Locale::getDisplayLanguage(Locale::getEnglish())): "de" -> "German",
// "eng" -> "English", "zho" -> "Chinese". `code` itself when ICU has no name
// for it.
std::string LanguageName(std::string_view code);

// A target-language token of a multilingual OPUS-MT vocabulary.
struct TargetLanguageToken {
  std::string token;     // as in vocab.json, e.g. ">>por<<" or ">>zho_Hant<<"
  std::string language;  // CanonicalLanguage of what is between >> and <<
};

// The `>>xxx<<` tokens among `vocabulary_tokens` (e.g. vocab.json's keys), in
// their order, each with its canonical language. A token whose inner code is
// not a language code (">>auto<<", ">><<") is skipped. Several tokens may
// share a language (">>zho_Hans<<", ">>zho_Hant<<", ">>cmn_Hans<<" are all
// "zh"); the router picks one. Helsinki-NLP's multilingual models name the
// target this way (e.g. opus-mt-en-ROMANCE, ">>fra<<").
std::vector<TargetLanguageToken> MultiTargetLanguages(
    const std::vector<std::string>& vocabulary_tokens);

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_LANGUAGE_CODES_H_
