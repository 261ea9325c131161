// SPDX-License-Identifier: MIT
// Pairing: the matched configuration and secret files of the two sticks, and
// the HOST:PORT syntax both configurations use.
#include <arpa/inet.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <vector>

#include "base/bytes.h"
#include "base/file_io.h"
#include "base/units.h"
#include "config/config.h"

namespace config {
namespace {

// A basic TOML string: quotes, backslashes and control characters escaped, so
// any path or disk model survives the round trip through the loader.
std::string toml_quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(byte));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string utc_now_text() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &tm);
  return text;
}

std::string clone_toml(const proto::PairId& id, const blockio::DiskIdentity& disk, const std::string& listen) {
  std::string t;
  t += "# cloned.toml: configuration of the clone daemon, written at pairing on " + utc_now_text() + ".\n";
  t += "# pair.secret next to this file holds the pairing secret; the original's stick has\n";
  t += "# the same secret and pair id. Keep both secret files private (mode 0600).\n";
  t += "# [target] records the identity of the clone's disk as probed at pairing: cloned\n";
  t += "# refuses to start on a disk that does not match it. Every other key, with its\n";
  t += "# default, is described in cloned.toml.example.\n\n";
  t += "[pair]\nid = " + toml_quote(base::to_hex(id)) + "\nsecret_file = \"pair.secret\"\n\n";
  t += "[target]\npath = " + toml_quote(disk.path) + "\n";
  t += "kind = " + toml_quote(disk.kind) + "\n";
  t += "size_bytes = " + std::to_string(disk.size_bytes) + "  # " + base::format_bytes(disk.size_bytes) + "\n";
  t += "logical_block_bytes = " + std::to_string(disk.logical_block_bytes) + "\n";
  t += "serial = " + toml_quote(disk.serial) + "\n";
  t += "wwn = " + toml_quote(disk.wwn) + "\n";
  t += "model = " + toml_quote(disk.model) + "\n";
  if (disk.partition != 0) {
    t += "partition = " + std::to_string(disk.partition) + "  # its number on that disk\n";
    t += "partition_start_bytes = " + std::to_string(disk.partition_start_bytes) + "  # its first byte on that disk\n";
  }
  t += "\n[listen]\naddress = " + toml_quote(listen) + "\n\n";
  t += "# Relative to this file's directory.\n";
  t += "[state]\ndir = \"state\"\nruntime_dir = \"run\"\n";
  return t;
}

std::string origin_toml(const proto::PairId& id, const blockio::DiskIdentity& disk, const std::string& listen,
                        const std::string& listen_host) {
  std::string t;
  t += "# origin.toml: configuration of the original's replication service, written at\n";
  t += "# pairing on " + utc_now_text() + ".\n";
  t += "# pair.secret next to this file holds the pairing secret; the clone's stick has the\n";
  t += "# same secret and pair id. Keep both secret files private (mode 0600).\n";
  t += "# [clone] records the clone's disk geometry: the original's disk must match it.\n";
  t += "# Every other key, with its default, is described in origin.toml.example.\n\n";
  t += "[pair]\nid = " + toml_quote(base::to_hex(id)) + "\nsecret_file = \"pair.secret\"\n\n";
  t += "[clone]\n";
  if (listen_host == "0.0.0.0" || listen_host == "::") {
    t += "# The clone listens on all its addresses: put its address on the home network here.\n";
  }
  t += "address = " + toml_quote(listen) + "\n";
  t += "disk_size_bytes = " + std::to_string(disk.size_bytes) + "  # " + base::format_bytes(disk.size_bytes) + "\n";
  t += "logical_block_bytes = " + std::to_string(disk.logical_block_bytes) + "\n\n";
  t += "# Relative to this file's directory.\n";
  t += "[origin]\nstate_dir = \"state\"\n";
  return t;
}

