// TLS and mutual TLS end to end: certificates made with `openssl`, the real
// server and the real client on loopback.
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/integration/test_server.h"

namespace ts::testing {
namespace {

constexpr char kSentence[] = "A man is riding a bicycle.";

// A CA, a server certificate for localhost / 127.0.0.1 and a client
// certificate, all signed by the CA, in one temporary directory.
class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string script = absl::StrCat(
        "set -e\n",
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ts-ca "
        "-keyout ca.key -out ca.pem\n",
        "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost "
        "-keyout server.key -out server.csr\n",
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext\n",
        "openssl x509 -req -days 2 -in server.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -extfile server.ext -out server.pem\n",
        "openssl req -newkey rsa:2048 -nodes -subj /CN=ts-client "
        "-keyout client.key -out client.csr\n",
        "openssl x509 -req -days 2 -in client.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -out client.pem\n");
    std::ofstream(File("make_certs.sh")) << script;
    const CommandResult result =
        RunCommand(absl::StrCat("cd ", dir_->path(), " && sh make_certs.sh"));
    ASSERT_EQ(result.exit_code, 0) << "openssl failed: " << result.err;
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::string File(const std::string& name) { return dir_->File(name); }

  std::vector<std::string> ServerTlsArgs() const {
    return {"--tls_cert=" + File("server.pem"),
            "--tls_key=" + File("server.key")};
  }

  // transformer-client translate of kSentence with `flags`.
  static CommandResult Translate(const ServerProcess& server,
                                 const std::string& flags) {
    return RunCommand(
        absl::StrCat(TS_CLIENT_BINARY, " translate --server=", server.target(),
                     " --timeout_s=30 ", flags, " \"", kSentence, "\""));
  }

  static TempDir* dir_;
};

TempDir* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, ServerRefusesPlaintextAndServesTlsClients) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(ServerTlsArgs()).ok());

  const CommandResult plaintext = Translate(server, "");
  EXPECT_NE(plaintext.exit_code, 0) << plaintext.out;
  EXPECT_EQ(plaintext.out, "");

  const CommandResult tls =
      Translate(server, "--tls --tls_ca=" + File("ca.pem"));
  ASSERT_EQ(tls.exit_code, 0) << tls.err;
  EXPECT_NE(tls.out.find("Fahrrad"), std::string::npos) << tls.out;

  // The name override: the certificate also names localhost.
  const CommandResult by_name = Translate(
      server, "--tls_ca=" + File("ca.pem") + " --tls_server_name=localhost");
  ASSERT_EQ(by_name.exit_code, 0) << by_name.err;
  EXPECT_EQ(by_name.out, tls.out);

  // A certificate the client does not trust is refused.
  const CommandResult untrusted =
      Translate(server, "--tls --tls_ca=" + File("client.pem"));
  EXPECT_NE(untrusted.exit_code, 0) << untrusted.out;
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificate) {
  std::vector<std::string> args = ServerTlsArgs();
  args.push_back("--tls_client_ca=" + File("ca.pem"));
  ServerProcess server;
  ASSERT_TRUE(server.Start(args).ok());

  const CommandResult without_cert =
      Translate(server, "--tls --tls_ca=" + File("ca.pem"));
  EXPECT_NE(without_cert.exit_code, 0) << without_cert.out;
  EXPECT_EQ(without_cert.out, "");

  const CommandResult with_cert =
      Translate(server, absl::StrCat("--tls_ca=", File("ca.pem"),
                                     " --tls_cert=", File("client.pem"),
                                     " --tls_key=", File("client.key")));
  ASSERT_EQ(with_cert.exit_code, 0) << with_cert.err;
  EXPECT_NE(with_cert.out.find("Fahrrad"), std::string::npos) << with_cert.out;
}

// The HTTP gateway shares --tls_cert/--tls_key/--tls_client_ca: HTTPS only,
// and with a client CA only clients with a certificate it signed (curl).
TEST_F(TlsTest, HttpGatewayServesHttpsWithTheSameCertificates) {
  for (const bool mutual : {false, true}) {
    const int http_port = FreePort();
    std::vector<std::string> args = ServerTlsArgs();
    args.push_back(absl::StrCat("--http_port=", http_port));
    args.push_back("--http_address=127.0.0.1");
    if (mutual) args.push_back("--tls_client_ca=" + File("ca.pem"));
    ServerProcess server;
    ASSERT_TRUE(server.Start(args).ok());
    const std::string body =
        absl::StrCat("-d '{\"texts\": [\"", kSentence, "\"]}' ");
    auto curl = [&](const std::string& scheme, const std::string& flags) {
      return RunCommand(absl::StrCat("curl -sS --max-time 60 ", flags, " ",
                                     body, scheme, "://127.0.0.1:", http_port,
                                     "/v1/translate"));
    };
    const std::string client_cert = absl::StrCat("--cert ", File("client.pem"),
                                                 " --key ", File("client.key"));
    const std::string trusted = "--cacert " + File("ca.pem");

    const CommandResult https =
        curl("https", trusted + (mutual ? " " + client_cert : ""));
    ASSERT_EQ(https.exit_code, 0) << https.err;
    EXPECT_NE(https.out.find("Fahrrad"), std::string::npos) << https.out;

    const CommandResult plaintext = curl("http", "");
    EXPECT_EQ(plaintext.out.find("Fahrrad"), std::string::npos)
        << plaintext.out;
    // A certificate curl does not trust.
    EXPECT_NE(curl("https", "--cacert " + File("client.pem")).exit_code, 0);
    if (mutual) {
      const CommandResult without_cert = curl("https", trusted);
      EXPECT_EQ(without_cert.out.find("Fahrrad"), std::string::npos)
          << without_cert.out;
    }
  }
}

