// SPDX-License-Identifier: MIT
// The apply machine's answer to a resync_plan (issue 18, "when it does not
// fit"; docs/PROTOCOL.md, "Resync and verify"): the original has compared the
// digests and says what the rest of the resync will send before it sends any
// of it, so a stage too small for it is refused up front, with nothing
// written to the disk or the stage and nothing committed, instead of
// overflowing halfway through the transfer.
#include <algorithm>

#include "base/units.h"
#include "cloned/apply/apply.h"

namespace apply {
namespace {

using base::u64s;

uint64_t add_saturating(uint64_t a, uint64_t b) { return a + std::min(b, UINT64_MAX - a); }

uint64_t mul_saturating(uint64_t a, uint64_t b) { return (a != 0 && b > UINT64_MAX / a) ? UINT64_MAX : a * b; }

std::string figures(const proto::ResyncPlanReply& r) {
  return base::format_bytes(r.needed_bytes) + " (" + u64s(r.needed_bytes) + " bytes) on the clone's stick; its bound " +
         "([resync] stage_max_bytes) is " + base::format_bytes(r.bound_bytes) + " (" + u64s(r.bound_bytes) +
         " bytes) and " + base::format_bytes(r.free_bytes) + " (" + u64s(r.free_bytes) +
         " bytes) are free beyond what the state store keeps";
}

}  // namespace

// The stage's size once the plan is staged (on top of what a resumed stage
// holds), and whether it stays under the bound and the stick's free space. A
// new stage truncates the file a staged resync left behind (one abandoned for
// a new target, or dropped): that file's space is free to it.
proto::ResyncPlanReply Machine::plan_figures(const proto::ResyncPlan& plan, const StageRoom& room, bool resume) const {
  const uint64_t held = resume ? std::max(replica_.stage.durable_bytes, kStageHeaderBytes) : 0;
  const uint64_t grows = add_saturating(add_saturating(resume ? 0 : kStageHeaderBytes, plan.data_bytes),
                                        mul_saturating(plan.extent_count, kStageEntryHeaderBytes));
  proto::ResyncPlanReply r;
  r.needed_bytes = add_saturating(held, grows);
  r.bound_bytes = room.bound_bytes;
  r.free_bytes = resume ? room.free_bytes : add_saturating(room.free_bytes, room.stage_file_bytes);
  r.verdict = r.needed_bytes <= room.bound_bytes && grows <= r.free_bytes ? proto::PlanVerdict::staged
                                                                          : proto::PlanVerdict::refused;
  return r;
}

// The begin was answered before the plan; the plan's answer waits for the
// state it starts (staging, or inconsistent in place) to be durable, so that
// a commit already in flight cannot pass for it.
void Machine::answer_after_commit(const proto::ResyncPlanReply& r) {
  resync_state_pending_ = false;
  plan_reply_pending_ = r;
}

void Machine::after_commit_plan(const apply::ReplicaState& s, uint64_t snapshot, Actions& actions) {
  if (!plan_reply_pending_ || snapshot < writes_wait_from_ || !s.resync.active() ||
      s.resync.generation != replica_.resync.generation || s.resync.cursor_bytes != replica_.resync.cursor_bytes ||
      s.stage.phase != replica_.stage.phase || s.state != replica_.state)
    return;
  if (in_session_) actions.plan_reply = *plan_reply_pending_;
  plan_reply_pending_.reset();
}

bool Machine::takes_resync_plan() const { return staging() || should_stage(proto::ResyncBegin{}); }

void Machine::on_resync_plan(const proto::ResyncPlan& plan, const StageRoom& room, Actions& actions) {
  using proto::PlanVerdict;
  if (in_session_ && shutting_down()) return;  // as on_resync_extent
  if (!in_session_ || !plan_begin_)
    return fail(actions, proto::ErrorCode::protocol, "resync_plan without a resync_begin that announced one.");
  const proto::ResyncBegin b = *plan_begin_;
  const bool resume = plan_resumes_;
  plan_begin_.reset();
  if (resync_complete_) {  // nothing is left to send: the end is answered at once
    actions.plan_reply =
        proto::ResyncPlanReply{PlanVerdict::in_place, geometry_.size_bytes, 0, room.bound_bytes, room.free_bytes};
    return;
  }
  const bool stageable = resume ? staging() : should_stage(b);
  proto::ResyncPlanReply r = plan_figures(plan, room, resume && stageable);
  r.cursor_bytes = resume ? replica_.resync.cursor_bytes : 0;
  // Nothing whole to keep, or staging is off: in place, as without a plan.
  if (!stageable) r.verdict = PlanVerdict::in_place;
  if (r.verdict != PlanVerdict::refused) {  // staged, or in place: it goes on as it began
    if (resume) {
      actions.plan_reply = r;
      return continue_resync(actions);
    }
    if (stageable)
      start_staged_resync(b, actions);
    else
      begin_in_place(b, actions);
    answer_after_commit(r);
    return;
  }
  if ((plan.flags & proto::kPlanInPlaceUnbootable) != 0) {
    // The person allowed the unbootable window. A staged resync this replaces
    // is dropped (its file goes once that is committed): the disk holds the old
    // generation, so the in-place resync starts at byte 0.
    r.verdict = PlanVerdict::in_place_unbootable;
    r.cursor_bytes = 0;
    begin_in_place(b, actions);
    answer_after_commit(r);
    return;
  }
  actions.plan_reply = r;
  const bool repair = (b.flags & proto::kResyncRepair) != 0;
  // A repair's disk is not whole: the verify before it found ranges out of sync.
  fail(actions, proto::ErrorCode::stage_full,
       std::string(repair ? "the repair in generation " : "the resync of generation ") + u64s(b.generation) +
           " does not fit the clone's stage: it needs " + figures(r) + ". Nothing was written; the disk " +
           (repair ? "is as the verify found it, its ranges out of sync not yet repaired"
                   : "still holds generation " + u64s(replica_.generation) + ", whole and bootable") +
           ". Raise stage_max_bytes, free the stick, or run it again with --in-place-unbootable "
           "(the clone is then not bootable until it completes).");
}

}  // namespace apply