bool same_dir(const std::filesystem::path& a, const std::filesystem::path& b) {
  std::error_code error_a, error_b;
  std::filesystem::path canonical_a = std::filesystem::weakly_canonical(a, error_a);
  std::filesystem::path canonical_b = std::filesystem::weakly_canonical(b, error_b);
  if (error_a || error_b) return a.lexically_normal() == b.lexically_normal();
  return canonical_a == canonical_b;
}

struct PairFile {
  std::string path;
  std::string content;
  mode_t mode;
};

base::Status refuse_existing(const std::vector<PairFile>& files) {
  for (const PairFile& file : files) {
    struct stat st {};
    if (::lstat(file.path.c_str(), &st) == 0) {
      return base::Status::error(EEXIST, "cannot pair: " + file.path +
                                             " already exists; remove it first or choose "
                                             "another directory");
    }
    if (errno != ENOENT) return base::Status::from_errno("cannot pair: cannot check " + file.path);
  }
  return base::Status::ok();
}

// The directories it creates are 0755 whatever the umask: cloned refuses a
// secret in a directory others may write (a umask of 002 would make one).
constexpr mode_t kPairDirMode = 0755;

// Moves `temp` to `path` unless `path` exists. RENAME_NOREPLACE makes that one
// step (ext4, vfat and exfat sticks have it); a filesystem without it gets a
// check, then a rename (a pairing is run by hand, nothing else makes its files).
base::Status move_into_place(const std::string& temp, const std::string& path) {
  if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) return base::Status::ok();
  if (errno != EINVAL && errno != ENOSYS) return base::Status::from_errno("cannot create " + path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return base::Status::error(EEXIST, "cannot create " + path + ": it exists");
  if (errno != ENOENT) return base::Status::from_errno("cannot check for " + path);
  if (::rename(temp.c_str(), path.c_str()) != 0) return base::Status::from_errno("cannot create " + path);
  return base::Status::ok();
}

// Whole or absent, and never replacing a file: the content goes to a new
// temporary name beside it (NAME.XXXXXX), is synced, and is moved to its own
// name only if that does not exist, even if it appeared since the check. A
// crash leaves at most the temporary file, never a truncated secret or
// configuration under the name cloned reads. On failure nothing it made is
// left: neither the temporary file nor, if the directory could not be
// synced, the file under its name.
base::Status write_new_file(const PairFile& file) {
  std::string temp = file.path + ".XXXXXX";
  int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return base::Status::from_errno("cannot create a file beside " + file.path);
  base::Status status;
  if (::fchmod(fd, file.mode) != 0) status = base::Status::from_errno("cannot set the mode of " + temp);
  size_t done = 0;
  while (status && done < file.content.size()) {
    ssize_t n = ::write(fd, file.content.data() + done, file.content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) status = base::Status::from_errno("cannot write " + temp);
    if (n > 0) done += static_cast<size_t>(n);
  }
  if (status && ::fsync(fd) != 0) status = base::Status::from_errno("cannot sync " + temp);
  ::close(fd);
  if (status) status = move_into_place(temp, file.path);
  if (!status) {
    ::unlink(temp.c_str());
    return status;
  }
  status = base::sync_dir(base::parent_dir(file.path));
  if (!status) ::unlink(file.path.c_str());
  return status;
}

// All four files or none: a half-written pair would be refused next time as
// "already exists", so the files already written are removed on failure
// (write_new_file leaves nothing of the one that failed, and never touches a
// file it did not make).
base::Status write_all(const std::vector<PairFile>& files) {
  for (size_t i = 0; i < files.size(); ++i) {
    base::Status status = write_new_file(files[i]);
    if (status) continue;
    for (size_t j = 0; j < i; ++j) ::unlink(files[j].path.c_str());
    return status.with_context("cannot pair");
  }
  return base::Status::ok();
}

}  // namespace

