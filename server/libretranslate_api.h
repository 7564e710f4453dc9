// LibreTranslate's HTTP API on the gateway, so LibreTranslate's own clients
// work unchanged against a model repository:
//
//   POST /translate  {q, source ("auto" or a code), target, format,
//                     alternatives} -> {translatedText, alternatives,
//                     detectedLanguage}
//   POST /detect     {q} -> [{language, confidence}]
//   GET  /languages  -> [{code, name, targets}] (pivot targets included)
//
// Bodies are JSON or application/x-www-form-urlencoded (as LibreTranslate
// takes both). Errors are {"error": "..."} with LibreTranslate's statuses
// (400 bad request or undetectable source, 429 queue full, 500 otherwise).
#ifndef TRANSFORMER_SERVING_SERVER_LIBRETRANSLATE_API_H_
#define TRANSFORMER_SERVING_SERVER_LIBRETRANSLATE_API_H_

#include <functional>

#include "server/request_handler.h"

namespace httplib {
class Server;
class Response;
}  // namespace httplib

namespace ts::server {

// Adds the three routes to `server`. `handler_or_error` gives the request
// handler, or writes 503 and gives null while the models load.
// `max_beam_size`: alternatives are at most max_beam_size - 1.
void RouteLibreTranslate(
    httplib::Server& server,
    std::function<RequestHandler*(httplib::Response&)> handler_or_error,
    int max_beam_size);

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_LIBRETRANSLATE_API_H_
