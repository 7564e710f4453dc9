#include "server/metrics.h"

#include <exception>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "prometheus/exposer.h"
#include "prometheus/text_serializer.h"

namespace ts::server {
namespace {

constexpr char kVersion[] = "0.1.0";

// Latencies from 1 ms to ~33 s, doubling (seconds).
prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  prometheus::Histogram::BucketBoundaries buckets;
  for (double b = 0.001; b < 40; b *= 2) buckets.push_back(b);
  return buckets;
}

// 1, 2, 4, ... `max`.
prometheus::Histogram::BucketBoundaries PowersOfTwo(double max) {
  prometheus::Histogram::BucketBoundaries buckets;
  for (double b = 1; b <= max; b *= 2) buckets.push_back(b);
  return buckets;
}

}  // namespace

std::string StatusCodeName(grpc::StatusCode code) {
  // gRPC and absl share the numbering and the names of the codes.
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  requests_ = &prometheus::BuildCounter()
                   .Name("transformer_requests_total")
                   .Help("RPCs answered, by method and gRPC status code.")
                   .Register(*registry_);
  request_duration_ =
      &prometheus::BuildHistogram()
           .Name("transformer_request_duration_seconds")
           .Help("Time from receiving an RPC to answering it (seconds).")
           .Register(*registry_);
  queue_duration_ =
      &prometheus::BuildHistogram()
           .Name("transformer_queue_duration_seconds")
           .Help("Time a sentence waited in the queue for its batch (seconds).")
           .Register(*registry_)
           .Add({}, LatencyBuckets());
  compute_duration_ = &prometheus::BuildHistogram()
                           .Name("transformer_compute_duration_seconds")
                           .Help("Model time of one batch (seconds).")
                           .Register(*registry_)
                           .Add({}, LatencyBuckets());
  batch_size_ = &prometheus::BuildHistogram()
                     .Name("transformer_batch_size")
                     .Help("Sentences per batch.")
                     .Register(*registry_)
                     .Add({}, PowersOfTwo(512));
  batch_tokens_ =
      &prometheus::BuildHistogram()
           .Name("transformer_batch_tokens")
           .Help("Padded source tokens per batch: sentences * longest source.")
           .Register(*registry_)
           .Add({}, PowersOfTwo(65536));
  queue_size_ = &prometheus::BuildGauge()
                     .Name("transformer_queue_size")
                     .Help("Sentences waiting in the queue.")
                     .Register(*registry_)
                     .Add({});
  inflight_ = &prometheus::BuildGauge()
                   .Name("transformer_inflight_requests")
                   .Help("RPCs received and not yet answered.")
                   .Register(*registry_)
                   .Add({});
  input_tokens_ = &prometheus::BuildCounter()
                       .Name("transformer_input_tokens_total")
                       .Help("Source tokens computed, </s> included.")
                       .Register(*registry_);
  output_tokens_ = &prometheus::BuildCounter()
                        .Name("transformer_output_tokens_total")
                        .Help("Target tokens generated, over all hypotheses.")
                        .Register(*registry_);
  cache_hits_ = &prometheus::BuildCounter()
                     .Name("transformer_cache_hits_total")
                     .Help(
                         "Texts answered from the translation cache or from an "
                         "identical computation in flight.")
                     .Register(*registry_);
  cache_misses_ = &prometheus::BuildCounter()
                       .Name("transformer_cache_misses_total")
                       .Help(
                           "Texts the translation cache did not hold and "
                           "that were computed.")
                       .Register(*registry_);
  cache_bytes_ = &prometheus::BuildGauge()
                      .Name("transformer_cache_bytes")
                      .Help(
                          "Bytes held by the translation cache (bounded by "
                          "--cache_mb).")
                      .Register(*registry_)
                      .Add({});
  active_sequences_ = &prometheus::BuildGauge()
                           .Name("transformer_active_sequences")
                           .Help(
                               "Sequences decoding now in the workers' step "
                               "batches (a beam's rows count once).")
                           .Register(*registry_)
                           .Add({});
  kv_cache_bytes_ =
      &prometheus::BuildGauge()
           .Name("transformer_kv_cache_bytes")
           .Help(
               "Bytes of self- and cross-attention key/value blocks in use, "
               "over all workers.")
           .Register(*registry_)
           .Add({});
  kv_cache_limit_bytes_ =
      &prometheus::BuildGauge()
           .Name("transformer_kv_cache_limit_bytes")
           .Help(
               "Bytes the workers' key/value block pools may hold: "
               "num_workers * --kv_cache_mb.")
           .Register(*registry_)
           .Add({});
  decode_steps_ = &prometheus::BuildCounter()
                       .Name("transformer_decode_steps_total")
                       .Help(
                           "Decoder steps run by the workers (each advances "
                           "every active sequence of a worker one token).")
                       .Register(*registry_)
                       .Add({});
  admitted_sequences_ =
      &prometheus::BuildCounter()
           .Name("transformer_admitted_sequences_total")
           .Help(
               "Sequences admitted into a worker's step batch (encoded, "
               "cross-attention keys/values computed).")
           .Register(*registry_)
           .Add({});
  time_to_first_token_ =
      &prometheus::BuildHistogram()
           .Name("transformer_time_to_first_token_seconds")
           .Help(
               "TranslateStream: time from accepting the call to sending a "
               "text's first token (streamed texts) or its final message "
               "(beam search), per text (seconds).")
           .Register(*registry_)
           .Add({}, LatencyBuckets());
  documents_ = &prometheus::BuildCounter()
                    .Name("transformer_documents_total")
                    .Help(
                        "Translate texts served, by input_format (text, "
                        "sentence, html).")
                    .Register(*registry_);
  for (const char* format : {"text", "sentence", "html"}) {
    documents_->Add({{"input_format", format}});
  }
  sentences_per_text_ =
      &prometheus::BuildHistogram()
           .Name("transformer_sentences_per_text")
           .Help("Sentences (segments) a Translate text was split into.")
           .Register(*registry_)
           .Add({}, PowersOfTwo(1024));
  // Sub-millisecond work: finer buckets than the request latencies.
  prometheus::Histogram::BucketBoundaries fine;
  for (double b = 1e-5; b < 20; b *= 4) fine.push_back(b);
  segmentation_duration_ =
      &prometheus::BuildHistogram()
           .Name("transformer_segmentation_duration_seconds")
           .Help(
               "Splitting a request's texts into sentences, HTML parsing "
               "and tokenizing included (seconds).")
           .Register(*registry_)
           .Add({}, fine);
  assembly_duration_ =
      &prometheus::BuildHistogram()
           .Name("transformer_assembly_duration_seconds")
           .Help(
               "Rebuilding a text's whitespace and markup around its "
               "sentences' translations (seconds).")
           .Register(*registry_)
           .Add({}, fine);
  model_loaded_ = &prometheus::BuildGauge()
                       .Name("transformer_model_loaded")
                       .Help("1 while the model is in memory, else 0.")
                       .Register(*registry_);
  model_weight_bytes_ =
      &prometheus::BuildGauge()
           .Name("transformer_model_weight_bytes")
           .Help(
               "Weight bytes of the model in its compute type (what counts "
               "against --model_memory_mb).")
           .Register(*registry_);
  model_loads_ = &prometheus::BuildCounter()
                      .Name("transformer_model_loads_total")
                      .Help("Loads of the model that succeeded.")
                      .Register(*registry_);
  model_evictions_ =
      &prometheus::BuildCounter()
           .Name("transformer_model_evictions_total")
           .Help(
               "Times the model was taken out of memory to make room for "
               "another (--model_memory_mb).")
           .Register(*registry_);
  model_load_duration_ =
      &prometheus::BuildHistogram()
           .Name("transformer_model_load_seconds")
           .Help("Time to read and prepare a model's weights (seconds).")
           .Register(*registry_);
  model_info_ = &prometheus::BuildGauge()
                     .Name("transformer_model_info")
                     .Help("The served model; always 1.")
                     .Register(*registry_);
  prometheus::BuildGauge()
      .Name("transformer_build_info")
      .Help("Server version; always 1.")
      .Register(*registry_)
      .Add({{"version", kVersion}})
      .Set(1);
  // Create the series of every method up front, so dashboards see zeros.
  for (const char* method :
       {"Translate", "TranslateStream", "Encode", "GetModelInfo"}) {
    request_duration_->Add({{"method", method}}, LatencyBuckets());
  }
}