base::Status write_pair(const PairRequest& request) {
  std::string host;
  uint16_t port = 0;
  BASE_TRY(parse_host_port(request.listen, host, port).with_context("cannot pair"));
  if (!is_ip_literal(host))
    return base::Status::error(EINVAL, "cannot pair: the listen address names the host \"" + host +
                                           "\"; give an IP address of the clone (the original connects to it)");
  const std::filesystem::path clone_dir(request.clone_dir), origin_dir(request.origin_dir);
  if (same_dir(clone_dir, origin_dir)) {
    return base::Status::error(EINVAL,
                               "cannot pair: the clone and the original need two "
                               "different directories (one for each stick), not " +
                                   request.clone_dir + " twice");
  }
  std::vector<PairFile> files = {
      {(clone_dir / "pair.secret").string(), "", 0600},
      {(clone_dir / "cloned.toml").string(), "", 0644},
      {(origin_dir / "pair.secret").string(), "", 0600},
      {(origin_dir / "origin.toml").string(), "", 0644},
  };
  BASE_TRY(refuse_existing(files));
  base::Result<blockio::DiskIdentity> disk = blockio::probe_identity(request.target_path);
  if (!disk) return disk.status().with_context("cannot pair with target " + request.target_path);
  BASE_TRY(base::make_dirs(request.clone_dir, kPairDirMode).with_context("cannot pair"));
  BASE_TRY(base::make_dirs(request.origin_dir, kPairDirMode).with_context("cannot pair"));
  if (sodium_init() < 0) return base::Status::error(EIO, "cannot pair: libsodium failed to start");

  PairSecret secret;
  randombytes_buf(secret.bytes.data(), secret.bytes.size());
  proto::PairId id{};
  randombytes_buf(id.data(), id.size());
  std::string secret_text = base::to_hex(secret.bytes) + "\n";
  sodium_memzero(secret.bytes.data(), secret.bytes.size());
  files[0].content = files[2].content = secret_text;
  // [target] path is the name the person gave (a /dev/disk/by-id/ name stays
  // the same disk across boots, /dev/sdX may not), made absolute, links kept.
  blockio::DiskIdentity recorded = *disk;
  recorded.path = std::filesystem::absolute(request.target_path).lexically_normal().string();
  files[1].content = clone_toml(id, recorded, request.listen);
  files[3].content = origin_toml(id, *disk, request.listen, host);
  base::Status status = write_all(files);
  sodium_memzero(secret_text.data(), secret_text.size());
  sodium_memzero(files[0].content.data(), files[0].content.size());
  sodium_memzero(files[2].content.data(), files[2].content.size());
  return status;
}

bool is_ip_literal(const std::string& host) {
  in6_addr v6{};
  in_addr v4{};
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

base::Status parse_host_port(const std::string& text, std::string& host, uint16_t& port) {
  auto bad = [&text](const std::string& why) {
    return base::Status::error(EINVAL, "\"" + text +
                                           "\" is not HOST:PORT (such as 127.0.0.1:7227 or "
                                           "[::1]:7227): " +
                                           why);
  };
  std::string parsed_host;
  std::string port_text;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) return bad("the ']' after the IPv6 address is missing");
    parsed_host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') return bad("the port is missing");
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return bad("the port is missing");
    parsed_host = text.substr(0, colon);
    if (parsed_host.find(':') != std::string::npos) return bad("an IPv6 address goes in brackets");
    port_text = text.substr(colon + 1);
  }
  if (parsed_host.empty()) return bad("the host is empty");
  for (char c : parsed_host) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '[' || c == ']' || c == '/') {
      return bad("the host contains '" + std::string(1, c) + "'");
    }
  }
  uint32_t value = 0;
  bool digits = !port_text.empty() && port_text.size() <= 5;
  for (char c : port_text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) digits = false;
    if (digits) value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (!digits || value == 0 || value > 65535) return bad("the port must be between 1 and 65535");
  host = parsed_host;
  port = static_cast<uint16_t>(value);
  return base::Status::ok();
}

}  // namespace config
