// SPDX-License-Identifier: MIT
// The apply machine's answer to a resync_plan (plan.cpp): a stage that holds
// the plan goes on staged, one that does not is refused up front with the
// figures and nothing committed, or goes in place when the plan allows it.
#include <doctest/doctest.h>

#include "cloned/apply/tests/rig.h"

using namespace apply_test;

namespace {

constexpr apply::Limits kStaged{.stage_resync = true};
const proto::ResyncBegin kPlanned{2, 10, 3, 4096, proto::kResyncPlanFollows};

struct PlanRig : Rig {
  explicit PlanRig(const apply::ReplicaState& s = consistent_gen1(), const apply::Limits& l = kStaged) : Rig(s, l) {
    proto::Hello h = original_hello(1, 0);
    h.generation = 2;
    h.flags |= proto::kHelloMaintenance;
    Actions a = hello(h);
    REQUIRE(a.hello_reply);
    // Only a clone that would stage asks for a plan.
    CHECK(((a.hello_reply->flags & proto::kHelloTakesResyncPlan) != 0) ==
          (l.stage_resync && s.state == proto::CloneState::consistent));
    if (!a.commits.empty()) committed();
  }
  Actions begin(const proto::ResyncBegin& b = kPlanned) {
    return run([&](Actions& a) { m.on_resync_begin(b, a); });
  }
  Actions plan(uint64_t data_bytes, uint64_t extents, uint32_t flags, apply::StageRoom room) {
    return run([&](Actions& a) { m.on_resync_plan({data_bytes, 0, extents, flags}, room, a); });
  }
};

// 100 extents of 40 KiB: 64 + 4,096,000 + 100 x 72 bytes on the stick.
constexpr uint64_t kData = 100 * 40960;
constexpr uint64_t kNeeded = 64 + kData + 100 * 72;

}  // namespace

TEST_CASE("a begin that announces a plan is answered at once and commits nothing") {
  PlanRig r;
  Actions a = r.begin();
  REQUIRE(a.resync_state);
  CHECK(a.resync_state->cursor_bytes == 0);
  CHECK_FALSE(a.resync_state->resumed);
  CHECK(a.commits.empty());
  CHECK_FALSE(a.stage_open);
  CHECK(r.m.awaits_plan());
  CHECK(r.m.replica().state == proto::CloneState::consistent);
  proto::RecordHeader h;
  h.type = MsgType::resync_data;
  h.length_bytes = 4096;
  apply::RecordId id = 0;
  a = r.run([&](Actions& x) { r.m.on_resync_extent(h, id, x); });
  REQUIRE(a.fail.size() == 1);  // data before the plan is a protocol error
  CHECK(a.fail[0].code == proto::ErrorCode::protocol);
}

// Found in review: a log record taken while the plan was pending was written
// and acknowledged, then the staged repair's apply moved the position back
// under it and the state store's check stopped the daemon.
TEST_CASE("a log record before the announced plan is a protocol error") {
  Rig r(consistent_gen1(), kStaged);  // generation 1 at record 5: a repair's session takes the log
  REQUIRE(r.hello(maintenance_hello(1, 1, 1000)).hello_reply);
  if (!r.last.commits.empty()) r.committed();
  Actions a = r.run([&](Actions& x) {
    r.m.on_resync_begin({1, 5, 2, 4096, proto::kResyncPlanFollows | proto::kResyncRepair}, x);
  });
  REQUIRE(a.fail.empty());
  REQUIRE(r.m.awaits_plan());
  a = r.send(rec(MsgType::write, 6, 3, 0));
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::protocol);
  CHECK(a.submit.empty());
}

TEST_CASE("a plan that fits the stage goes on staged, with the figures") {
  PlanRig r;
  r.begin();
  Actions a = r.plan(kData, 100, 0, {kNeeded, 1ull << 30});
  CHECK_FALSE(a.plan_reply);  // not before "staging" is durable
  CHECK(a.fail.empty());
  REQUIRE(a.stage_open);
  CHECK(a.stage_open->create);
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.stage.phase == apply::StagePhase::staging);
  CHECK(a.commits[0].state.resync.flags == 0);  // the plan bit is no part of the resync
  a = r.committed();
  CHECK_FALSE(a.resync_state);  // answered already, before the plan
  REQUIRE(a.plan_reply);
  CHECK(a.plan_reply->verdict == proto::PlanVerdict::staged);
  CHECK(a.plan_reply->needed_bytes == kNeeded);
  CHECK(a.plan_reply->bound_bytes == kNeeded);
  CHECK(a.plan_reply->free_bytes == 1ull << 30);
  CHECK(r.m.resync_running());
}

