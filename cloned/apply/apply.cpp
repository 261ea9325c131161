// SPDX-License-Identifier: MIT
#include "cloned/apply/apply.h"

#include "base/promise.h"
#include "base/units.h"
#include "proto/frame.h"

#include <algorithm>
#include <cassert>
#include <cstdio>

namespace apply {
namespace {

bool is_extent(proto::MsgType t) {
  return t == proto::MsgType::write || t == proto::MsgType::trim || t == proto::MsgType::zero;
}

using base::u64s;

}  // namespace

uint64_t record_cost_bytes(const proto::RecordHeader& h) {
  if (h.type != proto::MsgType::write && h.type != proto::MsgType::resync_data) return kRecordOverheadBytes;
  const uint64_t page = base::kIoAlignmentBytes;
  const uint64_t frame = proto::kFramePlainOffset + proto::kWriteHeaderBytes + h.length_bytes + proto::kAeadTagBytes;
  return (frame + page - 1) / page * page + page + kRecordOverheadBytes;
}

Machine::Machine(const blockio::Geometry& geometry, const apply::ReplicaState& loaded, const Limits& limits)
    : geometry_(geometry), limits_(limits), replica_(loaded) {
  assert(geometry_.logical_block_bytes > 0);
  assert(limits_.io_depth_max > 0);
  durable_ = {loaded.committed_seq, loaded.committed_epoch};
  committed_ = durable_;
  committed_sent_seq_ = committed_.seq;
  reserved_limit_ = std::max(loaded.reserved_seq, loaded.committed_seq);
  highest_submitted_seq_ = loaded.committed_seq;
  committed_mark_ = loaded.mark;
  // After an unclean stop the disk may hold records past the committed
  // position, up to the reservation (or up to the target of a catch-up that
  // was itself interrupted).
  uint64_t unclean = std::max(loaded.reserved_seq, loaded.consistent_at_seq);
  if (unclean > loaded.committed_seq) unclean_until_seq_ = unclean;
}

// ---------------------------------------------------------------- sessions

void Machine::start_session(const proto::Hello& original, Actions& actions) {
  assert(!in_session_ && !pending_hello_);
  if (!idle_disk()) {
    pending_hello_ = original;  // answered once the disk is idle
    return;
  }
  open_session(original, actions);
}

void Machine::open_session(const proto::Hello& o, Actions& actions) {
  using proto::ErrorCode;
  if (o.role != proto::Role::original)
    return fail(actions, ErrorCode::protocol, "the peer's hello is not an original's.");
  if (o.version != proto::kProtocolVersion)
    return fail(actions, ErrorCode::version,
                "the original's hello is of protocol version " + u64s(o.version) + "; this clone speaks version 1.");
  if (o.pair_id != replica_.pair_id)
    return fail(actions, ErrorCode::pair_mismatch,
                "the original's hello names another pair; re-pair the two sticks with clonectl pair.");
  if (shutting_down())
    return fail(actions, ErrorCode::shutting_down, "the clone is shutting down; try again after it restarts.");
  if (disk_failed_)
    return fail(actions, ErrorCode::disk_io,
                "the clone's disk failed earlier in this run; it takes no writes until the daemon is restarted and the "
                "disk checked (clonectl health).");
  if (o.disk_size_bytes != geometry_.size_bytes)
    return fail(actions, ErrorCode::disk_mismatch,
                "the original's disk has " + u64s(o.disk_size_bytes) + " bytes but the clone's has " +
                    u64s(geometry_.size_bytes) + "; a clone must be a disk of the same size.");
  // Its records are aligned to its logical block: so they are to the clone's
  // if that divides it (a clone's disk may have a smaller one, never a larger).
  if (o.logical_block_bytes == 0 || o.logical_block_bytes % geometry_.logical_block_bytes != 0)
    return fail(actions, ErrorCode::disk_mismatch,
                "the original aligns its writes to logical blocks of " + u64s(o.logical_block_bytes) +
                    " bytes, which the clone's disk (" + u64s(geometry_.logical_block_bytes) +
                    "-byte blocks) cannot take; re-pair with the clone's disk as it is now.");
  maintenance_ = (o.flags & proto::kHelloMaintenance) != 0;
  std::optional<FailSession> refusal = log_refusal(o);
  if (refusal && !maintenance_) return fail(actions, refusal->code, refusal->message);
  log_ok_ = !refusal;
  log_refused_why_ = refusal ? refusal->message : "";
  if (log_ok_ && o.applied_seq > durable_.seq) {
    const bool adopted = adopt_acked_position(o, actions);
    assert(adopted);  // log_refusal checked that it is plausible
    (void)adopted;
  }
  const uint64_t applied = durable_.seq;

  in_session_ = true;
  want_receipt_acks_ = (o.flags & proto::kHelloWantReceiptAcks) != 0;
  original_log_end_ = o.log_end_seq;
  recv_seq_ = applied;
  recv_epoch_ = durable_.epoch + 1;
  open_epoch_started_ = false;
  receipt_acked_seq_ = applied;
  committed_sent_seq_ = committed_.seq;

  settle_unclean_window(o, applied);
  if (writes_wait_for_commit_ || reserved_limit_ < applied + limits_.reserve_ahead_records / 2) request_commit(actions);

  proto::Hello h;
  h.role = proto::Role::clone;
  if (maintenance_ && takes_resync_plan()) h.flags = proto::kHelloTakesResyncPlan;
  h.pair_id = replica_.pair_id;
  h.disk_size_bytes = geometry_.size_bytes;
  h.logical_block_bytes = geometry_.logical_block_bytes;
  h.generation = replica_.generation;
  h.applied_seq = durable_.seq;
  h.applied_epoch = durable_.epoch;
  h.committed_seq = committed_.seq;
  h.state = replica_.state;
  actions.hello_reply = h;
}

// Why the original's log cannot continue on this clone, or nothing. A
// maintenance session opens anyway and takes no records until a resync
// makes them line up.
std::optional<FailSession> Machine::log_refusal(const proto::Hello& o) const {
  using proto::ErrorCode;
  if (replica_.state == proto::CloneState::diverged)
    return FailSession{ErrorCode::diverged,
                       "the clone's disk was changed outside cloned, so it takes no writes until "
                       "a decision on the clone (clonectl decide discard-clone-changes or "
                       "keep-diverged): " +
                           replica_.state_reason};
  if (applying_stage() || stage_applying_)
    return FailSession{ErrorCode::busy, "the clone is copying the staged generation " +
                                            u64s(replica_.resync.generation) +
                                            " from its stick to its disk (it finishes without the original); "
                                            "try again when it is done."};
  if (replica_.resync.active())
    return FailSession{ErrorCode::resync_needed, "a resync of generation " + u64s(replica_.resync.generation) +
                                                     " is in progress (" + u64s(replica_.resync.cursor_bytes) + " of " +
                                                     u64s(geometry_.size_bytes) +
                                                     " bytes done); resume it (clone-origin resync)."};
  if (replica_.needs_resync)
    return FailSession{
        ErrorCode::resync_needed,
        "the clone needs a resync before it takes the log again: " +
            (replica_.state_reason.empty() ? std::string("a decision discarded its changes") : replica_.state_reason) +
            "."};
  if (o.generation != replica_.generation)
    return FailSession{ErrorCode::generation_mismatch, "the original's log is of generation " + u64s(o.generation) +
                                                           " but the clone holds generation " +
                                                           u64s(replica_.generation) + "; a resync is needed."};
  uint64_t applied = durable_.seq;
  if (o.applied_seq > durable_.seq) {
    if (!acked_position_plausible(o))
      return FailSession{ErrorCode::resync_needed, "the original says the clone acknowledged record " +
                                                       u64s(o.applied_seq) +
                                                       " but the clone cannot have written past record " +
                                                       u64s(std::max(durable_.seq, unclean_until_seq_)) +
                                                       "; the two disagree and a resync is needed."};
    applied = o.applied_seq;
  }
  if (o.log_start_seq > applied + 1)
    return FailSession{ErrorCode::resync_needed, "the original's log starts at record " + u64s(o.log_start_seq) +
                                                     " but the clone needs record " + u64s(applied + 1) +
                                                     " next; a resync is needed."};
  if (o.log_end_seq < applied)
    return FailSession{ErrorCode::resync_needed, "the clone has applied record " + u64s(applied) +
                                                     " but the original's log ends at " + u64s(o.log_end_seq) +
                                                     "; the two disagree and a resync is needed."};
  return std::nullopt;
}

// After an unclean stop this process knows only the committed position, but
// the original knows the last barrier the clone acknowledged: that epoch was
// on stable storage, so the disk holds at least it. Resuming there keeps the
// replay window (and the inconsistent mark it needs) to the epochs whose acks
// were lost with the crash, instead of everything since the last commit.
// After an unclean stop the disk may hold records up to unclean_until_seq_:
// a log session settles how far (catching up under the inconsistent mark, or
// nothing to replay); a maintenance session neither settles it nor takes log
// records over it.
void Machine::settle_unclean_window(const proto::Hello& o, uint64_t applied) {
  // A maintenance hello's log end (0) says nothing of what the last session
  // sent: only a log session settles the unclean window.
  if (log_ok_ && !maintenance_ && !replica_.resync.active() && unclean_until_seq_ > applied) {
    // Replaying records the disk may already hold passes through states the
    // original never had: mark it before the first such write.
    uint64_t target = std::min(unclean_until_seq_, o.log_end_seq);
    if (target > applied) {
      if (replica_.state != proto::CloneState::inconsistent || replica_.consistent_at_seq != target) {
        replica_.consistent_at_seq = target;
        mark_catching_up();
      }
      writes_wait_for_commit_ = true;
      writes_wait_from_ = next_snapshot();
    } else {
      unclean_until_seq_ = 0;  // the disk is exactly at the committed position
      maybe_become_consistent();
    }
  } else if (log_ok_ && maintenance_ && unclean_until_seq_ > applied) {
    // Nor does it take log records over a disk that may hold later epochs
    // (a resync takes its own position and takes the log again).
    log_ok_ = false;
    log_refused_why_ = "the clone's disk may hold records up to " + u64s(unclean_until_seq_) +
                       " after an unclean stop; a log session settles that first";
  }
}

// Inside the window an unclean stop left, and no more epochs than records
// past the clone's position (every epoch ends with a barrier record): an
// epoch that wrapped would move the committed one back.
bool Machine::acked_position_plausible(const proto::Hello& o) const {
  return unclean_until_seq_ != 0 && o.applied_seq > durable_.seq && o.applied_seq <= unclean_until_seq_ &&
         o.applied_epoch > durable_.epoch && o.applied_epoch - durable_.epoch <= o.applied_seq - durable_.seq;
}

bool Machine::adopt_acked_position(const proto::Hello& o, Actions&) {
  if (!acked_position_plausible(o)) return false;
  durable_ = {o.applied_seq, o.applied_epoch};
  highest_submitted_seq_ = std::max(highest_submitted_seq_, durable_.seq);
  if (durable_.seq >= unclean_until_seq_) unclean_until_seq_ = 0;
  return true;
}

void Machine::mark_catching_up() {
  replica_.state = proto::CloneState::inconsistent;
  replica_.state_reason =
      "catching up after an unclean stop: records the disk may already hold are being replayed, so it is "
      "not a bootable copy until record " +
      u64s(replica_.consistent_at_seq) + " is applied";
  state_dirty_ = true;
}

void Machine::end_session(Actions& actions) {
  pending_hello_.reset();
  if (!in_session_) return;
  in_session_ = false;
  drop_queue_after_epoch(0, actions);
  // The next session's barrier flush gets a number never named to this
  // one's: not the flush it was about to ask, nor the one after it, which
  // writes held behind that flush were told would cover them (if one of
  // them failed, the workers hold that gate's flush as failed).
  next_gate_ = std::max(next_gate_, gate_named_max_) + 1;
  // Only the barrier being flushed keeps its name: the rest come again.
  std::erase_if(mark_names_, [this](const auto& kv) {
    return flushing_ != Flushing::barrier || kv.first != flushing_barrier_.header.seq;
  });
  end_resync_session(actions);
  // A wait for a state's commit outlives the session: the next one may
  // resume what that state began (the same resync_begin again), and its
  // writes must not reach the disk before the store holds it.
  check_shutdown_progress(actions);
}

void Machine::drop_queue_after_epoch(uint64_t epoch, Actions& actions) {
  // Entries are in seq order and epochs never decrease along the queue.
  while (!queue_.empty() && queue_.back().header.epoch > epoch) {
    release(queue_.back().cost_bytes);
    actions.dropped.push_back(queue_.back().id);
    queue_.pop_back();
  }
  cancel_after_flush_if_orphaned(actions);
}

// Writes behind a barrier's flush whose barrier is gone (dropped unflushed)
// must not wait for a flush that will not come.
void Machine::cancel_after_flush_if_orphaned(Actions& actions) {
  if (flushing_ == Flushing::barrier) return;
  if (!queue_.empty() && queue_.front().header.type == proto::MsgType::barrier) return;
  if (after_flush_written_seq_ != 0) note_written_past_dropped_barrier();
  if (after_flush_in_flight_ != 0) ask_cancel_after_flush(actions);
}

// Writes an early flush let go are on the disk past a barrier the machine
// dropped unflushed: the next session must not replay that barrier's epoch
// over them unmarked, which would pass through states the original never had.
// An unclean window, settled as after an unclean stop (a catch-up under the
// inconsistent mark); a restart finds it in the reservation anyway.
void Machine::note_written_past_dropped_barrier() {
  unclean_until_seq_ = std::max(unclean_until_seq_, after_flush_written_seq_);
  after_flush_written_seq_ = 0;
}

// ------------------------------------------------------------------ records

std::optional<FailSession> Machine::validate(const proto::RecordHeader& h) const {
  using proto::ErrorCode;
  const bool extent = is_extent(h.type);
  if (!extent && h.type != proto::MsgType::barrier)
    return FailSession{ErrorCode::protocol,
                       "a message of type " + u64s(static_cast<uint64_t>(h.type)) + " is not a record."};
  if (h.seq != recv_seq_ + 1)
    return FailSession{ErrorCode::sequence_gap, "record " + u64s(h.seq) + " arrived where record " +
                                                    u64s(recv_seq_ + 1) + " was expected; nothing of it was written."};
  if (h.epoch != recv_epoch_)
    return FailSession{ErrorCode::protocol, "record " + u64s(h.seq) + " belongs to epoch " + u64s(h.epoch) +
                                                " but epoch " + u64s(recv_epoch_) +
                                                " is open; nothing of it was written."};
  if (!extent) return std::nullopt;
  return validate_extent(h, "record " + u64s(h.seq));
}

// Inside the disk (overflow-safe), aligned to its logical blocks, not empty.
std::optional<FailSession> Machine::validate_extent(const proto::RecordHeader& h, const std::string& what) const {
  using proto::ErrorCode;
  const uint64_t lbs = geometry_.logical_block_bytes;
  const std::string where = what + " (offset=" + u64s(h.offset_bytes) + " len=" + u64s(h.length_bytes) + ")";
  if (h.length_bytes == 0) return FailSession{ErrorCode::protocol, where + " is empty; nothing was written."};
  if (h.offset_bytes % lbs != 0 || h.length_bytes % lbs != 0)
    return FailSession{ErrorCode::misaligned, where + " is not aligned to the disk's " + u64s(lbs) +
                                                  "-byte logical blocks; nothing of it was written."};
  if (h.offset_bytes > geometry_.size_bytes || h.length_bytes > geometry_.size_bytes - h.offset_bytes)
    return FailSession{ErrorCode::out_of_range, where + " reaches past the end of the disk (disk_bytes=" +
                                                    u64s(geometry_.size_bytes) + "); nothing of it was written."};
  return std::nullopt;
}

void Machine::on_record(const proto::RecordHeader& h, RecordId& id, Actions& actions, std::string_view mark) {
  id = 0;
  if (!in_session_) {
    return fail(actions, proto::ErrorCode::protocol, "a record arrived before the session's hello was answered.");
  }
  if (!log_ok_)
    return fail(actions, proto::ErrorCode::resync_needed,
                "log records are not taken in this session: " + log_refused_why_);
  // Until the plan is answered the clone does not know whether the resync is
  // staged (the log then waits for the apply) or in place.
  if (plan_begin_)
    return fail(actions, proto::ErrorCode::protocol,
                "a log record arrived before the resync_plan its begin announced.");
  if (std::optional<FailSession> bad = validate(h)) return fail(actions, bad->code, bad->message);
  if (resync_running_ && !note_log_written(h, actions)) return;
  recv_seq_ = h.seq;
  if (h.type == proto::MsgType::barrier) {
    // A resent barrier replaces what an earlier session said at this seq.
    if (mark.empty())
      mark_names_.erase(h.seq);
    else
      mark_names_[h.seq] = std::string(mark);
  }
  open_epoch_started_ = h.type != proto::MsgType::barrier;
  if (h.type == proto::MsgType::barrier) recv_epoch_ = h.epoch + 1;
  if (shutting_down() && h.epoch > shutdown_epoch_) return;  // not written: the next run takes it
  // Nothing of ours is written under a valid fingerprint: a log session's
  // start invalidated it (the daemon), a maintenance session's first log
  // record does here (its writes wait for the commit).
  invalidate_fingerprint(actions);
  const uint64_t cost = record_cost_bytes(h);
  id = next_id_++;
  queue_.push_back(Entry{id, h, cost});
  hold(cost);
  pump(actions);
}

void Machine::on_read_batch_done(Actions& actions) {
  if (in_session_ && want_receipt_acks_ && recv_seq_ > receipt_acked_seq_) {
    receipt_acked_seq_ = recv_seq_;
    actions.receipt_acks.push_back({recv_seq_});
  }
}

bool Machine::overlaps_in_flight(const proto::RecordHeader& h) const {
  for (const Entry& e : in_flight_) {
    if (h.offset_bytes < e.header.offset_bytes + e.header.length_bytes &&
        e.header.offset_bytes < h.offset_bytes + h.length_bytes)
      return true;
  }
  return false;
}

void Machine::pump(Actions& actions) {
  pump_log(actions);
  pump_resync(actions);
  maybe_flush_for_mark(actions);
}

void Machine::pump_log(Actions& actions) {
  if (disk_failed_) return;
  if (flushing_ == Flushing::none) pump_epoch(actions);
  pump_after_flush(actions);
}

void Machine::pump_epoch(Actions& actions) {
  while (!queue_.empty()) {
    Entry& head = queue_.front();
    // The reservation covers every record the machine acts on, barriers
    // included: a barrier's ack tells the original the clone holds its seq,
    // and a restart must find that seq inside the durable reservation.
    if (head.header.seq > reserved_limit_) {
      request_commit(actions);
      return;
    }
    if (head.header.type == proto::MsgType::barrier) {
      if (mark_waits_for_commit(head.header)) {
        request_commit(actions);
        return;
      }
      if (epoch_in_flight() != 0) return;
      flushing_barrier_ = head;
      queue_.pop_front();
      flushing_ = Flushing::barrier;
      flushing_gate_ = next_gate_++;
      actions.flush = true;
      actions.flush_gate = flushing_gate_;
      return;
    }
    if (writes_wait_for_commit_) return;
    if (epoch_in_flight() >= limits_.io_depth_max || overlaps_in_flight(head.header)) return;
    assert(is_extent(head.header.type) && head.header.epoch == durable_.epoch + 1);
    CLONED_PROMISE(
        head.header.seq <= reserved_limit_,
        "record " + u64s(head.header.seq) + " would be written past the durable reservation " + u64s(reserved_limit_));
    highest_submitted_seq_ = std::max(highest_submitted_seq_, head.header.seq);
    submit_entry(head, {}, actions);
    queue_.pop_front();
  }
}

// The next epoch's writes, behind the flush of the barrier that ends this
// one: submitted now, started by the executor once that flush has completed
// (SubmitIo::after_flush_gate). Only on the plain log path: no resync, stage,
// mark, shutdown or commit the barrier or its writes wait for.
void Machine::pump_after_flush(Actions& actions) {
  uint64_t barrier_seq = 0;
  uint64_t barrier_epoch = 0;
  uint64_t gate = 0;
  size_t at = 0;  // the first entry behind the barrier
  if (flushing_ == Flushing::barrier) {
    barrier_seq = flushing_barrier_.header.seq;
    barrier_epoch = flushing_barrier_.header.epoch;
    gate = flushing_gate_;
  } else if (flushing_ == Flushing::none && !queue_.empty() && queue_.front().header.type == proto::MsgType::barrier &&
             epoch_in_flight() > 0) {
    barrier_seq = queue_.front().header.seq;
    barrier_epoch = queue_.front().header.epoch;
    gate = next_gate_;  // this barrier's flush is the next asked
    at = 1;
  } else {
    return;
  }
  if (!in_session_ || shutting_down() || writes_wait_for_commit_ || resync_running() || !resync_queue_.empty() ||
      staging() || stage_applying_ || barrier_seq > reserved_limit_ || mark_names_.count(barrier_seq) != 0)
    return;
  for (const Entry& e : in_flight_)
    if (e.staged || e.rseq != 0) return;
  while (queue_.size() > at) {
    const Entry& e = queue_[at];
    if (!is_extent(e.header.type) || e.header.seq > reserved_limit_) return;
    if (after_flush_in_flight_ >= limits_.io_depth_max || overlaps_after_flush(e.header)) return;
    assert(e.header.epoch == barrier_epoch + 1 && barrier_epoch == durable_.epoch + 1);
    highest_submitted_seq_ = std::max(highest_submitted_seq_, e.header.seq);
    actions.submit.push_back({e.id, e.header, {}, false, gate, gate + 1});
    gate_named_max_ = std::max(gate_named_max_, gate + 1);
    in_flight_.push_back(e);
    in_flight_.back().after_flush = true;
    ++after_flush_in_flight_;
    queue_.erase(queue_.begin() + static_cast<long>(at));
  }
}

bool Machine::overlaps_after_flush(const proto::RecordHeader& h) const {
  for (const Entry& e : in_flight_) {
    if (e.after_flush && h.offset_bytes < e.header.offset_bytes + e.header.length_bytes &&
        e.header.offset_bytes < h.offset_bytes + h.length_bytes)
      return true;
  }
  return false;
}

// What pump_log does with a barrier at the head once in_flight_ drains,
// when nothing else (a commit, a mark, a failed disk) holds it.
uint64_t Machine::gate_after_in_flight() const {
  if (disk_failed_ || flushing_ != Flushing::none || epoch_in_flight() == 0 || queue_.empty()) return 0;
  const proto::RecordHeader& h = queue_.front().header;
  if (h.type != proto::MsgType::barrier || h.seq > reserved_limit_ || mark_names_.count(h.seq) != 0) return 0;
  for (const Entry& e : in_flight_)
    if (e.staged) return 0;
  return next_gate_;
}

// A marked barrier is acknowledged only once the store holds its mark: the
// original may forget the mark's records after the ack, and a restart must
// still be able to say which mark the clone reached.
bool Machine::mark_waits_for_commit(const proto::RecordHeader& barrier) {
  auto it = mark_names_.find(barrier.seq);
  if (it == mark_names_.end()) return false;
  const auto is_this = [&](const apply::LogMark& m) {
    return m.generation == replica_.generation && m.seq == barrier.seq && m.name == it->second;
  };
  if (is_this(committed_mark_)) return false;
  if (!is_this(replica_.mark)) {
    // The mark before is durable: its barrier came earlier and was flushed.
    if (!replica_.mark.empty() && (replica_.mark.generation != replica_.generation || replica_.mark.seq < barrier.seq))
      replica_.mark_before = replica_.mark;
    replica_.mark = {it->second, replica_.generation, barrier.seq, barrier.epoch};
    state_dirty_ = true;
  }
  return true;
}

// -------------------------------------------------------------------- misc

bool Machine::can_accept() const {
  return held_bytes_ < limits_.held_bytes_max && !disk_failed_ &&
         marks_.size() + marks_flushed_.size() < kResyncMarksMax;  // marks carry no bytes to hold
}

void Machine::hold(uint64_t cost_bytes) {
  assert(cost_bytes > 0);
  held_bytes_ += cost_bytes;
  assert(held_bytes_ >= cost_bytes);  // no wrap
}

void Machine::release(uint64_t cost_bytes) {
  assert(cost_bytes > 0);
  assert(held_bytes_ >= cost_bytes);  // every release matches a hold
  held_bytes_ -= cost_bytes;
}

// Hands a record to the disk. Only records that cannot overlap anything in
// flight, within the queue depth.
void Machine::submit_entry(const Entry& e, std::vector<Extent> only, Actions& actions) {
  assert(in_flight_.size() < limits_.io_depth_max);
  assert(!overlaps_in_flight(e.header));
  assert(flushing_ == Flushing::none);
  actions.submit.push_back({e.id, e.header, std::move(only), e.staged, 0, next_gate_});
  gate_named_max_ = std::max(gate_named_max_, next_gate_);
  in_flight_.push_back(e);
}

void Machine::fail(Actions& actions, proto::ErrorCode code, const std::string& message) {
  actions.fail.push_back({code, message});
}

}  // namespace apply
