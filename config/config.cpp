// SPDX-License-Identifier: MIT
// Loading cloned.toml and origin.toml. The keys, their defaults and ranges
// are documented in config.h and in dist/*.toml.example; keep all three in
// step.
#include "config/config.h"

#include <cctype>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "base/bytes.h"
#include "config/toml_reader.h"

namespace config {
namespace {

using detail::Need;
using detail::TomlDoc;
using detail::TomlSection;

// A configuration file is a few hundred bytes; anything much larger is not one.
constexpr size_t kConfigBytesMax = 1u << 20;
constexpr uint64_t kDiskBytesMax = uint64_t{1} << 62;
constexpr uint32_t kBlockBytesMin = 512;
constexpr uint32_t kBlockBytesMax = 64 * 1024;

base::Result<std::string> read_config_text(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return base::Status::from_errno(path + ": cannot read the configuration file");
  std::string text;
  char buffer[8192];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      base::Status status = base::Status::from_errno(path + ": cannot read the configuration file");
      ::close(fd);
      return status;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kConfigBytesMax) {
      ::close(fd);
      return base::Status::error(EFBIG, path + ": is larger than 1 MiB; it is not a configuration file");
    }
  }
  ::close(fd);
  return text;
}

// toml++ reports syntax errors by throwing; they become a Status here, the
// only place where config parsing meets exceptions.
base::Result<toml::table> parse_config(const std::string& path) {
  base::Result<std::string> text = read_config_text(path);
  if (!text) return text.status();
  try {
    return toml::parse(*text, path);
  } catch (const toml::parse_error& error) {
    const toml::source_position& at = error.source().begin;
    return base::Status::error(EINVAL, path + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
                                           ": TOML syntax error: " + std::string(error.description()));
  }
}

// Relative paths in a config file are relative to the file's directory, so a
// pair of sticks works wherever it is mounted.
std::string resolve(const std::string& config_dir, const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_relative()) p = std::filesystem::path(config_dir) / p;
  return p.lexically_normal().string();
}

struct Located {
  std::string path;  // absolute
  std::string dir;   // its directory
};

Located locate(const std::string& path) {
  std::error_code ignored;
  std::filesystem::path abs = std::filesystem::absolute(path, ignored).lexically_normal();
  return Located{abs.string(), abs.parent_path().string()};
}

void read_path(TomlSection& section, std::string_view key, const std::string& dir, std::string& out, Need need) {
  std::string value;
  if (!section.string(key, value, need)) return;
  if (value.empty()) {
    section.fail(key, "must not be empty");
    return;
  }
  out = resolve(dir, value);
}

void read_pair(TomlDoc& doc, const std::string& dir, proto::PairId& id, std::string& secret_file) {
  TomlSection pair = doc.section("pair");
  std::string hex;
  if (pair.string("id", hex, Need::required)) {
    base::Bytes bytes;
    if (!base::from_hex(hex, bytes) || bytes.size() != id.size()) {
      pair.fail("id", "must be 32 hex digits (the pair id written at pairing), not \"" + hex + "\"");
    } else {
      std::copy(bytes.begin(), bytes.end(), id.begin());
    }
  }
  read_path(pair, "secret_file", dir, secret_file, Need::required);
}

void read_block_bytes(TomlSection& section, std::string_view key, uint32_t& out) {
  uint32_t bytes = out;
  if (!section.u32(key, bytes, kBlockBytesMin, kBlockBytesMax)) return;
  if ((bytes & (bytes - 1)) != 0) {
    section.fail(key, "must be a power of two, not " + std::to_string(bytes));
    return;
  }
  out = bytes;
}

void read_address(TomlSection& section, std::string_view key, std::string& host, uint16_t& port, Need need) {
  std::string text;
  if (!section.string(key, text, need)) return;
  base::Status status = parse_host_port(text, host, port);
  if (!status) section.fail(key, "is not a usable address: " + status.message());
}

