#include "tests/integration/test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"

namespace ts::testing {

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TempDir::TempDir() {
  char dir_template[] = "/tmp/ts_integration_XXXXXX";
  const char* dir = mkdtemp(dir_template);
  path_ = dir == nullptr ? "/tmp" : dir;
}

TempDir::~TempDir() {
  if (path_ == "/tmp") return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

CommandResult RunCommand(const std::string& command, const std::string& input) {
  TempDir dir;
  const std::string in_path = dir.File("in"), out_path = dir.File("out"),
                    err_path = dir.File("err");
  std::ofstream(in_path, std::ios::binary) << input;
  const int status = std::system(
      absl::StrCat(command, " <", in_path, " >", out_path, " 2>", err_path)
          .c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

std::vector<GoldenTranslation> ReadGoldenTranslations(
    const std::string& model_dir) {
  std::vector<GoldenTranslation> rows;
  const std::string text = ReadFile(model_dir + "/golden/translations.jsonl");
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty()) continue;
    const nlohmann::json row = nlohmann::json::parse(line);
    rows.push_back({row["source"].get<std::string>(),
                    row["greedy_text"].get<std::string>(),
                    row["beam4_text"].get<std::string>()});
  }
  return rows;
}

std::vector<GoldenTranslation> ReadGoldenTranslations() {
  return ReadGoldenTranslations(TS_DEMO_MODEL_DIR);
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

absl::Status ServerProcess::Start(const std::vector<std::string>& extra_args,
                                  absl::Duration timeout) {
  // --max_length_factor=0: decode as generate does, which the golden outputs
  // follow (golden line 117 runs to max_length: 127 tokens for 19 source
  // tokens; the default factor 3 ends it at 67). limits_test sets it.
  std::vector<std::string> args = {
      TS_SERVER_BINARY,
      "--host=127.0.0.1",
      "--port=0",
      "--metrics_port=0",
      "--http_port=0",
      "--max_length_factor=0",
      absl::StrCat("--model_dir=", TS_DEMO_MODEL_DIR)};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return absl::InternalError("pipe failed");
  pid_ = fork();
  if (pid_ < 0) return absl::InternalError("fork failed");
  if (pid_ == 0) {
    // A test killed by its timeout must not leave a server behind.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(pipe_fds[1], STDOUT_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    std::vector<char*> argv;
    for (const std::string& arg : args) {
      argv.push_back(const_cast<char*>(arg.c_str()));
    }
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  stdout_fd_ = pipe_fds[0];

  const absl::Time give_up = absl::Now() + timeout;
  const std::string prefix = "listening on 127.0.0.1:";
  std::string output;
  size_t line_end = std::string::npos;
  while (output.find(prefix) == std::string::npos ||
         (line_end = output.find('\n', output.find(prefix))) ==
             std::string::npos) {
    const int64_t wait_ms = absl::ToInt64Milliseconds(give_up - absl::Now());
    if (wait_ms <= 0) {
      return absl::DeadlineExceededError(absl::StrCat(
          "server did not print '", prefix, "PORT'; stdout: ", output));
    }
    pollfd poll_fd{stdout_fd_, POLLIN, 0};
    if (poll(&poll_fd, 1, static_cast<int>(wait_ms)) <= 0) continue;
    char buffer[4096];
    const ssize_t n = read(stdout_fd_, buffer, sizeof(buffer));
    if (n <= 0) {
      return absl::UnavailableError(
          absl::StrCat("server exited before listening; stdout: ", output));
    }
    output.append(buffer, n);
  }
  const size_t start = output.find(prefix) + prefix.size();
  if (!absl::SimpleAtoi(output.substr(start, line_end - start), &port_) ||
      port_ <= 0) {
    return absl::InternalError(absl::StrCat("bad port line: ", output));
  }
  return absl::OkStatus();
}

void ServerProcess::Signal(int signal_number) const {
  if (pid_ > 0) kill(pid_, signal_number);
}

int ServerProcess::WaitForExit(absl::Duration timeout) {
  if (pid_ <= 0) return -2;
  const absl::Time give_up = absl::Now() + timeout;
  int status = 0;
  while (true) {
    const pid_t exited = waitpid(pid_, &status, WNOHANG);
    if (exited == pid_) break;
    if (absl::Now() >= give_up) return -2;
    absl::SleepFor(absl::Milliseconds(50));
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ServerProcess::target() const {
  return absl::StrCat("127.0.0.1:", port_);
}

double SumSeries(const std::string& metrics, const std::string& series,
                 double if_absent) {
  const size_t brace = series.find('{');
  const std::string name = series.substr(0, brace);
  std::vector<std::string> labels;
  if (brace != std::string::npos) {
    labels = absl::StrSplit(
        absl::string_view(series).substr(brace + 1, series.size() - brace - 2),
        ',', absl::SkipEmpty());
  }
  double sum = 0.0;
  bool found = false;
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t end = line.find_first_of("{ ");
    if (end == absl::string_view::npos || line.substr(0, end) != name) {
      continue;
    }
    const size_t space = line.rfind(' ');
    const absl::string_view line_labels =
        line[end] == '{' ? line.substr(end, space - end) : "";
    bool matches = true;
    for (const std::string& label : labels) {
      if (!absl::StrContains(line_labels, label)) matches = false;
    }
    double value = 0.0;
    if (matches && absl::SimpleAtod(line.substr(space + 1), &value)) {
      sum += value;
      found = true;
    }
  }
  return found ? sum : if_absent;
}

double ScrapeMetric(int metrics_port, const std::string& series) {
  const CommandResult result = RunCommand(
      absl::StrCat("curl -sf http://127.0.0.1:", metrics_port, "/metrics"));
  if (result.exit_code != 0) return -1.0;
  return SumSeries(result.out, series, -1.0);
}

int64_t ResidentSetBytes(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    // "VmRSS:	  123456 kB"
    if (line.rfind("VmRSS:", 0) != 0) continue;
    int64_t kb = 0;
    std::string number;
    for (char c : line) {
      if (c >= '0' && c <= '9') number += c;
    }
    if (!absl::SimpleAtoi(number, &kb)) return -1;
    return kb * 1024;
  }
  return -1;
}

}  // namespace ts::testing