// The value of an unlabelled metric, or of transformer_requests_total with
// `labels` (`{code="...",method="..."}`), in a /metrics text; 0 if absent.
double MetricValue(const std::string& metrics, const std::string& name) {
  return ts::testing::SumSeries(metrics, name, 0);
}

// Issue 24 over HTTPS: curl gives up on a long translation after 1 s (it
// closes the TLS connection); the server stops decoding it at once and
// counts it CANCELLED. The gateway finds the connection's socket under TLS
// as in plaintext.
TEST_F(TlsTest, HttpsClientThatLeavesCancelsItsCall) {
  const int http_port = FreePort();
  const int metrics_port = FreePort();
  std::vector<std::string> args = ServerTlsArgs();
  args.push_back(absl::StrCat("--http_port=", http_port));
  args.push_back("--http_address=127.0.0.1");
  args.push_back(absl::StrCat("--metrics_port=", metrics_port));
  args.push_back("--metrics_address=127.0.0.1");
  args.push_back("--num_workers=1");
  args.push_back("--intra_threads=1");
  ServerProcess server;
  ASSERT_TRUE(server.Start(args).ok());
  auto metrics = [&] {
    return RunCommand(absl::StrCat("curl -sS --max-time 10 http://127.0.0.1:",
                                   metrics_port, "/metrics"))
        .out;
  };
  // 16 texts, beam 4, at least 300 tokens each: seconds of decoding, so
  // curl leaves in the middle even on a machine a few times faster.
  std::string texts;
  for (int i = 0; i < 16; ++i) {
    absl::StrAppend(&texts, i == 0 ? "" : ", ", "\"", kSentence, " ", i, "\"");
  }
  const std::string body =
      absl::StrCat("{\"texts\": [", texts,
                   "], \"options\": {\"beamSize\": 4, \"minLength\": 300, "
                   "\"maxLength\": 320}}");
  std::ofstream(File("long_request.json")) << body;
  const CommandResult gave_up = RunCommand(
      absl::StrCat("curl -sS --max-time 1 --cacert ", File("ca.pem"), " -d @",
                   File("long_request.json"), " https://127.0.0.1:", http_port,
                   "/v1/translate"));
  EXPECT_EQ(gave_up.exit_code, 28) << "curl: " << gave_up.err;  // timed out
  const absl::Time closed = absl::Now();
  std::string after = metrics();
  while (MetricValue(after, "transformer_active_sequences") > 0 &&
         absl::Now() - closed < absl::Seconds(10)) {
    absl::SleepFor(absl::Milliseconds(10));
    after = metrics();
  }
  EXPECT_LE(absl::Now() - closed, absl::Seconds(1));
  EXPECT_EQ(MetricValue(after, "transformer_active_sequences"), 0);
  // It was decoding when curl left, and stopped well before its 300 steps.
  EXPECT_EQ(MetricValue(after, "transformer_admitted_sequences_total"), 16);
  EXPECT_LT(MetricValue(after, "transformer_decode_steps_total"), 300);
  EXPECT_EQ(MetricValue(after,
                        "transformer_requests_total{code=\"CANCELLED\","
                        "method=\"Translate\"}"),
            1);
}

TEST_F(TlsTest, UnreadableTlsFileFailsAtStartWithOneLine) {
  for (const std::string& flags :
       {absl::StrCat("--tls_cert=", File("missing.pem"),
                     " --tls_key=", File("server.key")),
        absl::StrCat("--tls_cert=", File("server.pem"), " --tls_key=",
                     File("server.key"), " --tls_client_ca=", dir_->path())}) {
    const CommandResult result = RunCommand(absl::StrCat(
        TS_SERVER_BINARY,
        " --host=127.0.0.1 --port=0 --metrics_port=0 --http_port=0 ", flags));
    EXPECT_EQ(result.exit_code, 1) << flags;
    const std::vector<std::string> lines =
        absl::StrSplit(result.err, '\n', absl::SkipEmpty());
    ASSERT_EQ(lines.size(), 1u) << result.err;
    EXPECT_NE(lines[0].find("cannot read PEM file"), std::string::npos)
        << lines[0];
  }
}

}  // namespace
}  // namespace ts::testing
