// transformer-server: serves MarianMT models (one --model_dir, or a
// --model_repository) over gRPC and HTTP/JSON.
//
// Start-up: flags (and TS_* environment variables) -> load the model -> warm
// up every worker -> listen -> health SERVING. SIGTERM / SIGINT: health
// NOT_SERVING, refuse new requests, finish queued and running ones (at most
// --drain_timeout_s), exit 0.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/model/marian_model.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/http_gateway.h"
#include "server/metrics.h"
#include "server/model_check.h"
#include "server/model_registry.h"
#include "server/request_handler.h"
#include "server/request_validation.h"
#include "server/scheduler.h"
#include "server/server_options.h"
#include "server/service.h"
#include "server/transport.h"
#include "server/worker_pool.h"

namespace ts::server {
namespace {

constexpr char kServiceName[] = "transformer.v1.TransformerService";

int Fail(const std::string& message) {
  std::cerr << "transformer-server: " << message << std::endl;
  return 1;
}

void SetHealth(grpc::Server& server, bool serving) {
  grpc::HealthCheckServiceInterface* health = server.GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus("", serving);
  health->SetServingStatus(kServiceName, serving);
}

// The name a --model_dir model is served under: its folder's name.
std::string ModelNameOf(const std::string& model_dir) {
  std::filesystem::path path =
      std::filesystem::path(model_dir).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();
  const std::string name = path.filename().string();
  return name.empty() || name == "." ? "model" : name;
}

int Serve(int argc, char** argv) {
  // Block the shutdown signals before any thread exists, so every thread
  // inherits the mask and only sigwait below receives them.
  sigset_t shutdown_signals;
  sigemptyset(&shutdown_signals);
  sigaddset(&shutdown_signals, SIGTERM);
  sigaddset(&shutdown_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &shutdown_signals, nullptr);

  absl::SetProgramUsageMessage(
      "Serves a MarianMT translation model over gRPC.\n"
      "Every flag can also be set by the environment variable TS_<FLAG> "
      "(e.g. TS_PORT=50051); the command line wins.");
  if (absl::Status status = ApplyEnvironmentToFlags(); !status.ok()) {
    return Fail(std::string(status.message()));
  }
  absl::ParseCommandLine(argc, argv);
  const ServerOptions options = ServerOptionsFromFlags();
  if (absl::Status status = options.Validate(); !status.ok()) {
    return Fail(std::string(status.message()));
  }

  if (options.check) {
    absl::Status status = CheckModel(options.model_dir, options.compute_type,
                                     options.check_sentence, std::cout);
    if (!status.ok()) {
      return Fail(absl::StrCat("--check failed: ", status.ToString()));
    }
    return 0;
  }

  // Before the model loads (seconds): a bad TLS file fails at once.
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options);
  if (!credentials.ok())
    return Fail(std::string(credentials.status().message()));

  // The HTTP port listens from the start, so /healthz answers (live) and
  // /readyz says 503 while the model loads.
  std::unique_ptr<HttpGateway> gateway;
  if (options.http_port != 0) {
    gateway = std::make_unique<HttpGateway>(options);
    if (absl::Status status = gateway->Start(); !status.ok()) {
      return Fail(std::string(status.message()));
    }
    std::cerr << "transformer-server: HTTP/JSON gateway on "
              << gateway->address() << std::endl;
  }

  Metrics metrics;
  if (options.scheduling == "continuous") {
    metrics.SetKvCacheLimitBytes(
        int64_t{options.num_workers} * options.kv_cache_mb << 20);
  }
  if (options.metrics_port != 0) {
    if (absl::Status status =
            metrics.StartExposer(options.metrics_address, options.metrics_port);
        !status.ok()) {
      return Fail(std::string(status.message()));
    }
  }

