// `transformer-client bench`: a closed- or open-loop load generator against a
// server.
#ifndef TRANSFORMER_SERVING_CLIENT_BENCH_COMMAND_H_
#define TRANSFORMER_SERVING_CLIENT_BENCH_COMMAND_H_

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/connection.h"
#include "grpcpp/grpcpp.h"
#include "transformer/v1/transformer_service.pb.h"

namespace ts::client {

struct BenchCommandOptions {
  // The models the requests go to: request i (counting from 0) asks for
  // models[i % size] (so with two, consecutive requests alternate) and
  // carries its x-model metadata; empty = the server's default model.
  std::vector<ModelSelection> models;
  int concurrency = 8;  // clients, each with one request in flight
  int requests = 0;     // total requests; 0 = run for `duration`
  absl::Duration duration = absl::Seconds(10);
  int texts_per_request = 1;  // texts per Translate request
  int beam_size = 0;          // 0 = the model's default
  int max_length = 0;         // 0 = the model's default
  // TranslationOptions.input_format of every request (TEXT: a paragraph is
  // split into its sentences; SENTENCE: it is one long sequence).
  transformer::v1::InputFormat input_format =
      transformer::v1::INPUT_FORMAT_TEXT;
  absl::Duration timeout = absl::Minutes(5);  // per request
  std::string report_json;  // write the figures here too, if not empty
  // Share of requests in [0, 1) that repeat an earlier request's texts (a
  // workload for the translation cache); 0 = none.
  double repeat_fraction = 0.0;
  // Every Nth request (requests N-1, 2N-1, ... counting from 0) sends
  // paragraphs instead of sentences: each of its texts joins
  // kParagraphSentences consecutive inputs with a space (a long input with a
  // long output); 0 = never.
  int paragraph_every = 0;
  // Call TranslateStream instead of Translate and also measure the time to
  // the first message (greedy: the first token; beam search: the first
  // finished text).
  bool stream = false;
  // Open loop: requests arrive at this mean rate (requests/s), at seeded
  // exponential intervals (a Poisson process, as vLLM's benchmark_serving
  // --request-rate), whether or not earlier ones were answered; latency
  // counts from each request's scheduled arrival, so a client thread that
  // sends late does not hide the wait. `concurrency` threads send, so it
  // must exceed rate x latency. 0 = closed loop.
  double request_rate = 0.0;
};

// Input sentences per --paragraph_every text.
inline constexpr int kParagraphSentences = 4;

// The `count` texts of one bench request starting at input `first` (cycling
// through `texts`, which must not be empty): texts[first], texts[first + 1],
// ... or, for a paragraph request, the same positions each holding
// texts[k] + " " + ... + texts[k + 3].
std::vector<std::string> BenchRequestTexts(
    const std::vector<std::string>& texts, int64_t first, int count,
    bool paragraph);

// Each of `concurrency` threads sends Translate requests of the next
// `texts_per_request` texts (cycling through `texts`) and sends the next as
// soon as the answer arrives, until `requests` were sent or `duration`
// passed. With repeat_fraction f, request i > 0 repeats the texts of a
// uniformly chosen earlier request with probability f (a fixed pseudo-random
// plan, the same every run), and takes the next texts otherwise; see
// paragraph_every for long requests mixed in. Prints a progress line each
// second to `err` and at the end, to `out` as JSON: the run's seconds (from
// the start to the last answer), requests/s, sentences/s (texts answered per
// second; a paragraph counts as one), latency mean/p50/p90/p99/max (seconds)
// and the count of every status code; with paragraph_every, also latency
// p50/p99/max over the sentence requests and over the paragraph requests
// apart ({sentence,paragraph}_latency_{p50,p99,max}_s); with `stream`, also the
// time from sending a request to its first message, over OK calls
// (time_to_first_token_{p50,p90,p99,max}_s); with request_rate, the rate and
// the latest any request was sent after its scheduled arrival
// (max_send_delay_s); with `models`, per model (keyed by its RoutingKey)
// {requests, latency_p50_s, latency_p99_s, codes} under "models". Returns an
// ExitCode: 0 if every call was OK, else kExitRpcError (the figures are printed
// either way).
int RunBench(const BenchCommandOptions& options,
             const std::shared_ptr<grpc::Channel>& channel,
             const std::vector<std::string>& texts, std::ostream& out,
             std::ostream& err);

}  // namespace ts::client

#endif  // TRANSFORMER_SERVING_CLIENT_BENCH_COMMAND_H_
