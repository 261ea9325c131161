// SPDX-License-Identifier: MIT
// The original's side of resync and verify (docs/PROTOCOL.md, "Resync and
// verify"): a maintenance session over which the original asks the clone for
// digests of its disk, compares them with its own image, and sends what
// differs.
//
// Resync: digests of the whole disk from the clone's durable cursor on, in
// requests of up to 8 MiB kept a few in flight (the clone hashes them in
// parallel while this side hashes its own); each differing extent is compared
// again in smaller extents, down to fine_extent_bytes (scanner.h), and what
// differs there is sent as resync_data, its all-zero blocks as resync_zero
// (adjacent differing blocks travel together); a mark every
// mark_interval_bytes lets an interrupted resync resume there. A lost
// connection is retried with backoff and the resync resumes at the clone's
// cursor.
//
// Verify: the same scan without sending data; each differing extent is
// checked again in 4 KiB blocks (a block rewritten meanwhile is no longer
// different), and the blocks that still differ, joined into ranges, are the
// findings: reported to the clone (out_of_sync) and returned. A repair is a
// resync of just those ranges within the current generation.
//
// Threading: everything runs on the caller's thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "origin/replicator.h"
#include "origin/session.h"

namespace origin {

struct MaintenanceOptions {
  uint32_t extent_bytes = 64 * 1024;      // the first comparison's unit (resync and verify)
  uint32_t fine_extent_bytes = 4 * 1024;  // a resync descends into differing extents down to this
  uint64_t rate_bytes_max = 0;            // digested + sent per second; 0 = no limit
  bool discard_clone_changes = false;     // resync of a Diverged clone
  // When the clone's stage cannot hold the resync, go in place: the clone is
  // not bootable until the resync completes (without it: refused, stage_full).
  bool in_place_unbootable = false;
  uint32_t digests_in_flight = 4;
  uint64_t request_bytes_max = 8u << 20;  // per digest request
  uint64_t mark_interval_bytes = 64u << 20;
  size_t send_buffer_bytes_max = 8u << 20;
};

struct Range {
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
};

struct ResyncReport {
  uint64_t generation = 0;
  uint64_t started_at_bytes = 0;      // the cursor the last session resumed at
  uint64_t digested_bytes = 0;        // disk bytes compared by digest, over all sessions
  uint64_t extents_sent = 0;
  uint64_t data_bytes_sent = 0;       // resync_data payloads
  uint64_t zero_bytes_sent = 0;       // resync_zero extents (no payload on the wire)
  uint64_t wire_bytes_sent = 0;       // everything this side sent, frames included
  uint64_t wire_bytes_received = 0;   // everything the clone sent (digest replies, acks)
  uint64_t sessions = 0;
  uint64_t elapsed_ns = 0;
};

struct VerifyReport {
  uint64_t digested_bytes = 0;
  uint64_t suspect_extents = 0;       // differed in the first pass
  std::vector<Range> out_of_sync;     // confirmed by the second look
  uint64_t wire_bytes_sent = 0;
  uint64_t elapsed_ns = 0;
};

// Brings the clone to `image_path`'s content as generation `generation`, at
// log position (target_seq, target_epoch). Resumes an interrupted resync of
// the same generation and target. Retries lost sessions per `policy`.
base::Result<ResyncReport> resync_clone(const SessionConfig& session, const ReconnectPolicy& policy,
                                        const std::string& image_path, uint64_t generation, uint64_t target_seq,
                                        uint64_t target_epoch, const MaintenanceOptions& options);

// Compares the clone with `image_path`; the clone must be consistent at
// generation session.generation and at log position `at_seq`.
base::Result<VerifyReport> verify_clone(const SessionConfig& session, const std::string& image_path, uint64_t at_seq,
                                        const MaintenanceOptions& options);

// Rewrites `ranges` on the clone from the image (a repair within the current
// generation; the clone must be consistent at `at_seq`, epoch `at_epoch`).
base::Result<ResyncReport> repair_clone(const SessionConfig& session, const std::string& image_path, uint64_t at_seq,
                                        uint64_t at_epoch, const std::vector<Range>& ranges,
                                        const MaintenanceOptions& options);

// The generation and state the clone reports in its hello, without changing
// anything (a maintenance session that only says hello).
base::Result<proto::Hello> ask_clone(const SessionConfig& session);

}  // namespace origin
