// SPDX-License-Identifier: MIT
// Level 3: cloned speaks sd_notify to a real AF_UNIX datagram socket, as
// systemd would have it under Type=notify with WatchdogSec.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "test/support/harness.h"

namespace {

// Collects datagrams until `want` has been seen or the time is up.
bool wait_for_message(int fd, const std::string& want, int timeout_ms, std::string& seen) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) continue;
    std::string msg(buf, static_cast<size_t>(n));
    seen += msg + "\n";
    if (msg.find(want) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("cloned tells systemd it is ready, pings the watchdog, reports status and says it is stopping") {
  harness::TempDir d;
  REQUIRE(harness::make_zero_file(d / "clone.img", 16 << 20));
  harness::Pair p = harness::make_pair(d.path(), d / "clone.img");
  REQUIRE(!p.clone_config.empty());
  const std::string sock_path = d / "notify.sock";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);

  harness::Process cloned({harness::binary("CLONED_BIN"), "--config", p.clone_config}, d / "cloned.log",
                          {{"NOTIFY_SOCKET", sock_path}, {"WATCHDOG_USEC", "400000"}});
  std::string seen;
  CHECK_MESSAGE(wait_for_message(fd, "READY=1", 10000, seen), seen << harness::read_file(d / "cloned.log"));
  CHECK(seen.find("STATUS=fresh at record 0") != std::string::npos);
  CHECK_MESSAGE(wait_for_message(fd, "WATCHDOG=1", 2000, seen), seen);
  CHECK_MESSAGE(wait_for_message(fd, "WATCHDOG=1", 2000, seen), seen);  // and again
  cloned.signal(SIGTERM);
  CHECK_MESSAGE(wait_for_message(fd, "STOPPING=1", 5000, seen), seen);
  CHECK(cloned.wait(30000) == 0);
  ::close(fd);
}
