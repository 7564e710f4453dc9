#include "server/http_gateway.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/pem_file.h"
#include "google/protobuf/util/json_util.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/connection_socket.h"
#include "server/libretranslate_api.h"
#include "server/model_status.h"
#include "server/web/web_page.h"
#include "transformer/v1/transformer_service.pb.h"

namespace ts::server {
namespace {

// Connections served at once; each holds a thread while its request waits
// for the workers (the scheduler bounds the work itself, --max_queue_size).
constexpr int kHttpThreads = 32;
constexpr char kJson[] = "application/json";

// The {"code", "message"} body of an error.
std::string ErrorJson(const grpc::Status& status) {
  return nlohmann::json{{"code", static_cast<int>(status.error_code())},
                        {"message", status.error_message()}}
      .dump();
}

void WriteError(const grpc::Status& status, httplib::Response& response) {
  response.status = HttpStatusFromCode(status.error_code());
  response.set_content(ErrorJson(status), kJson);
}

// `message` in the proto3 JSON mapping, zeros and empty lists included, so
// clients see every field. Errors: INTERNAL.
grpc::Status ToJson(const google::protobuf::Message& message,
                    std::string* json) {
  google::protobuf::util::JsonPrintOptions print;
  print.always_print_primitive_fields = true;
  if (const auto status =
          google::protobuf::util::MessageToJsonString(message, json, print);
      !status.ok()) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat("cannot write the response as JSON: ",
                                     std::string(status.message())));
  }
  return grpc::Status::OK;
}

void WriteMessage(const google::protobuf::Message& message,
                  httplib::Response& response) {
  std::string json;
  if (grpc::Status status = ToJson(message, &json); !status.ok()) {
    WriteError(status, response);
    return;
  }
  response.status = 200;
  response.set_content(json, kJson);
}

// The request message from the body, strictly: an unknown field is an error,
// as a misspelt option would otherwise be ignored.
grpc::Status ParseBody(const httplib::Request& request,
                       google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = false;
  const auto status =
      google::protobuf::util::JsonStringToMessage(request.body, message, parse);
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(
      grpc::StatusCode::INVALID_ARGUMENT,
      absl::StrCat("body is not a ", message->GetDescriptor()->full_name(),
                   " in JSON: ", std::string(status.message())));
}

// The call's deadline from its Grpc-Timeout header, as grpc-gateway reads it.
grpc::Status ReadDeadline(const httplib::Request& request,
                          CallContext* context) {
  if (!request.has_header("Grpc-Timeout")) return grpc::Status::OK;
  absl::StatusOr<absl::Duration> timeout =
      ParseGrpcTimeout(request.get_header_value("Grpc-Timeout"));
  if (!timeout.ok()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        std::string(timeout.status().message()));
  }
  context->deadline = absl::Now() + *timeout;
  return grpc::Status::OK;
}

// The request message (ParseBody) and the deadline (ReadDeadline) of a call.
// A refusal here never reaches the handler's own accounting, so it is
// counted under `method` (the RPC name) as the handler counts its answers;
// false after writing the error answer.
bool ReadCall(RequestHandler& handler, const char* method,
              const httplib::Request& http_request,
              google::protobuf::Message* request, CallContext* context,
              httplib::Response& http_response) {
  const absl::Time received = absl::Now();
  grpc::Status status = ParseBody(http_request, request);
  if (status.ok()) status = ReadDeadline(http_request, context);
  if (status.ok()) return true;
  handler.RecordRefusal(method, status.error_code(), absl::Now() - received);
  WriteError(status, http_response);
  return false;
}

// The descriptor of the TCP socket `request` came on (FindConnectionSocket);
// -1 if it cannot be found (then only a failed write tells that the client
// left).
//
// Why this and not another library: cpp-httplib 0.11 hands a handler no
// socket and reports a client's departure only as a failed write, which a
// unary call makes once, at its answer. libcivetweb and libmicrohttpd give
// the descriptor (or a completion callback) but notice a close only when
// they poll the connection themselves, which they do not do for a request
// whose handler is still running; they would need the same poll and a
// rewrite of the gateway and its TLS. The connection's two addresses, which
// httplib does give, name exactly one socket of this process.
int ConnectionSocket(const httplib::Request& request) {
  return FindConnectionSocket(request.local_addr, request.local_port,
                              request.remote_addr, request.remote_port);
}

