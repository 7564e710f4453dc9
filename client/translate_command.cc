#include "client/translate_command.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/attention_heatmap.h"
#include "client/connection.h"
#include "client/exit_codes.h"
#include "nlohmann/json.hpp"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace ts::client {
namespace {

// One Translate request of a contiguous slice of the texts.
struct Call {
  size_t first = 0;  // index of its first text
  std::unique_ptr<grpc::ClientContext> context;
  transformer::v1::TranslateRequest request;
  transformer::v1::TranslateResponse response;
  grpc::Status status;
  bool done = false;  // guarded by the run's mutex
};

// `weight` as the JSON number with the fewest digits that reads back as the
// same float (nlohmann prints doubles, so 0.97283250f would print as
// 0.9728325009346008).
double ShortestFloat(float weight) {
  char digits[32];
  const auto written = std::to_chars(digits, digits + sizeof(digits), weight);
  double value = weight;
  std::from_chars(digits, written.ptr, value);
  return value;
}

// With `attention`, also the hypothesis's pieces, alignment and attention
// matrix as rows [target][source] of `source_len` weights.
nlohmann::json HypothesisJson(const transformer::v1::Hypothesis& hypothesis,
                              bool attention, int source_len) {
  nlohmann::json json = {
      {"translation", hypothesis.text()},
      {"token_ids", std::vector<int>(hypothesis.token_ids().begin(),
                                     hypothesis.token_ids().end())},
      {"score", hypothesis.score()}};
  if (!attention) return json;
  json["target_tokens"] = std::vector<std::string>(
      hypothesis.target_tokens().begin(), hypothesis.target_tokens().end());
  json["alignment"] = std::vector<int>(hypothesis.alignment().begin(),
                                       hypothesis.alignment().end());
  nlohmann::json rows = nlohmann::json::array();
  if (source_len > 0) {
    for (int start = 0; start + source_len <= hypothesis.attention_size();
         start += source_len) {
      nlohmann::json row = nlohmann::json::array();
      for (int s = start; s < start + source_len; ++s) {
        row.push_back(ShortestFloat(hypothesis.attention(s)));
      }
      rows.push_back(std::move(row));
    }
  }
  json["attention"] = std::move(rows);
  return json;
}

void WriteTranslation(const std::string& source,
                      const transformer::v1::Translation& translation,
                      bool json, bool attention, bool document,
                      std::ostream& out) {
  if (!json && !attention) {
    out << (translation.hypotheses().empty()
                ? std::string()
                : translation.hypotheses(0).text());
    if (!document) out << '\n';
    return;
  }
  nlohmann::json line = {
      {"source", source},
      {"input_token_count", translation.input_token_count()}};
  const int source_len = translation.source_tokens_size();
  if (attention) {
    line["source_tokens"] = std::vector<std::string>(
        translation.source_tokens().begin(), translation.source_tokens().end());
  }
  if (!translation.hypotheses().empty()) {
    line.update(
        HypothesisJson(translation.hypotheses(0), attention, source_len));
  }
  if (translation.has_seed()) {
    // As a string: JSON readers may hold numbers in doubles (53 bits).
    line["seed"] = std::to_string(translation.seed());
  }
  if (translation.segments_size() > 1) {
    nlohmann::json segments = nlohmann::json::array();
    for (const auto& segment : translation.segments()) {
      segments.push_back({{"source", segment.source()},
                          {"translation", segment.hypotheses().empty()
                                              ? std::string()
                                              : segment.hypotheses(0).text()},
                          {"source_begin", segment.source_begin()},
                          {"source_end", segment.source_end()}});
    }
    line["segments"] = std::move(segments);
  }
  if (translation.hypotheses_size() > 1) {
    nlohmann::json all = nlohmann::json::array();
    for (const auto& hypothesis : translation.hypotheses()) {
      all.push_back(HypothesisJson(hypothesis, attention, source_len));
    }
    line["hypotheses"] = std::move(all);
  }
  // Invalid UTF-8 in a source is replaced, not fatal.
  out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
      << '\n';
}

// Writes the best hypothesis of `translation` as an SVG heatmap to `path`.
bool WriteHeatmap(const std::string& path,
                  const transformer::v1::Translation& translation) {
  std::vector<std::string> source(translation.source_tokens().begin(),
                                  translation.source_tokens().end());
  std::vector<std::string> target;
  std::vector<float> attention;
  if (!translation.hypotheses().empty()) {
    const auto& best = translation.hypotheses(0);
    target.assign(best.target_tokens().begin(), best.target_tokens().end());
    attention.assign(best.attention().begin(), best.attention().end());
  }
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << AttentionHeatmapSvg(source, target, attention);
  file.close();
  return static_cast<bool>(file);
}

// The request options of `options` for request number `request` of the run
// (its seed when sampling with a seed).
void SetRequestOptions(const TranslateCommandOptions& options, size_t request,
                       transformer::v1::TranslationOptions* request_options) {
  request_options->set_beam_size(options.beam_size);
  request_options->set_input_format(options.input_format);
  request_options->set_newline_mode(options.newline_mode);
  request_options->set_max_length(options.max_length);
  request_options->set_num_hypotheses(options.num_hypotheses);
  request_options->set_no_repeat_ngram_size(options.no_repeat_ngram_size);
  if (options.repetition_penalty.has_value()) {
    request_options->set_repetition_penalty(*options.repetition_penalty);
  }
  if (options.attention || !options.heatmap.empty()) {
    request_options->set_return_attention(true);
    if (options.attention_layer.has_value()) {
      request_options->set_attention_layer(*options.attention_layer);
    }
  }
  if (options.sample) {
    request_options->set_do_sample(true);
    request_options->set_top_k(options.top_k);
    request_options->set_top_p(options.top_p);
    request_options->set_temperature(options.temperature);
    if (options.seed.has_value()) {
      request_options->set_seed(*options.seed + request);
    }
  }
}

// RunTranslate with `stream`: one TranslateStream call per slice of texts,
// in turn. The first unfinished text of the call is written as its pieces
// arrive; later texts are kept until it ends.
int RunTranslateStream(const TranslateCommandOptions& options,
                       const std::shared_ptr<grpc::Channel>& channel,
                       const std::vector<std::string>& texts, std::ostream& out,
                       std::ostream& err, Progress* progress) {
  auto stub = transformer::v1::TransformerService::NewStub(channel);
  const size_t per_request =
      static_cast<size_t>(std::max(1, options.texts_per_request));
  for (size_t first = 0, request = 0; first < texts.size();
       first += per_request, ++request) {
    const size_t count = std::min(per_request, texts.size() - first);
    transformer::v1::TranslateRequest call_request;
    for (size_t i = first; i < first + count; ++i) {
      call_request.add_texts(texts[i]);
    }
    SetRequestOptions(options, request, call_request.mutable_options());
    SetModelFields(options.model, &call_request);
    std::unique_ptr<grpc::ClientContext> context =
        MakeContext(options.timeout, options.model.RoutingKey());
    std::unique_ptr<
        grpc::ClientReader<transformer::v1::TranslateStreamResponse>>
        reader = stub->TranslateStream(context.get(), call_request);
    std::vector<std::string> pending(count);  // text not yet written
    std::vector<bool> done(count, false);     // its last message came
    size_t current = 0;                       // the text being written
    bool line_started = false;  // part of the current text is written
    transformer::v1::TranslateStreamResponse message;
    while (reader->Read(&message)) {
      const int index = message.text_index();
      if (index < 0 || static_cast<size_t>(index) >= count) continue;
      pending[index] += message.text_delta();
      if (message.has_translation()) done[index] = true;
      while (current < count) {
        if (!pending[current].empty()) {
          out << pending[current];
          pending[current].clear();
          line_started = true;
        }
        if (!done[current]) break;
        if (!options.document) out << '\n';
        line_started = false;
        progress->Advance(1);
        ++current;
      }
      out.flush();
      if (!out) {
        context->TryCancel();
        reader->Finish();
        err << "transformer-client: cannot write the output" << std::endl;
        return kExitIoError;
      }
    }
    const grpc::Status status = reader->Finish();
    if (line_started && !options.document) out << '\n';
    if (!status.ok() || current < count) {
      out.flush();
      err << "transformer-client: "
          << (status.ok() ? "TranslateStream ended without the translation of "
                            "every text"
                          : DescribeRpcError("TranslateStream", status))
          << " (texts " << first + 1 << ".." << first + count << " of "
          << texts.size() << ")" << std::endl;
      return kExitRpcError;
    }
  }
  return kExitOk;
}

}  // namespace

