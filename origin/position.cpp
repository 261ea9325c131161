// SPDX-License-Identifier: MIT
#include "origin/position.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/file_io.h"
#include "base/unique_fd.h"

namespace origin {

namespace {

bool parse_u64(const std::string& s, uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

base::Status write_file_durably(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  base::UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return base::Status::from_errno("cannot write " + tmp);
  ssize_t n = ::write(fd.get(), text.data(), text.size());
  const bool ok = n == static_cast<ssize_t>(text.size()) && ::fsync(fd.get()) == 0;
  const int err = errno;
  fd.reset();
  if (!ok) return base::Status::from_errno(err, "cannot write " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return base::Status::from_errno("cannot rename " + tmp + " to " + path);
  (void)base::sync_dir(base::parent_dir(path));  // best effort: the rename is what matters
  return base::Status::ok();
}

}  // namespace

std::string position_path(const std::string& state_dir) { return state_dir + "/origin.position"; }

base::Result<OriginPosition> load_position(const std::string& state_dir) {
  BASE_TRY(base::make_dirs(state_dir, 0700));
  const std::string path = position_path(state_dir);
  OriginPosition p;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return p;  // a fresh pair
    return base::Status::from_errno("cannot read " + path);
  }
  std::ifstream in(path);
  if (!in) return base::Status::error(EIO, "cannot read " + path + ".");
  std::string line;
  int seen = 0;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    const std::string key = eq == std::string::npos ? line : line.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : line.substr(eq + 1);
    if (key == "resync_source") {
      if (value.empty() || value.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789:") != std::string::npos)
        return base::Status::error(EBADMSG, path + " has an unreadable line \"" + line + "\"; fix or remove it.");
      p.resync_source = value;
      continue;
    }
    if (key == "log_writes_first" || key == "log_writes_previous") {
      if ((key == "log_writes_first" && value.empty()) ||
          value.find_first_not_of("0123456789abcdef") != std::string::npos)
        return base::Status::error(EBADMSG, path + " has an unreadable line \"" + line + "\"; fix or remove it.");
      (key == "log_writes_first" ? p.log_writes.first_digest : p.log_writes.previous_digest) = value;
      continue;
    }
    uint64_t v = 0;
    if (eq == std::string::npos || !parse_u64(value, v))
      return base::Status::error(EBADMSG, path + " has an unreadable line \"" + line + "\"; fix or remove it.");
    if (key == "next_seq") {
      p.next_seq = v;
      seen |= 1;
    } else if (key == "next_epoch") {
      p.next_epoch = v;
      seen |= 2;
    } else if (key == "clean") {
      p.clean = v != 0;
      seen |= 4;
    } else if (key == "generation" && v != 0) {
      p.generation = v;
    } else if (key == "resync_generation") {
      p.resync_generation = v;
    } else if (key == "log_writes_next_entry") {
      p.log_writes.next_entry = v;
    } else if (key == "log_writes_next_offset") {
      p.log_writes.next_offset = v;
    } else if (key == "log_writes_first_bytes") {
      p.log_writes.first_bytes = v;
    } else {
      return base::Status::error(EBADMSG, path + " has an unknown key \"" + key + "\"; fix or remove it.");
    }
  }
  if (seen != 7 || p.next_seq == 0 || p.next_epoch == 0)
    return base::Status::error(EBADMSG, path + " is incomplete; fix or remove it.");
  return p;
}

base::Status save_position(const std::string& state_dir, const OriginPosition& p) {
  BASE_TRY(base::make_dirs(state_dir, 0700));
  std::ostringstream text;
  text << "next_seq=" << p.next_seq << "\nnext_epoch=" << p.next_epoch << "\nclean=" << (p.clean ? 1 : 0)
       << "\ngeneration=" << p.generation << "\nresync_generation=" << p.resync_generation << "\n";
  if (p.resync_generation != 0 && !p.resync_source.empty()) text << "resync_source=" << p.resync_source << "\n";
  if (p.log_writes.active())
    text << "log_writes_first=" << p.log_writes.first_digest << "\nlog_writes_next_entry=" << p.log_writes.next_entry
         << "\nlog_writes_next_offset=" << p.log_writes.next_offset
         << "\nlog_writes_first_bytes=" << p.log_writes.first_bytes
         << "\nlog_writes_previous=" << p.log_writes.previous_digest << "\n";
  return write_file_durably(position_path(state_dir), text.str());
}

base::Result<OriginPosition> load_clean_position(const std::string& state_dir) {
  base::Result<OriginPosition> pos = load_position(state_dir);
  if (!pos) return pos;
  if (pos->resync_generation != 0)
    return base::Status::error(EBUSY, "a resync to generation " + std::to_string(pos->resync_generation) +
                                          " is under way; finish it first: clone-origin resync --source IMAGE");
  if (pos->clean) return pos;
  if (pos->log_writes.active())
    return base::Status::error(EBUSY, "a dm-log-writes replay stopped with records the clone may hold past " +
                                          position_path(state_dir) +
                                          "; continue it (clone-origin replay --log-writes LOG), or bring the clone "
                                          "to the image with a resync: clone-origin resync --source IMAGE");
  return base::Status::error(EBUSY, "an earlier run stopped before the clone acknowledged all of its records (" +
                                        position_path(state_dir) +
                                        " says so), so the source image may hold writes the clone never got; bring "
                                        "the clone to the image with a resync: clone-origin resync --source IMAGE");
}

}  // namespace origin