// CallContext::is_cancelled for a call on socket `fd`: true once the client
// has closed its side (PeerClosed: a FIN, a reset). The scheduler asks while
// the call's sentences wait and between decoder steps, so a client that
// leaves frees its queue places and step-batch rows as a gRPC cancel does.
// Unary calls keep their connection thread, and so `fd`, until answered;
// the scheduler asks no more after the answer.
std::function<bool()> ClientGone(int fd) {
  if (fd < 0) return nullptr;
  return [fd] { return PeerClosed(fd); };
}

// Runs one unary call of `handler` and blocks this connection's thread until
// it is answered (the scheduler answers every accepted request, drain
// included); the call is cancelled if the client closes the connection
// meanwhile.
template <typename Request, typename Response, typename Call>
void Unary(RequestHandler& handler, const char* method,
           const httplib::Request& http_request,
           httplib::Response& http_response, Call call) {
  Request request;
  CallContext context;
  if (!ReadCall(handler, method, http_request, &request, &context,
                http_response)) {
    return;
  }
  context.is_cancelled = ClientGone(ConnectionSocket(http_request));
  Response response;
  // Shared with the answer callback, which may still be returning from
  // set_value when this thread wakes up.
  auto answered = std::make_shared<std::promise<grpc::Status>>();
  std::future<grpc::Status> status = answered->get_future();
  call(request, &response, std::move(context),
       [answered](const grpc::Status& s) { answered->set_value(s); });
  if (grpc::Status result = status.get(); !result.ok()) {
    WriteError(result, http_response);
    return;
  }
  WriteMessage(response, http_response);
}

// Runs `call` (which hands its Answer to the handler), blocks until it is
// answered, and writes `message` (filled by then) or the error.
void WriteAnswer(const std::function<void(Answer)>& call,
                 const google::protobuf::Message& message,
                 httplib::Response& http_response) {
  auto answered = std::make_shared<std::promise<grpc::Status>>();
  std::future<grpc::Status> status = answered->get_future();
  call([answered](const grpc::Status& s) { answered->set_value(s); });
  if (grpc::Status result = status.get(); !result.ok()) {
    WriteError(result, http_response);
    return;
  }
  WriteMessage(message, http_response);
}

// One TranslateStream call over HTTP: the handler's messages (as
// server-sent events) and its status, handed from the threads that produce
// them to the connection thread that writes them.
struct EventStream {
  std::mutex mu;
  std::condition_variable changed;
  std::deque<std::string> events ABSL_GUARDED_BY(mu);
  bool answered ABSL_GUARDED_BY(mu) = false;
  grpc::Status status ABSL_GUARDED_BY(mu);
  // The client stopped reading (a write failed) or the connection is done
  // with the response: queued texts leave the queue, decoding ones the step
  // batch. Set before httplib closes the socket, so `socket` is polled
  // only while it is this connection's (a poll racing with the close can
  // only answer for this call, which is over then anyway).
  std::atomic<bool> gone{false};
  // The connection's socket (ConnectionSocket), -1 if unknown.
  int socket = -1;
};

