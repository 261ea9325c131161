// SPDX-License-Identifier: MIT
// The apply state machine: the heart of the clone (design.md invariants 3-6).
//
// It does no I/O (leveldb's Env, TigerBeetle's StorageType): the daemon feeds
// it events (a session's hello, a decoded record, a completed disk operation,
// a completed flush or store commit, a timer tick) and carries out the actions
// it returns (submit this record to the disk, flush, send this ack, commit
// this state, fail the session). Tests drive it with no sockets and no disks.
//
// The rules it enforces:
//  - Validate before touching the disk: type, inside the disk, aligned to the
//    logical block size, sequence number exactly the next one, epoch the open
//    one. (The payload digest is checked by whoever performs the submitted
//    write, right before the write: the machine marks it as required.)
//  - Records are processed in sequence order. Writes of one epoch go to the
//    disk concurrently, except that a record overlapping one still in flight
//    waits for it (so overlapping writes land in log order).
//  - A barrier is flushed only when nothing is in flight; its ack is sent only
//    after the flush: nothing of epoch e+1 is submitted before e is durable.
//  - The position is committed to the store in groups, off the per-epoch path.
//    Each commit also reserves how far past it the disk may be written
//    (reserved_seq); after a crash the records between the committed position
//    and the reservation may be replayed, which makes the disk temporarily
//    not a bootable copy: the machine marks the clone inconsistent, durably,
//    before the first such write, and consistent again once it has caught up.
//  - Memory is bounded: the bytes of records received and not yet written are
//    limited; the daemon stops reading the socket when can_accept() is false.
//
// Threading: one thread (the event loop) owns a Machine.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "blockio/device.h"
#include "cloned/apply/decision.h"
#include "cloned/apply/replica.h"
#include "proto/messages.h"
#include "proto/resync.h"

