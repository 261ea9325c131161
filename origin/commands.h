// SPDX-License-Identifier: MIT
// The commands of clone-origin, callable from main and from tests. Each
// prints its progress (stderr) and its result line (stdout) and returns ok,
// or a sentence saying what failed and what to do.
//
// The numbering (next sequence number and epoch) continues across runs
// through STATE_DIR/origin.position (origin/position.h).
#pragma once

#include <string>

#include "base/status.h"
#include "config/config.h"
#include "origin/workload.h"

namespace origin {

struct WorkloadCommand {
  std::string source_path;
  WorkloadOptions workload;
  std::string compare_path;  // empty: no comparison
};

struct CaptureCommand {
  std::string source_path;
  std::string spool_path;
  WorkloadOptions workload;
};

struct ReplayCommand {
  std::string spool_path;
  // Or a dm-log-writes log (docs/ORIGINS.md), optionally followed as it grows.
  std::string log_writes_path;
  bool follow = false;
  uint32_t poll_ms = 200;
};

struct ResyncCommand {
  std::string source_path;
  uint32_t extent_bytes = 0;            // 0: the configuration's
  bool discard_clone_changes = false;
  // A stage too small for the resync: go in place (unbootable until done).
  bool in_place_unbootable = false;
};

struct VerifyCommand {
  std::string source_path;
  uint32_t extent_bytes = 0;            // 0: the configuration's
  bool repair = false;
  bool in_place_unbootable = false;  // a repair the clone's stage cannot hold goes in place
};

struct HealthCommand {
  bool json = false;
  uint64_t collect_ms = 0;  // > 0: first collect from the clone for at most this long
};
// Whether a collecting session ends now (at `now_ms`): at its deadline, or
// 0.7 s after the last report once one has come (before the first it waits:
// a clone in the middle of a poll sends its backlog when the poll ends).
bool collect_done(uint64_t now_ms, uint64_t deadline_ms, bool established, uint64_t received, uint64_t last_ms);

// Generates the workload, writes it to the source image and replicates it;
// returns once every record is durable on the clone (then compares, when
// asked: a difference is an error naming the first differing offset).
base::Status run_workload(const config::OriginConfig& config, const config::DerivedKeys& keys,
                          const WorkloadCommand& command);
// Like run_workload, but the records go to a new spool file, not to the clone.
base::Status run_capture(const config::OriginConfig& config, const config::DerivedKeys& keys,
                         const CaptureCommand& command);
// The clone's health reports kept by this original, newest first (after
// collecting waiting ones, when asked).
base::Status run_health(const config::OriginConfig& config, const config::DerivedKeys& keys,
                        const HealthCommand& command);
// Validates the whole spool, then sends its records; returns once all are
// durable on the clone.
base::Status run_replay(const config::OriginConfig& config, const config::DerivedKeys& keys,
                        const ReplayCommand& command);
// Ships a dm-log-writes log from the entry after the last one the clone made
// durable (STATE_DIR/origin.position); validates every entry before any of
// its records is sent. Without follow: up to the log's last flush or mark,
// returning once that is durable. With follow: keeps shipping as the log
// grows until SIGINT or SIGTERM, then saves how far the clone is.
base::Status run_replay_log_writes(const config::OriginConfig& config, const config::DerivedKeys& keys,
                                   const ReplayCommand& command);

// Brings the clone to the source image's content as a new generation (or
// resumes an interrupted resync); ok once the clone reports consistent.
base::Status run_resync(const config::OriginConfig& config, const config::DerivedKeys& keys,
                        const ResyncCommand& command);
// Compares the clone with the source image; prints the ranges that differ.
// A difference left (after --repair: one the repair did not fix) is an error.
base::Status run_verify(const config::OriginConfig& config, const config::DerivedKeys& keys,
                        const VerifyCommand& command);

}  // namespace origin
