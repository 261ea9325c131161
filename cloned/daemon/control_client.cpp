// SPDX-License-Identifier: MIT
#include "cloned/daemon/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "base/unique_fd.h"

namespace cloned {

namespace {

int64_t mono_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// Waits for `events` until the deadline; false on timeout.
bool wait_for(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    const int64_t left = deadline_ms - mono_ms();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return true;  // the following call reports the error
  }
}

}  // namespace

base::Result<std::string> control_request(const std::string& socket_path, const std::string& request,
                                          const std::vector<uid_t>& server_uids, int timeout_ms) {
  const int64_t deadline = mono_ms() + timeout_ms;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path)
    return base::Status::error(ENAMETOOLONG, "the control socket path " + socket_path + " is too long.");
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  base::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return base::Status::from_errno("cannot create a unix socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    if (err == EACCES)
      return base::Status::error(EACCES, "cannot connect to " + socket_path +
                                             ": permission denied; run clonectl as root (or as the daemon's user).");
    return base::Status::from_errno(err, "cannot connect to " + socket_path);
  }
  ucred server{};
  socklen_t len = sizeof server;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &server, &len) != 0)
    return base::Status::from_errno("cannot read the credentials of " + socket_path);
  if (std::find(server_uids.begin(), server_uids.end(), server.uid) == server_uids.end())
    return base::Status::error(EPERM, "the process listening on " + socket_path + " runs as uid " +
                                          std::to_string(server.uid) + " (pid " + std::to_string(server.pid) +
                                          "), which is neither root nor the daemon's user: not asking it.");
  const std::string line = request + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    if (!wait_for(fd.get(), POLLOUT, deadline))
      return base::Status::error(ETIMEDOUT, "the daemon did not take the request in time");
    ssize_t n = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::Status::from_errno("cannot send the request to " + socket_path);
    sent += static_cast<size_t>(n);
  }
  std::string answer;
  char buf[4096];
  for (;;) {
    if (!wait_for(fd.get(), POLLIN, deadline))
      return base::Status::error(ETIMEDOUT, "the daemon did not answer within " + std::to_string(timeout_ms) + " ms");
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::Status::from_errno("cannot read the daemon's answer");
    if (n == 0) break;
    answer.append(buf, static_cast<size_t>(n));
    if (answer.size() > kControlAnswerBytesMax)
      return base::Status::error(EPROTO, "the daemon's answer is longer than " +
                                             std::to_string(kControlAnswerBytesMax) + " bytes");
  }
  if (answer.rfind("error: ", 0) == 0) {
    while (!answer.empty() && answer.back() == '\n') answer.pop_back();
    return base::Status::error(EREMOTEIO, "cloned: " + answer.substr(7));
  }
  if (answer.empty()) return base::Status::error(EPROTO, "the daemon closed the connection without an answer");
  return answer;
}

}  // namespace cloned