namespace apply {

struct Limits {
  uint64_t held_bytes_max = 32ull << 20;  // received, not yet written
  uint32_t io_depth_max = 32;             // disk operations submitted at once
  uint32_t commit_interval_ms = 100;      // at most one grouped commit per interval
  // How far past the last commit the disk may be written. After a crash the
  // clone shows inconsistent while it replays at most this many records.
  uint64_t reserve_ahead_records = 16384;
  // A Diverged clone takes a resync that discards its own changes only when
  // its configuration allows it ([resync] allow_remote_discard).
  bool allow_remote_discard = false;
  // A resync onto a consistent clone is staged on the stick and applied at
  // its end ([resync] stage_max_bytes != 0; staged.cpp).
  bool stage_resync = false;
  // Separate ranges the log may write above an in-place resync's last mark
  // in one session (each is kept so that older resync data does not
  // overwrite it; those below a flushed mark are let go). More ends the
  // session; the resync resumes at its durable cursor. 65,536 is about 4 MiB.
  size_t log_ranges_max = size_t{1} << 16;
};

// What an accepted record costs against Limits::held_bytes_max: the memory
// it really holds. A write holds its whole frame (payload 4096-aligned inside
// it, plus the allocator's alignment slack), so a 4 KiB write costs 12 KiB,
// not 4; every other record a fixed overhead, so a flood of tiny trims is
// bounded too.
inline constexpr uint64_t kRecordOverheadBytes = 128;
uint64_t record_cost_bytes(const proto::RecordHeader& header);

// Identifies an accepted record; the daemon keeps the record's bytes under it.
using RecordId = uint64_t;

// A byte range of the disk.
struct Extent {
  uint64_t offset_bytes;
  uint64_t length_bytes;
};

struct SubmitIo {
  RecordId id;
  proto::RecordHeader header;  // write or resync_data (verify digest, then write), trim, zero or resync_zero
  // Resync extents only: when not empty, write just these parts of the
  // extent (the rest was written by the log meanwhile and must not go back).
  std::vector<Extent> only;
  // A staged resync: append the extent to the stage (stage.h), not the disk.
  bool to_stage = false;
  // Not 0: the gate of the barrier flush (the next the machine asks,
  // Actions::flush_gate) this write must not start before. Once that flush
  // has succeeded it runs like any other; if the flush fails, a write it
  // covers failed, or the machine asks to (Actions::cancel_after_flush), it
  // completes unwritten with ECANCELED. The next epoch's writes go out ahead
  // this way, so that the disk starts them the moment the flush returns; none
  // starts before the epoch before it is durable (invariant 5).
  //
  // Gates are numbered by the machine, increasing, and a number is never
  // given to two flushes while the machine lives: one named for a barrier
  // that is dropped unflushed (a session ends, a cancel) goes with it. So
  // an executor may keep the highest gate whose flush let writes go and the
  // highest that cancelled them, and never reset either (a barrier's seq
  // would not do: the next session sends the same seqs again).
  uint64_t after_flush_gate = 0;
  // The gate of the barrier flush that is to make this write durable: the
  // next the machine asks, or the one after after_flush_gate. If the write
  // fails, a flush with this gate (early or not) must not let the writes
  // held behind it go (invariant 5); one with a later gate is not held up
  // by it (the barrier it was for is never flushed: the session ended, or
  // the disk failed).
  uint64_t covered_by_gate = 0;
};
// Open the stage before anything is staged: a fresh one (create) for
// `generation` over `base_generation`, or the existing one of which
// `durable_bytes` are durable. The daemon reports a failure with
// Machine::on_stage_opened; after a failure later stage operations fail too.
struct StageOpen {
  bool create = false;
  uint64_t generation = 0;
  uint64_t base_generation = 0;
  uint64_t durable_bytes = 0;
};
// What the clone's stick can take for a stage now, as the daemon measured it
// for a resync_plan (the machine does no I/O).
struct StageRoom {
  uint64_t bound_bytes = 0;       // [resync] stage_max_bytes
  uint64_t free_bytes = 0;        // free on the stick, less what is kept for the state store
  uint64_t stage_file_bytes = 0;  // held by the stage file on the stick now: a new stage truncates it
};
// The stage's file format (cloned/stage/stage.h, which checks these match):
// what a plan costs on the stick.
// Resync marks received and not yet acknowledged (each waits for a flush and
// a commit): at this many the daemon stops reading (can_accept), as it does
// at inflight_bytes_max, since marks carry no data to hold it back; twice as
// many (what a peer that ignored the backpressure would need to send) is a
// protocol error (invariant 9). The reference original sends one per
// [resync] mark_interval of the disk, back to back over what matches.
inline constexpr size_t kResyncMarksMax = 4096;  // their acks, sent together, stay far under the 4 MiB outgoing bound
inline constexpr uint64_t kStageHeaderBytes = 64;
inline constexpr uint64_t kStageEntryHeaderBytes = 72;
struct Flush {};
struct SendBarrierAck {
  uint64_t epoch;
  uint64_t seq;
};
struct SendReceiptAck {
  uint64_t seq;
};
struct SendCommitted {
  uint64_t seq;
};
struct Commit {
  apply::ReplicaState state;
};
// End the session: send an error with this code and sentence, then close.
struct FailSession {
  proto::ErrorCode code;
  std::string message;
};
// A marked barrier is durable: the clone holds everything up to the mark.
struct MarkReached {
  std::string name;
  uint64_t seq;
  uint64_t epoch;
};
// The clone's disk failed: the daemon must stop taking writes.
struct DiskFailed {
  std::string message;
};

struct Actions {
  std::optional<proto::Hello> hello_reply;  // answer to a deferred hello
  std::vector<SubmitIo> submit;
  std::vector<RecordId> dropped;  // accepted earlier, now discarded unwritten
  bool flush = false;
  // A barrier's flush: its gate (SubmitIo::after_flush_gate). 0 for a flush
  // no write waits for (resync marks).
  uint64_t flush_gate = 0;
  // The barrier that after_flush writes wait for was dropped unflushed: those
  // not yet started complete unwritten (ECANCELED).
  bool cancel_after_flush = false;
  std::vector<SendBarrierAck> barrier_acks;
  std::vector<SendReceiptAck> receipt_acks;
  std::vector<SendCommitted> committed;
  std::vector<Commit> commits;
  std::vector<FailSession> fail;
  std::vector<DiskFailed> disk_failed;
  std::vector<MarkReached> marks_reached;
  // Resync: the answer to a resync_begin (once its state is durable), acks of
  // marks whose cursor is durable, and the end (consistent at a generation).
  std::optional<proto::ResyncState> resync_state;
  std::vector<uint64_t> resync_mark_acks;
  std::optional<proto::ResyncDone> resync_done;
  std::optional<proto::ResyncPlanReply> plan_reply;  // the answer to a resync_plan
  bool clear_out_of_sync = false;                    // a resync completed: the verify's findings are repaired
  // Staged resync (staged.cpp), carried out in this order by one thread:
  // open the stage; append (SubmitIo::to_stage); sync it where a disk flush
  // would be (Machine::on_stage_synced); copy it to the disk and flush
  // (Machine::on_stage_applied); remove it once G+1 is committed.
  std::optional<StageOpen> stage_open;
  bool stage_sync = false;
  bool stage_apply = false;
  bool stage_remove = false;
  // A staged resync replaced by one in place: its stage goes once the state
  // without it is committed (not applied: the disk never got it).
  bool stage_drop = false;
  bool empty() const {
    return !hello_reply && submit.empty() && dropped.empty() && !flush && barrier_acks.empty() &&
           receipt_acks.empty() && committed.empty() && commits.empty() && fail.empty() && disk_failed.empty() &&
           marks_reached.empty() && !resync_state && resync_mark_acks.empty() && !resync_done && !clear_out_of_sync &&
           !stage_open && !stage_sync && !stage_apply && !stage_remove && !stage_drop && !plan_reply;
  }
};

struct Position {
  uint64_t seq = 0;
  uint64_t epoch = 0;
};

class Machine {
 public:
  Machine(const blockio::Geometry& geometry, const apply::ReplicaState& loaded, const Limits& limits);

