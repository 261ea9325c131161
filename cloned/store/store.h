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

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "cloned/apply/replica.h"
#include "proto/messages.h"

namespace store {

// A range a verify found different from the original (offset, length).
struct OutOfSyncRange {
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
  int64_t found_unix_ms = 0;
};
inline constexpr size_t kMaxOutOfSyncRanges = 65536;

struct Event {
  int64_t id = 0;
  int64_t unix_ms = 0;
  std::string level;    // "error", "warning", "notice", "info"
  std::string kind;     // short tag: "start", "session", "refused", "state", ...
  std::string message;  // a sentence
};

// A health report waiting for the original's acknowledgement (health_backlog.cpp).
struct HealthReportRow {
  uint64_t id = 0;  // monotonic, never reused, also after a restart
  int64_t created_unix_ms = 0;
  bool summary = false;   // a periodic summary: dropped first when the backlog is full
  bool critical = false;  // holds a critical finding: never dropped
  std::string bytes;      // hwhealth::encode_report()
};

// The latest assessment, for `clonectl health` whether or not the daemon runs.
struct HealthAssessment {
  int64_t taken_unix_ms = 0;
  std::string verdict;  // hwhealth::verdict_name()
  std::string text;     // hwhealth::format_text(details)
  std::string json;     // hwhealth::format_json()
};

// What the next health poll compares against (hwhealth/baseline.h), kept
// across restarts so that they do not report old findings again.
struct HealthBaseline {
  int64_t summary_unix_ms = 0;  // when the last periodic summary was made; 0: never
  std::string bytes;            // hwhealth::encode_baseline(); empty when none was stored
};

// What one health poll leaves in the store (health_record_poll).
struct HealthPoll {
  std::vector<HealthReportRow> reports;  // their ids are assigned by the store
  HealthAssessment latest;
  HealthBaseline baseline;
};

enum class OpenMode { read_write, read_only };

// Who writes the state when no daemon is there to ask. cloned holds this
// lock (an flock on STATE_DIR/cloned.lock) from before it loads the state
// until it exits; clonectl takes it before it writes the state itself. So a
// decision clonectl writes while a daemon starts is neither written after
// the daemon loaded the state nor overwritten by it: clonectl finds the lock
// held, and asks the daemon once it listens.
class StateLock {
 public:
  // Waits up to `wait` for the lock; EWOULDBLOCK when another holds it then.
  static base::Result<StateLock> take(const std::string& dir, std::chrono::milliseconds wait);
  StateLock(StateLock&&) = default;
  StateLock& operator=(StateLock&&) = default;

 private:
  explicit StateLock(base::UniqueFd fd) : fd_(std::move(fd)) {}
  base::UniqueFd fd_;  // closing it lets the lock go
};

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

  base::Result<apply::ReplicaState> load();
  // One synchronous transaction writing the whole replica state.
  base::Status save(const apply::ReplicaState& state);
  // Appends an event (not synchronous by itself; durable with the next save).
  base::Status append_event(const std::string& level, const std::string& kind, const std::string& message);
  base::Result<std::vector<Event>> recent_events(size_t limit);
  // Copies the write-ahead log into the database file and truncates it
  // (before the clone sleeps: a power cut while asleep finds one clean file).
  base::Status checkpoint();

  // Out-of-sync ranges found by verify. add() replaces a range at the same
  // offset; past kMaxOutOfSyncRanges it fails (the verify reports the rest).
  base::Status add_out_of_sync(uint64_t offset_bytes, uint64_t length_bytes);
  // The same for each of `ranges`, in one transaction (one sync of the stick).
  base::Status add_out_of_sync(const std::vector<OutOfSyncRange>& ranges);
  base::Status clear_out_of_sync();
  base::Result<std::vector<OutOfSyncRange>> out_of_sync(size_t limit);
  base::Result<uint64_t> out_of_sync_count();
  // The health report backlog (health_backlog.cpp; its tables are created
  // on first use). health_append stores a report with the next id and then
  // trims the backlog to `backlog_max` rows: the oldest summaries go first,
  // then the oldest non-critical reports; critical reports are never
  // dropped (so only they can hold the backlog above its bound). Returns the
  // id. Synchronous (survives a power cut once it returned).
  base::Result<uint64_t> health_append(const HealthReportRow& row, size_t backlog_max, size_t* dropped = nullptr);
  // Waiting reports after id `after_id`, oldest first, at most `limit`.
  base::Result<std::vector<HealthReportRow>> health_backlog(size_t limit, uint64_t after_id = 0);
  // The original acknowledged report `id`: it leaves the backlog (no error
  // when it is not there: an ack may arrive twice).
  base::Status health_acked(uint64_t id);
  base::Result<uint64_t> health_backlog_count();
  base::Status health_set_latest(const HealthAssessment& latest);
  // One poll's reports (appended as health_append does; their ids are set in
  // `poll`), its assessment and its baseline, in one synchronous transaction:
  // a power cut keeps all of it or none, so a report is never lost while its
  // baseline says it was made, nor made twice.
  base::Status health_record_poll(HealthPoll& poll, size_t backlog_max, size_t* dropped = nullptr);
  // The stored baseline; empty bytes when there is none (a new store).
  base::Result<HealthBaseline> health_baseline();
  // nullopt-like: taken_unix_ms == 0 when no assessment was stored yet.
  base::Result<HealthAssessment> health_latest();

  // Fault injection: every save() first sleeps this long (a slow USB stick).
  void set_commit_delay_ms(uint32_t delay_ms);
  uint64_t commit_count() const;

 private:
  Store() = default;
  struct Impl;
  Impl* impl_ = nullptr;
};

}  // namespace store
