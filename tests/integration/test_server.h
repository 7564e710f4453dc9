// What the integration tests share: the real transformer-server as a child
// process on a loopback port, shell commands (the real client), files and the
// demo model's golden translations.
#ifndef TRANSFORMER_SERVING_TESTS_INTEGRATION_TEST_SERVER_H_
#define TRANSFORMER_SERVING_TESTS_INTEGRATION_TEST_SERVER_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace ts::testing {

// A loopback port that was free a moment ago.
int FreePort();

std::string ReadFile(const std::string& path);

// A fresh directory under /tmp (removed with its files by the destructor).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;  // -1 if killed by a signal
  std::string out;
  std::string err;
};

// Runs `command` through /bin/sh with `input` on stdin.
CommandResult RunCommand(const std::string& command,
                         const std::string& input = "");

// A model's golden translations (max_length 128), from
// MODEL_DIR/golden/translations.jsonl.
struct GoldenTranslation {
  std::string source;
  std::string greedy_text;
  std::string beam4_text;
};
std::vector<GoldenTranslation> ReadGoldenTranslations(
    const std::string& model_dir);
// The demo model's.
std::vector<GoldenTranslation> ReadGoldenTranslations();

// transformer-server on 127.0.0.1, a port of its own choosing, no metrics
// endpoint, no HTTP gateway, the demo model and --max_length_factor=0 (as
// generate and the golden outputs), plus `extra_args` (later flags win).
// Killed by the destructor if still running.
class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess();

  // Starts the server and waits (at most `timeout`: model load and warm-up)
  // for it to print "listening on 127.0.0.1:PORT".
  absl::Status Start(const std::vector<std::string>& extra_args,
                     absl::Duration timeout = absl::Seconds(300));
  // Sends `signal_number` to the server.
  void Signal(int signal_number) const;
  // Waits at most `timeout` for the server to exit. Returns its exit code,
  // -1 if it died by a signal, -2 if it is still running.
  int WaitForExit(absl::Duration timeout);

  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  // "127.0.0.1:PORT".
  std::string target() const;

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
};

// The sum of the series that `series` selects in a /metrics text: a name
// (`transformer_active_sequences`) selects every series of that metric, a
// name with labels (`x_total{code="OK",method="Translate"}`) every series
// that has at least those labels (so a test need not name the `model`
// label); `if_absent` when none does.
double SumSeries(const std::string& metrics, const std::string& series,
                 double if_absent);

// SumSeries of http://127.0.0.1:`metrics_port`/metrics; -1 if absent or
// unreachable.
double ScrapeMetric(int metrics_port, const std::string& series);

// VmRSS of process `pid` in bytes (from /proc/PID/status); -1 if unknown.
int64_t ResidentSetBytes(pid_t pid);

}  // namespace ts::testing

#endif  // TRANSFORMER_SERVING_TESTS_INTEGRATION_TEST_SERVER_H_
