// SPDX-License-Identifier: MIT
// The apply machine's staged resync (issue 18; docs/ARCHITECTURE.md, "Staged
// resync"): a resync onto a clone that holds a whole generation G leaves the
// disk at G, bootable, for the whole transfer.
//
// The phases, each made durable in the store before the next begins:
//  - staging: the begin commits "staging G+1" (the state stays consistent at
//    G), then the extents go to the stage file (SubmitIo::to_stage); a mark
//    syncs the stage instead of flushing the disk, then commits the cursor
//    and the stage's durable length, then is acked. The log is not taken:
//    its records belong on top of G+1, which the disk does not hold yet.
//  - applying: the end syncs the stage and commits "applying G+1" (the state
//    inconsistent from here, invariant 8), then the stage is copied to the
//    disk and the disk flushed. A crash here is finished at the next start
//    (resume_staged_apply), with no original: the stage is a redo log. A
//    stick that fails to give the stage is tried again a few times; a stage
//    lost or damaged (or a stick that keeps failing) leaves the clone
//    inconsistent, needing a resync.
//  - done: the clone commits G+1 at the resync's target, then answers the
//    end and removes the stage.
// A stick that fails or fills stops the resync with a sentence; the disk was
// not touched and still holds G.
#include <cassert>
#include <cerrno>
#include <iterator>
#include <utility>

#include "base/units.h"
#include "cloned/apply/apply.h"