int RunTranslate(const TranslateCommandOptions& options,
                 const std::shared_ptr<grpc::Channel>& channel,
                 const std::vector<std::string>& texts, std::ostream& out,
                 std::ostream& err, Progress* progress) {
  if (texts.empty()) return kExitOk;
  if (options.stream) {
    return RunTranslateStream(options, channel, texts, out, err, progress);
  }
  const size_t per_request =
      static_cast<size_t>(std::max(1, options.texts_per_request));
  const int concurrency = std::max(1, options.concurrency);
  const size_t num_calls = (texts.size() + per_request - 1) / per_request;

  auto stub = transformer::v1::TransformerService::NewStub(channel);

  absl::Mutex mu;
  std::vector<std::unique_ptr<Call>> calls(num_calls);
  int in_flight = 0;  // guarded by mu
  size_t next_to_send = 0;
  bool failed = false;
  int exit_code = kExitOk;

  for (size_t next_to_write = 0; next_to_write < num_calls; ++next_to_write) {
    // Keep `concurrency` requests in flight ahead of the writer.
    while (!failed && next_to_send < num_calls) {
      {
        absl::MutexLock lock(&mu);
        if (in_flight >= concurrency) break;
        ++in_flight;
      }
      auto call = std::make_unique<Call>();
      call->first = next_to_send * per_request;
      const size_t last = std::min(texts.size(), call->first + per_request);
      for (size_t i = call->first; i < last; ++i) {
        call->request.add_texts(texts[i]);
      }
      SetRequestOptions(options, next_to_send, call->request.mutable_options());
      SetModelFields(options.model, &call->request);
      call->context = MakeContext(options.timeout, options.model.RoutingKey());
      Call* raw = call.get();
      calls[next_to_send++] = std::move(call);
      stub->async()->Translate(raw->context.get(), &raw->request,
                               &raw->response,
                               [raw, &mu, &in_flight](grpc::Status status) {
                                 absl::MutexLock lock(&mu);
                                 raw->status = std::move(status);
                                 raw->done = true;
                                 --in_flight;
                               });
    }
    if (next_to_write >= next_to_send)
      break;  // stopped sending after a failure
    Call* call = calls[next_to_write].get();
    {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(&call->done));
    }
    if (!call->status.ok()) {
      if (!failed) {
        err << "transformer-client: "
            << DescribeRpcError("Translate", call->status) << " (texts "
            << call->first + 1 << ".."
            << call->first + call->request.texts_size() << " of "
            << texts.size() << ")" << std::endl;
      }
      failed = true;
      exit_code = kExitRpcError;
      continue;  // still wait for the calls in flight: they use `calls`
    }
    if (failed) continue;
    for (int i = 0; i < call->response.translations_size(); ++i) {
      WriteTranslation(texts[call->first + i], call->response.translations(i),
                       options.json, options.attention, options.document, out);
    }
    if (call->first == 0 && !options.heatmap.empty() &&
        call->response.translations_size() > 0 &&
        !WriteHeatmap(options.heatmap, call->response.translations(0))) {
      err << "transformer-client: cannot write --heatmap \"" << options.heatmap
          << "\"" << std::endl;
      failed = true;
      exit_code = kExitIoError;
    }
    if (call->response.translations_size() != call->request.texts_size()) {
      err << "transformer-client: Translate returned "
          << call->response.translations_size() << " translations for "
          << call->request.texts_size() << " texts" << std::endl;
      failed = true;
      exit_code = kExitRpcError;
    }
    out.flush();
    if (!out && !failed) {
      err << "transformer-client: cannot write the output" << std::endl;
      failed = true;
      exit_code = kExitIoError;
    }
    progress->Advance(call->response.translations_size());
    calls[next_to_write].reset();
  }
  // Calls started after the failure are still in flight: wait for them.
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(
      +[](int* n) { return *n == 0; }, &in_flight));
  return exit_code;
}

}  // namespace ts::client