TEST_CASE("a plan over the bound or the free space is refused with stage_full; nothing is committed or staged") {
  for (const apply::StageRoom room :
       {apply::StageRoom{kNeeded - 1, 1ull << 30}, apply::StageRoom{8ull << 30, kNeeded - 1}}) {
    CAPTURE(room.bound_bytes);
    CAPTURE(room.free_bytes);
    PlanRig r;
    r.begin();
    Actions a = r.plan(kData, 100, 0, room);
    REQUIRE(a.plan_reply);
    CHECK(a.plan_reply->verdict == proto::PlanVerdict::refused);
    CHECK(a.plan_reply->needed_bytes == kNeeded);
    REQUIRE(a.fail.size() == 1);
    CHECK(a.fail[0].code == proto::ErrorCode::stage_full);
    CHECK(a.fail[0].message.find(std::to_string(kNeeded) + " bytes") != std::string::npos);
    CHECK(a.fail[0].message.find(std::to_string(room.bound_bytes) + " bytes") != std::string::npos);
    CHECK(a.fail[0].message.find("--in-place-unbootable") != std::string::npos);
    CHECK(a.commits.empty());
    CHECK_FALSE(a.stage_open);
    CHECK(a.submit.empty());
    CHECK(r.m.replica().state == proto::CloneState::consistent);
    CHECK(r.m.replica().generation == 1);
    CHECK_FALSE(r.m.replica().resync.active());
  }
}

TEST_CASE("with in-place allowed, a plan that does not fit goes in place and marks the clone inconsistent first") {
  PlanRig r;
  r.begin();
  Actions a = r.plan(kData, 100, proto::kPlanInPlaceUnbootable, {1ull << 20, 1ull << 30});
  CHECK_FALSE(a.plan_reply);  // not before "inconsistent" is durable
  CHECK(a.fail.empty());
  CHECK_FALSE(a.stage_open);
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.state == proto::CloneState::inconsistent);
  CHECK_FALSE(a.commits[0].state.stage.active());
  proto::RecordHeader h;
  h.type = MsgType::resync_data;
  h.length_bytes = 4096;
  apply::RecordId id = 0;
  a = r.run([&](Actions& x) { r.m.on_resync_extent(h, id, x); });
  CHECK(a.submit.empty());  // not before "inconsistent" is durable
  a = r.committed();
  CHECK_FALSE(a.resync_state);  // answered already
  REQUIRE(a.plan_reply);
  CHECK(a.plan_reply->verdict == proto::PlanVerdict::in_place_unbootable);
  CHECK(a.plan_reply->cursor_bytes == 0);
  REQUIRE(a.submit.size() == 1);
  CHECK_FALSE(a.submit[0].to_stage);
}

TEST_CASE("a clone with no whole generation answers a plan with in place, whatever its size") {
  PlanRig r(fresh_state());
  r.begin();
  Actions a = r.plan(kData, 100, 0, {1, 0});
  CHECK(a.fail.empty());
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.state == proto::CloneState::inconsistent);
  a = r.committed();
  CHECK_FALSE(a.resync_state);  // the begin was answered before the plan: once is all
  REQUIRE(a.plan_reply);
  CHECK(a.plan_reply->verdict == proto::PlanVerdict::in_place);
}

TEST_CASE("a resumed staged resync counts what its stage holds already") {
  apply::ReplicaState s = consistent_gen1();
  s.resync = {2, 10, 3, 8192, 4096, 0};
  s.stage = {apply::StagePhase::staging, 5000, 8192, 0};
  PlanRig r(s);
  Actions a = r.begin();
  REQUIRE(a.resync_state);
  CHECK(a.resync_state->resumed);
  CHECK(a.resync_state->cursor_bytes == 8192);
  CHECK_FALSE(a.stage_open);
  SUBCASE("it fits") {
    a = r.plan(4096, 1, 0, {5000 + 4096 + 72, 4096 + 72});
    REQUIRE(a.plan_reply);
    CHECK(a.plan_reply->verdict == proto::PlanVerdict::staged);
    CHECK(a.plan_reply->needed_bytes == 5000 + 4096 + 72);
    CHECK(a.plan_reply->cursor_bytes == 8192);
    REQUIRE(a.stage_open);
    CHECK_FALSE(a.stage_open->create);
    CHECK(a.stage_open->durable_bytes == 5000);
  }
  SUBCASE("it does not: the staged resync stays as it was") {
    a = r.plan(4096, 1, 0, {5000 + 4096, 1ull << 30});
    REQUIRE(a.plan_reply);
    CHECK(a.plan_reply->verdict == proto::PlanVerdict::refused);
    CHECK(a.fail.size() == 1);
    CHECK(a.commits.empty());
    CHECK(r.m.replica().stage.durable_bytes == 5000);
  }
  SUBCASE("it does not, in place allowed: the in-place resync starts over at byte 0") {
    a = r.plan(4096, 1, proto::kPlanInPlaceUnbootable, {5000, 1ull << 30});
    REQUIRE(a.commits.size() == 1);
    CHECK(a.commits[0].state.resync.cursor_bytes == 0);
    CHECK(a.commits[0].state.state == proto::CloneState::inconsistent);
    CHECK_FALSE(a.plan_reply);
    CHECK_FALSE(a.stage_drop);
    a = r.committed();
    REQUIRE(a.plan_reply);
    CHECK(a.plan_reply->verdict == proto::PlanVerdict::in_place_unbootable);
    CHECK(a.plan_reply->cursor_bytes == 0);
    CHECK(a.stage_drop);  // the replaced stage goes once the state without it is committed
  }
}