  // --- Sessions ---
  // An original's hello. The session opens when the clone's hello goes back
  // in actions.hello_reply: at once, or, while operations of an earlier
  // session are still in flight, as soon as they have completed (the position
  // the clone reports must be final). A refusal is a FailSession in `actions`.
  // One session at a time: end the previous one first.
  void start_session(const proto::Hello& original, Actions& actions);
  // The session is gone (closed, failed, or timed out). Records received and
  // not yet submitted are dropped (actions.dropped): the daemon frees them.
  void end_session(Actions& actions);
  bool in_session() const { return in_session_; }
  bool hello_pending() const { return pending_hello_.has_value(); }

  // --- Events ---
  // A record decoded from the session. Assigns `id` on acceptance; on a
  // validation failure adds a FailSession and nothing of it is kept.
  // `mark`: a marked barrier's name (proto::kBarrierFlagMark). The mark is
  // committed to the store before its barrier is flushed and acknowledged,
  // and actions.marks_reached reports it once that barrier is durable.
  void on_record(const proto::RecordHeader& header, RecordId& id, Actions& actions, std::string_view mark = {});
  // The daemon finished a batch of reads (receipt acks are batched per read).
  void on_read_batch_done(Actions& actions);
  // A submitted operation finished; `status` not ok = disk error or digest mismatch
  // (`digest_mismatch` true: the record was refused before writing).
  void on_io_done(RecordId id, const base::Status& status, bool digest_mismatch, Actions& actions);
  void on_flush_done(const base::Status& status, Actions& actions);
  void on_commit_done(const base::Status& status, Actions& actions);
  // Time passes; may start a grouped commit.
  void on_tick(uint64_t now_ms, Actions& actions);

