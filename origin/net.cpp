// SPDX-License-Identifier: MIT
#include "origin/net.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

namespace origin::net {

uint64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1'000'000;
}

base::Status wait_fd(int fd, short events, uint64_t deadline_ms) {
  for (;;) {
    const uint64_t now = now_ms();
    if (now >= deadline_ms) return base::Status::error(ETIMEDOUT, "timed out");
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, static_cast<int>(deadline_ms - now));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return base::Status::from_errno("poll failed");
    if (rc > 0) return base::Status::ok();
  }
}

namespace {

base::Result<base::UniqueFd> connect_one(const addrinfo* ai, uint64_t deadline_ms, const std::string& where) {
  base::UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
  if (!fd) return base::Status::from_errno("cannot create a socket");
  int one = 1;
  (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS)
    return base::Status::from_errno("cannot connect to the clone at " + where);
  base::Status ready = wait_fd(fd.get(), POLLOUT, deadline_ms);
  if (!ready.is_ok())
    return base::Status::error(ETIMEDOUT, "cannot connect to the clone at " + where + ": no answer in time");
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) return base::Status::from_errno(err, "cannot connect to the clone at " + where);
  return fd;
}

}  // namespace

base::Result<base::UniqueFd> connect_tcp(const std::string& host, uint16_t port, uint32_t timeout_ms) {
  const std::string where = host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0)
    return base::Status::error(EHOSTUNREACH, "cannot resolve the clone's address " + host + ": " + gai_strerror(rc));
  const uint64_t deadline = now_ms() + timeout_ms;
  base::Status last = base::Status::error(EHOSTUNREACH, "no address for " + where);
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    base::Result<base::UniqueFd> fd = connect_one(ai, deadline, where);
    if (fd) {
      ::freeaddrinfo(list);
      return fd;
    }
    last = fd.status();
  }
  ::freeaddrinfo(list);
  return last;
}

base::Status write_all(int fd, base::ByteSpan bytes, uint64_t deadline_ms) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return base::Status::from_errno("sending to the clone failed");
    if (!wait_fd(fd, POLLOUT, deadline_ms).is_ok())
      return base::Status::error(ETIMEDOUT, "sending to the clone timed out");
  }
  return base::Status::ok();
}

base::Status read_exact(int fd, base::MutableByteSpan out, uint64_t deadline_ms) {
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::recv(fd, out.data() + got, out.size() - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return base::Status::error(ECONNRESET, "the clone closed the connection");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return base::Status::from_errno("receiving from the clone failed");
    if (!wait_fd(fd, POLLIN, deadline_ms).is_ok())
      return base::Status::error(ETIMEDOUT, "the clone did not answer in time");
  }
  return base::Status::ok();
}

}  // namespace origin::net
