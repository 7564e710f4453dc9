#include "server/request_validation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ts::server {
namespace {

grpc::Status Invalid(std::string message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(message));
}

// A seed for a sampling request that brought none: from the OS's entropy
// source, so concurrent servers and restarts do not repeat each other.
uint64_t FreshSeed() {
  thread_local std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) | device();
}

// The sampling fields of `requested`, range-checked, into `options`; without
// do_sample they are left at their defaults (ignored, as generate does), so
// they split neither batches nor cache entries.
grpc::Status ResolveSampling(
    const transformer::v1::TranslationOptions& requested, int max_samples,
    core::TranslationOptions* options) {
  if (requested.top_k() < 0) {
    return Invalid(absl::StrCat("options.top_k is ", requested.top_k(),
                                "; it must be >= 0 (0 = no top-k filter)"));
  }
  if (requested.has_top_p() &&
      !(requested.top_p() > 0.0f && requested.top_p() <= 1.0f)) {
    return Invalid(
        absl::StrCat("options.top_p is ", requested.top_p(),
                     "; it must be in (0, 1] (1 = no top-p filter)"));
  }
  if (requested.has_temperature() &&
      !(requested.temperature() > 0.0f &&
        std::isfinite(requested.temperature()))) {
    return Invalid(absl::StrCat("options.temperature is ",
                                requested.temperature(),
                                "; it must be a finite number > 0"));
  }
  if (!requested.do_sample()) return grpc::Status::OK;
  if (requested.beam_size() > 1) {
    return Invalid(absl::StrCat(
        "options.do_sample with beam_size ", requested.beam_size(),
        ": beam search cannot sample; use beam_size 1 (or 0) with do_sample"));
  }
  if (requested.num_hypotheses() > max_samples) {
    return Invalid(absl::StrCat("options.num_hypotheses ",
                                requested.num_hypotheses(),
                                " is more than max_beam_size ", max_samples,
                                " (the most samples per text)"));
  }
  options->do_sample = true;
  options->beam_size = 1;
  options->top_k = requested.top_k();
  options->top_p = requested.has_top_p() ? requested.top_p() : 1.0f;
  options->temperature =
      requested.has_temperature() ? requested.temperature() : 1.0f;
  options->seed = requested.has_seed() ? requested.seed() : FreshSeed();
  return grpc::Status::OK;
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const auto byte = static_cast<uint8_t>(text[i]);
    if (byte < 0x80) {
      ++i;
      continue;
    }
    // Continuation bytes after the lead byte, the lead byte's payload, and
    // the smallest code point that needs this many bytes (else overlong).
    int extra = 0;
    uint32_t code_point = 0;
    uint32_t min_code_point = 0;
    if ((byte & 0xE0) == 0xC0) {
      extra = 1;
      code_point = byte & 0x1F;
      min_code_point = 0x80;
    } else if ((byte & 0xF0) == 0xE0) {
      extra = 2;
      code_point = byte & 0x0F;
      min_code_point = 0x800;
    } else if ((byte & 0xF8) == 0xF0) {
      extra = 3;
      code_point = byte & 0x07;
      min_code_point = 0x10000;
    } else {
      return false;  // a continuation byte or 0xF8..0xFF as a lead byte
    }
    if (n - i <= static_cast<size_t>(extra)) return false;  // truncated
    for (int k = 1; k <= extra; ++k) {
      const auto next = static_cast<uint8_t>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (next & 0x3F);
    }
    if (code_point < min_code_point || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

RequestValidator::RequestValidator(
    std::shared_ptr<const core::MarianModel> model, RequestLimits limits,
    std::string source_language)
    : model_(std::move(model)), limits_(limits) {
  absl::StatusOr<core::text::SentenceSplitter> splitter =
      core::text::SentenceSplitter::Create(source_language);
  if (splitter.ok()) {
    splitter_ = std::make_shared<const core::text::SentenceSplitter>(
        *std::move(splitter));
  } else {
    splitter_error_ = std::string(splitter.status().message());
  }
}

grpc::Status RequestValidator::CheckTexts(
    const google::protobuf::RepeatedPtrField<std::string>& texts) const {
  if (texts.empty()) return Invalid("request has no texts");
  if (texts.size() > limits_.max_texts_per_request) {
    return Invalid(absl::StrCat(
        "request has ", texts.size(),
        " texts, more than max_texts_per_request ",
        limits_.max_texts_per_request, " (max_queue_size ",
        limits_.max_queue_size, "): split it into requests of at most ",
        std::min(limits_.max_texts_per_request, limits_.max_queue_size),
        " texts"));
  }
  // Sizes first: a huge text costs no scan or tokenizing before its refusal.
  for (int i = 0; i < texts.size(); ++i) {
    if (texts.Get(i).size() > static_cast<size_t>(limits_.max_text_bytes)) {
      return Invalid(absl::StrCat("texts[", i, "] has ", texts.Get(i).size(),
                                  " bytes, more than max_text_bytes ",
                                  limits_.max_text_bytes));
    }
  }
  for (int i = 0; i < texts.size(); ++i) {
    const std::string& text = texts.Get(i);
    if (text.empty()) return Invalid(absl::StrCat("texts[", i, "] is empty"));
    if (!IsValidUtf8(text)) {
      return Invalid(absl::StrCat("texts[", i, "] is not valid UTF-8"));
    }
  }
  return grpc::Status::OK;
}

grpc::Status RequestValidator::CheckSentenceCount(
    const TranslateWork& work) const {
  size_t sentences = 0;
  for (const TextWork& text : work.texts) sentences += text.segments.size();
  const int limit =
      std::min(limits_.max_sentences_per_request, limits_.max_queue_size);
  if (sentences > static_cast<size_t>(limit)) {
    return Invalid(absl::StrCat(
        "request has ", sentences, " sentences, more than ",
        limit == limits_.max_sentences_per_request
            ? "max_sentences_per_request "
            : "max_queue_size ",
        limit, " (max_sentences_per_request ",
        limits_.max_sentences_per_request, ", max_queue_size ",
        limits_.max_queue_size, "): split it into smaller requests"));
  }
  return grpc::Status::OK;
}

RequestValidator::TokenLimit RequestValidator::SourceTokenLimit(
    int reserved_tokens) const {
  // The encoder has positions for max_position_embeddings tokens only.
  const int limit = std::min(limits_.max_input_tokens,
                             model_->config().max_position_embeddings);
  TokenLimit token_limit;
  token_limit.max_tokens = limit - reserved_tokens;
  token_limit.name = absl::StrCat(limit == limits_.max_input_tokens
                                      ? "max_input_tokens "
                                      : "max_position_embeddings ",
                                  limit);
  if (reserved_tokens > 0) {
    absl::StrAppend(&token_limit.name, " less ", reserved_tokens,
                    " for the target language token");
  }
  return token_limit;
}

grpc::Status RequestValidator::TokenizeTexts(
    const google::protobuf::RepeatedPtrField<std::string>& texts,
    int reserved_tokens, std::vector<std::vector<int>>* source_ids) const {
  if (grpc::Status status = CheckTexts(texts); !status.ok()) return status;
  const TokenLimit limit = SourceTokenLimit(reserved_tokens);
  const int max_tokens = limit.max_tokens;
  source_ids->clear();
  source_ids->reserve(texts.size());
  for (int i = 0; i < texts.size(); ++i) {
    const std::string& text = texts.Get(i);
    absl::StatusOr<std::vector<int>> ids =
        model_->tokenizer().EncodeSource(text);
    if (!ids.ok()) {
      return Invalid(absl::StrCat("texts[", i, "]: ", ids.status().message()));
    }
    if (static_cast<int>(ids->size()) > max_tokens) {
      return Invalid(absl::StrCat("texts[", i, "] has ", ids->size(),
                                  " tokens (</s> included), more than ",
                                  limit.name));
    }
    source_ids->push_back(*std::move(ids));
  }
  return grpc::Status::OK;
}

grpc::Status RequestValidator::ResolveTranslationOptions(
    const transformer::v1::TranslationOptions& requested,
    core::TranslationOptions* resolved) const {
  for (const auto& [name, value] :
       {std::pair<const char*, int>{"beam_size", requested.beam_size()},
        {"max_length", requested.max_length()},
        {"min_length", requested.min_length()},
        {"num_hypotheses", requested.num_hypotheses()}}) {
    if (value < 0) {
      return Invalid(absl::StrCat("options.", name, " is ", value,
                                  "; it must be >= 0 (0 = model default)"));
    }
  }
  if (requested.beam_size() > limits_.max_beam_size) {
    return Invalid(absl::StrCat("options.beam_size ", requested.beam_size(),
                                " is more than max_beam_size ",
                                limits_.max_beam_size));
  }
  if (requested.max_length() > limits_.max_length_cap) {
    return Invalid(absl::StrCat("options.max_length ", requested.max_length(),
                                " is more than max_length_cap ",
                                limits_.max_length_cap));
  }
  const core::ModelConfig& config = model_->config();
  core::TranslationOptions options;
  options.beam_size = requested.beam_size();
  // The cap applies to the model's default too.
  options.max_length =
      requested.max_length() != 0
          ? requested.max_length()
          : std::min(config.max_length, limits_.max_length_cap);
  options.min_length = requested.min_length();
  options.num_hypotheses =
      requested.num_hypotheses() != 0 ? requested.num_hypotheses() : 1;
  options.length_penalty = requested.has_length_penalty()
                               ? requested.length_penalty()
                               : config.length_penalty;
  options.return_attention = requested.return_attention();
  if (requested.no_repeat_ngram_size() < 0) {
    return Invalid(absl::StrCat("options.no_repeat_ngram_size is ",
                                requested.no_repeat_ngram_size(),
                                "; it must be >= 0 (0 = off)"));
  }
  options.no_repeat_ngram_size = requested.no_repeat_ngram_size();
  if (requested.has_repetition_penalty()) {
    const float penalty = requested.repetition_penalty();
    if (!(penalty > 0.0f && std::isfinite(penalty))) {
      return Invalid(
          absl::StrCat("options.repetition_penalty is ", penalty,
                       "; it must be a finite number > 0 (1 = off)"));
    }
    options.repetition_penalty = penalty;
  }
  options.max_length_factor = limits_.max_length_factor;
  if (requested.has_attention_layer()) {
    const int layers = config.decoder_layers;
    const int layer = requested.attention_layer();
    if (layer < -layers || layer >= layers) {
      return Invalid(
          absl::StrCat("options.attention_layer ", layer, " is outside [",
                       -layers, ", ", layers, "): the model has ", layers,
                       " decoder layers (negative counts from the end)"));
    }
    options.attention_layer = layer;
  }
  if (grpc::Status status =
          ResolveSampling(requested, limits_.max_beam_size, &options);
      !status.ok()) {
    return status;
  }
  absl::StatusOr<core::TranslationOptions> checked =
      model_->ResolveOptions(options);
  if (!checked.ok()) {
    return Invalid(absl::StrCat("options: ", checked.status().message()));
  }
  // Checked again after defaults are filled in, whatever ResolveOptions does.
  if (checked->beam_size < 1 || checked->beam_size > limits_.max_beam_size) {
    return Invalid(absl::StrCat("options.beam_size ", checked->beam_size,
                                " is outside [1, max_beam_size ",
                                limits_.max_beam_size, "]"));
  }
  if (!checked->do_sample && checked->num_hypotheses > checked->beam_size) {
    return Invalid(
        absl::StrCat("options.num_hypotheses ", checked->num_hypotheses,
                     " is more than beam_size ", checked->beam_size));
  }
  if (checked->max_length > limits_.max_length_cap) {
    return Invalid(absl::StrCat("options.max_length ", checked->max_length,
                                " is more than max_length_cap ",
                                limits_.max_length_cap));
  }
  if (checked->min_length > checked->max_length) {
    return Invalid(absl::StrCat("options.min_length ", checked->min_length,
                                " is more than max_length ",
                                checked->max_length));
  }
  *resolved = *checked;
  return grpc::Status::OK;
}

grpc::Status RequestValidator::SegmentPlainText(
    int index, std::string_view text, int block, core::text::NewlineMode mode,
    const TokenLimit& limit, std::vector<SegmentWork>* segments) const {
  const int max_tokens = limit.max_tokens;
  const core::MarianTokenizer& tokenizer = model_->tokenizer();
  auto add = [&](core::text::SentenceSpan span) -> grpc::Status {
    std::string source = core::text::ModelText(text, span);
    absl::StatusOr<std::vector<int>> ids = tokenizer.EncodeSource(source);
    if (!ids.ok()) {
      return Invalid(
          absl::StrCat("texts[", index, "]: ", ids.status().message()));
    }
    segments->push_back(SegmentWork{.begin = static_cast<int>(span.begin),
                                    .end = static_cast<int>(span.end),
                                    .block = block,
                                    .source = std::move(source),
                                    .source_ids = *std::move(ids)});
    return grpc::Status::OK;
  };
  const core::text::TokenCounter count = [&](std::string_view piece) {
    absl::StatusOr<std::vector<int>> ids =
        tokenizer.EncodeSource(core::text::ModelText(
            piece, core::text::SentenceSpan{0, piece.size()}));
    return ids.ok() ? static_cast<int>(ids->size()) : max_tokens + 1;
  };
  for (const core::text::SentenceSpan& sentence :
       splitter_->Segment(text, mode)) {
    const size_t first = segments->size();
    if (grpc::Status status = add(sentence); !status.ok()) return status;
    if (static_cast<int>(segments->back().source_ids.size()) <= max_tokens) {
      continue;
    }
    // Too long for the encoder: translated in pieces, in order.
    segments->resize(first);
    for (const core::text::SentenceSpan& piece :
         splitter_->CutLongSentence(text, sentence, max_tokens, count)) {
      if (grpc::Status status = add(piece); !status.ok()) return status;
      if (static_cast<int>(segments->back().source_ids.size()) > max_tokens) {
        return Invalid(absl::StrCat("texts[", index, "] has a character of ",
                                    segments->back().source_ids.size(),
                                    " tokens, more than ", limit.name));
      }
    }
  }
  return grpc::Status::OK;
}

grpc::Status RequestValidator::SegmentTexts(
    const transformer::v1::TranslateRequest& request, int reserved_tokens,
    TranslateWork* work) const {
  const TokenLimit limit = SourceTokenLimit(reserved_tokens);
  const transformer::v1::TranslationOptions& options = request.options();
  core::text::NewlineMode mode;
  switch (options.newline_mode()) {
    case transformer::v1::NEWLINE_MODE_BREAK:
      mode = core::text::NewlineMode::kBreak;
      break;
    case transformer::v1::NEWLINE_MODE_SPACE:
      mode = core::text::NewlineMode::kSpace;
      break;
    default:
      return Invalid(absl::StrCat(
          "options.newline_mode ", static_cast<int>(options.newline_mode()),
          " is not a known NewlineMode value (NEWLINE_MODE_BREAK=0, "
          "NEWLINE_MODE_SPACE=1)"));
  }
  if (splitter_ == nullptr) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat("no sentence splitter: ", splitter_error_,
                                     "; send INPUT_FORMAT_SENTENCE"));
  }
  work->texts.clear();
  work->texts.reserve(request.texts_size());
  for (int i = 0; i < request.texts_size(); ++i) {
    const std::string& text = request.texts(i);
    TextWork& text_work = work->texts.emplace_back();
    if (work->input_format == transformer::v1::INPUT_FORMAT_TEXT) {
      if (grpc::Status status =
              SegmentPlainText(i, text, -1, mode, limit, &text_work.segments);
          !status.ok()) {
        return status;
      }
      continue;
    }
    absl::StatusOr<core::text::HtmlDocument> html =
        core::text::HtmlDocument::Parse(text);
    if (!html.ok()) {
      return Invalid(absl::StrCat(
          "texts[", i, "] is not HTML that parses: ", html.status().message()));
    }
    text_work.html =
        std::make_shared<const core::text::HtmlDocument>(*std::move(html));
    const std::vector<core::text::Block>& blocks = text_work.html->blocks();
    for (int b = 0; b < static_cast<int>(blocks.size()); ++b) {
      if (grpc::Status status = SegmentPlainText(i, blocks[b].text, b, mode,
                                                 limit, &text_work.segments);
          !status.ok()) {
        return status;
      }
    }
  }
  return grpc::Status::OK;
}

