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

// The port of an IPv4 or IPv6 address; -1 for other families.
int PortOf(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  }
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  }
  return -1;
}

// True if the host of `address` is `host` as getnameinfo writes it (httplib
// does the same).
bool SameHost(const sockaddr_storage& address, socklen_t length,
              std::string_view host) {
  char name[NI_MAXHOST];
  return getnameinfo(reinterpret_cast<const sockaddr*>(&address), length, name,
                     sizeof(name), nullptr, 0, NI_NUMERICHOST) == 0 &&
         host == name;
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
    const long number = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || number == own) continue;
    const int fd = static_cast<int>(number);
    // Ports first (two system calls); the hosts, whose text getnameinfo
    // writes, only for the few sockets with both ports right. Not a socket
    // (ENOTSOCK), not connected, or closed since the listing: skipped.
    sockaddr_storage local{};
    socklen_t local_length = sizeof(local);
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof(peer);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length) !=
            0 ||
        PortOf(local) != local_port ||
        getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_length) !=
            0 ||
        PortOf(peer) != remote_port) {
      continue;
    }
    if (SameHost(local, local_length, local_addr) &&
        SameHost(peer, peer_length, remote_addr)) {
      found = fd;
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