// POST /v1/translate:stream: TranslateStream as server-sent events. An error
// before the first message is an ordinary error answer (status and JSON
// body, as /v1/translate); after it, the stream ends with an "error" event.
void TranslateStreamSse(RequestHandler& handler,
                        const httplib::Request& http_request,
                        httplib::Response& http_response) {
  transformer::v1::TranslateRequest request;
  CallContext context;
  if (!ReadCall(handler, "TranslateStream", http_request, &request, &context,
                http_response)) {
    return;
  }
  auto stream = std::make_shared<EventStream>();
  stream->socket = ConnectionSocket(http_request);
  // The client closing the connection (before the first event, or while
  // beam search sends nothing for seconds) or a failed write.
  context.is_cancelled = [stream] {
    return stream->gone.load() ||
           (stream->socket >= 0 && PeerClosed(stream->socket));
  };
  handler.TranslateStream(
      request, std::move(context),
      [stream](transformer::v1::TranslateStreamResponse message) {
        std::string json;
        std::string event;
        if (grpc::Status status = ToJson(message, &json); status.ok()) {
          event = absl::StrCat("data: ", json, "\n\n");
        } else {
          event =
              absl::StrCat("event: error\ndata: ", ErrorJson(status), "\n\n");
        }
        std::lock_guard lock(stream->mu);
        stream->events.push_back(std::move(event));
        stream->changed.notify_all();
      },
      [stream](const grpc::Status& status) {
        std::lock_guard lock(stream->mu);
        stream->answered = true;
        stream->status = status;
        stream->changed.notify_all();
      });
  {
    std::unique_lock lock(stream->mu);
    stream->changed.wait(
        lock, [&] { return !stream->events.empty() || stream->answered; });
    if (stream->events.empty() && !stream->status.ok()) {
      WriteError(stream->status, http_response);
      return;
    }
  }
  http_response.status = 200;
  http_response.set_header("Cache-Control", "no-cache");
  http_response.set_chunked_content_provider(
      "text/event-stream",
      [stream](size_t /*offset*/, httplib::DataSink& sink) {
        std::unique_lock lock(stream->mu);
        stream->changed.wait(
            lock, [&] { return !stream->events.empty() || stream->answered; });
        while (!stream->events.empty()) {
          const std::string event = std::move(stream->events.front());
          stream->events.pop_front();
          lock.unlock();
          const bool written = sink.write(event.data(), event.size());
          lock.lock();
          if (!written) {
            stream->gone = true;
            return false;
          }
        }
        if (stream->answered) {
          if (!stream->status.ok()) {
            const std::string event = absl::StrCat(
                "event: error\ndata: ", ErrorJson(stream->status), "\n\n");
            sink.write(event.data(), event.size());
          }
          sink.done();
        }
        return true;
      },
      // The response is written or abandoned; the socket closes next.
      [stream](bool /*success*/) { stream->gone = true; });
}

// The RPC name of a POST to one of the API's paths ("Translate" for
// /v1/translate), as the handler's metrics name it; null for other paths.
const char* RpcMethod(const httplib::Request& request) {
  if (request.method != "POST") return nullptr;
  if (request.path == "/v1/translate") return "Translate";
  if (request.path == "/v1/translate:stream") return "TranslateStream";
  if (request.path == "/v1/encode") return "Encode";
  return nullptr;
}

}  // namespace

int HttpStatusFromCode(grpc::StatusCode code) {
  // grpc-gateway v2, runtime/errors.go.
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 499;
    case grpc::StatusCode::UNKNOWN:
      return 500;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::FAILED_PRECONDITION:
      // Not 412: that is for preconditions in HTTP headers.
      return 400;
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::INTERNAL:
      return 500;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::DATA_LOSS:
      return 500;
    default:
      return 500;
  }
}

absl::StatusOr<absl::Duration> ParseGrpcTimeout(absl::string_view value) {
  auto invalid = [value] {
    return absl::InvalidArgumentError(
        absl::StrCat("Grpc-Timeout \"", value,
                     "\" is not 1 to 8 digits and a unit (H, M, S, m, u, n)"));
  };
  if (value.size() < 2 || value.size() > 9) return invalid();
  const absl::string_view digits = value.substr(0, value.size() - 1);
  int64_t amount = 0;
  if (!std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(digits, &amount)) {
    return invalid();
  }
  switch (value.back()) {
    case 'H':
      return absl::Hours(amount);
    case 'M':
      return absl::Minutes(amount);
    case 'S':
      return absl::Seconds(amount);
    case 'm':
      return absl::Milliseconds(amount);
    case 'u':
      return absl::Microseconds(amount);
    case 'n':
      return absl::Nanoseconds(amount);
    default:
      return invalid();
  }
}

HttpGateway::HttpGateway(const ServerOptions& options) : options_(options) {}

HttpGateway::~HttpGateway() { Stop(); }

