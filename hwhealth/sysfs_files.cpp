// SPDX-License-Identifier: MIT
#include "hwhealth/sysfs_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>

namespace hwhealth::sysfs_files {
namespace {

std::string trim(std::string text) {
  const char* blank = " \t\r\n\v\f";
  while (!text.empty() && text.back() == '\0') text.pop_back();
  const size_t first = text.find_first_not_of(blank);
  if (first == std::string::npos) return "";
  const size_t last = text.find_last_not_of(blank);
  return text.substr(first, last - first + 1);
}

// The decimal suffix after `prefix`, or nullopt when `name` is not prefix+digits.
std::optional<int64_t> number_after(const std::string& name, const std::string& prefix) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  const std::string_view digits = std::string_view(name).substr(prefix.size());
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  return parse_integer(digits);
}

}  // namespace

int read_attribute(const std::string& path, std::string& out) {
  out.clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  char buffer[kAttributeBytesMax];
  size_t filled_bytes = 0;
  int err = 0;
  while (filled_bytes < sizeof buffer) {
    const ssize_t n = ::read(fd, buffer + filled_bytes, sizeof buffer - filled_bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n <= 0) break;
    filled_bytes += static_cast<size_t>(n);
  }
  ::close(fd);
  if (err != 0) return err;
  out = trim(std::string(buffer, filled_bytes));
  return 0;
}

std::string attribute_or_empty(const std::string& path) {
  std::string text;
  return read_attribute(path, text) == 0 ? text : "";
}

std::optional<int64_t> parse_integer(std::string_view text, int base) {
  if (base == 16 && (text.starts_with("0x") || text.starts_with("0X"))) text.remove_prefix(2);
  if (text.empty()) return std::nullopt;
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<int64_t> read_integer(const std::string& path, int base) {
  std::string text;
  if (read_attribute(path, text) != 0) return std::nullopt;
  return parse_integer(text, base);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// open(2) + fdopendir rather than opendir: the descriptor is created and
// closed by this thread through calls a thread sanitizer sees. (opendir opens
// inside libc unseen, and the daemon's loop thread closes its sockets inside
// libuv, also unseen: the same descriptor number then looked shared.)
std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return names;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return names;
  }
  while (names.size() < kDirectoryEntriesMax) {
    const dirent* e = ::readdir(d);
    if (e == nullptr) break;
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> numbered_entries(const std::string& dir, const std::string& prefix) {
  std::vector<std::pair<int64_t, std::string>> numbered;
  for (const std::string& name : entries(dir)) {
    if (std::optional<int64_t> number = number_after(name, prefix)) numbered.emplace_back(*number, name);
  }
  std::sort(numbered.begin(), numbered.end());
  std::vector<std::string> names;
  for (auto& entry : numbered) names.push_back(std::move(entry.second));
  return names;
}

std::string resolved_name(const std::string& path) {
  std::error_code error;
  const std::filesystem::path target = std::filesystem::canonical(path, error);
  return error ? "" : target.filename().string();
}

}  // namespace hwhealth::sysfs_files