  // --- Resync (resync.cpp; docs/ARCHITECTURE.md, "Resync") ---
  // Only in a maintenance session (kHelloMaintenance). Begins a new
  // generation, resumes the interrupted one, or (kResyncRepair) repairs
  // ranges of the current one. Answered with actions.resync_state once the
  // "resync in progress" mark is durable, before any resync write.
  void on_resync_begin(const proto::ResyncBegin& begin, Actions& actions);
  // resync_data or resync_zero. Assigns `id` on acceptance; for resync_data
  // the daemon keeps the frame under it like a write's.
  void on_resync_extent(const proto::RecordHeader& header, RecordId& id, Actions& actions);
  // Everything received before the mark is made durable, then the cursor is
  // committed, then acked (actions.resync_mark_acks).
  void on_resync_mark(uint64_t cursor_bytes, Actions& actions);
  // The last mark: the clone holds generation G at the target position and
  // is consistent once record `consistent_at_seq` is durable.
  void on_resync_end(uint64_t consistent_at_seq, Actions& actions);
  // After a begin with kResyncPlanFollows (answered at once, nothing
  // committed): the bytes the rest of the resync will send. A stage that
  // holds them goes on staged; one that does not is refused (stage_full,
  // nothing written or committed, the clone stays at its generation), or with
  // kPlanInPlaceUnbootable the resync goes in place. actions.plan_reply says
  // which, with the figures. `room` is what the stick can take now.
  void on_resync_plan(const proto::ResyncPlan& plan, const StageRoom& room, Actions& actions);
  bool awaits_plan() const { return plan_begin_.has_value(); }
  // The clone would stage a resync now, so it asks for a plan (its hello
  // says kHelloTakesResyncPlan); an in-place resync has nothing to refuse.
  bool takes_resync_plan() const;
  // A resync is begun in this session, or the end of one still finishes
  // (its commit, or the copy of its stage to the disk): the clone stays awake.
  bool resync_running() const { return resync_running_ || end_committing_.has_value(); }

  // --- Staged resync (staged.cpp; docs/ARCHITECTURE.md, "Staged resync") ---
  // The stage was synced for the marks in flight: `durable_bytes` of it are
  // on the stick, holding `staged_disk_bytes` of the disk.
  void on_stage_synced(const base::Status& status, uint64_t durable_bytes, uint64_t staged_disk_bytes,
                       Actions& actions);
  // The stage worker answered a stage_open, in the order they were asked:
  // the stage was created or opened, or not (status says why). True when a
  // failure was the stage in use's, and so changed something.
  bool on_stage_opened(const base::Status& status, Actions& actions);
  // The stage was copied to the disk and the disk flushed (or not:
  // `disk_failed` when the disk's write or flush failed, else the stage could
  // not be read from the stick).
  void on_stage_applied(const base::Status& status, bool disk_failed, Actions& actions);
  // At start: a store that says "applying" finishes the copy, with no
  // original (actions.stage_open and stage_apply).
  void resume_staged_apply(Actions& actions);
  bool staging() const { return replica_.stage.phase == apply::StagePhase::staging; }
  bool applying_stage() const { return replica_.stage.phase == apply::StagePhase::applying; }
  // While applying, after a stick error: the wait before the next try (0:
  // none is due), and the number of that try.
  uint64_t stage_retry_wait_ms() const { return stage_retry_wait_ms_; }
  unsigned stage_next_try() const { return stage_retries_ + 1; }

