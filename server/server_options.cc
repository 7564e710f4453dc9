#include "server/server_options.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

ABSL_FLAG(std::string, compute_type, "fp32",
          "Precision of the matmuls: fp32, bf16 or int8 (weights converted "
          "at load).");
ABSL_FLAG(std::string, model_repository, "",
          "Folder whose every subfolder is a MarianMT model folder, served "
          "under the subfolder's name (replaces --model_dir).");
ABSL_FLAG(std::string, load_models, "",
          "With --model_repository: the models loaded at start: all, none, or "
          "names separated by commas. Default: all that fit "
          "--model_memory_mb, by name; the others load on first use.");
ABSL_FLAG(std::string, default_model, "",
          "The model of a request that names neither a model nor languages. "
          "Default: the only model (several models: such a request is "
          "refused).");
ABSL_FLAG(std::string, pivot_language, "en",
          "A language pair with no model of its own is translated through "
          "this language when models into and out of it exist; empty: never.");
ABSL_FLAG(int64_t, model_memory_mb, 0,
          "Bound (MiB) on the weight bytes of the models in memory (as --check "
          "prints them); a load evicts idle least-recently-used models to fit. "
          "0: no bound.");
ABSL_FLAG(std::string, model_dir, "models/marian-en-de-multi30k",
          "Hugging Face MarianMT model folder to serve.");
ABSL_FLAG(std::string, host, "0.0.0.0", "Address the gRPC server binds.");
ABSL_FLAG(int, port, 50051, "gRPC port; 0 picks a free port.");
ABSL_FLAG(int, metrics_port, 9464,
          "Port of the Prometheus /metrics endpoint; 0 disables it.");
ABSL_FLAG(std::string, metrics_address, "0.0.0.0",
          "Address the Prometheus /metrics endpoint binds.");
ABSL_FLAG(int, http_port, 8080,
          "Port of the HTTP/JSON gateway (POST /v1/translate, /v1/encode, GET "
          "/v1/model, /healthz, /readyz) and the attention page at /; 0 "
          "disables it.");
ABSL_FLAG(std::string, http_address, "0.0.0.0",
          "Address the HTTP/JSON gateway binds.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of the server; with --tls_key, serve TLS "
          "instead of plaintext.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificates; if set, clients must present a certificate "
          "signed by one of them (mutual TLS). Needs --tls_cert.");
ABSL_FLAG(int, max_connection_age_s, 0,
          "Close each client connection (GOAWAY) after this many seconds so "
          "clients reconnect and spread over new replicas; 0 = never.");
ABSL_FLAG(int, max_connection_age_grace_s, 30,
          "After --max_connection_age_s, how long (s) the connection's calls "
          "may take to finish before it is closed.");
// Defaults measured with scripts/tune_server.sh (bench/README.md): on 2
// cores, 2 workers x 1 thread served 1.8x the sentences/s of 1 x 2 with one
// client and 2x with 64, as single-threaded workers wait at no OpenMP
// barrier while gRPC threads share the cores; a delay of 0 kept single-client
// latency lowest and cost nothing at 64 clients (batches fill while the
// workers are busy), as Triton's default max_queue_delay of 0.
ABSL_FLAG(int, num_workers, 0,
          "Worker threads running the model; 0 = one per core this process "
          "may run on (sched_getaffinity).");
ABSL_FLAG(int, intra_threads, 1,
          "OpenMP threads per worker; 0 = cores / num_workers (at least 1).");
ABSL_FLAG(int, max_batch_size, 32, "Most sentences in one batch.");
ABSL_FLAG(int, max_batch_tokens, 4096,
          "Most padded tokens in one batch: sentences * longest source.");
ABSL_FLAG(int, max_queue_delay_ms, 0,
          "Longest a sentence waits (ms) for its batch to fill.");
ABSL_FLAG(std::string, scheduling, "continuous",
          "continuous: sentences join a worker's running decoder between "
          "steps and leave it when done; static: a worker takes a batch only "
          "when idle and decodes it to its end.");
ABSL_FLAG(int, max_active_sequences, 16,
          "Continuous scheduling: most sentences decoding at once per worker "
          "(a beam counts once).");
ABSL_FLAG(int, kv_cache_mb, 256,
          "Continuous scheduling: KV cache blocks (MiB) per worker beyond "
          "which no new sentence is admitted; sentences already decoding "
          "still finish.");
ABSL_FLAG(int, max_queue_size, 1024,
          "Most sentences waiting; requests beyond get UNAVAILABLE.");
ABSL_FLAG(int, max_input_tokens, 256,
          "Most tokens per text after tokenization, </s> included.");
ABSL_FLAG(int, max_text_bytes, 100000,
          "Most bytes (UTF-8) per text, checked before tokenizing.");
ABSL_FLAG(int, max_texts_per_request, 256, "Most texts in one request.");
ABSL_FLAG(int, max_sentences_per_request, 1024,
          "Most sentences (segments) in one Translate request, over all its "
          "texts, after splitting; the smaller of this and --max_queue_size "
          "applies.");