// A keepalive no shorter than the idle timeout would let a healthy but quiet
// session be dropped between two keepalives.
void check_keepalive(TomlSection& section, uint32_t keepalive_ms, uint32_t idle_ms) {
  if (keepalive_ms < idle_ms) return;
  section.fail("keepalive_interval_ms", "(" + std::to_string(keepalive_ms) + ") must be less than idle_timeout_ms (" +
                                            std::to_string(idle_ms) + "), or quiet sessions are dropped as dead");
}

void read_target(TomlDoc& doc, const std::string& dir, CloneConfig& c) {
  TomlSection target = doc.section("target");
  read_path(target, "path", dir, c.target_path, Need::required);
  blockio::DiskIdentity& id = c.target_identity;
  id.path = c.target_path;
  if (target.string("kind", id.kind, Need::required) && id.kind != "block" && id.kind != "file") {
    target.fail("kind", "must be \"block\" or \"file\", not \"" + id.kind + "\"");
  }
  target.size("size_bytes", id.size_bytes, 1, kDiskBytesMax, Need::required);
  id.logical_block_bytes = 0;  // absent: not recorded (pairing records it), so not compared
  read_block_bytes(target, "logical_block_bytes", id.logical_block_bytes);
  target.string("serial", id.serial);
  target.string("wwn", id.wwn);
  target.string("model", id.model);
  target.u32("partition", id.partition, 0, UINT32_MAX);
  target.size("partition_start_bytes", id.partition_start_bytes, 0, kDiskBytesMax);
  target.boolean("direct_io", c.direct_io);
}

void read_clone_health(TomlDoc& doc, CloneConfig& c) {
  TomlSection health = doc.section("health");
  health.u32("interval_s", c.health_interval_s, 1, 604800);
  health.u32("summary_interval_s", c.health_summary_interval_s, 1, 2592000);
  health.u32("backlog_max", c.health_backlog_max, 4, 10000);
  TomlSection testing = doc.section("testing");
  testing.size("io_error_offset_bytes", c.testing_io_error_offset_bytes, 0, kDiskBytesMax);
  testing.size("io_error_length_bytes", c.testing_io_error_length_bytes, 0, kDiskBytesMax);
  testing.u32("flush_error_at", c.testing_flush_error_at, 0, UINT32_MAX);
}

void read_clone_runtime(TomlDoc& doc, const std::string& dir, CloneConfig& c) {
  TomlSection listen = doc.section("listen");
  read_address(listen, "address", c.listen_host, c.listen_port, Need::optional);
  // The clone binds one of its own addresses: a name would be looked up
  // only at the bind, after the disk is opened.
  if (!is_ip_literal(c.listen_host))
    listen.fail("address", "names the host \"" + c.listen_host +
                               "\": it must be an IP address of this machine (0.0.0.0 or [::] for all of them)");

  TomlSection state = doc.section("state");
  c.state_dir = resolve(dir, "state");
  c.runtime_dir = resolve(dir, "run");
  read_path(state, "dir", dir, c.state_dir, Need::optional);
  read_path(state, "runtime_dir", dir, c.runtime_dir, Need::optional);

  TomlSection apply = doc.section("apply");
  apply.u32("writer_threads", c.writer_threads, 1, 64);
  apply.u32("writer_priority_boost", c.writer_priority_boost, 0, 19);
  // The kernel clamps a slice to 0.1-100 ms: a value it would change is refused.
  if (apply.u32("writer_time_slice_us", c.writer_time_slice_us, 0, 100000) && c.writer_time_slice_us != 0 &&
      c.writer_time_slice_us < 100)
    apply.fail("writer_time_slice_us",
               "must be 0 (the kernel's own) or between 100 and 100000, not " + std::to_string(c.writer_time_slice_us));
  apply.size("inflight_bytes_max", c.inflight_bytes_max, 1ull << 20, 1ull << 30);
  apply.u32("commit_interval_ms", c.commit_interval_ms, 1, 60000);
  apply.u32("store_commit_delay_ms", c.store_commit_delay_ms, 0, 10000);
  apply.boolean("read_back", c.read_back);

  TomlSection resync = doc.section("resync");
  resync.boolean("allow_remote_discard", c.allow_remote_discard);
  resync.boolean("detect_divergence", c.detect_divergence);
  if (resync.size("stage_max_bytes", c.stage_max_bytes, 0, 16ull << 40) && c.stage_max_bytes != 0 &&
      c.stage_max_bytes < (1ull << 20))
    resync.fail("stage_max_bytes", "must be 0 (no staging: a resync writes the disk in place) or at least \"1M\"");

  TomlSection link = doc.section("link");
  link.u32("handshake_timeout_ms", c.handshake_timeout_ms, 100, 60000);
  link.u32("idle_timeout_ms", c.idle_timeout_ms, 1000, 600000);
  link.u32("keepalive_interval_ms", c.keepalive_interval_ms, 100, 60000);
  link.u32("max_pending_handshakes", c.max_pending_handshakes, 1, 64);
  check_keepalive(link, c.keepalive_interval_ms, c.idle_timeout_ms);

  TomlSection log = doc.section("log");
  if (log.string("level", c.log_level) && c.log_level != "error" && c.log_level != "warning" &&
      c.log_level != "notice" && c.log_level != "info" && c.log_level != "debug") {
    log.fail("level", "must be one of error, warning, notice, info, debug, not \"" + c.log_level + "\"");
  }
  read_clone_health(doc, c);
}

