// SPDX-License-Identifier: MIT
#include "test/support/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <sstream>
#include <thread>

namespace test_support {
namespace {

constexpr const char* kPrefix = "cloned-wol-";

bool run_quietly(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()) == 0; }

std::string output_of(const std::string& command) {
  std::string text;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return text;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) text += buffer;
  ::pclose(pipe);
  return text;
}

bool process_exists(long pid) {
  struct stat st {};
  return ::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

}  // namespace

void remove_stale_namespaces() {
  std::istringstream lines(output_of("ip netns list 2>/dev/null"));
  std::string line;
  while (std::getline(lines, line)) {
    const std::string name = line.substr(0, line.find(' '));
    if (name.rfind(kPrefix, 0) != 0) continue;  // not ours: never touch it
    const size_t dash = name.rfind('-');
    const long pid = std::strtol(name.c_str() + dash + 1, nullptr, 10);
    if (pid <= 0 || pid == ::getpid() || process_exists(pid)) continue;
    std::fprintf(stderr, "removing the stale test namespace %s\n", name.c_str());
    run_quietly("ip netns delete " + name);
  }
}

NetnsPair::NetnsPair() {
  if (::geteuid() != 0) {
    error_ = "needs root to create network namespaces (run the tests as root to cover real frames)";
    return;
  }
  if (!run_quietly("ip -V")) {
    error_ = "needs iproute2's ip command to create network namespaces";
    return;
  }
  remove_stale_namespaces();
  const std::string pid = std::to_string(::getpid());
  a_ = std::string(kPrefix) + "a-" + pid;
  b_ = std::string(kPrefix) + "b-" + pid;
  if (!create() && error_.empty()) error_ = "could not set up the test namespaces and veth pair";
}

bool NetnsPair::create() {
  // Names with our pid left by an earlier process that had the same pid.
  run_quietly("ip netns delete " + a_);
  run_quietly("ip netns delete " + b_);
  created_a_ = run_quietly("ip netns add " + a_);
  created_b_ = run_quietly("ip netns add " + b_);
  if (!created_a_ || !created_b_) {
    error_ = "ip netns add failed (no network namespace support in this kernel or container?)";
    return false;
  }
  return ip(a_, std::string("link add ") + kVethA + " type veth peer name " + kVethB + " netns " + b_) &&
         ip(a_, std::string("addr add ") + kAddressA + "/24 dev " + kVethA) &&
         ip(b_, std::string("addr add ") + kAddressB + "/24 dev " + kVethB) &&
         ip(a_, "link set lo up") && ip(b_, "link set lo up") &&
         ip(a_, std::string("link set ") + kVethA + " up") && ip(b_, std::string("link set ") + kVethB + " up") &&
         wait_until_up();
}

// Until the kernel's link watch has run for both ends, their qdisc drops
// every frame (it runs late on a loaded machine): wait for operstate UP.
bool NetnsPair::wait_until_up() {
  for (int i = 0; i < 200; ++i) {
    if (output_of("ip -n " + a_ + " link show " + kVethA).find("state UP") != std::string::npos &&
        output_of("ip -n " + b_ + " link show " + kVethB).find("state UP") != std::string::npos)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Not a reason to skip: the tests go on and fail where frames are lost.
  std::fprintf(stderr, "the veth pair did not reach operstate UP within 10 s\n");
  return true;
}

NetnsPair::~NetnsPair() {
  for (const auto& [created, name] : {std::pair{created_a_, a_}, std::pair{created_b_, b_}}) {
    if (created && !run_quietly("ip netns delete " + name))
      std::fprintf(stderr, "could not delete the test namespace %s; delete it with ip netns delete\n", name.c_str());
  }
}

bool NetnsPair::ip(const std::string& name_space, const std::string& arguments) const {
  return run_quietly("ip -n " + name_space + " " + arguments);
}

bool run_in_netns(const std::string& name_space, const std::function<void()>& work, std::string& error) {
  bool joined = false;
  std::thread worker([&] {
    const int fd = ::open(("/run/netns/" + name_space).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      error = "cannot open /run/netns/" + name_space + ": " + std::strerror(errno);
      return;
    }
    // Only this thread changes namespace; the rest of the process stays put.
    if (::setns(fd, CLONE_NEWNET) != 0) {
      error = "cannot join " + name_space + ": " + std::strerror(errno);
      ::close(fd);
      return;
    }
    ::close(fd);
    joined = true;
    work();
  });
  worker.join();
  return joined;
}

}  // namespace test_support