TEST_CASE("a new target over a staged resync left behind: its stage file's space is free to the new stage") {
  apply::ReplicaState s = consistent_gen1();
  s.resync = {2, 10, 3, 8192, 4096, 0};
  s.stage = {apply::StagePhase::staging, 5000, 8192, 0};
  PlanRig r(s);
  const proto::ResyncBegin moved_on{2, 20, 5, 4096, proto::kResyncPlanFollows};  // the original's log went on
  Actions a = r.begin(moved_on);
  REQUIRE(a.resync_state);
  CHECK_FALSE(a.resync_state->resumed);
  // The stick: kNeeded - 1 free beside the old stage's 1 MiB file, which the new one truncates.
  SUBCASE("the old file's space counts") {
    a = r.plan(kData, 100, 0, {8ull << 30, kNeeded - 1, 1 << 20});
    CHECK(a.fail.empty());
    REQUIRE(a.stage_open);
    CHECK(a.stage_open->create);
    a = r.committed();
    REQUIRE(a.plan_reply);
    CHECK(a.plan_reply->verdict == proto::PlanVerdict::staged);
    CHECK(a.plan_reply->free_bytes == kNeeded - 1 + (1 << 20));
    CHECK(r.m.replica().resync.target_seq == 20);
  }
  SUBCASE("not for a resume: the stage it continues stays") {
    PlanRig again(s);
    a = again.begin();
    REQUIRE(a.resync_state);
    CHECK(a.resync_state->resumed);
    a = again.plan(4096, 1, 0, {8ull << 30, 4096 + 72 - 1, 1 << 20});
    REQUIRE(a.plan_reply);
    CHECK(a.plan_reply->verdict == proto::PlanVerdict::refused);
    CHECK(a.plan_reply->free_bytes == 4096 + 72 - 1);
  }
}

TEST_CASE("a plan without a begin that announced one is a protocol error") {
  PlanRig r;
  Actions a = r.plan(0, 0, 0, {1, 1});
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::protocol);
  r.begin(proto::ResyncBegin{2, 10, 3, 4096, 0});
  r.committed();
  a = r.plan(0, 0, 0, {1, 1});
  REQUIRE(a.fail.size() == 1);
}

// Found in review: after a begin with a plan for a resync the clone already
// held whole, a mark or an end before the plan was taken (the end answered
// done), and the plan that followed then resumed by a flag left from an
// earlier session: an in-place resync with none in the state, on a clone the
// store called consistent.
TEST_CASE("a mark or an end before the announced plan is a protocol error, the resync already whole too") {
  apply::ReplicaState holds = consistent_gen1();
  holds.generation = 2;
  holds.committed_seq = holds.reserved_seq = 10;
  holds.committed_epoch = 3;
  for (const bool end : {false, true}) {
    CAPTURE(end);
    PlanRig r(holds);
    Actions a = r.begin();
    REQUIRE(a.resync_state);  // answered as done: it holds generation 2 at record 10
    CHECK(a.resync_state->resumed);
    a = r.run([&](Actions& x) {
      if (end)
        r.m.on_resync_end(10, x);
      else
        r.m.on_resync_mark(4096, x);
    });
    REQUIRE(a.fail.size() == 1);
    CHECK(a.fail[0].code == proto::ErrorCode::protocol);
    CHECK(a.fail[0].message.find("before the resync_plan") != std::string::npos);
    CHECK_FALSE(a.resync_done);
    CHECK(a.resync_mark_acks.empty());
  }
}

// Found in review: a stage's open that failed after a plan had replaced its
// staged resync by one in place set stage_failed_, which stopped the
// in-place resync's writes and marks until its session ended.
TEST_CASE("a stage open that fails after a plan replaced the staged resync in place stops nothing") {
  PlanRig r;
  r.begin();
  REQUIRE(r.plan(kData, 100, 0, {kNeeded, 1ull << 30}).stage_open);  // staged; the open is under way
  if (!r.last.commits.empty()) r.committed();
  r.run([&](Actions& a) { r.m.end_session(a); });
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  Actions a = r.begin();  // the same resync, resumed: the plan follows
  REQUIRE(a.fail.empty());
  a = r.plan(kData, 100, proto::kPlanInPlaceUnbootable, {kNeeded - 1, 1ull << 30});  // no longer fits
  REQUIRE(a.fail.empty());
  CHECK_FALSE(r.m.replica().stage.active());
  for (int i = 0; i < 4 && !r.last.commits.empty(); ++i) r.committed();
  a = r.run([&](Actions& x) { r.m.on_stage_opened(base::Status::error(EIO, "the stick went away."), x); });
  CHECK(a.fail.empty());  // not this resync's stage
  apply::RecordId id = 0;
  a = r.run([&](Actions& x) { r.m.on_resync_extent(resync_data(0), id, x); });
  REQUIRE(a.submit.size() == 1);  // in place, going on
  CHECK_FALSE(a.submit[0].to_stage);
}
