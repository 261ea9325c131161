// SPDX-License-Identifier: MIT
// Level 3: the control socket of a real cloned. clonectl status asks it; a
// peer that is neither root nor the daemon's user is refused (the test runs a
// client as nobody in a child process); garbage, oversized and idle clients
// get errors within the limits and the daemon keeps serving; clonectl will not
// believe a socket served by another user.
#include <doctest/doctest.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "cloned/daemon/control.h"
#include "cloned/daemon/control_client.h"
#include "cloned/daemon/status.h"
#include "test/support/harness.h"
#include "test/support/requires.h"

using harness::Process;
using harness::TempDir;

namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

int connect_to(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Everything the peer sends until it closes (or timeout_ms passes).
std::string read_all(int fd, int timeout_ms) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);  // sockets and pipes
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Sends raw bytes as root and returns the answer ("CONNECT FAILED" if none).
// The daemon closes after answering, so the bound is only for a daemon that
// never does: generous, as a TSan build beside a loaded CI took over 5 s once.
std::string ask_raw(const std::string& path, const std::string& bytes) {
  int fd = connect_to(path);
  if (fd < 0) return "CONNECT FAILED";
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string answer = read_all(fd, 30000);
  ::close(fd);
  return answer;
}

// Runs `fn` in a child process as nobody; returns what it wrote to the pipe.
template <class Fn>
std::string as_nobody(Fn fn) {
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(pipefd[0]);
    std::string out;
    if (::setgroups(0, nullptr) != 0 || ::setresgid(kNogroup, kNogroup, kNogroup) != 0 ||
        ::setresuid(kNobody, kNobody, kNobody) != 0) {
      out = "SETUID FAILED";
    } else {
      out = fn();
    }
    (void)!::write(pipefd[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string out = read_all(pipefd[0], 15000);
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (out.empty()) out = "the child said nothing; wait status " + std::to_string(status);
  return out;
}

struct Running {
  TempDir d;
  harness::Pair p;
  std::unique_ptr<Process> cloned;
  std::string socket_path;
  std::string clone_dir;

  Running() {
    REQUIRE(harness::make_zero_file(d / "clone.img", 32 << 20));
    p = harness::make_pair(d.path(), d / "clone.img");
    REQUIRE_MESSAGE(!p.clone_config.empty(), "clonectl pair failed");
    clone_dir = p.clone_config.substr(0, p.clone_config.rfind('/'));
    socket_path = clone_dir + "/run/" + cloned::kControlSocketName;
    cloned = std::make_unique<Process>(std::vector<std::string>{harness::binary("CLONED_BIN"), "--config",
                                                                p.clone_config},
                                       d / "cloned.log");
    REQUIRE_MESSAGE(harness::wait_for_listener(p.port, 10000), harness::read_file(d / "cloned.log"));
  }
  std::string log() const { return harness::read_file(d / "cloned.log"); }
  std::string clonectl(const std::vector<std::string>& args, int* code = nullptr) const {
    std::vector<std::string> argv = {harness::binary("CLONECTL_BIN")};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out;
    int rc = harness::run(argv, out, 30000);
    if (code != nullptr) *code = rc;
    return out;
  }
};

}  // namespace

TEST_CASE("clonectl status asks the daemon over its control socket and agrees with a raw status request") {
  Running r;
  REQUIRE(harness::make_zero_file(r.d / "source.img", 32 << 20));
  std::string out;
  int code = harness::run({harness::binary("ORIGIN_BIN"), "--config", r.p.origin_config, "workload", "--source",
                           r.d / "source.img", "--seed", "7", "--bytes", "8M", "--compare", r.d / "clone.img"},
                          out, 300000);
  CHECK_MESSAGE(code == 0, out);

  struct stat st{};
  REQUIRE(::stat(r.socket_path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(!exists(r.clone_dir + "/run/status.toml"));  // no status file any more

  base::Result<std::string> raw = cloned::control_request(r.socket_path, "status", {0});
  REQUIRE_MESSAGE(raw.is_ok(), raw.status().message());
  base::Result<cloned::LiveStatus> live = cloned::decode_live_status(*raw);
  REQUIRE_MESSAGE(live.is_ok(), live.status().message() << "\n" << *raw);
  CHECK(live->pid == r.cloned->pid());
  CHECK(live->state == "consistent");
  CHECK(live->applied_seq > 0);
  CHECK(live->records_received > 0);

  const std::string json = r.clonectl({"status", "--config", r.p.clone_config, "--json"}, &code);
  CHECK(code == 0);
  CHECK_MESSAGE(json.find("\"daemon\":\"running\"") != std::string::npos, json);
  CHECK_MESSAGE(json.find("\"applied_seq\":" + std::to_string(live->applied_seq) + ",") != std::string::npos,
                json << " vs " << live->applied_seq);
  CHECK(json.find("\"lag_records\":0,") != std::string::npos);
  const std::string human = r.clonectl({"status", "--config", r.p.clone_config}, &code);
  CHECK_MESSAGE(human.find("running (pid " + std::to_string(r.cloned->pid()) + ")") != std::string::npos, human);

  r.cloned->signal(SIGTERM);
  REQUIRE(r.cloned->wait(30000) == 0);
  CHECK(!exists(r.socket_path));  // removed on a clean stop
  const std::string stopped = r.clonectl({"status", "--config", r.p.clone_config}, &code);
  CHECK(code == 0);
  CHECK_MESSAGE(stopped.find("daemon:     not running") != std::string::npos, stopped);
  CHECK(stopped.find("a bootable copy") != std::string::npos);
}

TEST_CASE("a peer that is neither root nor the daemon's user is refused and logged" *
          doctest::test_suite("requires root")) {
  test_support::require({test_support::root()});  // it runs a client as nobody
  Running r;
  for (const std::string& dir : {r.d.path(), r.clone_dir, r.clone_dir + "/run"}) ::chmod(dir.c_str(), 0755);

  // The socket's mode (0600) keeps nobody out already...
  std::string seen = as_nobody([&] {
    base::Result<std::string> a = cloned::control_request(r.socket_path, "status", {0});
    return a.is_ok() ? "ANSWERED " + *a : a.status().message();
  });
  CHECK_MESSAGE(seen.find("permission denied") != std::string::npos, seen);

  // ...and if the mode were loosened, the peer check still refuses.
  REQUIRE(::chmod(r.socket_path.c_str(), 0666) == 0);
  seen = as_nobody([&] { return ask_raw(r.socket_path, "status\n"); });
  CHECK_MESSAGE(seen.find("error: permission denied: uid 65534 may not ask cloned") == 0, seen);
  CHECK(seen.find("pid =") == std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK_MESSAGE(r.log().find("control socket: refused a request from uid 65534") != std::string::npos, r.log());

  base::Result<std::string> root = cloned::control_request(r.socket_path, "status", {0});
  CHECK_MESSAGE(root.is_ok(), root.status().message());
  CHECK(r.cloned->running());
}

TEST_CASE("clonectl does not believe a control socket served by another user" * doctest::test_suite("requires root")) {
  test_support::require({test_support::root()});  // it serves a socket as nobody
  Running r;
  r.cloned->signal(SIGTERM);
  REQUIRE(r.cloned->wait(30000) == 0);
  const std::string run_dir = r.clone_dir + "/run";
  for (const std::string& dir : {r.d.path(), r.clone_dir}) ::chmod(dir.c_str(), 0755);
  ::chmod(run_dir.c_str(), 0777);

  // An impostor as nobody answers one request with a made-up status.
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(ready[0]);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(kNogroup, kNogroup, kNogroup) != 0 ||
        ::setresuid(kNobody, kNobody, kNobody) != 0)
      ::_exit(1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", (run_dir + "/control.sock").c_str());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4) != 0) ::_exit(2);
    (void)!::write(ready[1], "r", 1);
    ::alarm(20);
    int c = ::accept(fd, nullptr, nullptr);
    const char fake[] = "pid = 1\nstate = \"consistent\"\n";
    if (c >= 0) (void)!::write(c, fake, sizeof fake - 1);
    ::_exit(0);
  }
  ::close(ready[1]);
  char byte = 0;
  REQUIRE(::read(ready[0], &byte, 1) == 1);
  ::close(ready[0]);

  int code = 0;
  const std::string out = r.clonectl({"status", "--config", r.p.clone_config}, &code);
  CHECK(code == 1);
  CHECK_MESSAGE(out.find("runs as uid 65534") != std::string::npos, out);
  CHECK(out.find("neither root nor the daemon's user") != std::string::npos);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

TEST_CASE("garbage, oversized and idle clients get errors within the limits and the daemon keeps serving") {
  Running r;
  CHECK(ask_raw(r.socket_path, "hello\n").find("error: unknown command 'hello'; the commands are: decide, help, status") == 0);
  CHECK(ask_raw(r.socket_path, std::string("st\x01\xff\x00tus\n", 9)).find("error: the request is not a line of printable text") == 0);
  CHECK(ask_raw(r.socket_path, "status now please\n").find("error: status takes no arguments") == 0);
  CHECK(ask_raw(r.socket_path, "\n").find("error: the request is not a line") == 0);
  const std::string big(64 * 1024, 'a');
  const std::string answer_big = ask_raw(r.socket_path, big);
  CHECK_MESSAGE(answer_big.find("error: the request is longer than 1024 bytes") == 0, answer_big);
  CHECK(ask_raw(r.socket_path, "help\n").find("status\tthe live status") != std::string::npos);
  CHECK(ask_raw(r.socket_path, "status").find("pid = ") != std::string::npos);  // EOF ends a request too

  // As many idle clients as allowed; the next one is told the daemon is busy.
  std::vector<int> idle;
  for (size_t i = 0; i < cloned::kControlClientsMax; ++i) {
    int fd = connect_to(r.socket_path);
    REQUIRE(fd >= 0);
    idle.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const std::string busy = ask_raw(r.socket_path, "status\n");
  CHECK_MESSAGE(busy.find("error: the daemon is busy") == 0, busy);

  // The idle ones are told off and closed after the time limit.
  const auto start = std::chrono::steady_clock::now();
  for (int fd : idle) {
    const std::string a = read_all(fd, 6000);
    CHECK_MESSAGE(a.find("error: no complete request within 2000 ms") == 0, a);
    ::close(fd);
  }
  const auto waited_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("idle clients closed after " << waited_ms << " ms");
  CHECK(waited_ms < 4000);

  base::Result<std::string> after = cloned::control_request(r.socket_path, "status", {0});
  CHECK_MESSAGE(after.is_ok(), after.status().message());
  CHECK(r.cloned->running());
  r.cloned->signal(SIGTERM);
  CHECK(r.cloned->wait(30000) == 0);
}
