// SPDX-License-Identifier: MIT
// The original's numbering across runs: the next sequence number and epoch,
// kept in STATE_DIR/origin.position so that a second run continues where the
// clone stands instead of starting again at record 1.
//
// `clean` is false while a run is writing to the source image and its records
// are not yet all durable on the clone (or in a spool): if that run dies, the
// image may hold writes the clone never got, and only a resync can bring the
// two together again. A later run refuses to start on an unclean position.
//
// `generation` is the generation of the log (a resync starts a new one);
// `resync_generation` is not 0 while a resync to that generation is under way
// (a later `clone-origin resync` resumes it).
//
// Format: text lines "next_seq=N", "next_epoch=N", "clean=0|1", and
// optionally "generation=N" (default 1) and "resync_generation=N" (default
// 0). Written to a temporary file, fsynced and renamed into place (atomic).
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace origin {

struct OriginPosition {
  uint64_t next_seq = 1;
  uint64_t next_epoch = 1;
  bool clean = true;
  uint64_t generation = 1;
  uint64_t resync_generation = 0;
};

// The position in `state_dir`; the defaults (a fresh pair) when there is no
// file yet. Creates `state_dir` (one level, mode 0700) when it is missing.
base::Result<OriginPosition> load_position(const std::string& state_dir);
base::Status save_position(const std::string& state_dir, const OriginPosition& position);
std::string position_path(const std::string& state_dir);

}  // namespace origin