  // --- Diverged (the daemon compares fingerprints; the machine keeps the state) ---
  void mark_diverged(const std::string& reason, Actions& actions);
  // The owner's decision (decision.h); refused unless Diverged, and while
  // shutting down (nothing commits after the final commit). It is
  // durable once committed_snapshot() reaches state_snapshot() as it was
  // just after this call (the daemon answers clonectl then).
  base::Status apply_decision(apply::Decision d, const std::string& who, int64_t unix_ms, Actions& actions);
  // Commits are numbered by their snapshot of the state. The number of the
  // first snapshot that holds the state as it is now (the one in flight, if
  // it was taken since the last change; else the next), and of the newest
  // snapshot the store holds. Each snapshot holds every change before it.
  uint64_t state_snapshot() const { return state_dirty_ ? snapshots_taken_ + 1 : snapshots_taken_; }
  uint64_t committed_snapshot() const { return snapshots_committed_; }
  // The disk's fingerprint as the daemon now leaves it (valid), or "about to
  // change" (the first write of a session waits until that is durable).
  void set_fingerprint(const base::Bytes& fingerprint, Actions& actions);
  // Before the first write of a session: the stored fingerprint stops being
  // valid, durably, before anything is written (writes wait for the commit).
  void invalidate_fingerprint(Actions& actions);
  bool fingerprint_valid() const { return replica_.fingerprint_valid; }
  // Nothing queued, in flight, being flushed, or committing.
  bool quiet() const {
    return queue_.empty() && resync_queue_.empty() && idle_disk() && !commit_in_flight_ && !state_dirty_ &&
           !stage_applying_;
  }

  // --- Shutdown ---
  // Stop after the epoch being received: records of later epochs are dropped
  // unwritten. done_for_shutdown() turns true once that epoch (or nothing) is
  // durable, nothing is in flight, and the final commit has completed.
  void begin_shutdown(Actions& actions);
  bool done_for_shutdown() const;
  // Give up waiting for the session's epoch: commit what is durable now.
  void force_shutdown(Actions& actions);

  // --- Observers ---
  bool can_accept() const;  // false: stop reading the socket
  Position durable() const { return durable_; }
  // After an unclean stop, before the original's next log session settles it:
  // the disk may hold whole epochs past durable(), up to this record
  // (invariant 5). 0 = the disk is exactly at durable().
  uint64_t unclean_until_seq() const { return unclean_until_seq_; }
  Position committed() const { return committed_; }
  uint64_t received_seq() const { return recv_seq_; }
  uint64_t held_bytes() const { return held_bytes_; }
  // Submitted, not completed: at most Limits::io_depth_max on the disk, and
  // as many more held back behind the waiting barrier's flush.
  size_t in_flight() const { return in_flight_.size(); }
  size_t in_flight_after_flush() const { return after_flush_in_flight_; }
  size_t queued() const { return queue_.size(); }
  const apply::ReplicaState& replica() const { return replica_; }
  bool disk_failed() const { return disk_failed_; }
  uint64_t original_log_end() const { return original_log_end_; }
  // The newest mark whose barrier is durable (null: none yet).
  const apply::LogMark* last_mark() const { return reached_mark(replica_, durable_.seq); }
  // The gate of the barrier flush the machine will ask for as soon as the
  // disk writes in flight complete, or 0: an unmarked barrier heads the
  // queue, the reservation covers it, and only disk writes (nothing staged)
  // are in flight. A hint: the daemon lets the disk workers start that flush
  // the moment the last write completes (DiskWorkers::flush_when_drained).
  uint64_t gate_after_in_flight() const;
  // The seq of the barrier whose flush is in progress, or 0.
  uint64_t flushing_barrier_seq() const { return flushing_ == Flushing::barrier ? flushing_barrier_.header.seq : 0; }