grpc::Status RequestValidator::ValidateTranslate(
    const transformer::v1::TranslateRequest& request, TranslateWork* work,
    int reserved_tokens) const {
  work->input_format = request.options().input_format();
  switch (work->input_format) {
    case transformer::v1::INPUT_FORMAT_SENTENCE:
      break;
    case transformer::v1::INPUT_FORMAT_TEXT:
    case transformer::v1::INPUT_FORMAT_HTML: {
      if (grpc::Status status = CheckTexts(request.texts()); !status.ok()) {
        return status;
      }
      if (grpc::Status status =
              ResolveTranslationOptions(request.options(), &work->options);
          !status.ok()) {
        return status;
      }
      if (grpc::Status status = SegmentTexts(request, reserved_tokens, work);
          !status.ok()) {
        return status;
      }
      return CheckSentenceCount(*work);
    }
    default:
      return Invalid(absl::StrCat(
          "options.input_format ",
          static_cast<int>(request.options().input_format()),
          " is not a known InputFormat value (INPUT_FORMAT_TEXT=0, "
          "INPUT_FORMAT_SENTENCE=1, INPUT_FORMAT_HTML=2)"));
  }
  std::vector<std::vector<int>> source_ids;
  if (grpc::Status status =
          TokenizeTexts(request.texts(), reserved_tokens, &source_ids);
      !status.ok()) {
    return status;
  }
  work->texts.clear();
  work->texts.reserve(source_ids.size());
  for (int i = 0; i < request.texts_size(); ++i) {
    const std::string& text = request.texts(i);
    TextWork& text_work = work->texts.emplace_back();
    text_work.segments.push_back(
        SegmentWork{.begin = 0,
                    .end = static_cast<int>(text.size()),
                    .source = text,
                    .source_ids = std::move(source_ids[i])});
  }
  if (grpc::Status status =
          ResolveTranslationOptions(request.options(), &work->options);
      !status.ok()) {
    return status;
  }
  return CheckSentenceCount(*work);
}