ABSL_FLAG(int, max_length_cap, 512,
          "Largest max_length (tokens) a request may ask for; also caps the "
          "model's default.");
ABSL_FLAG(int, max_beam_size, 16, "Largest beam_size a request may ask for.");
ABSL_FLAG(double, max_length_factor, 3.0,
          "A text's output ends after ceil(factor x its source tokens, </s> "
          "included) + 10 generated tokens, without </s>, or at max_length "
          "if that comes first (Marian's --max-length-factor); 0 = off.");
ABSL_FLAG(int64_t, max_message_bytes, int64_t{64} << 20,
          "Largest request accepted (bytes): a gRPC message, or an HTTP body "
          "(413 beyond).");
ABSL_FLAG(int, cache_mb, 64,
          "Translation cache of whole-text results (MiB), least recently "
          "used out; identical texts in flight are computed once. 0 "
          "disables it. Sampling without a seed is never cached.");
ABSL_FLAG(bool, check, false,
          "Load --model_dir, print its architecture, memory sizes and one "
          "translation (--check_sentence), and exit: 0 if it works, 1 with "
          "the reason if not. Serves nothing.");
ABSL_FLAG(std::string, check_sentence, "Hello world.",
          "The sentence --check translates (in the model's source language).");
ABSL_FLAG(int, drain_timeout_s, 30,
          "On SIGTERM/SIGINT, how long (s) queued and running work may take "
          "to finish before it is abandoned.");

namespace ts::server {
namespace {

// Every flag above; each may also come from TS_<NAME>.
constexpr absl::string_view kFlagNames[] = {
    "model_dir",
    "model_repository",
    "load_models",
    "default_model",
    "pivot_language",
    "model_memory_mb",
    "compute_type",
    "host",
    "port",
    "metrics_port",
    "metrics_address",
    "http_port",
    "http_address",
    "tls_cert",
    "tls_key",
    "tls_client_ca",
    "max_connection_age_s",
    "max_connection_age_grace_s",
    "num_workers",
    "intra_threads",
    "max_batch_size",
    "max_batch_tokens",
    "max_queue_delay_ms",
    "max_queue_size",
    "scheduling",
    "max_active_sequences",
    "kv_cache_mb",
    "max_input_tokens",
    "max_text_bytes",
    "max_texts_per_request",
    "max_sentences_per_request",
    "max_length_cap",
    "max_beam_size",
    "max_length_factor",
    "max_message_bytes",
    "drain_timeout_s",
    "cache_mb",
    "check",
    "check_sentence",
};

absl::Status CheckPositive(absl::string_view name, int64_t value) {
  if (value > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", name, " must be > 0, got ", value));
}

}  // namespace

SchedulerOptions ServerOptions::scheduler_options() const {
  SchedulerOptions options;
  options.max_batch_size = max_batch_size;
  options.max_batch_tokens = max_batch_tokens;
  options.max_queue_delay = max_queue_delay;
  options.max_queue_size = max_queue_size;
  return options;
}

absl::Status ServerOptions::Validate() const {
  if (model_dir.empty() && model_repository.empty()) {
    return absl::InvalidArgumentError(
        "--model_dir or --model_repository must be set");
  }
  if (model_memory_mb < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--model_memory_mb must be >= 0 (0: no bound), got ", model_memory_mb));
  }
  if (compute_type != "fp32" && compute_type != "bf16" &&
      compute_type != "int8") {
    return absl::InvalidArgumentError(
        absl::StrCat("--compute_type must be fp32, bf16 or int8, got \"",
                     compute_type, "\""));
  }
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--port must be in [0, 65535], got ", port));
  }
  if (metrics_port < 0 || metrics_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics_port must be in [0, 65535], got ", metrics_port));
  }
  if (http_port < 0 || http_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http_port must be in [0, 65535], got ", http_port));
  }
  for (const auto& [name, value] :
       std::initializer_list<std::pair<absl::string_view, int64_t>>{
           {"num_workers", num_workers},
           {"intra_threads", intra_threads},
           {"max_batch_size", max_batch_size},
           {"max_batch_tokens", max_batch_tokens},
           {"max_queue_size", max_queue_size},
           {"max_active_sequences", max_active_sequences},
           {"kv_cache_mb", kv_cache_mb},
           {"max_input_tokens", max_input_tokens},
           {"max_text_bytes", max_text_bytes},
           {"max_texts_per_request", max_texts_per_request},
           {"max_sentences_per_request", max_sentences_per_request},
           {"max_length_cap", max_length_cap},
           {"max_beam_size", max_beam_size},
           {"max_message_bytes", max_message_bytes}}) {
    if (absl::Status status = CheckPositive(name, value); !status.ok()) {
      return status;
    }
  }
  // A request of max_texts_per_request texts must fit in an empty queue, or
  // it would be refused for ever.
  if (max_texts_per_request > max_queue_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_texts_per_request (", max_texts_per_request,
                     ") must not exceed --max_queue_size (", max_queue_size,
                     "): such a request could never be queued"));
  }
  if (!(max_length_factor >= 0.0 && std::isfinite(max_length_factor))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_length_factor must be a finite number >= 0 (0 "
                     "turns it off), got ",
                     max_length_factor));
  }
  if (scheduling != "continuous" && scheduling != "static") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--scheduling must be continuous or static, got \"", scheduling, "\""));
  }
  if (max_queue_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--max_queue_delay_ms must be >= 0");
  }
  if (cache_mb < 0 || cache_mb > (1 << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--cache_mb must be in [0, 1048576] (0 disables the cache), got ",
        cache_mb));
  }
  if (drain_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--drain_timeout_s must be >= 0");
  }
  if (max_connection_age < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--max_connection_age_s must be >= 0");
  }
  if (max_connection_age_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--max_connection_age_grace_s must be >= 0");
  }
  if (tls_cert.empty() != tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key must be given together");
  }
  if (!tls_client_ca.empty() && tls_cert.empty()) {
    return absl::InvalidArgumentError(
        "--tls_client_ca needs --tls_cert and --tls_key");
  }
  return absl::OkStatus();
}

