// SPDX-License-Identifier: MIT
// The state store's reads and writes (the schema is in store_open.cpp).
#include <algorithm>
#include <chrono>
#include <thread>

#include "base/promise.h"
#include "base/units.h"
#include "cloned/store/store_impl.h"

namespace store {
namespace {

using detail::Use;

// Event texts come partly from peers and disks: bounded (invariant 9).
constexpr size_t kLevelBytesMax = 16;
constexpr size_t kKindBytesMax = 64;
constexpr size_t kMessageBytesMax = 2048;

// Cuts at a UTF-8 character boundary so the text stays valid.
std::string bounded(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

}  // namespace

base::Status Store::Impl::prune() {
  Use use(prune_events);
  use.bind(1, static_cast<uint64_t>(kMaxEvents - kPruneEveryInserts));
  int rc = use.step();
  if (rc != SQLITE_DONE) return fail("delete old events", rc);
  inserts_since_prune = 0;
  return base::Status::ok();
}

base::Status Store::Impl::update(const apply::ReplicaState& state) {
  Use use(update_replica);
  use.bind(1, std::string_view(state.disk_identity));
  use.bind(2, state.generation);
  use.bind(3, state.committed_seq);
  use.bind(4, state.committed_epoch);
  use.bind(5, state.reserved_seq);
  use.bind(6, static_cast<int64_t>(state.state));
  use.bind(7, std::string_view(bounded(state.state_reason, kMessageBytesMax)));
  use.bind(8, state.consistent_at_seq);
  use.bind(9, base::unix_ms());
  use.bind(10, state.resync.generation);
  use.bind(11, state.resync.target_seq);
  use.bind(12, state.resync.target_epoch);
  use.bind(13, state.resync.cursor_bytes);
  use.bind(14, static_cast<uint64_t>(state.resync.extent_bytes));
  use.bind(15, static_cast<uint64_t>(state.resync.flags));
  use.bind(16, static_cast<int64_t>(state.needs_resync ? 1 : 0));
  static const uint8_t kEmpty = 0;  // a null pointer would bind NULL, not an empty blob
  use.bind_blob(17, state.fingerprint.empty() ? &kEmpty : state.fingerprint.data(), state.fingerprint.size());
  use.bind(18, static_cast<int64_t>(state.fingerprint_valid ? 1 : 0));
  use.bind(19, std::string_view(bounded(state.decision, kMessageBytesMax)));
  int col = 20;
  for (const apply::LogMark* m : {&state.mark, &state.mark_before}) {
    use.bind(col++, std::string_view(m->name));
    use.bind(col++, m->generation);
    use.bind(col++, m->seq);
    use.bind(col++, m->epoch);
  }
  use.bind(28, static_cast<int64_t>(state.stage.phase));
  use.bind(29, state.stage.durable_bytes);
  use.bind(30, state.stage.staged_disk_bytes);
  use.bind(31, state.stage.consistent_at_seq);
  int rc = use.step();
  if (rc != SQLITE_DONE) return fail("update the replica row", rc);
  if (sqlite3_changes(db) != 1) {
    return base::Status::error(EIO, "state store " + dir + " lost its replica row");
  }
  return base::Status::ok();
}
base::Result<apply::ReplicaState> Store::load() {
  Use use(impl_->select_replica);
  int rc = use.step();
  if (rc != SQLITE_ROW) return impl_->fail("read the replica row", rc);
  apply::ReplicaState s;
  s.pair_id = impl_->pair_id;
  s.disk_identity = use.text(1);
  s.generation = use.u64(2);
  s.committed_seq = use.u64(3);
  s.committed_epoch = use.u64(4);
  s.reserved_seq = use.u64(5);
  const int64_t state = use.i64(6);
  if (state < 0 || state > static_cast<int64_t>(proto::CloneState::diverged)) {
    return base::Status::error(EIO, "state store " + impl_->dir + " holds an unknown state " +
                                        std::to_string(state) + "; run a newer cloned");
  }
  s.state = static_cast<proto::CloneState>(state);
  s.state_reason = use.text(7);
  s.consistent_at_seq = use.u64(8);
  s.updated_unix_ms = use.i64(9);
  s.resync.generation = use.u64(10);
  s.resync.target_seq = use.u64(11);
  s.resync.target_epoch = use.u64(12);
  s.resync.cursor_bytes = use.u64(13);
  s.resync.extent_bytes = static_cast<uint32_t>(use.u64(14));
  s.resync.flags = static_cast<uint32_t>(use.u64(15));
  s.needs_resync = use.i64(16) != 0;
  const std::string_view fp = use.blob(17);
  s.fingerprint.assign(fp.begin(), fp.end());
  s.fingerprint_valid = use.i64(18) != 0;
  s.decision = use.text(19);
  int col = 20;
  for (apply::LogMark* m : {&s.mark, &s.mark_before}) {
    m->name = use.text(col++);
    m->generation = use.u64(col++);
    m->seq = use.u64(col++);
    m->epoch = use.u64(col++);
  }
  const int64_t phase = use.i64(28);
  if (phase < 0 || phase > static_cast<int64_t>(apply::StagePhase::applying))
    return base::Status::error(EIO, "state store " + impl_->dir + " holds an unknown stage phase " +
                                        std::to_string(phase) + "; run a newer cloned");
  s.stage.phase = static_cast<apply::StagePhase>(phase);
  s.stage.durable_bytes = use.u64(29);
  s.stage.staged_disk_bytes = use.u64(30);
  s.stage.consistent_at_seq = use.u64(31);
  return s;
}

// save() ignores state.pair_id (fixed when the store was created) and sets
// updated_unix_ms to the time of the save.
base::Status Store::save(const apply::ReplicaState& state) {
  // Invariants 4 and 6: the reservation covers the committed position, and
  // within a generation the committed position only moves back when a resync
  // (which marks the disk inconsistent first) restarts the copy.
  CLONED_PROMISE(state.reserved_seq >= state.committed_seq,
                 "a reservation of record " + std::to_string(state.reserved_seq) + " below the committed record " +
                     std::to_string(state.committed_seq));
  CLONED_PROMISE(!impl_->saved_once || state.generation != impl_->saved_generation || state.resync.active() ||
                     state.committed_seq >= impl_->saved_committed_seq,
                 "the committed position of generation " + std::to_string(state.generation) + " would move back from " +
                     std::to_string(impl_->saved_committed_seq) + " to " + std::to_string(state.committed_seq));
  if (impl_->commit_delay_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(impl_->commit_delay_ms));
  }
  BASE_TRY(impl_->run(impl_->begin, "begin a transaction"));
  base::Status status = impl_->update(state);
  if (status) status = impl_->run(impl_->commit, "commit");
  if (!status) {
    (void)impl_->run(impl_->rollback, "roll back");
    return status;
  }
  ++impl_->commit_count;
  impl_->saved_once = true;
  impl_->saved_generation = state.generation;
  impl_->saved_committed_seq = state.committed_seq;
  return base::Status::ok();
}

base::Status Store::checkpoint() {
  return impl_->exec("PRAGMA wal_checkpoint(TRUNCATE)", "checkpoint the write-ahead log");
}

base::Status Store::append_event(const std::string& level, const std::string& kind,
                                 const std::string& message) {
  // Not prepared statements: sqlite applies PRAGMA synchronous when the
  // statement is prepared, not when it is stepped.
  BASE_TRY(impl_->exec("PRAGMA synchronous=NORMAL", "set synchronous=NORMAL"));
  base::Status status;
  {
    Use use(impl_->insert_event);
    use.bind(1, base::unix_ms());
    use.bind(2, std::string_view(bounded(level, kLevelBytesMax)));
    use.bind(3, std::string_view(bounded(kind, kKindBytesMax)));
    use.bind(4, std::string_view(bounded(message, kMessageBytesMax)));
    int rc = use.step();
    if (rc != SQLITE_DONE) status = impl_->fail("append an event", rc);
  }
  if (status && ++impl_->inserts_since_prune >= kPruneEveryInserts) status = impl_->prune();
  base::Status restored = impl_->exec("PRAGMA synchronous=FULL", "set synchronous=FULL");
  return status ? restored : status;
}

base::Result<std::vector<Event>> Store::recent_events(size_t limit) {
  Use use(impl_->select_events);
  use.bind(1, static_cast<uint64_t>(std::min(limit, kMaxEvents)));
  std::vector<Event> events;
  int rc = 0;
  while ((rc = use.step()) == SQLITE_ROW) {
    events.push_back(Event{use.i64(0), use.i64(1), use.text(2), use.text(3), use.text(4)});
  }
  if (rc != SQLITE_DONE) return impl_->fail("read events", rc);
  return events;
}

base::Status Store::add_out_of_sync(uint64_t offset_bytes, uint64_t length_bytes) {
  return add_out_of_sync(std::vector<OutOfSyncRange>{{offset_bytes, length_bytes, 0}});
}

base::Status Store::add_out_of_sync(const std::vector<OutOfSyncRange>& ranges) {
  if (ranges.empty()) return base::Status::ok();
  BASE_TRY(impl_->run(impl_->begin, "begin a transaction"));
  base::Status status;
  const int64_t now = base::unix_ms();
  // Counted once, then by each insert (at most: one at an offset already
  // recorded replaces it), and again only at the bound.
  base::Result<uint64_t> count = out_of_sync_count();
  for (const OutOfSyncRange& r : ranges) {
    if (count && *count >= kMaxOutOfSyncRanges) count = out_of_sync_count();
    if (!count) {
      status = count.status();
      break;
    }
    if (*count >= kMaxOutOfSyncRanges) {  // those before it stay recorded
      status = base::Status::error(ENOSPC, "state store " + impl_->dir + " already holds " + std::to_string(*count) +
                                               " out-of-sync ranges; repair them (clone-origin verify --repair)");
      break;
    }
    ++*count;
    Use use(impl_->insert_oos);
    use.bind(1, r.offset_bytes);
    use.bind(2, r.length_bytes);
    use.bind(3, now);
    if (int rc = use.step(); rc != SQLITE_DONE) {
      status = impl_->fail("record an out-of-sync range", rc);
      break;
    }
  }
  if (base::Status s = impl_->run(impl_->commit, "commit"); !s.is_ok()) {
    (void)impl_->run(impl_->rollback, "roll back");
    return s;
  }
  return status;
}

base::Status Store::clear_out_of_sync() { return impl_->run(impl_->clear_oos, "clear the out-of-sync ranges"); }

base::Result<std::vector<OutOfSyncRange>> Store::out_of_sync(size_t limit) {
  Use use(impl_->select_oos);
  use.bind(1, static_cast<uint64_t>(std::min(limit, kMaxOutOfSyncRanges)));
  std::vector<OutOfSyncRange> out;
  int rc = 0;
  while ((rc = use.step()) == SQLITE_ROW) out.push_back({use.u64(0), use.u64(1), use.i64(2)});
  if (rc != SQLITE_DONE) return impl_->fail("read the out-of-sync ranges", rc);
  return out;
}

base::Result<uint64_t> Store::out_of_sync_count() {
  Use use(impl_->count_oos);
  int rc = use.step();
  if (rc != SQLITE_ROW) return impl_->fail("count the out-of-sync ranges", rc);
  return use.u64(0);
}

void Store::set_commit_delay_ms(uint32_t delay_ms) { impl_->commit_delay_ms = delay_ms; }

uint64_t Store::commit_count() const { return impl_->commit_count; }

}  // namespace store