grpc::Status RequestValidator::ValidateEncode(
    const transformer::v1::EncodeRequest& request, EncodeWork* work) const {
  switch (request.pooling()) {
    case transformer::v1::POOLING_MEAN:
      work->options.pooling = core::Pooling::kMean;
      break;
    case transformer::v1::POOLING_FIRST:
      work->options.pooling = core::Pooling::kFirst;
      break;
    case transformer::v1::POOLING_TOKENS:
      work->options.pooling = core::Pooling::kTokens;
      break;
    default:
      return Invalid(absl::StrCat(
          "pooling ", static_cast<int>(request.pooling()),
          " is not a known Pooling value (POOLING_MEAN=0, POOLING_FIRST=1, "
          "POOLING_TOKENS=2)"));
  }
  work->options.normalize = request.normalize();
  return TokenizeTexts(request.texts(), /*reserved_tokens=*/0,
                       &work->source_ids);
}

core::TranslationOptions RequestValidator::DefaultTranslationOptions() const {
  core::TranslationOptions resolved;
  if (!ResolveTranslationOptions(transformer::v1::TranslationOptions(),
                                 &resolved)
           .ok()) {
    // The model's own defaults are out of the server's limits: fall back to
    // the smallest valid search.
    resolved.beam_size = 1;
    resolved.num_hypotheses = 1;
    resolved.max_length =
        std::min(model_->config().max_length, limits_.max_length_cap);
  }
  return resolved;
}

}  // namespace ts::server