absl::Status ApplyEnvironmentToFlags() {
  for (absl::string_view name : kFlagNames) {
    const std::string variable =
        absl::StrCat("TS_", absl::AsciiStrToUpper(name));
    const char* value = std::getenv(variable.c_str());
    if (value == nullptr) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) {
      return absl::InternalError(absl::StrCat("flag --", name, " not linked"));
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "environment variable ", variable, "=\"", value, "\": ", error));
    }
  }
  return absl::OkStatus();
}

ServerOptions ServerOptionsFromFlags() {
  ServerOptions options;
  options.model_dir = absl::GetFlag(FLAGS_model_dir);
  options.model_repository = absl::GetFlag(FLAGS_model_repository);
  options.load_models = absl::GetFlag(FLAGS_load_models);
  options.default_model = absl::GetFlag(FLAGS_default_model);
  options.pivot_language = absl::GetFlag(FLAGS_pivot_language);
  options.model_memory_mb = absl::GetFlag(FLAGS_model_memory_mb);
  options.compute_type = absl::GetFlag(FLAGS_compute_type);
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  options.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  options.http_port = absl::GetFlag(FLAGS_http_port);
  options.http_address = absl::GetFlag(FLAGS_http_address);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  // The cores this process may use: a container's cpuset, not the host's.
  int cores = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0) cores = CPU_COUNT(&cpus);
  cores = std::max(1, cores);
  options.num_workers = absl::GetFlag(FLAGS_num_workers);
  if (options.num_workers == 0) options.num_workers = cores;
  options.intra_threads = absl::GetFlag(FLAGS_intra_threads);
  if (options.intra_threads == 0) {
    options.intra_threads =
        std::max(1, cores / std::max(1, options.num_workers));
  }
  options.max_batch_size = absl::GetFlag(FLAGS_max_batch_size);
  options.max_batch_tokens = absl::GetFlag(FLAGS_max_batch_tokens);
  options.max_queue_delay =
      absl::Milliseconds(absl::GetFlag(FLAGS_max_queue_delay_ms));
  options.max_queue_size = absl::GetFlag(FLAGS_max_queue_size);
  options.scheduling = absl::GetFlag(FLAGS_scheduling);
  options.max_active_sequences = absl::GetFlag(FLAGS_max_active_sequences);
  options.kv_cache_mb = absl::GetFlag(FLAGS_kv_cache_mb);
  options.max_input_tokens = absl::GetFlag(FLAGS_max_input_tokens);
  options.max_text_bytes = absl::GetFlag(FLAGS_max_text_bytes);
  options.max_texts_per_request = absl::GetFlag(FLAGS_max_texts_per_request);
  options.max_sentences_per_request =
      absl::GetFlag(FLAGS_max_sentences_per_request);
  options.max_length_cap = absl::GetFlag(FLAGS_max_length_cap);
  options.max_beam_size = absl::GetFlag(FLAGS_max_beam_size);
  options.max_length_factor = absl::GetFlag(FLAGS_max_length_factor);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.drain_timeout = absl::Seconds(absl::GetFlag(FLAGS_drain_timeout_s));
  options.cache_mb = absl::GetFlag(FLAGS_cache_mb);
  options.check = absl::GetFlag(FLAGS_check);
  options.check_sentence = absl::GetFlag(FLAGS_check_sentence);
  options.max_connection_age =
      absl::Seconds(absl::GetFlag(FLAGS_max_connection_age_s));
  options.max_connection_age_grace =
      absl::Seconds(absl::GetFlag(FLAGS_max_connection_age_grace_s));
  return options;
}

}  // namespace ts::server