namespace apply {

using base::u64s;

bool Machine::should_stage(const proto::ResyncBegin&) const {
  // A first full copy, a Diverged or already inconsistent disk have no whole
  // generation to keep: they go in place, as before. A repair (verify
  // --repair) of a consistent clone is staged like a resync: the generation
  // stays, the repaired ranges land together. A consistent disk after an
  // unclean stop (unclean_until_seq_) is staged too: it holds whole epochs
  // and part of the next, written in epoch order, which is what a power cut
  // leaves on the original's own disk; the stage keeps that crash state until
  // the copy, where in place would mix it with the next generation.
  return limits_.stage_resync && replica_.state == proto::CloneState::consistent && !replica_.needs_resync;
}

void Machine::start_staged_resync(const proto::ResyncBegin& b, Actions& actions) {
  resync_from_zero(b);
  replica_.stage = {apply::StagePhase::staging, 0, 0, 0};
  stage_drop_owed_ = false;  // the new stage truncates the file a replaced one left
  ask_stage_open(StageOpen{true, b.generation, replica_.generation, 0}, actions);
  resync_running_ = true;
  resync_state_pending_ = true;
  resync_state_resumed_ = false;
  log_written_.clear();
  resume_staging(actions);
  need_write_barrier_commit(actions);  // "staging" is durable before the first append
}

// The log waits: its records apply on top of G+1, which the disk does not
// hold until the stage is applied.
void Machine::resume_staging(Actions& actions) {
  // Nothing of a stage is durable before its first mark: one the last run
  // may not have created yet is made afresh, at cursor 0 as it must be.
  const uint64_t durable = replica_.stage.durable_bytes;
  if (!actions.stage_open)
    ask_stage_open(StageOpen{durable == 0, replica_.resync.generation, replica_.generation, durable}, actions);
  log_ok_ = false;
  log_refused_why_ = "the clone is staging the resync of generation " + u64s(replica_.resync.generation) +
                     "; the log continues once it is applied";
}

void Machine::on_stage_synced(const base::Status& status, uint64_t durable_bytes, uint64_t staged_disk_bytes,
                              Actions& actions) {
  assert(flushing_ == Flushing::marks);
  flushing_ = Flushing::none;
  const bool stale = std::exchange(stage_sync_stale_, false);
  if (!status.is_ok()) return on_stage_error(status, actions);
  if (!stale) {
    replica_.stage.durable_bytes = durable_bytes;
    replica_.stage.staged_disk_bytes = staged_disk_bytes;
  }
  on_mark_flushed(actions);
  after_completion(actions);
}

// A full stick (or the stage's bound) is final: a resumed resync would stop
// at the same place. Any other failure may pass: disk_io, retried.
void Machine::on_stage_error(const base::Status& status, Actions& actions) {
  stage_failed_ = true;
  const proto::ErrorCode code = status.code() == ENOSPC ? proto::ErrorCode::stage_full : proto::ErrorCode::disk_io;
  if (in_session_)
    fail(actions, code,
         "the clone's stick could not take the staged resync: " + status.message() +
             (status.message().ends_with('.') ? " " : ". ") + "The resync stopped; the disk still holds generation " +
             u64s(replica_.generation) + ", whole and bootable, and a resumed resync continues from its last mark.");
  after_completion(actions);
}

// One open per Actions: a second in the same Actions replaces the first
// before the daemon sees it.
void Machine::ask_stage_open(const StageOpen& open, Actions& actions) {
  if (!actions.stage_open) ++stage_opens_out_;
  actions.stage_open = open;
}

// Only the stage in use fails, and only by its own open (found in review):
// - one a plan replaced by an in-place resync since its open was asked stops
//   nothing (stage_failed_ stopped that resync's writes and marks until its
//   session ended);
// - an open answered while a later one is queued was for a staged resync a
//   new begin replaced: the worker's stage is the later open's (StageWorker
//   starts afresh at each), and the failure would have failed the new one.
bool Machine::on_stage_opened(const base::Status& status, Actions& actions) {
  assert(stage_opens_out_ > 0);  // one answer per open asked, in order
  if (stage_opens_out_ > 0) --stage_opens_out_;
  if (status.is_ok() || stage_opens_out_ > 0) return false;
  if (!staging() && !applying_stage()) return false;
  stage_failed_ = true;
  if (staging()) {
    // The disk was not touched: forget the staged resync; the next begin
    // starts it afresh.
    const uint64_t g = replica_.resync.generation;
    replica_.resync = {};
    replica_.stage = {};
    state_dirty_ = true;
    request_commit(actions);
    if (in_session_)
      fail(actions, proto::ErrorCode::disk_io,
           "the clone could not open the stage of generation " + u64s(g) + " on its stick: " + status.message() +
               " The staged resync starts again from the beginning; the disk still holds generation " +
               u64s(replica_.generation) + ".");
    return true;
  }
  on_stage_unreadable(status, actions);
  return true;
}

namespace {

// A stage the stick cannot give while applying is tried again after each of
// these waits (about 2.6 minutes in all), then given up. Not for ever: the
// clone refuses the log and every resync while applying, and a stick that
// keeps failing would leave it so for good.
constexpr uint64_t kStageRetryWaitsMs[] = {1000, 5000, 30000, 120000};

// A stage that is gone, damaged or not this generation's reads no better on
// a second try.
bool stage_is_lost(int code) { return code == EBADMSG || code == ENOENT || code == EINVAL; }

}  // namespace

// The stage could not be opened or read while applying. The copy may have
// begun: the disk is neither G nor G+1. A stick error that may pass (EIO, a
// stick reset) is tried again a few times, the copy from the start (a redo
// log); after that, or for a stage that is lost, only a resync can make the
// disk whole again.
void Machine::on_stage_unreadable(const base::Status& status, Actions& actions) {
  stage_applying_ = false;
  if (!stage_is_lost(status.code()) && stage_retries_ < std::size(kStageRetryWaitsMs)) {
    stage_retry_wait_ms_ = kStageRetryWaitsMs[stage_retries_++];
    stage_retry_at_ms_ = 0;            // counted from the next tick
    return after_completion(actions);  // a shutdown waiting for the copy goes on
  }
  const unsigned tries = stage_retries_ + 1;
  stage_retry_wait_ms_ = 0;
  stage_retries_ = 0;
  end_committing_.reset();  // no resync_done: the end did not happen
  marks_flushed_.clear();
  resync_running_ = false;
  replica_.state = proto::CloneState::inconsistent;
  replica_.state_reason = "the staged generation " + u64s(replica_.resync.generation) +
                          " could not be read from the stick" +
                          (tries > 1 ? " after " + u64s(tries) + " tries" : std::string()) + " (" + status.message() +
                          "), and its copy to the disk may have begun: a resync is needed";
  if (in_session_) fail(actions, proto::ErrorCode::resync_needed, "the clone " + replica_.state_reason + ".");
  replica_.needs_resync = true;
  replica_.resync = {};
  replica_.stage = {};
  state_dirty_ = true;
  request_commit(actions);
}

// A tick: the stage's next try, once its wait is over and the last try's
// apply job has come back (its completion must not pass for the new one's).
void Machine::stage_retry_tick(Actions& actions) {
  if (stage_retry_wait_ms_ == 0) return;
  if (!applying_stage() || shutting_down()) {
    stage_retry_wait_ms_ = 0;  // the next start tries again, from the first wait
    return check_shutdown_progress(actions);
  }
  if (stage_retry_at_ms_ == 0) stage_retry_at_ms_ = now_ms_ + stage_retry_wait_ms_;
  if (now_ms_ < stage_retry_at_ms_ || stage_applies_out_ > 0) return;
  stage_retry_wait_ms_ = 0;
  resume_staged_apply(actions);
}

// The end mark is durable on the stage: say "applying" before the disk changes.
void Machine::stage_end_reached(const PendingMark& end) {
  replica_.stage.phase = apply::StagePhase::applying;
  replica_.stage.consistent_at_seq = end.consistent_at_seq;
  replica_.state = proto::CloneState::inconsistent;
  replica_.state_reason = "applying generation " + u64s(replica_.resync.generation) +
                          " from the stage on the stick (finishes without the original)";
  replica_.fingerprint_valid = false;
  end_reached(end);
  stage_copy_owed_ = true;
}

// A commit of the "applying" phase: true. The first after the end was reached
// starts the copy; a later one does not (a retry reopens the stage itself,
// after its wait: resume_staged_apply).
bool Machine::after_commit_staged(const apply::ReplicaState& s, Actions& actions) {
  if (s.stage.phase != apply::StagePhase::applying) return false;
  if (stage_copy_owed_) {
    assert(applying_stage() && !stage_applying_ && stage_applies_out_ == 0 && stage_retry_wait_ms_ == 0);
    stage_copy_owed_ = false;
    stage_applying_ = true;
    ++stage_applies_out_;
    actions.stage_apply = true;
  }
  return true;
}

void Machine::resume_staged_apply(Actions& actions) {
  if (!applying_stage() || stage_applying_) return;
  ask_stage_open(StageOpen{false, replica_.resync.generation, replica_.generation, replica_.stage.durable_bytes},
                 actions);
  end_reached(PendingMark{0, geometry_.size_bytes, true, replica_.stage.consistent_at_seq});
  stage_applying_ = true;
  ++stage_applies_out_;
  actions.stage_apply = true;
}

void Machine::on_stage_applied(const base::Status& status, bool disk_failed, Actions& actions) {
  if (stage_applies_out_ > 0) --stage_applies_out_;
  if (!stage_applying_) return;  // the stage could not be opened: on_stage_opened decided
  if (!status.is_ok() && !disk_failed) return on_stage_unreadable(status, actions);
  stage_applying_ = false;
  stage_retries_ = 0;
  if (!status.is_ok())
    return on_disk_error("the clone's disk failed while the staged generation " + u64s(replica_.resync.generation) +
                             " was copied onto it: " + status.message() +
                             " The next start finishes the copy from the stage.",
                         actions);
  finish_staged_apply(actions);
  after_completion(actions);
}

// The disk holds G+1 at the resync's target: commit it; the end is answered
// and the stage removed after that commit (after_commit_resync).
void Machine::finish_staged_apply(Actions& actions) {
  const apply::ResyncProgress r = replica_.resync;
  const uint64_t consistent_at = std::max(replica_.stage.consistent_at_seq, r.target_seq);
  replica_.generation = r.generation;
  take_position(r.target_seq, r.target_epoch);
  replica_.resync = {};
  replica_.stage = {};
  replica_.needs_resync = false;
  replica_.state = proto::CloneState::consistent;
  replica_.state_reason.clear();
  replica_.consistent_at_seq = 0;
  replica_.fingerprint_valid = false;  // the disk changed: any fingerprint is of another disk
  if (consistent_at > durable_.seq) {
    replica_.state = proto::CloneState::inconsistent;
    replica_.consistent_at_seq = consistent_at;
    replica_.state_reason = "resync complete; consistent once record " + u64s(consistent_at) + " is durable";
  }
  if (!end_committing_) end_reached(PendingMark{0, geometry_.size_bytes, true, consistent_at});
  stage_remove_owed_ = true;
  // A log session may open before this commit completes: its writes go on
  // top of G+1 only once the store no longer says "applying" (a restart
  // before would copy the stage again, over them).
  need_write_barrier_commit(actions);
}

}  // namespace apply
