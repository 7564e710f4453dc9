// The accepted TCP socket behind one HTTP request, and whether its client has
// gone. cpp-httplib 0.11 (Debian's) gives a handler no socket and no way to
// learn that the client left (DataSink::is_writable only checks that a write
// would not block, which stays true after the peer's FIN); it does give the
// connection's two addresses (httplib::Request local_addr/local_port,
// remote_addr/remote_port). That pair names exactly one TCP socket of this
// process, so the gateway finds it once per call and polls it for the
// peer's FIN the way nginx notices a client that closed (its 499 "client
// closed request"). See docs/DESIGN.md "HTTP disconnects".
#ifndef TRANSFORMER_SERVING_SERVER_CONNECTION_SOCKET_H_
#define TRANSFORMER_SERVING_SERVER_CONNECTION_SOCKET_H_

#include <string_view>

namespace ts::server {

// The descriptor of this process's connected TCP socket (IPv4 or IPv6) whose
// own address is local_addr:local_port and whose peer is
// remote_addr:remote_port, hosts written as numbers the way
// getnameinfo(NI_NUMERICHOST) writes them (httplib::Request's fields);
// -1 if there is none. Reads /proc/self/fd: one getsockname per open
// descriptor, and getpeername on those whose own address matches.
int FindConnectionSocket(std::string_view local_addr, int local_port,
                         std::string_view remote_addr, int remote_port);

// True once the peer of the connected socket `fd` has closed or shut down
// its sending side (a FIN: POLLRDHUP), the connection was reset or failed
// (POLLHUP, POLLERR), or `fd` is not open (POLLNVAL). Reads nothing: bytes
// the peer sent that the server has not read yet (a pipelined request) do
// not count as a close. Never blocks.
bool PeerClosed(int fd);

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_CONNECTION_SOCKET_H_
