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
};

struct HealthCommand {
  bool json = false;
  uint64_t collect_ms = 0;  // > 0: first collect from the clone for at most this long
};

// Generates the workload, writes it to the source image and replicates it;
// returns once every record is durable on the clone (then compares, when
// asked: a difference is an error naming the first differing offset).
base::Status run_workload(const config::OriginConfig& config, const config::DerivedKeys& keys,
                          const WorkloadCommand& command);
// Like run_workload, but the records go to a new spool file, not to the clone.
base::Status run_capture(const config::OriginConfig& config, const config::DerivedKeys& keys,
                         const CaptureCommand& command);
// Validates the whole spool, then sends its records; returns once all are
// durable on the clone.
base::Status run_health(const config::OriginConfig& config, const config::DerivedKeys& keys,
                        const HealthCommand& command);
base::Status run_replay(const config::OriginConfig& config, const config::DerivedKeys& keys,
                        const ReplayCommand& command);

}  // namespace origin
