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
// `log_writes` is set while a dm-log-writes log is being shipped
// (clone-origin replay --log-writes, docs/ORIGINS.md): the entry after the
// last barrier the clone acknowledged, saved with next_seq and next_epoch in
// one write so that a new run continues with no entry lost or sent twice.
//
// Format: text lines "next_seq=N", "next_epoch=N", "clean=0|1", and
// optionally "generation=N" (default 1), "resync_generation=N" (default 0),
// "resync_source=ID" (with a resync under way: image.h source_identity) and
// the log_writes_* keys of LogWritesPosition. Written to a temporary file, fsynced and renamed into place (atomic).
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace origin {

// Which log, and how far: the digests compare a log with the one shipped
// before (log_writes_file.h, LogFile::window_digest).
struct LogWritesPosition {
  std::string first_digest;  // hex BLAKE2b of the log's first first_bytes after the super block
  uint64_t first_bytes = 0;
  uint64_t next_entry = 0;      // the first entry not yet durable on the clone
  uint64_t next_offset = 0;     // its header's byte offset in the log
  std::string previous_digest;  // hex BLAKE2b of the (up to) 1 MiB of the log before next_offset
  bool active() const { return !first_digest.empty(); }
};

struct OriginPosition {
  uint64_t next_seq = 1;
  uint64_t next_epoch = 1;
  bool clean = true;
  uint64_t generation = 1;
  uint64_t resync_generation = 0;
  std::string resync_source;  // image.h source_identity of the source that resync reads; "" when none
  LogWritesPosition log_writes;
};

// The position in `state_dir`; the defaults (a fresh pair) when there is no
// file yet. Creates `state_dir` (one level, mode 0700) when it is missing.
base::Result<OriginPosition> load_position(const std::string& state_dir);
base::Status save_position(const std::string& state_dir, const OriginPosition& position);
std::string position_path(const std::string& state_dir);
// load_position, refused (EBUSY, saying what to run) while a resync is under
// way or the position is not clean: a run that died between writing the
// image and the clone's ack left the two apart. For the commands that number
// records of their own (workload, capture, replay --spool).
base::Result<OriginPosition> load_clean_position(const std::string& state_dir);

}  // namespace origin
