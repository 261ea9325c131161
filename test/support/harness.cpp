// SPDX-License-Identifier: MIT
#include "test/support/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace harness {

namespace fs = std::filesystem;

std::string binary(const std::string& env_name) {
  const char* v = std::getenv(env_name.c_str());
  if (v && *v) return v;
  return "";
}

Process::Process(const std::vector<std::string>& argv, const std::string& log_path,
                 const std::map<std::string, std::string>& env) {
  pid_ = ::fork();
  if (pid_ == 0) {
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
}

Process::~Process() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    wait(10000);
  }
}

bool Process::running() {
  if (reaped_) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = st;
    return false;
  }
  return true;
}

void Process::signal(int signum) {
  if (!reaped_) ::kill(pid_, signum);
}

int Process::wait(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (running()) {
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
  return -1;
}

int run(const std::vector<std::string>& argv, std::string& output, int timeout_ms) {
  TempDir dir;
  const std::string log = dir / "out.log";
  int code;
  {
    Process p(argv, log);
    code = p.wait(timeout_ms);
    if (code == -1) {
      p.signal(SIGKILL);
      p.wait(10000);
    }
  }
  output = read_file(log);
  return code;
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool wait_for_listener(uint16_t port, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::close(fd);
    if (rc == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

bool write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  return static_cast<bool>(out);
}

bool files_equal(const std::string& a, const std::string& b, uint64_t* first_difference) {
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  if (!fa || !fb) return false;
  std::vector<char> ba(1 << 20), bb(1 << 20);
  uint64_t offset = 0;
  for (;;) {
    fa.read(ba.data(), static_cast<std::streamsize>(ba.size()));
    fb.read(bb.data(), static_cast<std::streamsize>(bb.size()));
    std::streamsize na = fa.gcount(), nb = fb.gcount();
    if (na != nb) return false;
    if (na == 0) return true;
    if (std::memcmp(ba.data(), bb.data(), static_cast<size_t>(na)) != 0) {
      if (first_difference) {
        for (std::streamsize i = 0; i < na; ++i)
          if (ba[static_cast<size_t>(i)] != bb[static_cast<size_t>(i)]) {
            *first_difference = offset + static_cast<uint64_t>(i);
            break;
          }
      }
      return false;
    }
    offset += static_cast<uint64_t>(na);
  }
}

bool make_zero_file(const std::string& path, uint64_t size_bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = ::ftruncate(fd, static_cast<off_t>(size_bytes)) == 0;
  ::close(fd);
  return ok;
}

bool is_root() { return ::geteuid() == 0; }

LoopDevice::LoopDevice(const std::string& backing_file) {
  if (!is_root()) {
    why_ = "loop devices need root";
    return;
  }
  std::string out;
  int code = run({"/sbin/losetup", "--find", "--show", backing_file}, out, 30000);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (code != 0 || out.rfind("/dev/loop", 0) != 0) {
    why_ = "losetup failed: " + out;
    return;
  }
  device_ = out;
}

LoopDevice::~LoopDevice() {
  if (device_.empty()) return;
  std::string out;
  for (int i = 0; i < 50; ++i) {  // the kernel may hold it for a moment after close
    if (run({"/sbin/losetup", "-d", device_}, out, 30000) == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

static void override_key(std::string& text, const std::string& dotted, const std::string& value) {
  const size_t dot = dotted.find('.');
  const std::string table = "[" + dotted.substr(0, dot) + "]";
  const std::string key = dotted.substr(dot + 1);
  size_t t = text.find(table + "\n");
  if (t == std::string::npos) {
    text += "\n" + table + "\n" + key + " = " + value + "\n";
    return;
  }
  size_t body = t + table.size() + 1;
  size_t end = text.find("\n[", body);
  if (end == std::string::npos) end = text.size();
  size_t pos = body;
  while (pos < end) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    if (line.rfind(key + " ", 0) == 0 || line.rfind(key + "=", 0) == 0) {
      text.replace(pos, eol - pos, key + " = " + value);
      return;
    }
    pos = eol + 1;
  }
  text.insert(body, key + " = " + value + "\n");
}

void set_config_keys(const std::string& path, const std::map<std::string, std::string>& keys) {
  if (keys.empty()) return;
  std::string text = read_file(path);
  for (const auto& [k, v] : keys) override_key(text, k, v);
  write_file(path, text);
}

Pair make_pair(const std::string& dir, const std::string& target,
               const std::map<std::string, std::string>& clone_overrides,
               const std::map<std::string, std::string>& origin_overrides) {
  Pair p;
  p.port = free_port();
  std::string out;
  int code = run({binary("CLONECTL_BIN"), "pair", "--clone-dir", dir + "/clone", "--origin-dir", dir + "/origin",
                  "--target", target, "--listen", "127.0.0.1:" + std::to_string(p.port)},
                 out);
  if (code != 0) return p;
  p.clone_config = dir + "/clone/cloned.toml";
  p.origin_config = dir + "/origin/origin.toml";
  set_config_keys(p.clone_config, clone_overrides);
  set_config_keys(p.origin_config, origin_overrides);
  return p;
}

}  // namespace harness