Metrics::~Metrics() = default;

absl::Status Metrics::StartExposer(const std::string& host, int port) {
  const std::string address = absl::StrCat(host, ":", port);
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_, "/metrics");
  return absl::OkStatus();
}

void Metrics::SetModelInfo(const core::ModelConfig& config) {
  model_info_
      ->Add({{"model", config.name},
             {"d_model", absl::StrCat(config.d_model)},
             {"encoder_layers", absl::StrCat(config.encoder_layers)},
             {"decoder_layers", absl::StrCat(config.decoder_layers)},
             {"vocab_size", absl::StrCat(config.vocab_size)}})
      .Set(1);
}

void Metrics::RecordRequest(std::string_view method, grpc::StatusCode code,
                            absl::Duration duration, std::string_view model) {
  const std::string method_name(method);
  const std::string model_name(model);
  requests_
      ->Add({{"method", method_name},
             {"code", StatusCodeName(code)},
             {"model", model_name}})
      .Increment();
  request_duration_
      ->Add({{"method", method_name}, {"model", model_name}}, LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(duration));
}

void Metrics::RecordBatch(int sentences, int64_t padded_tokens,
                          absl::Duration compute, int64_t input_tokens,
                          int64_t output_tokens, std::string_view model) {
  batch_size_->Observe(sentences);
  batch_tokens_->Observe(static_cast<double>(padded_tokens));
  compute_duration_->Observe(absl::ToDoubleSeconds(compute));
  const std::string model_name(model);
  input_tokens_->Add({{"model", model_name}})
      .Increment(static_cast<double>(input_tokens));
  output_tokens_->Add({{"model", model_name}})
      .Increment(static_cast<double>(output_tokens));
}

void Metrics::SetModelState(std::string_view model, bool loaded,
                            int64_t weight_bytes) {
  const std::string name(model);
  model_loaded_->Add({{"model", name}}).Set(loaded ? 1 : 0);
  model_weight_bytes_->Add({{"model", name}})
      .Set(static_cast<double>(weight_bytes));
  // Zeros from the start, so rate() and alerts see every model.
  model_loads_->Add({{"model", name}});
  model_evictions_->Add({{"model", name}});
  cache_hits_->Add({{"model", name}});
  cache_misses_->Add({{"model", name}});
  input_tokens_->Add({{"model", name}});
  output_tokens_->Add({{"model", name}});
}

void Metrics::RecordModelLoad(std::string_view model, absl::Duration duration) {
  const std::string name(model);
  model_loads_->Add({{"model", name}}).Increment();
  model_load_duration_
      ->Add({{"model", name}},
            prometheus::Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1,
                                                    2.5, 5, 10, 30, 60})
      .Observe(absl::ToDoubleSeconds(duration));
}

void Metrics::CountModelEviction(std::string_view model) {
  model_evictions_->Add({{"model", std::string(model)}}).Increment();
}

std::string Metrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace ts::server