 private:
  struct Entry {
    RecordId id;
    proto::RecordHeader header;
    uint64_t cost_bytes;
    uint64_t rseq = 0;         // resync extents: their order of arrival (0 = a log record)
    bool staged = false;       // goes to the stage, not the disk
    bool after_flush = false;  // submitted behind the barrier's flush (SubmitIo)
  };
  struct PendingMark {
    uint64_t rseq;  // the last resync extent received before it
    uint64_t cursor_bytes;
    bool is_end = false;
    uint64_t consistent_at_seq = 0;
    // Flushed: the first snapshot that can hold its cursor. An older commit
    // still in flight (of a resync begun again, or replaced) that shows a
    // cursor as far is not this mark's (found in review).
    uint64_t from_snapshot = 0;
  };
  std::optional<FailSession> validate(const proto::RecordHeader& h) const;
  std::optional<FailSession> validate_extent(const proto::RecordHeader& h, const std::string& what) const;
  void pump(Actions& actions);
  void pump_log(Actions& actions);
  void pump_epoch(Actions& actions);
  void pump_after_flush(Actions& actions);
  bool overlaps_after_flush(const proto::RecordHeader& h) const;
  void cancel_after_flush_if_orphaned(Actions& actions);
  void note_written_past_dropped_barrier();
  void after_commit_resync(const apply::ReplicaState& committed, uint64_t snapshot, Actions& actions);
  bool overlaps_in_flight(const proto::RecordHeader& h) const;
  void request_commit(Actions& actions);
  apply::ReplicaState snapshot_for_commit() const;
  void fail(Actions& actions, proto::ErrorCode code, const std::string& message);
  void maybe_become_consistent();
  void open_session(const proto::Hello& original, Actions& actions);
  void mark_catching_up();
  bool acked_position_plausible(const proto::Hello& original) const;
  void settle_unclean_window(const proto::Hello& original, uint64_t applied);
  bool adopt_acked_position(const proto::Hello& original, Actions& actions);
  void check_shutdown_progress(Actions& actions);
  void on_disk_error(const std::string& message, Actions& actions);
  // A record of the open epochs is not on the disk and will not be: its
  // epoch's barrier must never be flushed. Ends the session (the original
  // sends again from the durable position) with `code`.
  void end_session_for_unwritten(proto::ErrorCode code, const std::string& message, Actions& actions);
  void ask_cancel_after_flush(Actions& actions);
  void after_completion(Actions& actions);
  void drop_queue_after_epoch(uint64_t epoch, Actions& actions);
  bool idle_disk() const { return in_flight_.empty() && flushing_ == Flushing::none; }
  bool shutting_down() const { return shutdown_ != Shutdown::running; }
  // The bytes of accepted records not yet written (Limits::held_bytes_max).
  void hold(uint64_t cost_bytes);
  void release(uint64_t cost_bytes);
  void submit_entry(const Entry& e, std::vector<Extent> only, Actions& actions);
  std::optional<FailSession> log_refusal(const proto::Hello& original) const;
  std::optional<FailSession> begin_refusal(const proto::ResyncBegin& b) const;
  std::optional<FailSession> diverged_refusal(const proto::ResyncBegin& begin) const;
  std::optional<FailSession> validate_resync_extent(const proto::RecordHeader& h) const;
  void pump_resync(Actions& actions);
  void maybe_flush_for_mark(Actions& actions);
  bool mark_satisfied(const PendingMark& m) const;
  void on_mark_flushed(Actions& actions);
  bool note_log_written(const proto::RecordHeader& h, Actions& actions);
  void forget_log_written_below(uint64_t cursor);
  uint64_t resync_floor() const;
  // This resync's end has come: waiting in marks_, or flushed and committing
  // (end_committing_, until its commit or, staged, the copy to the disk).
  bool end_received() const;
  std::vector<Extent> unwritten_by_log(const proto::RecordHeader& h) const;
  void resync_entry_finished(uint64_t rseq);
  void end_resync_session(Actions& actions);
  void resync_from_zero(const proto::ResyncBegin& begin);  // the cursor at 0, no marks of another resync
  void end_reached(const PendingMark& end);                // end_committing_, from the next snapshot on
  void start_new_resync(const proto::ResyncBegin& begin);
  void begin_in_place(const proto::ResyncBegin& begin, Actions& actions);
  void continue_resync(Actions& actions);
  void answer_after_commit(const proto::ResyncPlanReply& reply);
  void after_commit_plan(const apply::ReplicaState& committed, uint64_t snapshot, Actions& actions);
  proto::ResyncPlanReply plan_figures(const proto::ResyncPlan& plan, const StageRoom& room, bool resume) const;
  void need_write_barrier_commit(Actions& actions);
  bool mark_waits_for_commit(const proto::RecordHeader& barrier);
  // staged.cpp
  bool should_stage(const proto::ResyncBegin& begin) const;
  bool already_holds(const proto::ResyncBegin& begin) const;
  void start_staged_resync(const proto::ResyncBegin& begin, Actions& actions);
  void resume_staging(Actions& actions);
  void ask_stage_open(const StageOpen& open, Actions& actions);
  void on_stage_error(const base::Status& status, Actions& actions);
  void on_stage_unreadable(const base::Status& status, Actions& actions);
  void stage_retry_tick(Actions& actions);
  void stage_end_reached(const PendingMark& end);
  bool after_commit_staged(const apply::ReplicaState& committed, Actions& actions);
  void finish_staged_apply(Actions& actions);
  void take_position(uint64_t seq, uint64_t epoch);

