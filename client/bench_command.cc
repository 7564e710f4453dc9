#include "client/bench_command.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/exit_codes.h"
#include "nlohmann/json.hpp"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace ts::client {
namespace {

// Status code names as gRPC spells them, for the report.
std::string CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  const int index = static_cast<int>(code);
  return index >= 0 && index < 17 ? kNames[index]
                                  : "CODE_" + std::to_string(index);
}

// SplitMix64's output function: the bench's fixed pseudo-random plan.
uint64_t Mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Which texts each request sends: plan[i] is the "fresh" request number
// whose texts request i carries. Extended in request order, so it does not
// depend on which thread asks first.
class RequestPlan {
 public:
  explicit RequestPlan(double repeat_fraction)
      : repeat_fraction_(repeat_fraction) {}

  // The fresh request number of request `index`, and whether it repeats.
  std::pair<int64_t, bool> Get(int64_t index) {
    absl::MutexLock lock(&mu_);
    while (static_cast<int64_t>(plan_.size()) <= index) {
      const int64_t i = static_cast<int64_t>(plan_.size());
      const double u =
          static_cast<double>(Mix(2 * static_cast<uint64_t>(i)) >> 11) *
          0x1.0p-53;
      if (i > 0 && u < repeat_fraction_) {
        const int64_t earlier = static_cast<int64_t>(
            Mix(2 * static_cast<uint64_t>(i) + 1) % static_cast<uint64_t>(i));
        plan_.push_back({plan_[earlier].first, true});
      } else {
        plan_.push_back({fresh_++, false});
      }
    }
    return plan_[index];
  }

 private:
  const double repeat_fraction_;
  absl::Mutex mu_;
  std::vector<std::pair<int64_t, bool>> plan_ ABSL_GUARDED_BY(mu_);
  int64_t fresh_ ABSL_GUARDED_BY(mu_) = 0;
};

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0.0;
  const size_t index = std::min(
      sorted.size() - 1, static_cast<size_t>(p * (sorted.size() - 1) + 0.5));
  return sorted[index];
}

// Offsets from the start of `count` arrivals (or of those before `until`,
// if count is 0) of a Poisson process of `rate` per second.
std::vector<absl::Duration> PoissonArrivals(double rate, int64_t count,
                                            absl::Duration until) {
  std::vector<absl::Duration> arrivals;
  std::mt19937_64 generator(1);  // fixed: every run offers the same load
  std::exponential_distribution<double> interval(rate);
  absl::Duration at = absl::ZeroDuration();
  while (count > 0 ? static_cast<int64_t>(arrivals.size()) < count
                   : at < until) {
    arrivals.push_back(at);
    at += absl::Seconds(interval(generator));
  }
  return arrivals;
}

}  // namespace

std::vector<std::string> BenchRequestTexts(
    const std::vector<std::string>& texts, int64_t first, int count,
    bool paragraph) {
  std::vector<std::string> request_texts;
  const int64_t size = static_cast<int64_t>(texts.size());
  for (int i = 0; i < count; ++i) {
    const int64_t index = first + i;
    if (!paragraph) {
      request_texts.push_back(texts[index % size]);
      continue;
    }
    std::string paragraph_text = texts[index % size];
    for (int j = 1; j < kParagraphSentences; ++j) {
      paragraph_text += " " + texts[(index + j) % size];
    }
    request_texts.push_back(std::move(paragraph_text));
  }
  return request_texts;
}

