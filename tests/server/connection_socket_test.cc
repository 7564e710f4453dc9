// FindConnectionSocket and PeerClosed on real loopback TCP connections: the
// accepted socket is found from its two addresses (as httplib::Request holds
// them), and a FIN, a reset or a close of the client's side is seen without
// reading, while unread bytes are not.
#include "server/connection_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace ts::server {
namespace {

// A connected pair over `host` (numeric, "127.0.0.1" or "::1"): the accepted
// server side and the client side, with their ports.
struct Connection {
  int server = -1;
  int client = -1;
  int server_port = 0;
  int client_port = 0;

  ~Connection() {
    if (server >= 0) close(server);
    if (client >= 0) close(client);
  }
};

int PortOf(const sockaddr_storage& address) {
  return address.ss_family == AF_INET
             ? ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port)
             : ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
}

// False if `host` has no loopback of its family here (no IPv6).
bool Connect(const std::string& host, Connection* connection) {
  const bool v6 = host.find(':') != std::string::npos;
  const int family = v6 ? AF_INET6 : AF_INET;
  sockaddr_storage address{};
  socklen_t length = 0;
  if (v6) {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(address);
    in6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, host.c_str(), &in6.sin6_addr);
    length = sizeof(in6);
  } else {
    auto& in4 = reinterpret_cast<sockaddr_in&>(address);
    in4.sin_family = AF_INET;
    inet_pton(AF_INET, host.c_str(), &in4.sin_addr);
    length = sizeof(in4);
  }
  const int listener = socket(family, SOCK_STREAM, 0);
  if (listener < 0) return false;
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      listen(listener, 1) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) !=
          0) {
    close(listener);
    return false;
  }
  connection->server_port = PortOf(address);
  connection->client = socket(family, SOCK_STREAM, 0);
  if (connect(connection->client, reinterpret_cast<sockaddr*>(&address),
              length) != 0) {
    close(listener);
    return false;
  }
  connection->server = accept(listener, nullptr, nullptr);
  close(listener);
  sockaddr_storage client_address{};
  socklen_t client_length = sizeof(client_address);
  getsockname(connection->client, reinterpret_cast<sockaddr*>(&client_address),
              &client_length);
  connection->client_port = PortOf(client_address);
  return connection->server >= 0;
}

// PeerClosed(fd) within `seconds` (the loopback delivers a FIN at once;
// the wait only absorbs scheduling).
bool BecomesClosed(int fd, double seconds = 2) {
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < give_up) {
    if (PeerClosed(fd)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return PeerClosed(fd);
}

class ConnectionSocketTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ConnectionSocketTest, FindsTheAcceptedSocketByItsAddresses) {
  const std::string host = GetParam();
  Connection connection;
  if (!Connect(host, &connection)) {
    GTEST_FAIL() << "no loopback connection over " << host;
  }
  EXPECT_EQ(FindConnectionSocket(host, connection.server_port, host,
                                 connection.client_port),
            connection.server);
  // The same pair the other way round is the client's end.
  EXPECT_EQ(FindConnectionSocket(host, connection.client_port, host,
                                 connection.server_port),
            connection.client);
  EXPECT_EQ(FindConnectionSocket(host, connection.server_port, host,
                                 connection.server_port),
            -1);
  EXPECT_EQ(FindConnectionSocket("192.0.2.1", connection.server_port, host,
                                 connection.client_port),
            -1);
}

TEST_P(ConnectionSocketTest, UnreadBytesAreNotAClose) {
  Connection connection;
  ASSERT_TRUE(Connect(GetParam(), &connection));
  EXPECT_FALSE(PeerClosed(connection.server));
  // A pipelined request waiting to be read.
  ASSERT_EQ(write(connection.client, "GET / HTTP/1.1\r\n\r\n", 18), 18);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(PeerClosed(connection.server));
}

TEST_P(ConnectionSocketTest, CloseIsSeenWithoutReading) {
  Connection connection;
  ASSERT_TRUE(Connect(GetParam(), &connection));
  ASSERT_EQ(write(connection.client, "unread", 6), 6);
  close(connection.client);
  connection.client = -1;
  EXPECT_TRUE(BecomesClosed(connection.server));
  // Still unread: nothing was consumed.
  char buffer[16];
  EXPECT_EQ(recv(connection.server, buffer, sizeof(buffer), MSG_DONTWAIT), 6);
}

TEST_P(ConnectionSocketTest, HalfCloseIsSeen) {
  Connection connection;
  ASSERT_TRUE(Connect(GetParam(), &connection));
  ASSERT_EQ(shutdown(connection.client, SHUT_WR), 0);
  EXPECT_TRUE(BecomesClosed(connection.server));
}

TEST_P(ConnectionSocketTest, ResetIsSeen) {
  Connection connection;
  ASSERT_TRUE(Connect(GetParam(), &connection));
  const linger abort_on_close{.l_onoff = 1, .l_linger = 0};
  ASSERT_EQ(setsockopt(connection.client, SOL_SOCKET, SO_LINGER,
                       &abort_on_close, sizeof(abort_on_close)),
            0);
  close(connection.client);
  connection.client = -1;
  EXPECT_TRUE(BecomesClosed(connection.server));
}

INSTANTIATE_TEST_SUITE_P(Loopback, ConnectionSocketTest,
                         ::testing::Values("127.0.0.1", "::1"));

TEST(PeerClosedTest, ADescriptorThatIsNotOpenCountsAsClosed) {
  Connection connection;
  ASSERT_TRUE(Connect("127.0.0.1", &connection));
  const int fd = connection.server;
  close(fd);
  connection.server = -1;
  EXPECT_TRUE(PeerClosed(fd));
}

}  // namespace
}  // namespace ts::server
