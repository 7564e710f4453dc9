// Prometheus metrics of the server: one registry, served on /metrics.
#ifndef TRANSFORMER_SERVING_SERVER_METRICS_H_
#define TRANSFORMER_SERVING_SERVER_METRICS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/model/config.h"
#include "grpcpp/support/status.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}

namespace ts::server {

// "OK", "INVALID_ARGUMENT", ... as gRPC names its codes.
std::string StatusCodeName(grpc::StatusCode code);

// Thread-safe. Names and labels are fixed here (see DESIGN.md "Metrics"):
// labels take values from small fixed sets (method, status code, model), never
// from request content.
class Metrics {
 public:
  Metrics();
  ~Metrics();

  // Serves the registry at http://host:port/metrics. Errors: Unavailable if
  // the port cannot be bound.
  absl::Status StartExposer(const std::string& host, int port);

  // transformer_model_info{model, d_model, ...} = 1.
  void SetModelInfo(const core::ModelConfig& config);

  // One finished RPC; `method` is the RPC name ("Translate"); `model` the
  // repository's name of the model it ran on ("" if none: refused before
  // one was chosen; "a+b" for a pivot through a then b).
  void RecordRequest(std::string_view method, grpc::StatusCode code,
                     absl::Duration duration, std::string_view model = "");
  void IncrementInflight() { inflight_->Increment(); }
  void DecrementInflight() { inflight_->Decrement(); }
  void SetQueueSize(int64_t sentences) {
    queue_size_->Set(static_cast<double>(sentences));
  }
  // Time one sentence waited between Submit and its batch's release.
  void RecordQueueWait(absl::Duration wait) {
    queue_duration_->Observe(absl::ToDoubleSeconds(wait));
  }
  // One batch of model `model` computed by a worker.
  void RecordBatch(int sentences, int64_t padded_tokens, absl::Duration compute,
                   int64_t input_tokens, int64_t output_tokens,
                   std::string_view model = "");
  // Tokens generated for one sentence of `model` that left a continuous
  // worker (whose batches are admissions: RecordBatch counts their input
  // tokens).
  void AddOutputTokens(int64_t tokens, std::string_view model = "") {
    output_tokens_->Add({{"model", std::string(model)}})
        .Increment(static_cast<double>(tokens));
  }

  // Translation cache (server/translation_cache.h): one text found or
  // joined to an identical computation in flight (hit), or computed (miss);
  // the bytes it stores.
  void RecordCacheHit(std::string_view model = "") {
    cache_hits_->Add({{"model", std::string(model)}}).Increment();
  }
  void RecordCacheMiss(std::string_view model = "") {
    cache_misses_->Add({{"model", std::string(model)}}).Increment();
  }

  // Model repository (server/model_registry.h): whether model `model` is
  // in memory and its weight bytes (transformer_model_loaded,
  // transformer_model_weight_bytes); one load that took `duration`
  // (transformer_model_loads_total, transformer_model_load_seconds); one
  // eviction to make room for another model
  // (transformer_model_evictions_total).
  void SetModelState(std::string_view model, bool loaded, int64_t weight_bytes);
  void RecordModelLoad(std::string_view model, absl::Duration duration);
  void CountModelEviction(std::string_view model);
  void SetCacheBytes(int64_t bytes) {
    cache_bytes_->Set(static_cast<double>(bytes));
  }

  // Continuous batching (issue 13), called by the workers' step loops; all
  // figures are sums over the workers.
  // Sequences (one per sentence, a beam's rows together) now decoding:
  // +n when a worker admits n, -n when n finish, fail or are cancelled.
  void AddActiveSequences(int64_t delta) {
    active_sequences_->Increment(static_cast<double>(delta));
  }
  // Bytes of the self- and cross-attention key/value blocks in use: +bytes
  // when a worker takes blocks from its pool, -bytes when it returns them.
  void AddKvCacheBytes(int64_t delta) {
    kv_cache_bytes_->Increment(static_cast<double>(delta));
  }
  // Bytes the KV block pools may hold in all: num_workers * --kv_cache_mb
  // MiB (set once at start), the bound of transformer_kv_cache_bytes.
  void SetKvCacheLimitBytes(int64_t bytes) {
    kv_cache_limit_bytes_->Set(static_cast<double>(bytes));
  }
  // `steps` decoder steps run (one step advances every active sequence of a
  // worker by one token).
  void CountDecodeSteps(int64_t steps) {
    decode_steps_->Increment(static_cast<double>(steps));
  }
  // `sequences` admitted into a worker's step batch (encoder run, cross-
  // attention keys/values computed).
  void CountAdmitted(int64_t sequences) {
    admitted_sequences_->Increment(static_cast<double>(sequences));
  }

  // TranslateStream: time from accepting the call to handing a text's first
  // message to the transport (its first token for streamed texts; its final
  // message for beam search, several samples and cache hits). One
  // observation per text.
  void RecordTimeToFirstToken(absl::Duration duration) {
    time_to_first_token_->Observe(absl::ToDoubleSeconds(duration));
  }

  // Documents (issue 22): one Translate text read as `input_format` ("text",
  // "sentence" or "html"; the label's values are these three) and split
  // into `sentences`.
  void RecordText(std::string_view input_format, int sentences) {
    documents_->Add({{"input_format", std::string(input_format)}}).Increment();
    sentences_per_text_->Observe(sentences);
  }
  // Time spent splitting a request's texts into sentences (and parsing
  // HTML), and rebuilding a text's layout and markup around its
  // translations (seconds).
  void RecordSegmentation(absl::Duration duration) {
    segmentation_duration_->Observe(absl::ToDoubleSeconds(duration));
  }
  void RecordAssembly(absl::Duration duration) {
    assembly_duration_->Observe(absl::ToDoubleSeconds(duration));
  }

  // The registry in the Prometheus text format (what /metrics serves).
  std::string Serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;

  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* request_duration_;
  prometheus::Family<prometheus::Gauge>* model_info_;
  prometheus::Histogram* queue_duration_;
  prometheus::Histogram* compute_duration_;
  prometheus::Histogram* batch_size_;
  prometheus::Histogram* batch_tokens_;
  prometheus::Gauge* queue_size_;
  prometheus::Gauge* inflight_;
  prometheus::Family<prometheus::Counter>* input_tokens_;
  prometheus::Family<prometheus::Counter>* output_tokens_;
  prometheus::Family<prometheus::Counter>* cache_hits_;
  prometheus::Family<prometheus::Counter>* cache_misses_;
  prometheus::Family<prometheus::Gauge>* model_loaded_;
  prometheus::Family<prometheus::Gauge>* model_weight_bytes_;
  prometheus::Family<prometheus::Counter>* model_loads_;
  prometheus::Family<prometheus::Counter>* model_evictions_;
  prometheus::Family<prometheus::Histogram>* model_load_duration_;
  prometheus::Gauge* cache_bytes_;
  prometheus::Gauge* active_sequences_;
  prometheus::Gauge* kv_cache_bytes_;
  prometheus::Gauge* kv_cache_limit_bytes_;
  prometheus::Counter* decode_steps_;
  prometheus::Counter* admitted_sequences_;
  prometheus::Histogram* time_to_first_token_;
  prometheus::Family<prometheus::Counter>* documents_;
  prometheus::Histogram* sentences_per_text_;
  prometheus::Histogram* segmentation_duration_;
  prometheus::Histogram* assembly_duration_;
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_METRICS_H_
