#include "server/libretranslate_api.h"

#include <future>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/connection_socket.h"
#include "server/language_codes.h"
#include "server/language_detector.h"
#include "server/libretranslate.h"

namespace ts::server {
namespace {

void WriteJson(const nlohmann::json& body, int status,
               httplib::Response& response) {
  response.status = status;
  response.set_content(body.dump(), "application/json");
}

void WriteLibreError(int status, const std::string& message,
                     httplib::Response& response) {
  WriteJson(LibreTranslateError(message), status, response);
}

// The body as JSON: a JSON body, or the form fields of an urlencoded one.
// Errors: InvalidArgument for a body that is neither.
absl::StatusOr<nlohmann::json> ReadBody(const httplib::Request& request) {
  if (request.get_header_value("Content-Type")
          .find("application/x-www-form-urlencoded") == 0) {
    nlohmann::json body = nlohmann::json::object();
    for (const auto& [key, value] : request.params) body[key] = value;
    return body;
  }
  nlohmann::json body = nlohmann::json::parse(request.body, nullptr,
                                              /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return absl::InvalidArgumentError(
        "Invalid request: the body must be a JSON object (or form fields)");
  }
  return body;
}

// The sources that can reach `target` (directly or through the pivot).
std::vector<std::string> SourcesInto(const ModelRegistry& registry,
                                     const std::string& target) {
  std::set<std::string> sources;
  for (const auto& [from, to] : registry.LanguagePairs(/*with_pivot=*/true)) {
    if (target.empty() || to == target) sources.insert(from);
  }
  return {sources.begin(), sources.end()};
}

// CallContext::is_cancelled for the request's connection (the gateway's
// ClientGone): true once the client has closed it.
std::function<bool()> ClientGone(const httplib::Request& request) {
  const int fd = FindConnectionSocket(request.local_addr, request.local_port,
                                      request.remote_addr, request.remote_port);
  if (fd < 0) return nullptr;
  return [fd] { return PeerClosed(fd); };
}

void Translate(RequestHandler& handler, int max_beam_size,
               const httplib::Request& http_request,
               httplib::Response& http_response) {
  absl::StatusOr<nlohmann::json> body = ReadBody(http_request);
  if (!body.ok()) {
    WriteLibreError(400, std::string(body.status().message()), http_response);
    return;
  }
  absl::StatusOr<LibreTranslateRequest> request =
      ParseLibreTranslateRequest(*body, std::max(0, max_beam_size - 1));
  if (!request.ok()) {
    WriteLibreError(400, std::string(request.status().message()),
                    http_response);
    return;
  }
  // "auto": CLD2 over all the texts, among the sources that reach the
  // target; an unreliable guess is refused rather than translated wrong.
  std::string source = request->source;
  std::vector<DetectedLanguage> detected;
  if (source == "auto") {
    const std::string target = CanonicalLanguage(request->target);
    const std::vector<std::string> candidates =
        SourcesInto(handler.registry(), target);
    detected = DetectLanguages(absl::StrJoin(request->texts, "\n"), candidates);
    if (detected.empty() || !detected.front().reliable) {
      WriteLibreError(
          400,
          absl::StrCat("Cannot detect the source language reliably",
                       detected.empty()
                           ? std::string()
                           : absl::StrCat(" (best guess \"",
                                          detected.front().language, "\")"),
                       " among the languages that translate into \"",
                       request->target, "\" (", absl::StrJoin(candidates, ", "),
                       "); send source explicitly"),
          http_response);
      return;
    }
    detected.resize(1);
    source = detected.front().language;
  }
  transformer::v1::TranslateRequest message;
  for (const std::string& text : request->texts) message.add_texts(text);
  message.set_source_language(source);
  message.set_target_language(request->target);
  message.mutable_options()->set_input_format(request->format);
  if (request->alternatives > 0) {
    // Alternatives are the next-best beam hypotheses.
    message.mutable_options()->set_num_hypotheses(1 + request->alternatives);
    message.mutable_options()->set_beam_size(
        std::min(max_beam_size, std::max(4, 1 + request->alternatives)));
  }
  CallContext context;
  context.is_cancelled = ClientGone(http_request);
  transformer::v1::TranslateResponse response;
  auto answered = std::make_shared<std::promise<grpc::Status>>();
  std::future<grpc::Status> status = answered->get_future();
  handler.Translate(
      message, &response, std::move(context),
      [answered](const grpc::Status& s) { answered->set_value(s); });
  if (grpc::Status result = status.get(); !result.ok()) {
    WriteLibreError(LibreTranslateHttpStatus(
                        static_cast<absl::StatusCode>(result.error_code())),
                    result.error_message(), http_response);
    return;
  }
  WriteJson(LibreTranslateResponse(*request, response,
                                   detected.empty() ? nullptr : &detected),
            200, http_response);
}

}  // namespace

void RouteLibreTranslate(
    httplib::Server& server,
    std::function<RequestHandler*(httplib::Response&)> handler_or_error,
    int max_beam_size) {
  server.Post("/translate",
              [handler_or_error, max_beam_size](const httplib::Request& request,
                                                httplib::Response& response) {
                RequestHandler* handler = handler_or_error(response);
                if (handler == nullptr) return;
                Translate(*handler, max_beam_size, request, response);
              });
  server.Post("/detect", [handler_or_error](const httplib::Request& request,
                                            httplib::Response& response) {
    RequestHandler* handler = handler_or_error(response);
    if (handler == nullptr) return;
    absl::StatusOr<nlohmann::json> body = ReadBody(request);
    if (!body.ok()) {
      WriteLibreError(400, std::string(body.status().message()), response);
      return;
    }
    auto q = body->find("q");
    if (q == body->end() || !q->is_string() || q->get<std::string>().empty()) {
      WriteLibreError(400, "Invalid request: missing q parameter", response);
      return;
    }
    WriteJson(DetectJson(DetectLanguages(q->get<std::string>(),
                                         SourcesInto(handler->registry(), ""))),
              200, response);
  });
  server.Get("/languages", [handler_or_error](const httplib::Request&,
                                              httplib::Response& response) {
    RequestHandler* handler = handler_or_error(response);
    if (handler == nullptr) return;
    WriteJson(LanguagesJson(handler->registry().LanguagePairs(
                  /*with_pivot=*/true)),
              200, response);
  });
}

}  // namespace ts::server
