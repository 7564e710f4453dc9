// Turns gRPC requests into tokenized, option-resolved work for the scheduler,
// or an INVALID_ARGUMENT status that names the broken limit.
#ifndef TRANSFORMER_SERVING_SERVER_REQUEST_VALIDATION_H_
#define TRANSFORMER_SERVING_SERVER_REQUEST_VALIDATION_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/decoding/options.h"
#include "core/model/marian_model.h"
#include "core/text/html_document.h"
#include "core/text/sentence_splitter.h"
#include "grpcpp/support/status.h"
#include "transformer/v1/transformer_service.pb.h"

namespace ts::server {

// The request limits of ServerOptions that validation enforces.
struct RequestLimits {
  int max_texts_per_request = 256;
  int max_queue_size = 1024;    // named in the too-many-texts message
  int max_input_tokens = 256;   // per text, </s> included
  int max_text_bytes = 100000;  // per text, checked before tokenizing
  int max_length_cap = 512;     // tokens, counting the decoder start token
  int max_beam_size = 16;
  // Put into every request's options (core::TranslationOptions::
  // max_length_factor); 0 = off.
  double max_length_factor = 3.0;
  // Sentences (segments) per Translate request, over its texts.
  int max_sentences_per_request = 1024;
};

// One sentence of a text, as the model sees it.
struct SegmentWork {
  // Bytes [begin, end) of the request's text that the sentence replaces
  // (INPUT_FORMAT_HTML: of its block's plain text).
  int begin = 0;
  int end = 0;
  int block = -1;  // INPUT_FORMAT_HTML: index into html->blocks()
  // What the model reads: the bytes, with the newlines of a wrapped line as
  // spaces (NEWLINE_MODE_SPACE).
  std::string source;
  std::vector<int> source_ids;  // tokenized, </s> included
};

// One text of a Translate request: its sentences in order. The bytes between
// them (and before the first, after the last) are the gaps the translation
// keeps as they are. A text of whitespace only has no segments.
struct TextWork {
  std::vector<SegmentWork> segments;
  // INPUT_FORMAT_HTML: the parsed document; its blocks' texts hold the
  // segments, and the translation is the document rendered around them.
  std::shared_ptr<const core::text::HtmlDocument> html;
};

struct TranslateWork {
  std::vector<TextWork> texts;       // one per request text
  core::TranslationOptions options;  // resolved: no 0 ("default")
  transformer::v1::InputFormat input_format =
      transformer::v1::INPUT_FORMAT_TEXT;
};

struct EncodeWork {
  std::vector<std::vector<int>> source_ids;
  core::EncodeOptions options;
};

// Strict UTF-8 (RFC 3629): no overlong forms, surrogates or code points above
// U+10FFFF.
bool IsValidUtf8(std::string_view text);

// Thread-safe: holds the model read-only.
class RequestValidator {
 public:
  // `source_language` (ISO 639-1, e.g. "en"; "" for ICU's root rules)
  // chooses the sentence splitter's rules.
  RequestValidator(std::shared_ptr<const core::MarianModel> model,
                   RequestLimits limits, std::string source_language = "");

  // Splits each text into sentences by options.input_format (TEXT: ICU
  // sentences, paragraphs and gaps; SENTENCE: the whole text; HTML: the
  // sentences of each block) and tokenizes them; a TEXT or HTML sentence
  // over max_input_tokens tokens is cut into pieces, never refused.
  // INVALID_ARGUMENT on: no texts, more than max_texts_per_request texts, a
  // text over max_text_bytes bytes (checked for every text before any is
  // tokenized), an empty text, invalid UTF-8, more than
  // max_sentences_per_request (or max_queue_size) sentences in all, an
  // unknown input_format or newline_mode, a SENTENCE text over
  // max_input_tokens tokens, options out of range (negative,
  // no_repeat_ngram_size < 0, repetition_penalty <= 0, beam_size >
  // max_beam_size, max_length >
  // max_length_cap, num_hypotheses > beam_size (> max_beam_size when
  // sampling), attention_layer outside [-decoder_layers, decoder_layers),
  // do_sample with beam_size > 1, top_k < 0, top_p outside (0, 1],
  // temperature <= 0, or as MarianModel::ResolveOptions rejects). A sampling
  // request without a seed gets a fresh one in work->options.seed.
  // `reserved_tokens`: source tokens the caller adds to every sentence (a
  // multi-target model's >>xxx<< token), taken off the token limit.
  grpc::Status ValidateTranslate(
      const transformer::v1::TranslateRequest& request, TranslateWork* work,
      int reserved_tokens = 0) const;
  // As ValidateTranslate for the texts; also an unknown pooling value.
  grpc::Status ValidateEncode(const transformer::v1::EncodeRequest& request,
                              EncodeWork* work) const;

  // Options of a request whose fields are all 0 / unset, resolved (for
  // GetModelInfo and warm-up).
  core::TranslationOptions DefaultTranslationOptions() const;

  const RequestLimits& limits() const { return limits_; }

 private:
  // The texts' count, emptiness and UTF-8.
  grpc::Status CheckTexts(
      const google::protobuf::RepeatedPtrField<std::string>& texts) const;
  // Sentences in all <= max_sentences_per_request and max_queue_size.
  grpc::Status CheckSentenceCount(const TranslateWork& work) const;
  // The most tokens (</s> included) a sentence may have, max_input_tokens
  // or max_position_embeddings less `reserved_tokens`, and how messages
  // name that limit.
  struct TokenLimit {
    int max_tokens = 0;
    std::string name;
  };
  TokenLimit SourceTokenLimit(int reserved_tokens) const;
  grpc::Status TokenizeTexts(
      const google::protobuf::RepeatedPtrField<std::string>& texts,
      int reserved_tokens, std::vector<std::vector<int>>* source_ids) const;
  // Splits each text by `format` and tokenizes its sentences.
  grpc::Status SegmentTexts(const transformer::v1::TranslateRequest& request,
                            int reserved_tokens, TranslateWork* work) const;
  // The sentences of text `index`'s `text` (or of an HTML block's text, with
  // `block`): split, each over `limit` cut into pieces, tokenized.
  grpc::Status SegmentPlainText(int index, std::string_view text, int block,
                                core::text::NewlineMode mode,
                                const TokenLimit& limit,
                                std::vector<SegmentWork>* segments) const;
  grpc::Status ResolveTranslationOptions(
      const transformer::v1::TranslationOptions& requested,
      core::TranslationOptions* resolved) const;

  std::shared_ptr<const core::MarianModel> model_;
  RequestLimits limits_;
  // Null if ICU could not build it (splitter_error_ says why).
  std::shared_ptr<const core::text::SentenceSplitter> splitter_;
  std::string splitter_error_;
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_REQUEST_VALIDATION_H_
