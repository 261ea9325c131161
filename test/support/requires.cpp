// SPDX-License-Identifier: MIT
#include "test/support/requires.h"

#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <vector>

namespace test_support {
namespace {

// PATH plus the sbin directories, which a non-login root shell may lack.
std::vector<std::string> search_path() {
  std::vector<std::string> dirs;
  const char* env = std::getenv("PATH");
  std::istringstream parts(env != nullptr ? env : "");
  std::string dir;
  while (std::getline(parts, dir, ':')) {
    if (!dir.empty()) dirs.push_back(dir);
  }
  for (const char* extra : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) dirs.emplace_back(extra);
  return dirs;
}

// Whether a child process may create a network namespace. The child exits at
// once, so the namespace dies with it; the parent's namespace is untouched.
bool can_unshare_network() {
  const pid_t child = ::fork();
  if (child < 0) return false;
  if (child == 0) ::_exit(::unshare(CLONE_NEWNET) == 0 ? 0 : 1);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

Requirement root() {
  if (::geteuid() == 0) return {};
  return {"needs root (run the tests as root to cover this)"};
}

Requirement program(const std::string& name, const std::string& package) {
  for (const std::string& dir : search_path()) {
    if (::access((dir + "/" + name).c_str(), X_OK) == 0) return {};
  }
  return {"needs " + name + " (Debian package " + package + "; scripts/setup.sh installs it)"};
}

Requirement device(const std::string& path, const std::string& why) {
  if (::access(path.c_str(), R_OK | W_OK) == 0) return {};
  return {"needs " + path + " " + why};
}

Requirement loop_devices() {
  if (::geteuid() != 0) return {"needs root to attach loop devices (run the tests as root to cover them)"};
  if (Requirement losetup = program("losetup", "mount"); !losetup.missing.empty()) return losetup;
  return device("/dev/loop-control", "to attach loop devices (no loop support in this kernel or container?)");
}

Requirement network_namespaces() {
  if (::geteuid() != 0) return {"needs root to create network namespaces (run the tests as root to cover them)"};
  if (Requirement ip = program("ip", "iproute2"); !ip.missing.empty()) return ip;
  if (!can_unshare_network())
    return {"cannot create a network namespace (needs CAP_SYS_ADMIN and kernel support; in a container?)"};
  return {};
}

Requirement that(bool met, const std::string& missing) { return met ? Requirement{} : Requirement{missing}; }

void require(std::initializer_list<Requirement> requirements) {
  std::string why;
  for (const Requirement& r : requirements) {
    if (r.missing.empty()) continue;
    if (!why.empty()) why += "; ";
    why += r.missing;
  }
  if (!why.empty()) skip(why);
}

void skip(const std::string& reason) {
  std::printf("skipped: %s\n", reason.c_str());
  std::fflush(stdout);
  std::_Exit(77);  // meson: SKIP. _Exit: no static destructors run behind a half-run test.
}

std::string first_line_of(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return "";
  char line[512] = {};
  const bool got = std::fgets(line, sizeof line, pipe) != nullptr;
  const int status = ::pclose(pipe);
  if (!got || status != 0) return "";
  std::string text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

bool is_block_device(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

}  // namespace test_support