absl::Status HttpGateway::Start() {
  if (options_.tls_enabled()) {
    // Readable files first, for the same errors as the gRPC port gives.
    for (const auto& [flag, path] :
         {std::pair<const char*, const std::string&>{"tls_cert",
                                                     options_.tls_cert},
          {"tls_key", options_.tls_key},
          {"tls_client_ca", options_.tls_client_ca}}) {
      if (path.empty()) continue;
      if (absl::StatusOr<std::string> pem = common::ReadPemFile(flag, path);
          !pem.ok()) {
        return pem.status();
      }
    }
    // With a client CA, a client certificate signed by it is required.
    server_ = std::make_unique<httplib::SSLServer>(
        options_.tls_cert.c_str(), options_.tls_key.c_str(),
        options_.tls_client_ca.empty() ? nullptr
                                       : options_.tls_client_ca.c_str());
    if (!server_->is_valid()) {
      return absl::InvalidArgumentError(
          "HTTP gateway: OpenSSL rejected --tls_cert/--tls_key/"
          "--tls_client_ca");
    }
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  server_->new_task_queue = [] {
    return new httplib::ThreadPool(kHttpThreads);
  };
  // SO_REUSEADDR only: the library's default also sets SO_REUSEPORT, with
  // which a second server on the same port would silently share it.
  server_->set_socket_options([](int socket) {
    int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server_->set_payload_max_length(
      static_cast<size_t>(options_.max_message_bytes));
  Route();
  if (!server_->bind_to_port(options_.http_address, options_.http_port)) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", address(), " (--http_address, ", "--http_port)"));
  }
  auto listen_returned = std::make_shared<std::atomic<bool>>(false);
  listener_ = std::thread([this, listen_returned] {
    server_->listen_after_bind();
    *listen_returned = true;
  });
  // httplib's stop() does nothing before the listen loop runs, which would
  // then run for ever: a Stop right after Start (the model failing to load)
  // must find it running.
  while (!server_->is_running() && !*listen_returned) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return absl::OkStatus();
}

void HttpGateway::SetHandler(RequestHandler* handler) { handler_ = handler; }

void HttpGateway::SetReady(bool ready) { ready_ = ready; }

void HttpGateway::Stop() {
  if (server_ == nullptr) return;
  server_->stop();
  if (listener_.joinable()) listener_.join();
}

std::string HttpGateway::address() const {
  return absl::StrCat(options_.http_address, ":", options_.http_port);
}

void HttpGateway::Route() {
  // The handler, or UNAVAILABLE while the model loads.
  auto handler_or_error =
      [this](httplib::Response& response) -> RequestHandler* {
    RequestHandler* handler = handler_.load();
    if (handler == nullptr) {
      WriteError(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "the model is still loading; see /readyz"),
                 response);
    }
    return handler;
  };

  server_->Post("/v1/translate",
                [handler_or_error](const httplib::Request& request,
                                   httplib::Response& response) {
                  RequestHandler* handler = handler_or_error(response);
                  if (handler == nullptr) return;
                  Unary<transformer::v1::TranslateRequest,
                        transformer::v1::TranslateResponse>(
                      *handler, "Translate", request, response,
                      [handler](const auto& message, auto* out,
                                CallContext context, Answer answer) {
                        handler->Translate(message, out, std::move(context),
                                           std::move(answer));
                      });
                });
  server_->Post("/v1/translate:stream",
                [handler_or_error](const httplib::Request& request,
                                   httplib::Response& response) {
                  RequestHandler* handler = handler_or_error(response);
                  if (handler == nullptr) return;
                  TranslateStreamSse(*handler, request, response);
                });
  server_->Post("/v1/encode", [handler_or_error](
                                  const httplib::Request& request,
                                  httplib::Response& response) {
    RequestHandler* handler = handler_or_error(response);
    if (handler == nullptr) return;
    Unary<transformer::v1::EncodeRequest, transformer::v1::EncodeResponse>(
        *handler, "Encode", request, response,
        [handler](const auto& message, auto* out, CallContext context,
                  Answer answer) {
          handler->Encode(message, out, std::move(context), std::move(answer));
        });
  });
  // GET /v1/model[?model=NAME]: GetModelInfo (loads the model if needed).
  server_->Get("/v1/model", [handler_or_error](const httplib::Request& request,
                                               httplib::Response& response) {
    RequestHandler* handler = handler_or_error(response);
    if (handler == nullptr) return;
    transformer::v1::GetModelInfoRequest message;
    message.set_model(request.get_param_value("model"));
    CallContext context;
    if (grpc::Status status = ReadDeadline(request, &context); !status.ok()) {
      WriteError(status, response);
      return;
    }
    transformer::v1::GetModelInfoResponse info;
    WriteAnswer(
        [&](Answer answer) {
          handler->GetModelInfo(message, &info, std::move(context),
                                std::move(answer));
        },
        info, response);
  });
  // The model repository, as Triton's repository API and TF Serving's model
  // status: list, one model, load (answers once READY), unload (at once).
  server_->Get("/v1/models", [handler_or_error](const httplib::Request&,
                                                httplib::Response& response) {
    RequestHandler* handler = handler_or_error(response);
    if (handler == nullptr) return;
    transformer::v1::ListModelsResponse list;
    WriteAnswer([&](Answer answer) { handler->ListModels(&list, answer); },
                list, response);
  });
  server_->Get(R"(/v1/models/([^/:]+))",
               [handler_or_error](const httplib::Request& request,
                                  httplib::Response& response) {
                 RequestHandler* handler = handler_or_error(response);
                 if (handler == nullptr) return;
                 absl::StatusOr<ModelInfo> info =
                     handler->registry().Info(request.matches[1].str());
                 if (!info.ok()) {
                   WriteError(ToGrpcStatus(info.status()), response);
                   return;
                 }
                 WriteMessage(ModelStatusProto(*info), response);
               });
  server_->Post(R"(/v1/models/([^/:]+):load)",
                [handler_or_error](const httplib::Request& request,
                                   httplib::Response& response) {
                  RequestHandler* handler = handler_or_error(response);
                  if (handler == nullptr) return;
                  transformer::v1::LoadModelRequest message;
                  message.set_name(request.matches[1].str());
                  CallContext context;
                  if (grpc::Status status = ReadDeadline(request, &context);
                      !status.ok()) {
                    WriteError(status, response);
                    return;
                  }
                  context.is_cancelled = ClientGone(ConnectionSocket(request));
                  transformer::v1::LoadModelResponse loaded;
                  WriteAnswer(
                      [&](Answer answer) {
                        handler->LoadModel(message, &loaded, std::move(context),
                                           std::move(answer));
                      },
                      loaded, response);
                });
  server_->Post(R"(/v1/models/([^/:]+):unload)",
                [handler_or_error](const httplib::Request& request,
                                   httplib::Response& response) {
                  RequestHandler* handler = handler_or_error(response);
                  if (handler == nullptr) return;
                  transformer::v1::UnloadModelRequest message;
                  message.set_name(request.matches[1].str());
                  transformer::v1::UnloadModelResponse unloaded;
                  WriteAnswer(
                      [&](Answer answer) {
                        handler->UnloadModel(message, &unloaded,
                                             std::move(answer));
                      },
                      unloaded, response);
                });
  RouteLibreTranslate(*server_, handler_or_error, options_.max_beam_size);
  server_->Get("/healthz",
               [](const httplib::Request&, httplib::Response& response) {
                 response.set_content("ok\n", "text/plain");
               });
  server_->Get(
      "/readyz", [this](const httplib::Request&, httplib::Response& response) {
        const bool ready = ready_.load();
        response.status = ready ? 200 : 503;
        response.set_content(ready ? "ready\n" : "not ready\n", "text/plain");
      });
  server_->Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content(std::string(web::IndexPage()),
                         "text/html; charset=utf-8");
  });

  // Unknown paths and methods, and the library's own errors (413 for a body
  // over --max_message_bytes, 400 for a broken request line): the API's JSON
  // error body. Runs for every status >= 400; answers written above already
  // have their body.
  server_->set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& request, httplib::Response& response) {
        if (!response.body.empty())
          return httplib::Server::HandlerResponse::Unhandled;
        const int http_status = response.status;
        grpc::Status status;
        if (http_status == 413) {
          status = grpc::Status(
              grpc::StatusCode::RESOURCE_EXHAUSTED,
              absl::StrCat("request body is larger than max_message_bytes ",
                           options_.max_message_bytes));
          // A call of the API refused before its handler ran: counted as
          // the RPC's answer (once the model is loaded, as they all are).
          const char* method = RpcMethod(request);
          RequestHandler* handler = handler_.load();
          if (method != nullptr && handler != nullptr) {
            handler->RecordRefusal(method, status.error_code(),
                                   absl::ZeroDuration());
          }
        } else if (http_status == 404) {
          status = grpc::Status(
              grpc::StatusCode::NOT_FOUND,
              absl::StrCat("no endpoint ", request.method, " ", request.path));
        } else {
          status = grpc::Status(
              grpc::StatusCode::INVALID_ARGUMENT,
              absl::StrCat("bad HTTP request (status ", http_status, ")"));
        }
        WriteError(status, response);
        // Keep the library's status (413, 404, ...) rather than the code's.
        response.status = http_status;
        return httplib::Server::HandlerResponse::Handled;
      }));
  server_->set_exception_handler([](const httplib::Request&,
                                    httplib::Response& response,
                                    std::exception_ptr) {
    WriteError(grpc::Status(grpc::StatusCode::INTERNAL,
                            "internal error while handling the request"),
               response);
  });
}

}  // namespace ts::server