  blockio::Geometry geometry_;
  Limits limits_;
  apply::ReplicaState replica_;  // as last committed, plus pending changes

  Position durable_;             // last barrier on stable storage
  Position committed_;           // last position the store holds
  uint64_t reserved_limit_ = 0;  // committed reservation: records <= it may be written
  uint64_t highest_submitted_seq_ = 0;
  uint64_t unclean_until_seq_ = 0;  // disk may hold records up to here (after a crash)

  bool in_session_ = false;
  bool want_receipt_acks_ = false;
  uint64_t original_log_end_ = 0;
  uint64_t recv_seq_ = 0;            // last record accepted
  uint64_t recv_epoch_ = 0;          // the epoch open for receiving
  bool open_epoch_started_ = false;  // a record of recv_epoch_ has arrived
  uint64_t receipt_acked_seq_ = 0;
  uint64_t next_id_ = 1;

  std::optional<proto::Hello> pending_hello_;
  std::deque<Entry> queue_;           // accepted, not yet submitted, in seq order
  std::vector<Entry> in_flight_;      // submitted, not completed
  size_t after_flush_in_flight_ = 0;  // of in_flight_: behind the waiting barrier's flush
  // Why such a write may come back unwritten (ECANCELED): the machine asked
  // (Actions::cancel_after_flush) while some were in flight; or one came
  // back while their barrier's flush ran, whose result decides.
  bool after_flush_cancel_asked_ = false;
  // The highest seq behind the waiting barrier's flush written already (an
  // early flush for its gate let it go); 0: none. Its barrier dropped
  // unflushed, the disk holds records past the durable position.
  uint64_t after_flush_written_seq_ = 0;
  bool cancelled_while_flushing_ = false;
  size_t epoch_in_flight() const { return in_flight_.size() - after_flush_in_flight_; }
  uint64_t held_bytes_ = 0;
  // What the disk flush in progress is for: a barrier (flushing_barrier_), or
  // the first marks_in_flush_ resync marks. One flush at a time.
  enum class Flushing : uint8_t { none, barrier, marks };
  Flushing flushing_ = Flushing::none;
  // The stage's sync in flight was for marks of a stage Diverged emptied:
  // its figures are not the stage's now (found in review).
  bool stage_sync_stale_ = false;
  Entry flushing_barrier_{};    // the barrier whose flush is in progress
  uint64_t flushing_gate_ = 0;  // and its gate (SubmitIo::after_flush_gate)
  // The gate the next barrier flush will carry; moved on when one is asked,
  // and when the writes or the early flush it was named to are given up.
  uint64_t next_gate_ = 1;
  // The highest gate a submitted write was told (its after_flush_gate or
  // covered_by_gate): a session's end moves next_gate_ past it, so that no
  // flush of a later session carries a gate a write of this one was told.
  uint64_t gate_named_max_ = 0;
  // Names of marked barriers received and not yet durable, by seq; and the
  // newest mark the store holds (a marked barrier waits for it).
  std::map<uint64_t, std::string> mark_names_;
  apply::LogMark committed_mark_;
  uint64_t committed_sent_seq_ = 0;