bool is_hex_pairs(const std::string& text, size_t pairs) {
  if (text.size() != pairs * 3 - 1) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (i % 3 == 2) {
      if (ch != ':' && ch != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(ch))) {
      return false;
    }
  }
  return true;
}

void read_clone_wake(TomlDoc& doc, CloneConfig& c) {
  TomlSection wake = doc.section("wake");
  wake.string("interface", c.wake_interface);
  if (wake.u32("idle_sleep_s", c.idle_sleep_s, 0, 604800) && c.idle_sleep_s != 0 && c.idle_sleep_s < 10)
    wake.fail("idle_sleep_s", "must be 0 (never) or at least 10 seconds, not " + std::to_string(c.idle_sleep_s));
  if (wake.string("power", c.power_backend) && c.power_backend != "logind" && c.power_backend != "sysfs" &&
      c.power_backend != "test-double")
    wake.fail("power", "must be \"logind\", \"sysfs\" or \"test-double\", not \"" + c.power_backend + "\"");
  if (wake.string("sysfs_mode", c.sysfs_mode) && c.sysfs_mode != "mem" && c.sysfs_mode != "freeze" &&
      c.sysfs_mode != "standby")
    wake.fail("sysfs_mode", "must be \"mem\", \"freeze\" or \"standby\", not \"" + c.sysfs_mode + "\"");
  if (wake.boolean("test_double_counts_as_armed", c.test_double_counts_as_armed) && c.test_double_counts_as_armed &&
      c.power_backend != "test-double")
    wake.fail("test_double_counts_as_armed",
              "is a testing knob, valid only together with power = \"test-double\"; remove it");
  if (wake.u32("test_double_sleep_limit_ms", c.test_double_sleep_limit_ms, 100, 3'600'000) &&
      c.power_backend != "test-double")
    wake.fail("test_double_sleep_limit_ms",
              "is a testing knob, valid only together with power = \"test-double\"; remove it");
  if (wake.boolean("testing_sleep_on_virtio_nic", c.testing_sleep_on_virtio_nic) && c.testing_sleep_on_virtio_nic &&
      c.wake_interface.empty())
    wake.fail("testing_sleep_on_virtio_nic",
              "is a testing knob for a virtual machine's virtio NIC; it needs wake.interface");
  if (c.idle_sleep_s != 0 && c.wake_interface.empty())
    wake.fail("idle_sleep_s", "needs wake.interface: without Wake-on-LAN a sleeping clone could not be woken");
}

