// SPDX-License-Identifier: MIT
// cloned: the clone daemon. The composition root (MPD's main): read the
// configuration, check and open the target disk and the state store, build
// the daemon, run it, and turn whatever escapes into a sentence and exit 1.
#include <signal.h>
#include <unistd.h>
#include <chrono>

#include <cstdio>
#include <cstring>
#include <string>

#include "base/cli.h"
#include "base/file_io.h"
#include "base/heap.h"
#include "base/log.h"
#include "blockio/disk.h"
#include "blockio/error_range_device.h"
#include "cloned/daemon/daemon.h"
#include "config/config.h"
#include "wol/arm.h"

namespace {

// The command line (base/cli.h): --config and --log-level, nothing else.
const base::cli::Program kProgram = {
    .name = "cloned",
    .commands = {{"",
                  {{"--config", "FILE", true}, {"--log-level", "error|warning|notice|info|debug"}},
                  "",
                  "run the clone daemon in the foreground: receive the original's log over the\n"
                  "link and write it to the paired disk. Stop it with SIGTERM (it finishes the\n"
                  "epoch being received first).\n"}},
};

bool parse_level(const std::string& s, base::LogLevel& out) {
  if (s == "error")
    out = base::LogLevel::error;
  else if (s == "warning")
    out = base::LogLevel::warning;
  else if (s == "notice")
    out = base::LogLevel::notice;
  else if (s == "info")
    out = base::LogLevel::info;
  else if (s == "debug")
    out = base::LogLevel::debug;
  else
    return false;
  return true;
}

// Invariant 1: never the wrong disk.
base::Result<std::unique_ptr<blockio::BlockDevice>> open_target(const config::CloneConfig& c) {
  base::Result<blockio::DiskIdentity> actual = blockio::probe_identity(c.target_path);
  if (!actual) return actual.status().with_context("refusing to start");
  if (base::Status s = blockio::check_identity(c.target_identity, *actual); !s.is_ok())
    return s.with_context("refusing to start");
  if (base::Status s = blockio::check_not_in_use(c.target_path); !s.is_ok()) return s.with_context("refusing to start");
  blockio::OpenOptions options;
  options.direct_io = c.direct_io;
  base::Result<std::unique_ptr<blockio::BlockDevice>> disk = blockio::open_disk(c.target_path, options);
  if (!disk || (c.testing_io_error_length_bytes == 0 && c.testing_flush_error_at == 0)) return disk;
  LOG_WARN("[testing] I/O errors are injected at bytes %llu..%llu of the target, and at its flush %u (0: none)",
           static_cast<unsigned long long>(c.testing_io_error_offset_bytes),
           static_cast<unsigned long long>(c.testing_io_error_offset_bytes + c.testing_io_error_length_bytes),
           c.testing_flush_error_at);
  return std::unique_ptr<blockio::BlockDevice>(std::make_unique<blockio::ErrorRangeDevice>(
      std::move(*disk), c.testing_io_error_offset_bytes, c.testing_io_error_length_bytes, c.testing_flush_error_at));
}

int run(const std::string& config_path, const std::string& level_override) {
  base::Result<config::CloneConfig> cfg = config::load_clone_config(config_path);
  if (!cfg) {
    LOG_ERROR("%s", cfg.status().message().c_str());
    return 1;
  }
  base::LogLevel level;
  if (parse_level(level_override.empty() ? cfg->log_level : level_override, level)) base::set_log_level(level);
  if (base::Status s = cloned::check_wake_testing_knob(*cfg, "/sys"); !s.is_ok()) {
    LOG_ERROR("%s", s.message().c_str());
    return 1;
  }
  base::Result<config::PairSecret> secret = config::load_secret(cfg->secret_file);
  if (!secret) {
    LOG_ERROR("%s", secret.status().message().c_str());
    return 1;
  }
  const config::GuardedKeys keys = config::guard_keys(*secret);  // wipes the secret
  base::Result<std::unique_ptr<blockio::BlockDevice>> device = open_target(*cfg);
  if (!device) {
    LOG_ERROR("%s", device.status().message().c_str());
    return 1;
  }
  for (const std::string& dir : {cfg->state_dir, cfg->runtime_dir}) {
    if (base::Status s = base::make_dirs(dir, 0700); !s.is_ok()) {
      LOG_ERROR("%s", s.message().c_str());
      return 1;
    }
  }
  // Held until exit: clonectl writes the state itself only while nobody holds it.
  base::Result<store::StateLock> state_lock = store::StateLock::take(cfg->state_dir, std::chrono::seconds(10));
  if (!state_lock) {
    LOG_ERROR("%s", state_lock.status().message().c_str());
    return 1;
  }
  base::Result<std::unique_ptr<store::Store>> st =
      store::Store::open(cfg->state_dir, store::OpenMode::read_write, cfg->pair_id, cfg->target_identity.describe());
  if (!st) {
    LOG_ERROR("%s", st.status().message().c_str());
    return 1;
  }
  base::Result<apply::ReplicaState> loaded = (*st)->load();
  if (!loaded) {
    LOG_ERROR("%s", loaded.status().message().c_str());
    return 1;
  }
  // The frames' memory on huge pages: a TLB entry per 2 MiB, not per 4 KiB,
  // for the copies, the decrypt and the digest of every record
  // (docs/PERFORMANCE.md, "Frames on huge pages").
  const base::HugeRange huge = base::heap_on_huge_pages(cfg->inflight_bytes_max);
  LOG_DEBUG("%zu MiB of the heap marked for huge pages", huge.bytes >> 20);
  cloned::Daemon daemon(*cfg, *keys, std::move(*device), std::move(*st), *loaded);
  return daemon.run();
}

}  // namespace

int main(int argc, char** argv) {
  // A peer that vanishes mid-write must cost a session, not the daemon:
  // writes to a closed socket fail with EPIPE instead of killing us.
  ::signal(SIGPIPE, SIG_IGN);
  // Frames (up to 1 MiB + 4 KiB each, at most [apply] inflight_bytes_max of
  // them) are allocated by the loop thread and freed by the disk workers.
  base::keep_buffers_in_the_heap();
  base::cli::Args args;
  if (int code = base::cli::parse_or_exit_code(kProgram, argc, argv, args); code >= 0) return code;
  const std::string config_path = args.get("--config"), level = args.get("--log-level");
  base::LogLevel ignored;
  if (args.has("--log-level") && !parse_level(level, ignored))
    return base::cli::usage_error(kProgram, args.command, "--log-level takes error, warning, notice, info or debug");
  try {
    return run(config_path, level);
  } catch (const std::exception& e) {
    LOG_ERROR("cloned stopped on an unexpected error: %s", e.what());
    return 1;
  }
}