  bool commit_in_flight_ = false;
  bool state_dirty_ = false;             // replica_ changed and must be committed
  bool writes_wait_for_commit_ = false;  // the inconsistent mark must be durable first
  uint64_t last_commit_ms_ = 0;
  uint64_t now_ms_ = 0;
  apply::ReplicaState commit_snapshot_;
  // Commits are numbered by their snapshot. What waits for a change to be
  // durable waits for a commit whose snapshot was taken after the change: one
  // already in flight may hold an older state that happens to compare equal
  // (the same resync generation with another target; found in review).
  uint64_t snapshots_taken_ = 0;
  uint64_t commit_snapshot_number_ = 0;  // of the commit in flight
  uint64_t snapshots_committed_ = 0;     // the newest the store holds
  uint64_t position_snapshots_ = 0;      // snapshots taken before the last take_position
  // The first snapshot that lets writes_wait_for_commit_ go, and that may
  // answer resync_state_pending_ or plan_reply_pending_ (each set with a
  // barrier commit: need_write_barrier_commit).
  uint64_t writes_wait_from_ = 0;
  uint64_t next_snapshot() const { return snapshots_taken_ + 1; }

  // running -> finishing (the epoch being received, up to shutdown_epoch_)
  // -> final_commit (in flight; back to finishing if it fails) -> done.
  enum class Shutdown : uint8_t { running, finishing, final_commit, done };
  Shutdown shutdown_ = Shutdown::running;
  uint64_t shutdown_epoch_ = 0;  // the last epoch still written
  bool disk_failed_ = false;

  // Session kind and what it may do.
  bool maintenance_ = false;     // the hello asked for a maintenance session
  bool log_ok_ = false;          // log records are taken in this session
  std::string log_refused_why_;  // when not: the sentence
  // Resync (resync.cpp).
  bool resync_running_ = false;            // begun or resumed in this session (only this session's answers)
  bool resync_state_pending_ = false;      // answer the begin once its commit is done
  bool resync_state_resumed_ = false;      // that answer is of a resumed resync
  std::deque<Entry> resync_queue_;         // received resync extents, not yet submitted
  std::set<uint64_t> resync_outstanding_;  // rseq of extents queued or in flight
  uint64_t resync_rseq_ = 0;
  std::deque<PendingMark> marks_;  // in order of arrival
  size_t marks_in_flush_ = 0;
  std::vector<PendingMark> marks_flushed_;     // durable on disk, cursor not yet committed
  std::optional<PendingMark> end_committing_;  // resync_end: its final commit is in flight
  // The first snapshot that can hold that end: a commit of an older one (in
  // flight since before the resync began, with no resync in it) is not the
  // end's, though it shows no resync active (found by fuzz/apply).
  uint64_t end_from_snapshot_ = 0;
  std::map<uint64_t, uint64_t> log_written_;  // offset -> end: written by the log during this resync
  // Staged resync (staged.cpp).
  bool stage_failed_ = false;         // an append or sync failed: nothing more is staged until the next begin
  bool stage_applying_ = false;       // the copy to the disk is in progress (a stage_apply action is out)
  bool stage_copy_owed_ = false;      // the end was reached: "applying"'s commit starts the copy
  bool stage_remove_owed_ = false;    // the applied stage goes once G+1 is committed
  bool stage_drop_owed_ = false;      // a replaced stage goes once the state without it is committed
  unsigned stage_applies_out_ = 0;    // stage_apply actions not yet answered (on_stage_applied)
  unsigned stage_opens_out_ = 0;      // stage_open actions not yet answered (on_stage_opened)
  unsigned stage_retries_ = 0;        // the stick failed the apply this many times in this run
  uint64_t stage_retry_wait_ms_ = 0;  // a retry is due this long after stage_retry_at_ms_ is set
  uint64_t stage_retry_at_ms_ = 0;    // 0: counted from the next tick
  bool resync_complete_ = false;      // this session's begin names the resync the clone already holds
  // A begin that announced a plan (kResyncPlanFollows, the bit cleared): answered, nothing started yet.
  std::optional<proto::ResyncBegin> plan_begin_;
  bool plan_resumes_ = false;                                 // that begin resumes the interrupted resync
  std::optional<proto::ResyncPlanReply> plan_reply_pending_;  // sent once what the plan started is durable
};

}  // namespace apply