void read_origin_wake(TomlDoc& doc, OriginConfig& c) {
  TomlSection wake = doc.section("wake");
  if (wake.string("mac", c.wake_mac) && !c.wake_mac.empty() && !is_hex_pairs(c.wake_mac, 6))
    wake.fail("mac", "must be a MAC address such as \"aa:bb:cc:dd:ee:ff\", not \"" + c.wake_mac + "\"");
  wake.string("interface", c.wake_interface);
  wake.string("broadcast", c.wake_broadcast);
  if (wake.string("password", c.wake_password) && !c.wake_password.empty() && !is_hex_pairs(c.wake_password, 6) &&
      !is_hex_pairs(c.wake_password, 4))
    wake.fail("password", "must be 4 or 6 hex pairs such as \"01:02:03:04:05:06\"");
  wake.boolean("auto", c.wake_auto);
  uint32_t port = c.wake_udp_port;
  if (wake.u32("udp_port", port, 1, 65535)) c.wake_udp_port = static_cast<uint16_t>(port);
}

void read_origin(TomlDoc& doc, const std::string& dir, OriginConfig& c) {
  TomlSection clone = doc.section("clone");
  read_address(clone, "address", c.clone_host, c.clone_port, Need::required);
  clone.size("disk_size_bytes", c.disk_size_bytes, 1, kDiskBytesMax, Need::required);
  read_block_bytes(clone, "logical_block_bytes", c.logical_block_bytes);

  TomlSection origin = doc.section("origin");
  c.state_dir = resolve(dir, "state");
  read_path(origin, "state_dir", dir, c.state_dir, Need::optional);
  origin.size("retention_bytes_max", c.retention_bytes_max, 1ull << 20, 1ull << 40);
  origin.boolean("want_receipt_acks", c.want_receipt_acks);
  origin.u32("connect_timeout_ms", c.connect_timeout_ms, 100, 60000);
  origin.u32("reconnect_initial_ms", c.reconnect_initial_ms, 10, 60000);
  origin.u32("reconnect_max_ms", c.reconnect_max_ms, 10, 600000);
  origin.u32("reconnect_attempts_max", c.reconnect_attempts_max, 1, 1000000);
  TomlSection resync = doc.section("resync");
  if (resync.size("extent_bytes", c.resync_extent_bytes, 4096, 1u << 20) &&
      (c.resync_extent_bytes & (c.resync_extent_bytes - 1)) != 0)
    resync.fail("extent_bytes", "must be a power of two, such as \"64K\"");
  resync.size("rate_max", c.resync_rate_bytes_max, 0, 1ull << 40);
  resync.size("mark_interval", c.resync_mark_interval_bytes, 1ull << 20, 64ull << 30);
  resync.boolean("in_place_unbootable", c.resync_in_place_unbootable);
  origin.u32("idle_timeout_ms", c.idle_timeout_ms, 1000, 600000);
  origin.u32("keepalive_interval_ms", c.keepalive_interval_ms, 100, 60000);
  if (c.reconnect_max_ms < c.reconnect_initial_ms) {
    origin.fail("reconnect_max_ms", "(" + std::to_string(c.reconnect_max_ms) +
                                        ") must not be less than reconnect_initial_ms (" +
                                        std::to_string(c.reconnect_initial_ms) + ")");
  }
  check_keepalive(origin, c.keepalive_interval_ms, c.idle_timeout_ms);
}

}  // namespace

base::Result<CloneConfig> load_clone_config(const std::string& path) {
  Located where = locate(path);
  base::Result<toml::table> root = parse_config(where.path);
  if (!root) return root.status();
  CloneConfig c;
  c.config_path = where.path;
  TomlDoc doc(where.path, *root);
  read_pair(doc, where.dir, c.pair_id, c.secret_file);
  read_target(doc, where.dir, c);
  read_clone_runtime(doc, where.dir, c);
  read_clone_wake(doc, c);
  BASE_TRY(doc.finish());
  return c;
}

base::Result<OriginConfig> load_origin_config(const std::string& path) {
  Located where = locate(path);
  base::Result<toml::table> root = parse_config(where.path);
  if (!root) return root.status();
  OriginConfig c;
  c.config_path = where.path;
  TomlDoc doc(where.path, *root);
  read_pair(doc, where.dir, c.pair_id, c.secret_file);
  read_origin(doc, where.dir, c);
  read_origin_wake(doc, c);
  BASE_TRY(doc.finish());
  return c;
}

}  // namespace config
