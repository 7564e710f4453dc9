// Turns gRPC requests into tokenized, option-resolved work for the scheduler,
// or an INVALID_ARGUMENT status that names the broken limit.
#ifndef TRANSFORMER_SERVING_SERVER_REQUEST_VALIDATION_H_
#define TRANSFORMER_SERVING_SERVER_REQUEST_VALIDATION_H_

#include <memory>
#include <string_view>
#include <vector>

#include "core/decoding/options.h"
#include "core/model/marian_model.h"
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
};

struct TranslateWork {
  std::vector<std::vector<int>> source_ids;  // one per text, </s> included
  core::TranslationOptions options;          // resolved: no 0 ("default")
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
  RequestValidator(std::shared_ptr<const core::MarianModel> model,
                   RequestLimits limits);

  // INVALID_ARGUMENT on: no texts, more than max_texts_per_request texts, a
  // text over max_text_bytes bytes (checked for every text before any is
  // tokenized), an empty text, invalid UTF-8, a text over max_input_tokens
  // tokens, options out of range (negative, no_repeat_ngram_size < 0,
  // repetition_penalty <= 0, beam_size > max_beam_size, max_length >
  // max_length_cap, num_hypotheses > beam_size (> max_beam_size when
  // sampling), attention_layer outside [-decoder_layers, decoder_layers),
  // do_sample with beam_size > 1, top_k < 0, top_p outside (0, 1],
  // temperature <= 0, or as MarianModel::ResolveOptions rejects). A sampling
  // request without a seed gets a fresh one in work->options.seed.
  grpc::Status ValidateTranslate(
      const transformer::v1::TranslateRequest& request,
      TranslateWork* work) const;
  // As ValidateTranslate for the texts; also an unknown pooling value.
  grpc::Status ValidateEncode(const transformer::v1::EncodeRequest& request,
                              EncodeWork* work) const;

  // Options of a request whose fields are all 0 / unset, resolved (for
  // GetModelInfo and warm-up).
  core::TranslationOptions DefaultTranslationOptions() const;

  const RequestLimits& limits() const { return limits_; }

 private:
  grpc::Status TokenizeTexts(
      const google::protobuf::RepeatedPtrField<std::string>& texts,
      std::vector<std::vector<int>>* source_ids) const;
  grpc::Status ResolveTranslationOptions(
      const transformer::v1::TranslationOptions& requested,
      core::TranslationOptions* resolved) const;

  std::shared_ptr<const core::MarianModel> model_;
  RequestLimits limits_;
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_REQUEST_VALIDATION_H_
