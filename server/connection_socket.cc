#include "server/connection_socket.h"

#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>
#include <string_view>

namespace ts::server {
namespace {

// True if `address` (from getsockname or getpeername) is host:port, the host
// compared as getnameinfo writes it (httplib does the same).
bool SameAddress(const sockaddr_storage& address, socklen_t length,
                 std::string_view host, int port) {
  int actual_port = -1;
  if (address.ss_family == AF_INET) {
    actual_port = ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  } else if (address.ss_family == AF_INET6) {
    actual_port =
        ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  } else {
    return false;
  }
  if (actual_port != port) return false;
  char name[NI_MAXHOST];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&address), length, name,
                  sizeof(name), nullptr, 0, NI_NUMERICHOST) != 0) {
    return false;
  }
  return host == name;
}

}  // namespace

int FindConnectionSocket(std::string_view local_addr, int local_port,
                         std::string_view remote_addr, int remote_port) {
  DIR* descriptors = opendir("/proc/self/fd");
  if (descriptors == nullptr) return -1;
  const int own = dirfd(descriptors);
  int found = -1;
  while (const dirent* entry = readdir(descriptors)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == own) continue;
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    // Not a socket (ENOTSOCK), or closed since the listing: skipped.
    if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&address),
                    &length) != 0 ||
        !SameAddress(address, length, local_addr, local_port)) {
      continue;
    }
    length = sizeof(address);
    if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&address),
                    &length) == 0 &&
        SameAddress(address, length, remote_addr, remote_port)) {
      found = static_cast<int>(fd);
      break;
    }
  }
  closedir(descriptors);
  return found;
}

bool PeerClosed(int fd) {
  pollfd watched{.fd = fd, .events = POLLRDHUP, .revents = 0};
  if (poll(&watched, 1, 0) < 0) return false;  // EINTR, ENOMEM: ask again
  return (watched.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace ts::server
