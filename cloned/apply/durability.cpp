// SPDX-License-Identifier: MIT
// The apply machine's durability half: completed writes and flushes (the
// barrier ack, invariant 4), the grouped commits that carry the position and
// the reservation to the store (invariant 6), and shutdown. apply.cpp has
// sessions, validation and submission.
#include <algorithm>
#include <cassert>
#include <cerrno>
#include <utility>

#include "base/promise.h"
#include "base/units.h"
#include "cloned/apply/apply.h"

namespace apply {

using base::u64s;

// -------------------------------------------------------------- completions

void Machine::on_io_done(RecordId id, const base::Status& status, bool digest_mismatch, Actions& actions) {
  auto it = std::find_if(in_flight_.begin(), in_flight_.end(), [id](const Entry& e) { return e.id == id; });
  assert(it != in_flight_.end());
  release(it->cost_bytes);
  const uint64_t rseq = it->rseq;
  const bool staged = it->staged;
  const bool after_flush = it->after_flush;
  const uint64_t seq = it->header.seq;
  in_flight_.erase(it);
  const bool cancel_asked = after_flush_cancel_asked_;
  if (after_flush && --after_flush_in_flight_ == 0) after_flush_cancel_asked_ = false;
  if (rseq != 0) resync_entry_finished(rseq);
  if (after_flush && status.code() == ECANCELED) {
    // Not started: the machine dropped its barrier, or the disk failed, or
    // the flush under way fails (on_flush_done decides). The record comes
    // again in the next session. Anything else is no reason the machine
    // knows of, and the barriers behind it must not be flushed.
    const bool explained = cancel_asked || disk_failed_;
    if (!explained && flushing_ == Flushing::barrier) {
      cancelled_while_flushing_ = true;
    } else if (!explained) {
      end_session_for_unwritten(proto::ErrorCode::internal,
                                "record " + u64s(seq) + " was not written (" + status.message() +
                                    ") for no reason the clone knows; the session ends so that it is sent again.",
                                actions);
    }
    return after_completion(actions);
  }
  if (after_flush && status.is_ok()) {
    // Written before the machine's flush of its barrier: an early flush for
    // its gate ran and let it go. Were that barrier dropped unflushed (or was
    // it, a cancel asked), the disk would hold its epoch whole and this write
    // past it, where the machine counts only the epoch before as durable.
    after_flush_written_seq_ = std::max(after_flush_written_seq_, seq);
    if (cancel_asked && !disk_failed_) note_written_past_dropped_barrier();
  }
  if (!status.is_ok() && staged && !digest_mismatch) return on_stage_error(status, actions);
  if (!status.is_ok()) {
    if (!digest_mismatch) return on_disk_error("the clone's disk failed: " + status.message(), actions);
    // Refused unwritten: the barrier behind it must not make it "durable".
    end_session_for_unwritten(proto::ErrorCode::digest_mismatch, status.message(), actions);
  }
  after_completion(actions);
}

void Machine::end_session_for_unwritten(proto::ErrorCode code, const std::string& message, Actions& actions) {
  if (!in_session_) return;  // ended already: its queue, barriers included, is gone
  fail(actions, code, message);
  end_session(actions);
}

void Machine::ask_cancel_after_flush(Actions& actions) {
  actions.cancel_after_flush = true;
  after_flush_cancel_asked_ = true;
  ++next_gate_;  // the executor counts the cancelled writes' gate as cancelled: never use it again
}

void Machine::on_disk_error(const std::string& message, Actions& actions) {
  disk_failed_ = true;
  if (after_flush_in_flight_ > 0) ask_cancel_after_flush(actions);  // no flush will come
  actions.disk_failed.push_back({message});
  if (in_session_) fail(actions, proto::ErrorCode::disk_io, message);
  after_completion(actions);
}

// After the disk finished something: a deferred hello may be answered now,
// queued records may go out, a shutdown may be able to finish.
void Machine::after_completion(Actions& actions) {
  if (pending_hello_ && idle_disk()) {
    proto::Hello h = *pending_hello_;
    pending_hello_.reset();
    open_session(h, actions);
  }
  pump(actions);
  check_shutdown_progress(actions);
}

void Machine::on_flush_done(const base::Status& status, Actions& actions) {
  const Flushing done = flushing_;
  assert(done != Flushing::none);
  flushing_ = Flushing::none;
  if (done == Flushing::marks) {
    if (!status.is_ok()) return on_disk_error("the clone's disk failed to flush: " + status.message(), actions);
    on_mark_flushed(actions);
    return after_completion(actions);
  }
  release(flushing_barrier_.cost_bytes);
  const bool cancelled_unexplained = std::exchange(cancelled_while_flushing_, false);
  if (!status.is_ok()) return on_disk_error("the clone's disk failed to flush: " + status.message(), actions);
  // The next epoch's writes that waited for this flush are ordinary ones now.
  for (Entry& e : in_flight_) e.after_flush = false;
  after_flush_in_flight_ = 0;
  after_flush_cancel_asked_ = false;
  after_flush_written_seq_ = 0;  // behind a barrier now durable: ordinary writes of the open epoch
  assert(flushing_barrier_.header.seq > durable_.seq && flushing_barrier_.header.seq <= recv_seq_);
  durable_ = {flushing_barrier_.header.seq, flushing_barrier_.header.epoch};
  // A restart must find every acknowledged position inside the durable
  // reservation, or it cannot believe the original's "you acked N".
  CLONED_PROMISE(
      durable_.seq <= reserved_limit_,
      "barrier " + u64s(durable_.seq) + " would be acknowledged past the durable reservation " + u64s(reserved_limit_));
  if (in_session_) actions.barrier_acks.push_back({durable_.epoch, durable_.seq});
  if (auto it = mark_names_.find(durable_.seq); it != mark_names_.end()) {
    actions.marks_reached.push_back({it->second, durable_.seq, durable_.epoch});
    mark_names_.erase(it);
  }
  maybe_become_consistent();
  if (cancelled_unexplained)
    end_session_for_unwritten(proto::ErrorCode::internal,
                              "a record behind barrier " + u64s(durable_.seq) +
                                  " was not written for no reason the clone knows; the session ends so that it is "
                                  "sent again.",
                              actions);
  after_completion(actions);
}

void Machine::maybe_become_consistent() {
  if (unclean_until_seq_ != 0 && durable_.seq >= unclean_until_seq_) unclean_until_seq_ = 0;
  // A resync in progress, or a Diverged disk, is no copy whatever the log did.
  if (replica_.resync.active() || replica_.needs_resync || replica_.state == proto::CloneState::diverged) return;
  const bool caught_up = replica_.state == proto::CloneState::inconsistent && replica_.consistent_at_seq != 0 &&
                         durable_.seq >= replica_.consistent_at_seq;
  const bool first = replica_.state == proto::CloneState::fresh && durable_.seq > 0;
  if (caught_up) unclean_until_seq_ = 0;
  if (caught_up || first) {
    replica_.state = proto::CloneState::consistent;
    replica_.state_reason.clear();
    replica_.consistent_at_seq = 0;
    state_dirty_ = true;
  }
}

// ------------------------------------------------------------------ commits

apply::ReplicaState Machine::snapshot_for_commit() const {
  apply::ReplicaState s = replica_;
  s.committed_seq = durable_.seq;
  s.committed_epoch = durable_.epoch;
  uint64_t written = std::max(highest_submitted_seq_, durable_.seq);
  if (unclean_until_seq_ > durable_.seq) written = std::max(written, unclean_until_seq_);
  if (shutdown_ == Shutdown::final_commit) {
    s.reserved_seq = written;  // exact: equal to committed_seq after a clean stop
  } else {
    s.reserved_seq = std::max(reserved_limit_, written + limits_.reserve_ahead_records);
  }
  return s;
}

void Machine::request_commit(Actions& actions) {
  if (commit_in_flight_) return;  // on_commit_done looks again
  commit_snapshot_ = snapshot_for_commit();
  commit_snapshot_number_ = ++snapshots_taken_;
  commit_in_flight_ = true;
  state_dirty_ = false;
  last_commit_ms_ = now_ms_;
  actions.commits.push_back({commit_snapshot_});
}

void Machine::on_commit_done(const base::Status& status, Actions& actions) {
  assert(commit_in_flight_);
  commit_in_flight_ = false;
  if (!status.is_ok()) {
    state_dirty_ = true;  // retried on the next tick
    if (shutdown_ == Shutdown::final_commit) shutdown_ = Shutdown::finishing;
    return;
  }
  const apply::ReplicaState& s = commit_snapshot_;
  snapshots_committed_ = commit_snapshot_number_;
  // A snapshot taken before a resync took its position (a new generation,
  // or the same one begun again at another target) holds nothing of the log
  // that follows: its position is neither taken nor told (the original
  // forgets the records the clone says its store holds).
  const bool current = s.generation == replica_.generation && commit_snapshot_number_ > position_snapshots_;
  // The reservation never moves back below what this process wrote or
  // acknowledged (a clean stop lowers it to exactly that, no further). A
  // snapshot from before the position covers nothing now: found by
  // fuzz/apply, one of a resync begun again in the same generation, at a
  // target past its reservation, broke this promise (the daemon stopped).
  CLONED_PROMISE(!current || s.reserved_seq >= std::max({highest_submitted_seq_, durable_.seq, s.committed_seq}),
                 "the committed reservation " + u64s(s.reserved_seq) + " falls below record " +
                     u64s(std::max({highest_submitted_seq_, durable_.seq, s.committed_seq})) +
                     ", which the disk may already hold or the original was told is durable");
  if (current) {
    committed_ = {s.committed_seq, s.committed_epoch};
    committed_mark_ = s.mark;
    assert(committed_.seq <= durable_.seq);  // a commit snapshots durable_
    reserved_limit_ = s.reserved_seq;
    replica_.committed_seq = s.committed_seq;
    replica_.committed_epoch = s.committed_epoch;
    replica_.reserved_seq = s.reserved_seq;
  }
  // Writes wait until the store holds what must precede them: the state and
  // its catch-up target, a begun resync, an invalidated fingerprint.
  const uint64_t snapshot = commit_snapshot_number_;
  if (writes_wait_for_commit_ && snapshot >= writes_wait_from_ && s.state == replica_.state &&
      s.consistent_at_seq == replica_.consistent_at_seq && s.resync.generation == replica_.resync.generation &&
      s.fingerprint_valid == replica_.fingerprint_valid && s.generation == replica_.generation)
    writes_wait_for_commit_ = false;
  if (current && in_session_ && committed_.seq > committed_sent_seq_) {
    committed_sent_seq_ = committed_.seq;
    actions.committed.push_back({committed_.seq});
  }
  after_commit_resync(s, snapshot, actions);
  if (shutdown_ == Shutdown::final_commit) {
    shutdown_ = Shutdown::done;
    return;
  }
  // A wait this commit was too old to answer takes the next one at once.
  if (writes_wait_for_commit_ || ((resync_state_pending_ || plan_reply_pending_) && snapshot < writes_wait_from_))
    request_commit(actions);
  pump(actions);
  check_shutdown_progress(actions);
}

void Machine::on_tick(uint64_t now_ms, Actions& actions) {
  now_ms_ = now_ms;
  stage_retry_tick(actions);
  if (commit_in_flight_ || shutdown_ == Shutdown::final_commit || shutdown_ == Shutdown::done) return;
  // Raising the reservation is urgent (writes stop when it runs out); the
  // position itself is committed at most once per interval.
  const bool reserve_low = in_session_ && reserved_limit_ < recv_seq_ + limits_.reserve_ahead_records / 2;
  const bool behind = durable_.seq > committed_.seq || state_dirty_;
  if (reserve_low || (behind && now_ms_ - last_commit_ms_ >= limits_.commit_interval_ms)) request_commit(actions);
}

// ----------------------------------------------------------------- shutdown

void Machine::begin_shutdown(Actions& actions) {
  if (shutting_down()) return;
  shutdown_ = Shutdown::finishing;
  pending_hello_.reset();
  // Finish the epoch being received; if the last record received closed an
  // epoch, stop there.
  shutdown_epoch_ = durable_.epoch;
  if (in_session_) shutdown_epoch_ = std::max(shutdown_epoch_, open_epoch_started_ ? recv_epoch_ : recv_epoch_ - 1);
  drop_queue_after_epoch(shutdown_epoch_, actions);
  end_resync_session(actions);  // resync extents not yet written wait for the next run
  check_shutdown_progress(actions);
}

void Machine::force_shutdown(Actions& actions) {
  if (shutdown_ == Shutdown::running) shutdown_ = Shutdown::finishing;
  shutdown_epoch_ = durable_.epoch;
  drop_queue_after_epoch(shutdown_epoch_, actions);
  // Records of the unfinished epoch that were not submitted are dropped too.
  while (!queue_.empty()) {
    release(queue_.back().cost_bytes);
    actions.dropped.push_back(queue_.back().id);
    queue_.pop_back();
  }
  cancel_after_flush_if_orphaned(actions);
  end_resync_session(actions);
  check_shutdown_progress(actions);
}

void Machine::check_shutdown_progress(Actions& actions) {
  if (shutdown_ != Shutdown::finishing || commit_in_flight_) return;
  if (!idle_disk() || stage_applying_) return;  // a staged apply is bounded and local: it finishes
  const bool epoch_done = durable_.epoch >= shutdown_epoch_ || !in_session_ || disk_failed_;
  if (!epoch_done) return;
  drop_queue_after_epoch(durable_.epoch, actions);
  shutdown_ = Shutdown::final_commit;
  request_commit(actions);
}

bool Machine::done_for_shutdown() const { return shutdown_ == Shutdown::done; }

}  // namespace apply
