// SPDX-License-Identifier: MIT
#include "base/file_io.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <thread>

#include "base/unique_fd.h"

namespace base {

namespace {

std::string request(const char* what, uint64_t offset_bytes, size_t length_bytes) {
  return std::string(what) + " at offset=" + std::to_string(offset_bytes) + " len=" + std::to_string(length_bytes);
}

std::string ended_early(const char* what, uint64_t offset_bytes, size_t length_bytes, size_t done_bytes) {
  return request(what, offset_bytes, length_bytes) + " stopped after " + std::to_string(done_bytes) +
         " bytes: the file or device ended early";
}

}  // namespace

Result<size_t> pread_upto(int fd, MutableByteSpan out, uint64_t offset_bytes) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset_bytes + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::from_errno(request("read", offset_bytes, out.size()) + " failed");
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Status pread_full(int fd, MutableByteSpan out, uint64_t offset_bytes) {
  Result<size_t> got = pread_upto(fd, out, offset_bytes);
  if (!got) return got.status();
  if (*got < out.size()) return Status::error(EIO, ended_early("read", offset_bytes, out.size(), *got));
  return Status::ok();
}

Status pwrite_full(int fd, ByteSpan data, uint64_t offset_bytes) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset_bytes + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::from_errno(request("write", offset_bytes, data.size()) + " failed");
    if (n == 0) return Status::error(EIO, ended_early("write", offset_bytes, data.size(), done));
    done += static_cast<size_t>(n);
  }
  return Status::ok();
}

Status make_dirs(const std::string& dir, mode_t mode) {
  if (dir.empty()) return Status::error(EINVAL, "cannot create a directory without a name");
  for (size_t end = dir.find('/', 1);; end = dir.find('/', end + 1)) {
    const std::string part = dir.substr(0, end);
    if (part.back() != '/') {  // "a//b" names "a/" on the way
      if (::mkdir(part.c_str(), mode) == 0) {
        if (::chmod(part.c_str(), mode) != 0) return Status::from_errno("cannot set the mode of directory " + part);
      } else if (errno != EEXIST) {
        return Status::from_errno("cannot create directory " + part);
      }
    }
    if (end == std::string::npos) break;
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return Status::from_errno("cannot use directory " + dir);
  if (!S_ISDIR(st.st_mode)) return Status::error(ENOTDIR, dir + " is not a directory");
  return Status::ok();
}

Status sync_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Status::from_errno("cannot open the directory " + dir + " to sync it");
  if (::fsync(fd.get()) != 0) return Status::from_errno("cannot sync the directory " + dir);
  return Status::ok();
}

std::string parent_dir(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Status lock_exclusive(int fd, std::chrono::milliseconds wait, std::chrono::milliseconds step) {
  const auto until = std::chrono::steady_clock::now() + wait;
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return Status::ok();
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return Status::from_errno("flock");
    if (std::chrono::steady_clock::now() >= until) return Status::error(EWOULDBLOCK, "another program holds the lock");
    std::this_thread::sleep_for(step);
  }
}

}  // namespace base
