// SPDX-License-Identifier: MIT
#include "blockio/sysfs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <sstream>

#include "blockio/unique_fd.h"

namespace blockio {
namespace {

constexpr size_t kSmallFileBytesMax = 16 << 20;

std::string read_whole(const std::string& path) {
  std::string text;
  return read_small_file(path, text) == 0 ? text : "";
}

std::string trim(const std::string& text) {
  const char* blank = " \t\r\n\v\f";
  std::string out = text;
  while (!out.empty() && out.back() == '\0') out.pop_back();
  const size_t first = out.find_first_not_of(blank);
  if (first == std::string::npos) return "";
  const size_t last = out.find_last_not_of(blank);
  return out.substr(first, last - first + 1);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// "8:16\n" -> makedev(8, 16); 0 if the text is not a device number.
dev_t parse_dev(const std::string& text) {
  unsigned major_number = 0, minor_number = 0;
  char colon = 0;
  std::istringstream in(text);
  if (!(in >> major_number >> colon >> minor_number) || colon != ':') return 0;
  return makedev(major_number, minor_number);
}

}  // namespace

int read_small_file(const std::string& path, std::string& out) {
  out.clear();
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno;
  char chunk[4096];
  while (out.size() < kSmallFileBytesMax) {
    const ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return 0;
    out.append(chunk, static_cast<size_t>(n));
  }
  return EFBIG;
}

std::string sysfs_dir_of(dev_t device) {
  const std::string link =
      "/sys/dev/block/" + std::to_string(major(device)) + ":" + std::to_string(minor(device));
  char resolved[PATH_MAX];
  if (::realpath(link.c_str(), resolved) == nullptr) return "";
  return resolved;
}

std::string sysfs_disk_dir_of(dev_t device) {
  std::string dir = sysfs_dir_of(device);
  if (dir.empty() || !exists(dir + "/partition")) return dir;
  // A partition's directory sits inside its disk's directory.
  return dir.substr(0, dir.rfind('/'));
}

dev_t whole_disk_of(dev_t device) {
  const std::string dir = sysfs_disk_dir_of(device);
  if (dir.empty()) return device;
  const dev_t disk = parse_dev(read_attribute(dir + "/dev"));
  return disk != 0 ? disk : device;
}

std::string read_attribute(const std::string& path) { return trim(read_whole(path)); }

std::string read_vpd_serial(const std::string& path) {
  // SPC: byte 1 is the page code (0x80), bytes 2..3 the length, then ASCII.
  const std::string page = read_whole(path);
  if (page.size() < 4 || static_cast<uint8_t>(page[1]) != 0x80) return "";
  const size_t length = (static_cast<size_t>(static_cast<uint8_t>(page[2])) << 8) | static_cast<uint8_t>(page[3]);
  return trim(page.substr(4, length));
}

}  // namespace blockio