int RunBench(const BenchCommandOptions& options,
             const std::shared_ptr<grpc::Channel>& channel,
             const std::vector<std::string>& texts, std::ostream& out,
             std::ostream& err) {
  auto stub = transformer::v1::TransformerService::NewStub(channel);
  std::atomic<int64_t> next_request{0};
  std::atomic<int64_t> sentences_done{0};
  absl::Mutex mu;
  std::vector<double> latencies;  // seconds, OK calls; guarded by mu
  // The same, split by kind of request (with paragraph_every); guarded by mu.
  std::vector<double> sentence_latencies;
  std::vector<double> paragraph_latencies;
  // With `stream`: seconds to the first message, OK calls; guarded by mu.
  std::vector<double> first_message_latencies;
  std::map<std::string, int64_t> codes;  // guarded by mu
  // With `models`: per RoutingKey, OK latencies and codes; guarded by mu.
  std::map<std::string, std::vector<double>> model_latencies;
  std::map<std::string, std::map<std::string, int64_t>> model_codes;
  const absl::Time start = absl::Now();
  const absl::Time end = start + options.duration;
  const int per_request = std::max(1, options.texts_per_request);
  RequestPlan plan(options.repeat_fraction);
  std::atomic<int64_t> repeated{0};
  std::atomic<int64_t> paragraphs{0};
  const bool open_loop = options.request_rate > 0;
  const std::vector<absl::Duration> arrivals =
      open_loop ? PoissonArrivals(options.request_rate, options.requests,
                                  options.duration)
                : std::vector<absl::Duration>();
  absl::Duration max_send_delay = absl::ZeroDuration();  // guarded by mu

  auto client = [&]() {
    while (true) {
      const int64_t index = next_request.fetch_add(1);
      if (open_loop ? index >= static_cast<int64_t>(arrivals.size())
          : options.requests > 0 ? index >= options.requests
                                 : absl::Now() >= end) {
        return;
      }
      // Open loop: wait for this request's arrival and count its latency
      // from then, even if this thread comes late.
      const absl::Time arrival =
          open_loop ? start + arrivals[index] : absl::InfinitePast();
      if (open_loop) {
        absl::SleepFor(arrival - absl::Now());
        const absl::Duration late = absl::Now() - arrival;
        absl::MutexLock lock(&mu);
        max_send_delay = std::max(max_send_delay, late);
      }
      const auto [fresh, repeats] = plan.Get(index);
      if (repeats) ++repeated;
      const bool paragraph = options.paragraph_every > 0 &&
                             (index + 1) % options.paragraph_every == 0;
      if (paragraph) ++paragraphs;
      transformer::v1::TranslateRequest request;
      for (std::string& text : BenchRequestTexts(texts, fresh * per_request,
                                                 per_request, paragraph)) {
        request.add_texts(std::move(text));
      }
      request.mutable_options()->set_input_format(options.input_format);
      if (options.beam_size > 0) {
        request.mutable_options()->set_beam_size(options.beam_size);
      }
      if (options.max_length > 0) {
        request.mutable_options()->set_max_length(options.max_length);
      }
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + options.timeout));
      std::string model_key;
      if (!options.models.empty()) {
        const ModelSelection& model = options.models[static_cast<size_t>(
            index % static_cast<int64_t>(options.models.size()))];
        SetModelFields(model, &request);
        model_key = model.RoutingKey();
        if (!model_key.empty()) {
          context.AddMetadata(kModelMetadataKey, model_key);
        }
      }
      const absl::Time sent = open_loop ? arrival : absl::Now();
      grpc::Status status;
      absl::Time first_message = absl::InfiniteFuture();
      if (options.stream) {
        auto reader = stub->TranslateStream(&context, request);
        transformer::v1::TranslateStreamResponse message;
        while (reader->Read(&message)) {
          if (first_message == absl::InfiniteFuture()) {
            first_message = absl::Now();
          }
        }
        status = reader->Finish();
      } else {
        transformer::v1::TranslateResponse response;
        status = stub->Translate(&context, request, &response);
      }
      const double seconds = absl::ToDoubleSeconds(absl::Now() - sent);
      absl::MutexLock lock(&mu);
      ++codes[CodeName(status.error_code())];
      if (!options.models.empty()) {
        ++model_codes[model_key][CodeName(status.error_code())];
        if (status.ok()) model_latencies[model_key].push_back(seconds);
      }
      if (status.ok()) {
        latencies.push_back(seconds);
        (paragraph ? paragraph_latencies : sentence_latencies)
            .push_back(seconds);
        if (first_message != absl::InfiniteFuture()) {
          first_message_latencies.push_back(
              absl::ToDoubleSeconds(first_message - sent));
        }
        sentences_done += per_request;
      }
    }
  };

  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, options.concurrency); ++i) {
    threads.emplace_back(client);
  }
  // The progress line, each second until the clients are done; it wakes at
  // once when they are, so it neither delays the run nor counts in it.
  absl::Notification finished;
  std::thread reporter([&]() {
    while (!finished.WaitForNotificationWithTimeout(absl::Seconds(1))) {
      const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
      err << absl::StrFormat("\rbench: %.0f s, %d sentences, %.1f sentences/s",
                             elapsed, sentences_done.load(),
                             sentences_done.load() / elapsed)
          << std::flush;
    }
  });
  for (std::thread& thread : threads) thread.join();
  // The run ends when its last answer arrived (not when the reporter's
  // second is up: that rounded the figure up to whole seconds).
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  finished.Notify();
  reporter.join();
  err << "\n";

  std::sort(latencies.begin(), latencies.end());
  std::sort(first_message_latencies.begin(), first_message_latencies.end());
  std::sort(sentence_latencies.begin(), sentence_latencies.end());
  std::sort(paragraph_latencies.begin(), paragraph_latencies.end());
  int64_t total = 0;
  for (const auto& [code, count] : codes) total += count;
  double latency_sum = 0.0;
  for (double latency : latencies) latency_sum += latency;
  nlohmann::json report = {
      {"concurrency", options.concurrency},
      {"texts_per_request", per_request},
      {"requests", total},
      {"repeat_fraction", options.repeat_fraction},
      {"repeated_requests", repeated.load()},
      {"paragraph_every", options.paragraph_every},
      {"paragraph_requests", paragraphs.load()},
      {"seconds", elapsed},
      {"requests_per_second", total / elapsed},
      {"sentences_per_second", sentences_done.load() / elapsed},
      {"latency_mean_s",
       latencies.empty() ? 0.0 : latency_sum / latencies.size()},
      {"latency_p50_s", Percentile(latencies, 0.50)},
      {"latency_p90_s", Percentile(latencies, 0.90)},
      {"latency_p99_s", Percentile(latencies, 0.99)},
      {"latency_max_s", latencies.empty() ? 0.0 : latencies.back()},
      {"codes", codes}};
  if (options.paragraph_every > 0) {
    // The long requests are a few percent of all, so the overall p99 is
    // mostly theirs; apart, the figures show what each kind waits.
    for (const auto& [kind, sorted] :
         {std::pair{"sentence", &sentence_latencies},
          std::pair{"paragraph", &paragraph_latencies}}) {
      report[absl::StrCat(kind, "_latency_p50_s")] = Percentile(*sorted, 0.50);
      report[absl::StrCat(kind, "_latency_p99_s")] = Percentile(*sorted, 0.99);
      report[absl::StrCat(kind, "_latency_max_s")] =
          sorted->empty() ? 0.0 : sorted->back();
    }
  }
  if (!options.models.empty()) {
    nlohmann::json models = nlohmann::json::object();
    for (auto& [key, model_code_counts] : model_codes) {
      std::vector<double>& sorted = model_latencies[key];
      std::sort(sorted.begin(), sorted.end());
      int64_t requests = 0;
      for (const auto& [code, count] : model_code_counts) requests += count;
      models[key] = {{"requests", requests},
                     {"latency_p50_s", Percentile(sorted, 0.50)},
                     {"latency_p99_s", Percentile(sorted, 0.99)},
                     {"codes", model_code_counts}};
    }
    report["models"] = std::move(models);
  }
  report["request_rate"] = options.request_rate;
  if (open_loop) {
    report["max_send_delay_s"] = absl::ToDoubleSeconds(max_send_delay);
  }
  report["stream"] = options.stream;
  if (options.stream) {
    report["time_to_first_token_p50_s"] =
        Percentile(first_message_latencies, 0.50);
    report["time_to_first_token_p90_s"] =
        Percentile(first_message_latencies, 0.90);
    report["time_to_first_token_p99_s"] =
        Percentile(first_message_latencies, 0.99);
    report["time_to_first_token_max_s"] =
        first_message_latencies.empty() ? 0.0 : first_message_latencies.back();
  }
  out << report.dump(2) << "\n";
  if (!options.report_json.empty()) {
    std::ofstream file(options.report_json);
    file << report.dump(2) << "\n";
    if (!file) return kExitIoError;
  }
  const bool all_ok = codes.size() == 1 && codes.count("OK") == 1;
  return all_ok ? kExitOk : kExitRpcError;
}

}  // namespace ts::client
