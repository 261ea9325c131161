// SPDX-License-Identifier: MIT
// The clone's state store: one sqlite3 file in the state directory (on a real
// clone, on the USB stick). Only this module touches sqlite.
//
// It holds what must survive a crash: pair id, target identity, generation,
// the committed position (a barrier's sequence number and epoch) and the
// reservation (how far past the committed position the disk may have been
// written), the replication state with its reason, and a bounded event log.
//
// Commits are synchronous (WAL, synchronous=FULL): a commit that returned ok
// survives a power cut. They are slow on a USB stick (tens of ms), so the
// daemon calls them from its store thread in groups, never per epoch.
// Threading: a Store is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "cloned/proto/messages.h"

namespace store {

struct ReplicaState {
  proto::PairId pair_id{};
  std::string disk_identity;        // DiskIdentity::describe() at pairing, for display
  uint64_t generation = 1;
  uint64_t committed_seq = 0;       // a barrier's sequence number, 0 = none
  uint64_t committed_epoch = 0;     // the epoch that barrier closed
  // Records up to reserved_seq may have been written to the disk. Equal to
  // committed_seq after a clean stop; larger after a crash (see ARCHITECTURE).
  uint64_t reserved_seq = 0;
  proto::CloneState state = proto::CloneState::fresh;
  std::string state_reason;         // a sentence, "" when consistent
  // The state is inconsistent until the applied position reaches this (0 = n/a).
  uint64_t consistent_at_seq = 0;
  int64_t updated_unix_ms = 0;
};

struct Event {
  int64_t id = 0;
  int64_t unix_ms = 0;
  std::string level;    // "error", "warning", "notice", "info"
  std::string kind;     // short tag: "start", "session", "refused", "state", ...
  std::string message;  // a sentence
};

enum class OpenMode { read_write, read_only };

inline constexpr size_t kMaxEvents = 10000;  // older events are deleted

class Store {
 public:
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Opens dir/state.sqlite3. read_write creates it when absent, initialised
  // with `pair_id`, `disk_identity` and state fresh; an existing store of
  // another pair id is refused. read_only never creates or writes (clonectl).
  static base::Result<std::unique_ptr<Store>> open(const std::string& dir, OpenMode mode,
                                                   const proto::PairId& pair_id = {},
                                                   const std::string& disk_identity = "");

  base::Result<ReplicaState> load();
  // One synchronous transaction writing the whole replica state.
  base::Status save(const ReplicaState& state);
  // Appends an event (not synchronous by itself; durable with the next save).
  base::Status append_event(const std::string& level, const std::string& kind,
                            const std::string& message);
  base::Result<std::vector<Event>> recent_events(size_t limit);
  // Copies the write-ahead log into the database file and truncates it
  // (before the clone sleeps: a power cut while asleep finds one clean file).
  base::Status checkpoint();

  // Fault injection: every save() first sleeps this long (a slow USB stick).
  void set_commit_delay_ms(uint32_t delay_ms);
  uint64_t commit_count() const;

 private:
  Store() = default;
  struct Impl;
  Impl* impl_ = nullptr;
};

}  // namespace store
