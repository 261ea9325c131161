// SPDX-License-Identifier: MIT
// The apply machine's resync: a new generation, a resumed one, or a repair
// of the current one (docs/ARCHITECTURE.md, "Resync"; docs/PROTOCOL.md,
// "Resync and verify").
//
// The rules:
//  - "resync of generation G in progress" is durable before the first
//    resync write (the begin is answered only after that commit), and the
//    state stays inconsistent until the resync's end is durable.
//  - Resync extents go to the disk concurrently with each other and with the
//    log, never overlapping anything in flight.
//  - The log may continue during a resync (records after the target). A range
//    the log wrote in this session is never written again by resync data that
//    arrives after it: that data may have been read before the log's write.
//  - A mark is acknowledged only when every extent received before it is on
//    stable storage and the cursor is committed: a resumed resync restarts at
//    the last acknowledged mark, not at the beginning.
#include <algorithm>
#include <cassert>

#include "base/units.h"
#include "cloned/apply/apply.h"

namespace apply {

namespace {

// No original's log reaches this (a million records a second for 146,000
// years); the reservation adds to positions, which must not wrap.
constexpr uint64_t kPositionMax = uint64_t{1} << 62;

using base::u64s;

}  // namespace

void Machine::need_write_barrier_commit(Actions& actions) {
  state_dirty_ = true;
  writes_wait_for_commit_ = true;
  writes_wait_from_ = next_snapshot();
  request_commit(actions);
}

// In place or staged (found by fuzz/apply: a staged begin kept them).
void Machine::resync_from_zero(const proto::ResyncBegin& b) {
  replica_.resync = {b.generation, b.target_seq, b.target_epoch, 0, b.extent_bytes, b.flags};
  // Marks of the replaced resync still waiting for a commit to cover them:
  // none ever will (the cursor is 0 now), and their acks are not this one's.
  marks_flushed_.clear();
}

void Machine::end_reached(const PendingMark& end) {
  end_committing_ = end;
  end_from_snapshot_ = next_snapshot();
}

void Machine::start_new_resync(const proto::ResyncBegin& b) {
  const bool repair = (b.flags & proto::kResyncRepair) != 0;
  resync_from_zero(b);
  // An earlier staged resync, replaced: its file goes once this is committed.
  if (replica_.stage.active()) stage_drop_owed_ = true;
  replica_.stage = {};
  replica_.state = proto::CloneState::inconsistent;
  replica_.fingerprint_valid = false;
  if (repair) {
    replica_.state_reason =
        "repairing ranges a verify found out of sync: not a bootable copy until the repair completes";
    return;
  }
  replica_.generation = b.generation;
  replica_.state_reason =
      "resync of generation " + u64s(b.generation) + " in progress: not a bootable copy until it completes";
  replica_.consistent_at_seq = 0;
  // The log continues from the resync's target: the resync brings the disk
  // there (and records after it follow as usual).
  take_position(b.target_seq, b.target_epoch);
}

void Machine::take_position(uint64_t seq, uint64_t epoch) {
  position_snapshots_ = snapshots_taken_;  // a commit of a snapshot before this holds another log's position
  durable_ = {seq, epoch};
  // What the store holds of the replaced generation's log says nothing of
  // this one's: never more than the new position (a hello reply tells it,
  // and the original forgets its records up to it).
  if (committed_.seq > seq) committed_ = {seq, epoch};
  highest_submitted_seq_ = seq;
  unclean_until_seq_ = 0;
  recv_seq_ = seq;
  recv_epoch_ = epoch + 1;
  open_epoch_started_ = false;
  receipt_acked_seq_ = seq;
  committed_sent_seq_ = seq;
  reserved_limit_ = std::max(reserved_limit_, seq);
}

// A Diverged clone takes only a full resync that discards its changes, and
// only when its configuration lets the original say so.
std::optional<FailSession> Machine::diverged_refusal(const proto::ResyncBegin& b) const {
  using proto::ErrorCode;
  if (replica_.state != proto::CloneState::diverged) return std::nullopt;
  if ((b.flags & proto::kResyncDiscardCloneChanges) == 0)
    return FailSession{ErrorCode::diverged,
                       "the clone's disk was changed outside cloned: a resync must say it discards those changes "
                       "(--discard-clone-changes), or the clone's owner decides with clonectl decide: " +
                           replica_.state_reason};
  if (!limits_.allow_remote_discard)
    return FailSession{
        ErrorCode::diverged,
        "the clone's disk was changed outside cloned and its configuration does not let the original discard "
        "those changes ([resync] allow_remote_discard = false); decide on the clone with clonectl decide."};
  if ((b.flags & proto::kResyncRepair) != 0)
    return FailSession{ErrorCode::diverged, "a Diverged clone takes a full resync, not a repair."};
  return std::nullopt;
}

// What refuses any begin, before which resync it names is looked at.
std::optional<FailSession> Machine::begin_refusal(const proto::ResyncBegin& b) const {
  using proto::ErrorCode;
  if (!in_session_ || !maintenance_)
    return FailSession{ErrorCode::protocol,
                       "resync_begin outside a maintenance session (the hello did not ask for one)."};
  // A session that dropped after its resync_end leaves the end finishing
  // (end_committing_): the original's retry is told to wait (busy, retried),
  // not that it broke the protocol (final).
  if (applying_stage() || stage_applying_)
    return FailSession{ErrorCode::busy, "the clone is copying the staged generation " +
                                            u64s(replica_.resync.generation) +
                                            " from its stick to its disk (it finishes without the original); try "
                                            "again when it is done."};
  if (end_committing_)
    return FailSession{ErrorCode::busy, "the clone is committing the end of the resync of generation " +
                                            u64s(replica_.generation) + "; try again in a moment."};
  if (resync_running_ || plan_begin_) return FailSession{ErrorCode::protocol, "a second resync_begin in one session."};
  if (!queue_.empty() || !idle_disk())
    return FailSession{ErrorCode::protocol, "resync_begin while log records of this session are still pending."};
  if (b.target_seq > kPositionMax || b.target_epoch > kPositionMax)
    return FailSession{ErrorCode::protocol, "resync_begin names record " + u64s(b.target_seq) + " of epoch " +
                                                u64s(b.target_epoch) + ", past any log (at most " + u64s(kPositionMax) +
                                                ")."};
  return std::nullopt;
}

void Machine::on_resync_begin(const proto::ResyncBegin& announced, Actions& actions) {
  using proto::ErrorCode;
  if (in_session_ && shutting_down())
    return fail(actions, ErrorCode::shutting_down, "the clone is shutting down; try again after it restarts.");
  if (std::optional<FailSession> no = begin_refusal(announced)) return fail(actions, no->code, no->message);
  // The plan bit says how this session goes on, not which resync it is.
  const bool plan = (announced.flags & proto::kResyncPlanFollows) != 0;
  proto::ResyncBegin b = announced;
  b.flags &= ~proto::kResyncPlanFollows;
  // A stage failure of an earlier session (one that came after it ended) is
  // that session's: this one reopens the stage, or does not use it.
  stage_failed_ = false;
  const bool repair = (b.flags & proto::kResyncRepair) != 0;
  if (std::optional<FailSession> no = diverged_refusal(b)) return fail(actions, no->code, no->message);
  const apply::ResyncProgress& cur = replica_.resync;
  if (cur.active() && cur.generation == b.generation && cur.target_seq == b.target_seq &&
      cur.target_epoch == b.target_epoch && cur.extent_bytes == b.extent_bytes && cur.flags == b.flags) {
    // The interrupted resync continues from its durable cursor. Not answered
    // before the store holds it (found in review: the begin of a session
    // that dropped before its commit was answered "resumed" at once).
    if (writes_wait_for_commit_) {
      resync_state_pending_ = true;
      resync_state_resumed_ = true;
    } else {
      actions.resync_state = proto::ResyncState{b.generation, cur.cursor_bytes, geometry_.size_bytes, true};
    }
    if (plan) {
      plan_begin_ = b;
      plan_resumes_ = true;
      return;
    }
    return continue_resync(actions);
  }
  if (!repair && !cur.active() && already_holds(b)) {
    // This very resync ended here, and its answer was lost (the session
    // dropped while the end was committed, or a staged copy finished after a
    // restart): say so, and answer its end at once.
    resync_running_ = true;
    resync_complete_ = true;
    actions.resync_state = proto::ResyncState{b.generation, geometry_.size_bytes, geometry_.size_bytes, true};
    if (plan) {
      plan_begin_ = b;
      plan_resumes_ = false;  // the plan is answered as done (on_resync_plan)
    }
    return;
  }
  if (repair) {
    if (cur.active() || replica_.needs_resync || b.generation != replica_.generation ||
        replica_.state != proto::CloneState::consistent || b.target_seq != durable_.seq)
      return fail(actions, ErrorCode::resync_needed,
                  "a repair needs a consistent clone of generation " + u64s(b.generation) + " at record " +
                      u64s(b.target_seq) + "; it holds generation " + u64s(replica_.generation) + " at record " +
                      u64s(durable_.seq) + " (" + proto::clone_state_name(replica_.state) + "); run a resync instead.");
  } else if (b.generation <= replica_.generation && !(cur.active() && b.generation == cur.generation)) {
    return fail(actions, ErrorCode::generation_mismatch,
                "a resync must start a generation past the clone's " + u64s(replica_.generation) + ", not " +
                    u64s(b.generation) + ".");
  }
  if (plan) {
    // Nothing is committed until the plan says whether the stage holds it.
    plan_begin_ = b;
    plan_resumes_ = false;
    actions.resync_state = proto::ResyncState{b.generation, 0, geometry_.size_bytes, false};
    return;
  }
  if (should_stage(b)) return start_staged_resync(b, actions);
  begin_in_place(b, actions);
}

// Answered with resync_state once "resync in progress" is durable.
void Machine::begin_in_place(const proto::ResyncBegin& b, Actions& actions) {
  start_new_resync(b);
  resync_running_ = true;
  log_ok_ = true;
  log_refused_why_.clear();
  resync_state_pending_ = true;
  resync_state_resumed_ = false;
  log_written_.clear();
  need_write_barrier_commit(actions);
}

void Machine::continue_resync(Actions& actions) {
  resync_running_ = true;
  log_ok_ = true;
  log_refused_why_.clear();
  if (staging()) {
    resume_staging(actions);
  } else {
    // In place it writes the disk again: a fingerprint taken while it was
    // interrupted stops being valid, durably, first (the writes wait).
    invalidate_fingerprint(actions);
  }
}

std::optional<FailSession> Machine::validate_resync_extent(const proto::RecordHeader& h) const {
  using proto::ErrorCode;
  if (plan_begin_) return FailSession{ErrorCode::protocol, "resync data arrived before the resync_plan it announced."};
  if (!resync_running_)
    return FailSession{ErrorCode::protocol, "resync data arrived before a resync_begin was answered."};
  if (end_received()) return FailSession{ErrorCode::protocol, "resync data arrived after the resync_end."};
  if (resync_complete_)
    return FailSession{ErrorCode::protocol, "resync data arrived for a resync the clone already holds whole."};
  // A mark said everything below it was sent (section 11), which is what
  // lets the clone forget the log's ranges below it.
  if (h.offset_bytes < resync_floor())
    return FailSession{ErrorCode::protocol, "resync data at byte " + u64s(h.offset_bytes) +
                                                " arrived after a mark at " + u64s(resync_floor()) +
                                                " said everything below it was sent."};
  return validate_extent(h, h.type == proto::MsgType::resync_data ? "resync_data" : "resync_zero");
}

void Machine::on_resync_extent(const proto::RecordHeader& h, RecordId& id, Actions& actions) {
  id = 0;
  if (!in_session_) return fail(actions, proto::ErrorCode::protocol, "resync data arrived outside a session.");
  // Shutting down ended the resync's part of the session (end_resync_session):
  // what still comes is not written, not refused; the session ends with
  // goodbye(shutting_down) and the resumed resync sends it again.
  if (shutting_down()) return;
  if (std::optional<FailSession> bad = validate_resync_extent(h)) return fail(actions, bad->code, bad->message);
  const uint64_t cost = record_cost_bytes(h);
  id = next_id_++;
  const uint64_t rseq = ++resync_rseq_;
  resync_queue_.push_back(Entry{id, h, cost, rseq, staging()});
  resync_outstanding_.insert(rseq);
  hold(cost);
  pump(actions);
}

bool Machine::already_holds(const proto::ResyncBegin& b) const {
  return b.generation == replica_.generation && replica_.state == proto::CloneState::consistent &&
         !replica_.needs_resync && durable_.seq == b.target_seq && durable_.epoch == b.target_epoch &&
         committed_.seq == b.target_seq;
}

void Machine::on_resync_mark(uint64_t cursor, Actions& actions) {
  if (in_session_ && shutting_down()) return;  // as on_resync_extent
  if (!in_session_ || !resync_running_)
    return fail(actions, proto::ErrorCode::protocol, "resync_mark outside a resync.");
  if (plan_begin_)  // found in review: it let a stale plan_resumes_ run
    return fail(actions, proto::ErrorCode::protocol, "a resync_mark arrived before the resync_plan it announced.");
  // A resume starts at the committed cursor: one off the block size would
  // make the next session's first extent misaligned (found in review).
  if (cursor % geometry_.logical_block_bytes != 0)
    return fail(actions, proto::ErrorCode::misaligned,
                "resync_mark at " + u64s(cursor) + " is not a multiple of the logical block size (" +
                    u64s(geometry_.logical_block_bytes) + ").");
  // Checked before a whole resync's marks are acked, too (found by fuzz/apply).
  if (cursor > geometry_.size_bytes)
    return fail(actions, proto::ErrorCode::protocol,
                "resync_mark at " + u64s(cursor) + " is past the disk's end (" + u64s(geometry_.size_bytes) + ").");
  if (resync_complete_) return actions.resync_mark_acks.push_back(cursor);
  const uint64_t last = resync_floor();
  if (end_received()) return fail(actions, proto::ErrorCode::protocol, "resync_mark after the resync_end.");
  if (cursor < last)
    return fail(actions, proto::ErrorCode::protocol,
                "resync_mark at " + u64s(cursor) + " is before the last mark (" + u64s(last) + ").");
  if (marks_.size() + marks_flushed_.size() >= 2 * kResyncMarksMax)  // reading stopped at kResyncMarksMax
    return fail(actions, proto::ErrorCode::protocol,
                "more than " + u64s(2 * kResyncMarksMax) + " resync marks wait for their acknowledgement.");
  marks_.push_back({resync_rseq_, cursor});
  pump(actions);
}

void Machine::on_resync_end(uint64_t consistent_at_seq, Actions& actions) {
  if (in_session_ && shutting_down()) return;  // as on_resync_extent
  if (!in_session_ || !resync_running_)
    return fail(actions, proto::ErrorCode::protocol, "resync_end outside a resync.");
  if (plan_begin_)
    return fail(actions, proto::ErrorCode::protocol, "a resync_end arrived before the resync_plan it announced.");
  if (resync_complete_) {
    resync_complete_ = false;
    resync_running_ = false;
    actions.resync_done = proto::ResyncDone{replica_.generation, durable_.seq, durable_.epoch};
    return;
  }
  if (end_received()) return fail(actions, proto::ErrorCode::protocol, "a second resync_end.");
  if (consistent_at_seq > kPositionMax)
    return fail(
        actions, proto::ErrorCode::protocol,
        "resync_end names record " + u64s(consistent_at_seq) + ", past any log (at most " + u64s(kPositionMax) + ").");
  if (consistent_at_seq < replica_.resync.target_seq)
    return fail(actions, proto::ErrorCode::protocol,
                "resync_end names record " + u64s(consistent_at_seq) + ", before the resync's target " +
                    u64s(replica_.resync.target_seq) + ".");
  marks_.push_back({resync_rseq_, geometry_.size_bytes, true, consistent_at_seq});
  pump(actions);
}

// ------------------------------------------------------------ the log's ranges

// After its end nothing more of a resync may come: not while the end waits
// for its flush (marks_), nor once it is flushed and its commit (and, staged,
// the copy to the disk) is under way, when the cursor is no floor any more.
bool Machine::end_received() const { return end_committing_.has_value() || (!marks_.empty() && marks_.back().is_end); }

// Where the resync's next extent may begin: its last mark, or the cursor.
uint64_t Machine::resync_floor() const {
  return marks_.empty() ? replica_.resync.cursor_bytes : marks_.back().cursor_bytes;
}

// Returns false, the session failed, when the ranges kept would pass their bound.
bool Machine::note_log_written(const proto::RecordHeader& h, Actions& actions) {
  if (h.type == proto::MsgType::barrier) return true;
  uint64_t begin = h.offset_bytes, end = h.offset_bytes + h.length_bytes;
  // Merge with every interval that touches [begin, end).
  auto it = log_written_.upper_bound(begin);
  if (it != log_written_.begin() && std::prev(it)->second >= begin) --it;
  while (it != log_written_.end() && it->first <= end) {
    begin = std::min(begin, it->first);
    end = std::max(end, it->second);
    it = log_written_.erase(it);
  }
  log_written_.emplace(begin, end);
  if (log_written_.size() <= limits_.log_ranges_max) return true;
  fail(actions, proto::ErrorCode::too_large,
       "the log wrote more than " + u64s(limits_.log_ranges_max) +
           " separate ranges past the resync's last mark (byte " + u64s(resync_floor()) +
           ") in this session, more than the clone keeps; resume the resync (it continues at byte " +
           u64s(replica_.resync.cursor_bytes) + ").");
  return false;
}

// Every extent received before a flushed mark is written, and none after it
// may begin below it: the log's ranges wholly below it are not needed again.
void Machine::forget_log_written_below(uint64_t cursor) {
  auto it = log_written_.begin();
  while (it != log_written_.end() && it->second <= cursor) it = log_written_.erase(it);
}

// The parts of a resync extent the log has not written in this session.
std::vector<Extent> Machine::unwritten_by_log(const proto::RecordHeader& h) const {
  std::vector<Extent> out;
  uint64_t pos = h.offset_bytes;
  const uint64_t end = h.offset_bytes + h.length_bytes;
  auto it = log_written_.upper_bound(pos);
  if (it != log_written_.begin() && std::prev(it)->second > pos) --it;
  for (; it != log_written_.end() && it->first < end && pos < end; ++it) {
    if (it->first > pos) out.push_back({pos, it->first - pos});
    pos = std::max(pos, it->second);
  }
  if (pos < end) out.push_back({pos, end - pos});
  return out;
}

// ------------------------------------------------------------------ pumping

void Machine::pump_resync(Actions& actions) {
  if (disk_failed_ || flushing_ != Flushing::none || writes_wait_for_commit_ || stage_failed_) return;
  // A barrier waiting for the disk to drain goes first: resync writes must
  // not starve the log's epochs.
  if (!queue_.empty() && queue_.front().header.type == proto::MsgType::barrier) return;
  while (!resync_queue_.empty()) {
    Entry& head = resync_queue_.front();
    if (in_flight_.size() >= limits_.io_depth_max || overlaps_in_flight(head.header)) return;
    if (head.staged) {  // the log is not taken while staging: nothing to cut out
      submit_entry(head, {}, actions);
      resync_queue_.pop_front();
      continue;
    }
    std::vector<Extent> parts = unwritten_by_log(head.header);
    if (parts.empty()) {  // all of it was written by the log meanwhile
      release(head.cost_bytes);
      actions.dropped.push_back(head.id);
      resync_entry_finished(head.rseq);
      resync_queue_.pop_front();
      continue;
    }
    const bool whole = parts.size() == 1 && parts[0].offset_bytes == head.header.offset_bytes &&
                       parts[0].length_bytes == head.header.length_bytes;
    submit_entry(head, whole ? std::vector<Extent>{} : std::move(parts), actions);
    resync_queue_.pop_front();
  }
}

void Machine::resync_entry_finished(uint64_t rseq) { resync_outstanding_.erase(rseq); }

// The front mark may be flushed once every extent received before it is
// written (its data is on the disk, maybe only in its cache).
bool Machine::mark_satisfied(const PendingMark& m) const {
  if (!resync_outstanding_.empty() && *resync_outstanding_.begin() <= m.rseq) return false;
  return !m.is_end || (queue_.empty() && in_flight_.empty());  // the end waits for the log too
}

void Machine::maybe_flush_for_mark(Actions& actions) {
  if (marks_.empty() || flushing_ != Flushing::none || disk_failed_ || stage_failed_) return;
  // The flush covers the marks satisfied now, not those satisfied while it runs.
  marks_in_flush_ = 0;
  while (marks_in_flush_ < marks_.size() && mark_satisfied(marks_[marks_in_flush_])) ++marks_in_flush_;
  if (marks_in_flush_ == 0) return;
  flushing_ = Flushing::marks;
  if (staging())
    actions.stage_sync = true;  // the disk was not written: the stage is what must be durable
  else
    actions.flush = true;
}

// Everything before the front mark (and any later marks already satisfied)
// is on stable storage: commit the cursor, ack after the commit.
void Machine::on_mark_flushed(Actions& actions) {
  for (; marks_in_flush_ > 0 && !marks_.empty(); --marks_in_flush_) {
    const PendingMark m = marks_.front();
    marks_.pop_front();
    if (!m.is_end) {
      replica_.resync.cursor_bytes = std::max(replica_.resync.cursor_bytes, m.cursor_bytes);
      forget_log_written_below(m.cursor_bytes);
      marks_flushed_.push_back(m);
      marks_flushed_.back().from_snapshot = next_snapshot();
      continue;
    }
    if (staging()) {  // the stage is whole: apply it (staged.cpp)
      stage_end_reached(m);
      break;
    }
    // The end: the clone holds the resync's generation from here on.
    replica_.resync = {};
    replica_.needs_resync = false;
    replica_.state = proto::CloneState::inconsistent;
    replica_.consistent_at_seq = std::max(m.consistent_at_seq, durable_.seq);
    replica_.state_reason =
        "resync complete; consistent once record " + u64s(replica_.consistent_at_seq) + " is durable";
    if (durable_.seq >= replica_.consistent_at_seq) {
      replica_.state = proto::CloneState::consistent;
      replica_.state_reason.clear();
      replica_.consistent_at_seq = 0;
    }
    log_written_.clear();
    end_reached(m);
    break;
  }
  state_dirty_ = true;
  request_commit(actions);
}

void Machine::after_commit_resync(const apply::ReplicaState& s, uint64_t snapshot, Actions& actions) {
  // No stage in the committed state: a restart cannot resume the replaced one.
  if (stage_drop_owed_ && !s.stage.active() && !replica_.stage.active()) {
    stage_drop_owed_ = false;
    actions.stage_drop = true;
  }
  if (resync_state_pending_ && snapshot >= writes_wait_from_ && s.resync.active() &&
      s.resync.generation == replica_.resync.generation) {
    resync_state_pending_ = false;
    if (in_session_)
      actions.resync_state =
          proto::ResyncState{s.resync.generation, s.resync.cursor_bytes, geometry_.size_bytes, resync_state_resumed_};
    resync_state_resumed_ = false;
  }
  after_commit_plan(s, snapshot, actions);
  bool more = false;
  auto kept = marks_flushed_.begin();  // one pass: those the commit covers are acked, the rest kept in order
  for (const PendingMark& m : marks_flushed_) {
    if (snapshot >= m.from_snapshot && s.resync.active() && s.resync.cursor_bytes >= m.cursor_bytes) {
      if (in_session_ && resync_running_) actions.resync_mark_acks.push_back(m.cursor_bytes);
    } else {
      more = true;
      *kept++ = m;
    }
  }
  marks_flushed_.erase(kept, marks_flushed_.end());
  if (end_committing_ && after_commit_staged(s, actions)) {
    // "applying" is durable: the copy to the disk is under way (staged.cpp)
  } else if (end_committing_) {
    if (snapshot >= end_from_snapshot_ && !s.resync.active()) {
      end_committing_.reset();
      marks_flushed_.clear();
      actions.clear_out_of_sync = true;
      if (stage_remove_owed_) actions.stage_remove = true;
      stage_remove_owed_ = false;
      // Only to the session that sent this resync's end: a later one has not
      // asked (its resync_begin is answered as done, already_holds).
      if (in_session_ && resync_running_)
        actions.resync_done = proto::ResyncDone{s.generation, s.committed_seq, s.committed_epoch};
      resync_running_ = false;
    } else {
      more = true;
    }
  }
  if (more) request_commit(actions);
}

// The session ended (or the daemon stops): extents not yet submitted are
// dropped; the durable cursor stays, and the next session resumes there.
void Machine::end_resync_session(Actions& actions) {
  while (!resync_queue_.empty()) {
    release(resync_queue_.back().cost_bytes);
    actions.dropped.push_back(resync_queue_.back().id);
    resync_outstanding_.erase(resync_queue_.back().rseq);
    resync_queue_.pop_back();
  }
  // Marks not yet flushed are forgotten. Flushed ones moved the cursor,
  // which the next commit holds (the state is dirty), but their acks belong
  // to this session: a later one, even of the same resync, never sent them
  // (found by fuzz/apply: a resumed session was acked marks below the cursor
  // its resync_state had just given it).
  marks_.clear();
  marks_flushed_.clear();
  resync_running_ = false;  // an end still committing goes on (end_committing_), unanswered
  resync_state_pending_ = false;
  resync_state_resumed_ = false;
  log_written_.clear();
  maintenance_ = false;
  stage_failed_ = false;
  resync_complete_ = false;
  plan_begin_.reset();
  plan_resumes_ = false;
  plan_reply_pending_.reset();
}

// ------------------------------------------------------------------ Diverged

void Machine::mark_diverged(const std::string& reason, Actions& actions) {
  replica_.state = proto::CloneState::diverged;
  replica_.state_reason = reason;
  replica_.decision.clear();
  if (replica_.resync.active() && !applying_stage()) {
    // The disk changed under a resync in progress: below its cursor it
    // compared (or wrote) a disk that is no longer there, and a resumed
    // resync would leave those changes in a clone it then calls consistent.
    // It starts again from byte 0; a staged one with an empty stage.
    replica_.resync.cursor_bytes = 0;
    marks_flushed_.clear();  // as start_new_resync: no commit covers them now
    if (staging()) {
      replica_.stage.durable_bytes = 0;
      replica_.stage.staged_disk_bytes = 0;
      stage_sync_stale_ = flushing_ == Flushing::marks;
    }
  }
  state_dirty_ = true;
  request_commit(actions);
}

base::Status Machine::apply_decision(apply::Decision d, const std::string& who, int64_t unix_ms, Actions& actions) {
  // Nothing commits after the final commit, which may be under way already
  // (found in review: a decision taken then was lost).
  if (shutting_down())
    return base::Status::error(EAGAIN,
                               "cloned is stopping; decide again once it has stopped (clonectl then records the "
                               "decision in the store itself) or once it runs again.");
  BASE_TRY(apply::apply_decision(replica_, d, who, unix_ms));
  state_dirty_ = true;
  request_commit(actions);
  return base::Status::ok();
}

void Machine::invalidate_fingerprint(Actions& actions) {
  if (!replica_.fingerprint_valid) return;
  replica_.fingerprint_valid = false;
  need_write_barrier_commit(actions);
}

void Machine::set_fingerprint(const base::Bytes& fingerprint, Actions& actions) {
  replica_.fingerprint = fingerprint;
  replica_.fingerprint_valid = !fingerprint.empty();
  state_dirty_ = true;
  request_commit(actions);
}

}  // namespace apply
