// Every limit and setting of transformer-server, in one struct filled from
// flags (and environment variables, for Kubernetes).
#ifndef TRANSFORMER_SERVING_SERVER_SERVER_OPTIONS_H_
#define TRANSFORMER_SERVING_SERVER_SERVER_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/scheduler.h"

namespace ts::server {

struct ServerOptions {
  std::string model_dir = "models/marian-en-de-multi30k";
  // Many models (server/model_registry.h): every subfolder of this folder is
  // a model served under the folder's name; replaces model_dir when set.
  std::string model_repository;
  // Which models load at start: "all", "none" or names separated by
  // commas. Empty: all that fit model_memory_mb, by name.
  std::string load_models;
  // The model of a request that names neither model nor languages; empty:
  // the only model (an error with several).
  std::string default_model;
  // Language through which a pair without a direct model is translated.
  std::string pivot_language = "en";
  // Bound on the weight bytes of the models in memory (MiB); 0 = none.
  int64_t model_memory_mb = 0;
  std::string compute_type = "fp32";  // fp32 | bf16 | int8
  std::string host = "0.0.0.0";
  int port = 50051;         // 0: pick a free port
  int metrics_port = 9464;  // 0: no metrics endpoint
  // Address of /metrics; apart from --host so metrics can stay on a pod's
  // network while gRPC binds elsewhere (or the reverse).
  std::string metrics_address = "0.0.0.0";
  // HTTP/JSON gateway and the attention page (server/http_gateway.h).
  int http_port = 8080;  // 0: no HTTP gateway
  std::string http_address = "0.0.0.0";
  // TLS: PEM files. tls_cert and tls_key together turn TLS on; tls_client_ca
  // (which needs them) also requires and verifies client certificates.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  int num_workers = 1;    // threads running the model
  int intra_threads = 1;  // OpenMP threads per worker
  // Dynamic batching.
  int max_batch_size = 32;      // sentences
  int max_batch_tokens = 4096;  // sentences * longest source, padding counted
  absl::Duration max_queue_delay = absl::ZeroDuration();
  int max_queue_size = 1024;  // sentences
  // Continuous batching: "continuous" admits sentences into a worker's
  // running decoder between steps; "static" only into an idle worker (each
  // batch decodes to its end, as before).
  std::string scheduling = "continuous";
  // Per worker, sentences decoding at once. 16 (64 rows at beam 4) already
  // fills a 1-thread worker's matmuls: at 64, throughput was the same and
  // p99 1.6x longer under 64 clients (bench/README.md).
  int max_active_sequences = 16;
  int kv_cache_mb = 256;  // per worker: KV blocks beyond this stop admission
  // Request limits.
  int max_input_tokens = 256;   // per text, </s> included
  int max_text_bytes = 100000;  // per text, checked before tokenizing
  int max_texts_per_request = 256;
  // Sentences (segments) per Translate request, over its texts.
  int max_sentences_per_request = 1024;
  int max_length_cap = 512;  // largest max_length a request may ask for
  int max_beam_size = 16;    // largest beam_size a request may ask for
  // A text's output ends after ceil(factor x source tokens) + 10 generated
  // tokens (Marian's --max-length-factor); 0 = off.
  double max_length_factor = 3.0;
  int64_t max_message_bytes = 64 << 20;  // largest request message (bytes)
  // Translation cache of whole-text results (MiB); 0 disables it (and the
  // coalescing of identical texts in flight).
  int cache_mb = 64;
  absl::Duration drain_timeout = absl::Seconds(30);  // on SIGTERM
  // Connections are closed (GOAWAY) after this age, so clients re-resolve and
  // spread over new replicas (Kubernetes scale-up). Zero: never.
  absl::Duration max_connection_age = absl::ZeroDuration();
  // Time the calls of an aged connection get to finish; longer than a request.
  absl::Duration max_connection_age_grace = absl::Seconds(30);

  // --check: load, describe and test the model, then exit (model_check.h).
  bool check = false;
  std::string check_sentence = "Hello world.";

  bool tls_enabled() const { return !tls_cert.empty(); }

  SchedulerOptions scheduler_options() const;
  // InvalidArgument naming the first option out of range.
  absl::Status Validate() const;
};

// For each flag of ServerOptions, sets it from the environment variable
// TS_<FLAG NAME IN UPPER CASE> (e.g. TS_PORT) if that is set. Call before
// absl::ParseCommandLine, so a flag given on the command line wins. Errors:
// InvalidArgument naming the variable if its value does not parse.
absl::Status ApplyEnvironmentToFlags();

// The options as the flags say; num_workers 0 becomes the cores this process
// may run on, intra_threads 0 becomes cores / num_workers (at least 1).
ServerOptions ServerOptionsFromFlags();

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_SERVER_OPTIONS_H_
