// SPDX-License-Identifier: MIT
// Configuration files and pairing material of both sides.
//
// The clone reads cloned.toml, the original origin.toml; both name a secret
// file holding the pairing secret (64 hex digits and a newline, mode 0600).
// Loading is strict: unknown keys, wrong types, out-of-range values and
// missing files are errors whose message names file:line and the key.
// Relative paths inside a config file are relative to the file's directory.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/status.h"
#include "blockio/disk.h"
#include "digest/digest.h"
#include "proto/guarded.h"
#include "proto/handshake.h"
#include "proto/messages.h"

namespace config {

inline constexpr uint16_t kDefaultPort = 7227;

// The raw pairing secret. Every copy wipes itself when it goes (a Result's,
// a return value's): the secret is needed only until the keys are derived.
struct PairSecret {
  std::array<uint8_t, 32> bytes{};
  PairSecret() = default;
  PairSecret(const PairSecret&) = default;
  PairSecret& operator=(const PairSecret&) = default;
  ~PairSecret();
};

// Keys derived from the pairing secret (libsodium crypto_kdf, context
// "clonepr1"): subkey 1 authenticates sessions, subkey 2 keys the digests.
struct DerivedKeys {
  proto::Key auth_key{};
  digest::DigestKey digest_key{};
};
DerivedKeys derive_keys(const PairSecret& secret);

// The keys a daemon keeps for its life: derived straight into guarded memory
// (proto/guarded.h: locked, out of core dumps, read-only), after which
// `secret` is wiped. Pass them on by reference; a copy would undo this.
using GuardedKeys = proto::Guarded<DerivedKeys>;
GuardedKeys guard_keys(PairSecret& secret);

// Reads a secret file. Refuses a symbolic link, anything but a regular file
// (a FIFO does not block), a file owned by neither this process's user nor
// root, one readable or writable by group or others ("chmod 600 FILE"), one
// in a directory others can write to, a wrong length, or non-hex content.
base::Result<PairSecret> load_secret(const std::string& path);

struct CloneConfig {
  std::string config_path;
  proto::PairId pair_id{};
  std::string secret_file;  // absolute
  // [target]
  std::string target_path;
  blockio::DiskIdentity target_identity;
  bool direct_io = true;
  // [listen]
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = kDefaultPort;
  // [state]
  std::string state_dir;    // absolute; the sqlite store lives here
  std::string runtime_dir;  // absolute; status file
  // [apply]
  uint32_t writer_threads = 4;                // 1..64
  uint32_t writer_priority_boost = 10;        // 0..19: the disk workers' nice, below the daemon's
  uint32_t writer_time_slice_us = 100;        // 0 (the kernel's) or 100..100000: the disk workers' slices
  uint64_t inflight_bytes_max = 32ull << 20;  // 1 MiB..1 GiB: received, not yet durable
  uint32_t commit_interval_ms = 100;          // 1..60000: grouped store commits
  uint32_t store_commit_delay_ms = 0;         // 0..10000: testing, slows every commit
  bool read_back = false;                     // read each write back and compare its digest
  // [resync]
  bool allow_remote_discard = false;  // a Diverged clone takes a discarding resync from the original
  bool detect_divergence = true;      // fingerprint the disk (docs/DIVERGED.md)
  // A resync onto a consistent clone is staged on the stick (docs/ARCHITECTURE.md,
  // "Staged resync") up to this many bytes; 0 = off: written in place, as before.
  uint64_t stage_max_bytes = 8ull << 30;  // 0, or 1M..16T
  // [link]
  uint32_t handshake_timeout_ms = 5000;   // 100..60000
  uint32_t idle_timeout_ms = 20000;       // 1000..600000: silence before a drop
  uint32_t keepalive_interval_ms = 5000;  // 100..60000
  uint32_t max_pending_handshakes = 4;    // 1..64
  // [log]
  std::string log_level = "info";  // error, warning, notice, info, debug
  // [health] (docs/HEALTH.md, "Monitoring")
  uint32_t health_interval_s = 3600;           // 1..604800: between two polls
  uint32_t health_summary_interval_s = 86400;  // 1..2592000: between two summary reports
  uint32_t health_backlog_max = 256;           // 4..10000: reports waiting for the original
  // [testing] fault injection for the black-box tests: writes and reads of
  // the target overlapping this range fail with EIO (a device-mapper "error"
  // target where the kernel has none). 0 bytes = off. flush_error_at: the
  // target's nth flush fails once with EIO (0 = off).
  uint64_t testing_io_error_offset_bytes = 0;
  uint64_t testing_io_error_length_bytes = 0;
  uint32_t testing_flush_error_at = 0;
  // [wake] (docs/WAKE.md)
  std::string wake_interface;            // "" = no Wake-on-LAN: never sleeps
  uint32_t idle_sleep_s = 0;             // 0 = never sleeps on its own; else 10..604800
  std::string power_backend = "logind";  // logind, sysfs, test-double
  std::string sysfs_mode = "mem";        // sysfs: mem, freeze or standby
  // Testing knob, valid only with power_backend "test-double": the test
  // double counts as armed where arming is unsupported (a veth).
  bool test_double_counts_as_armed = false;
  // Testing knob, valid only with power_backend "test-double": how long the
  // test double waits for a magic packet before its sleep fails (ETIMEDOUT).
  uint32_t test_double_sleep_limit_ms = 3'600'000;
  // Testing only (the VM suite): a virtio NIC, which cannot be armed, counts
  // as armed. cloned refuses to start with it unless the wake interface is
  // driven by virtio_net (main.cpp): a real clone has no such NIC.
  bool testing_sleep_on_virtio_nic = false;
};

struct OriginConfig {
  std::string config_path;
  proto::PairId pair_id{};
  std::string secret_file;  // absolute
  // [clone]
  std::string clone_host = "127.0.0.1";
  uint16_t clone_port = kDefaultPort;
  uint64_t disk_size_bytes = 0;
  uint32_t logical_block_bytes = 512;
  // [origin]
  std::string state_dir;                        // absolute: the original's log spool and state
  uint64_t retention_bytes_max = 256ull << 20;  // records kept until committed
  bool want_receipt_acks = false;
  uint32_t connect_timeout_ms = 5000;
  uint32_t reconnect_initial_ms = 100;
  uint32_t reconnect_max_ms = 5000;
  uint32_t reconnect_attempts_max = 50;  // per outage, then give up (exit 1)
  uint32_t idle_timeout_ms = 20000;
  uint32_t keepalive_interval_ms = 5000;
  // [resync]
  uint64_t resync_extent_bytes = 64 * 1024;           // 4K..1M, a power of two: first digest unit (descends to 4K)
  uint64_t resync_rate_bytes_max = 0;                 // bytes/s hashed or sent by resync and verify; 0 = no limit
  uint64_t resync_mark_interval_bytes = 64ull << 20;  // 1M..64G: how often the clone persists its cursor
  // Every resync and repair goes as with --in-place-unbootable: one that does
  // not fit the clone's stage is written in place (the clone not bootable
  // until it completes) instead of being refused.
  bool resync_in_place_unbootable = false;
  // [wake] (docs/WAKE.md): how to wake a sleeping clone. What the clone tells
  // in its wake_info (remembered in state_dir) fills in what is not set here.
  std::string wake_mac;        // the clone's MAC, "" = learn it from the clone
  std::string wake_interface;  // this side's NIC to send on, "" = let routing choose
  std::string wake_broadcast;  // subnet broadcast, "" = the clone's, learned
  std::string wake_password;   // SecureOn password, "" = none
  bool wake_auto = true;       // send a magic packet when the clone is silent
  uint16_t wake_udp_port = 9;
};

base::Result<CloneConfig> load_clone_config(const std::string& path);
base::Result<OriginConfig> load_origin_config(const std::string& path);

struct PairRequest {
  std::string clone_dir;
  std::string origin_dir;
  std::string target_path;
  std::string listen = "127.0.0.1:7227";  // HOST:PORT the clone listens on
};

// Writes clone_dir/cloned.toml, clone_dir/pair.secret, origin_dir/origin.toml,
// origin_dir/pair.secret (creating the directories), sharing a fresh secret
// and pair id, and recording the target's identity (probe_identity). Refuses
// to overwrite any existing file. Secret files are created 0600.
base::Status write_pair(const PairRequest& request);

// "HOST:PORT" -> parts; IPv6 as "[::1]:7227".
base::Status parse_host_port(const std::string& text, std::string& host, uint16_t& port);
// An IPv4 or IPv6 address written out (not a name to look up).
bool is_ip_literal(const std::string& host);

}  // namespace config