  // The models: a repository, or the one --model_dir (named by its folder).
  ModelRegistry registry(
      ModelRegistryOptions{.compute_type = options.compute_type,
                           .memory_budget_bytes = options.model_memory_mb << 20,
                           .num_workers = options.num_workers,
                           .limits = RequestLimitsFromOptions(options),
                           .default_model = options.default_model,
                           .pivot_language = options.pivot_language},
      &metrics);
  absl::Status added =
      options.model_repository.empty()
          ? registry.Add(ModelNameOf(options.model_dir), options.model_dir)
          : registry.AddRepository(options.model_repository);
  if (added.ok()) added = registry.CheckDefault();
  if (!added.ok()) return Fail(std::string(added.message()));
  if (absl::Status status = registry.LoadAtStart(
          options.model_repository.empty() ? "all" : options.load_models);
      !status.ok()) {
    return Fail(status.ToString());
  }
  // Held only until the workers have warmed up: a copy held here could
  // never be evicted.
  std::vector<std::shared_ptr<const LoadedModel>> loaded =
      registry.LoadedModels();
  // Memory planning (deploy/README.md): what the weights hold, and what each
  // decoded token of a row adds.
  for (const std::shared_ptr<const LoadedModel>& model : loaded) {
    std::cerr << "transformer-server: model " << model->name() << "\n"
              << MemorySummary(model->model(), options.compute_type)
              << std::endl;
    metrics.SetModelInfo(model->model().config());
  }
  if (registry.model_count() > 1) {
    std::cerr << "transformer-server: " << registry.model_count()
              << " models in " << options.model_repository << ", "
              << loaded.size() << " loaded; default: \""
              << registry.default_model() << "\"" << std::endl;
  }

  Scheduler scheduler(options.scheduler_options(),
                      [&metrics](int64_t size) { metrics.SetQueueSize(size); });
  RequestHandler handler(&registry, options, &scheduler, &metrics);
  TransformerServiceImpl service(&handler);

  WorkerPoolOptions pool_options;
  pool_options.num_workers = options.num_workers;
  pool_options.intra_threads = options.intra_threads;
  pool_options.continuous = options.scheduling == "continuous";
  pool_options.max_active_sequences = options.max_active_sequences;
  pool_options.kv_cache_bytes = int64_t{options.kv_cache_mb} << 20;
  WorkerPool workers(pool_options, &scheduler, &metrics);
  absl::Status warmed_up = workers.Start(loaded);
  loaded.clear();
  if (!warmed_up.ok()) {
    scheduler.Shutdown();
    registry.Shutdown();
    workers.Join();
    return Fail(std::string(warmed_up.message()));
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(absl::StrCat(options.host, ":", options.port),
                           *credentials, &bound_port);
  ApplyConnectionAge(options, &builder);
  builder.SetMaxReceiveMessageSize(static_cast<int>(
      std::min<int64_t>(options.max_message_bytes, INT32_MAX)));
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    scheduler.Shutdown();
    registry.Shutdown();
    workers.Join();
    return Fail(
        absl::StrCat("cannot listen on ", options.host, ":", options.port));
  }
  // Loaded and warmed up: ready for traffic.
  SetHealth(*server, true);
  if (gateway != nullptr) {
    gateway->SetHandler(&handler);
    gateway->SetReady(true);
  }
  // Tests and scripts parse this line: keep it "listening on HOST:PORT".
  std::cout << "listening on " << options.host << ":" << bound_port
            << std::endl;
  if (options.tls_enabled()) {
    std::cerr << "transformer-server: TLS"
              << (options.tls_client_ca.empty()
                      ? ""
                      : ", client certificates required")
              << std::endl;
  }

  int signal_number = 0;
  sigwait(&shutdown_signals, &signal_number);
  std::cerr << "transformer-server: signal " << signal_number
            << ", draining (at most "
            << absl::FormatDuration(options.drain_timeout) << ")" << std::endl;
  // Load balancers stop sending first; requests still arriving are refused
  // with UNAVAILABLE by the scheduler.
  SetHealth(*server, false);
  if (gateway != nullptr) gateway->SetReady(false);
  scheduler.Shutdown();
  // Requests still waiting for a model load get UNAVAILABLE.
  registry.Shutdown();
  const absl::Time drain_deadline = absl::Now() + options.drain_timeout;
  if (!scheduler.WaitUntilIdle(drain_deadline)) {
    scheduler.AbortQueued(absl::UnavailableError(
        absl::StrCat("server shut down: drain_timeout_s ",
                     absl::ToInt64Seconds(options.drain_timeout), " passed")));
  }
  // Every accepted request is answered (or a worker is finishing its last
  // batch); calls still open get cancelled after a short grace period.
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  // Its connections' calls are answered by now (or by the worker finishing
  // its last batch), so it stops within that batch.
  if (gateway != nullptr) gateway->Stop();
  workers.Join();
  server->Wait();
  std::cerr << "transformer-server: stopped" << std::endl;
  return 0;
}

}  // namespace
}  // namespace ts::server

int main(int argc, char** argv) { return ts::server::Serve(argc, argv); }
