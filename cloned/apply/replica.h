// SPDX-License-Identifier: MIT
// What the clone knows about its replica, as the apply machine keeps it and
// the state store makes it durable (cloned/store saves and loads it; the
// machine decides every change). Plain data, no I/O: the apply side owns the
// model, the store depends on it, not the reverse.
#pragma once

#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "proto/messages.h"

namespace apply {

// A resync in progress (generation 0: none). The cursor is durable progress:
// every byte below it holds the original's data as of the resync.
struct ResyncProgress {
  uint64_t generation = 0;
  uint64_t target_seq = 0;  // the log position the resync brings the clone to
  uint64_t target_epoch = 0;
  uint64_t cursor_bytes = 0;
  uint32_t extent_bytes = 0;
  uint32_t flags = 0;  // proto::kResync* flags of its resync_begin
  bool active() const { return generation != 0; }
};

// A staged resync (issue 18; docs/ARCHITECTURE.md, "Staged resync"). While
// staging, the disk keeps the whole generation the clone holds, and the
// resync's extents (ResyncProgress) go to the stage file on the stick, of
// which `durable_bytes` are synced. While applying, the stage is whole and is
// being copied to the disk: the next start finishes that, with no original.
enum class StagePhase : uint8_t { none = 0, staging = 1, applying = 2 };

struct StageProgress {
  StagePhase phase = StagePhase::none;
  uint64_t durable_bytes = 0;      // of the stage file, as of the last acknowledged mark
  uint64_t staged_disk_bytes = 0;  // disk bytes those entries hold (status: "X of Y")
  uint64_t consistent_at_seq = 0;  // applying: the resync_end's record
  bool active() const { return phase != StagePhase::none; }
};

inline const char* stage_phase_name(StagePhase p) {
  switch (p) {
    case StagePhase::none:
      return "none";
    case StagePhase::staging:
      return "staging";
    case StagePhase::applying:
      return "applying";
  }
  return "unknown";
}

// A mark of the original's log (proto::kBarrierFlagMark): a named point a
// person can ask about ("the clone holds everything up to before-upgrade").
// Stored before its barrier is acknowledged, so a power cut cannot lose a
// mark the original was told is durable; reached once that barrier is.
struct LogMark {
  std::string name;  // "" = none
  uint64_t generation = 0;
  uint64_t seq = 0;  // the barrier that carries it
  uint64_t epoch = 0;
  bool empty() const { return name.empty(); }
};

struct ReplicaState {
  proto::PairId pair_id{};
  std::string disk_identity;  // DiskIdentity::describe() at pairing, for display
  uint64_t generation = 1;
  uint64_t committed_seq = 0;    // a barrier's sequence number, 0 = none
  uint64_t committed_epoch = 0;  // the epoch that barrier closed
  // Records up to reserved_seq may have been written to the disk. Equal to
  // committed_seq after a clean stop; larger after a crash (see ARCHITECTURE).
  uint64_t reserved_seq = 0;
  proto::CloneState state = proto::CloneState::fresh;
  std::string state_reason;  // a sentence, "" when consistent
  // The state is inconsistent until the applied position reaches this (0 = n/a).
  uint64_t consistent_at_seq = 0;
  int64_t updated_unix_ms = 0;
  // Schema 2.
  ResyncProgress resync;
  // The log cannot continue on this disk (a decision discarded the clone's
  // own changes, or a resync is owed): only a resync clears it.
  bool needs_resync = false;
  // Diverged detection (cloned/diverge): the disk's fingerprint as the daemon
  // last left it. Not valid while a session may be writing.
  base::Bytes fingerprint;
  bool fingerprint_valid = false;
  std::string decision;  // the last clonectl decide, "" = none
  // Schema 3. `mark` is the newest mark stored; its barrier may not be
  // durable yet. `mark_before` is the one before it, whose barrier is.
  LogMark mark;
  LogMark mark_before;
  // Schema 4: a staged resync (resync holds its generation and cursor).
  StageProgress stage;
};

// The newest mark whose barrier is durable, given the durable position of
// the log (the committed one when nothing better is known); null when none.
inline const LogMark* reached_mark(const ReplicaState& s, uint64_t durable_seq) {
  if (!s.mark.empty() && (s.mark.generation < s.generation || s.mark.seq <= durable_seq)) return &s.mark;
  if (!s.mark_before.empty()) return &s.mark_before;
  return nullptr;
}

}  // namespace apply
