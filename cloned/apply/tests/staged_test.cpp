// SPDX-License-Identifier: MIT
// The apply machine's staged resync (staged.cpp), driven without sockets,
// disks or sticks: the phases, what is durable before what, and what a
// failing stick or a restart in each phase leads to.
#include <doctest/doctest.h>

#include <cerrno>

#include "cloned/apply/tests/rig.h"

using namespace apply_test;

namespace {

constexpr apply::Limits kStaged{.stage_resync = true};

const proto::ResyncBegin kBegin2{2, 10, 3, 4096, 0};

struct StagedRig : Rig {
  explicit StagedRig(apply::ReplicaState s = consistent_gen1(), apply::Limits l = kStaged) : Rig(s, l) {}
  Actions begin(const proto::ResyncBegin& b = kBegin2) {
    return run([&](Actions& a) { m.on_resync_begin(b, a); });
  }
  Actions extent(const proto::RecordHeader& h, apply::RecordId* id = nullptr) {
    return run([&](Actions& a) {
      apply::RecordId got = 0;
      m.on_resync_extent(h, got, a);
      if (id) *id = got;
    });
  }
  Actions mark(uint64_t cursor) {
    return run([&](Actions& a) { m.on_resync_mark(cursor, a); });
  }
  Actions end(uint64_t at) {
    return run([&](Actions& a) { m.on_resync_end(at, a); });
  }
  Actions synced(uint64_t durable, uint64_t disk, base::Status s = base::Status::ok()) {
    return run([&](Actions& a) { m.on_stage_synced(s, durable, disk, a); });
  }
  // `disk`: the disk failed (else the stick, when s is an error).
  Actions applied(base::Status s = base::Status::ok(), bool disk = false) {
    return run([&](Actions& a) { m.on_stage_applied(s, disk, a); });
  }
  void open_maintenance() {
    REQUIRE(hello(maintenance_hello(2)).hello_reply);
    if (!last.commits.empty()) committed();
  }
  // Begins staging generation 2 and completes the "staging" commit.
  void begin_staged() {
    open_maintenance();
    Actions a = begin();
    REQUIRE(a.fail.empty());
    REQUIRE(a.stage_open);
    CHECK(a.stage_open->create);
    CHECK(a.stage_open->generation == 2);
    CHECK(a.stage_open->base_generation == 1);
    REQUIRE(a.commits.size() == 1);
    CHECK(a.commits[0].state.stage.phase == apply::StagePhase::staging);
    CHECK_FALSE(a.resync_state);  // not before "staging" is durable
    a = committed();
    REQUIRE(a.resync_state);
    CHECK(a.resync_state->cursor_bytes == 0);
  }
  // Stages one extent, ends the resync and commits "applying": the copy to
  // the disk is asked for.
  void reach_apply() {
    begin_staged();
    stage_and_mark(0, 1000);
    end(10);
    synced(1000, 4096);
    REQUIRE(committed().stage_apply);
  }
  // Stages one extent at `off` and sends a mark after it; returns the
  // write's completion, which asks for the stage's sync.
  Actions stage_then_mark(uint64_t off) {
    apply::RecordId id = 0;
    extent(resync_data(off), &id);
    mark(off + 4096);
    return io_done(id);
  }
  // Stages one extent at `off` and acknowledges a mark after it.
  void stage_and_mark(uint64_t off, uint64_t durable_bytes) {
    apply::RecordId id = 0;
    Actions a = extent(resync_data(off), &id);
    REQUIRE(a.submit.size() == 1);
    CHECK(a.submit[0].to_stage);
    mark(off + 4096);
    a = io_done(id);
    CHECK(a.stage_sync);
    CHECK_FALSE(a.flush);
    a = synced(durable_bytes, off + 4096);
    REQUIRE(a.commits.size() == 1);
    CHECK(a.commits[0].state.resync.cursor_bytes == off + 4096);
    CHECK(a.commits[0].state.stage.durable_bytes == durable_bytes);
    CHECK(a.resync_mark_acks.empty());  // not before the cursor is committed
    a = committed();
    REQUIRE(a.resync_mark_acks.size() == 1);
  }
};

}  // namespace

TEST_CASE("a staged resync keeps generation 1 whole until the end, applies, then commits generation 2") {
  StagedRig r;
  r.begin_staged();
  CHECK(r.m.replica().state == proto::CloneState::consistent);
  CHECK(r.m.replica().generation == 1);
  r.stage_and_mark(0, 1000);
  r.stage_and_mark(8192, 2000);
  CHECK(r.m.replica().state == proto::CloneState::consistent);  // bootable the whole transfer

  Actions a = r.end(10);
  CHECK(a.stage_sync);
  a = r.synced(2000, 8192);
  REQUIRE(a.commits.size() == 1);
  const apply::ReplicaState& applying = a.commits[0].state;
  CHECK(applying.stage.phase == apply::StagePhase::applying);
  CHECK(applying.state == proto::CloneState::inconsistent);  // before the first disk write
  CHECK(applying.state_reason.find("finishes without the original") != std::string::npos);
  CHECK(applying.generation == 1);
  CHECK_FALSE(a.stage_apply);  // not before "applying" is durable
  a = r.committed();
  CHECK(a.stage_apply);
  CHECK_FALSE(a.resync_done);

  a = r.applied();
  REQUIRE(a.commits.size() == 1);
  const apply::ReplicaState& done = a.commits[0].state;
  CHECK(done.generation == 2);
  CHECK(done.committed_seq == 10);
  CHECK(done.committed_epoch == 3);
  CHECK(done.state == proto::CloneState::consistent);
  CHECK_FALSE(done.resync.active());
  CHECK_FALSE(done.stage.active());
  CHECK_FALSE(a.stage_remove);  // not before generation 2 is durable
  a = r.committed();
  REQUIRE(a.resync_done);
  CHECK(a.resync_done->generation == 2);
  CHECK(a.resync_done->seq == 10);
  CHECK(a.stage_remove);
  CHECK(a.clear_out_of_sync);
  CHECK_FALSE(r.m.resync_running());
}

// A second end while the stage is copied would be taken for an in-place
// resync's (staging() is false then) and clear the resync the copy's end
// still needs; data would go to the disk under the copy.
TEST_CASE("nothing of a staged resync is taken after its end, while 'applying' commits or the copy runs") {
  for (const bool copying : {false, true}) {
    CAPTURE(copying);
    for (const int what : {0, 1, 2}) {  // resync_data, resync_mark, resync_end
      CAPTURE(what);
      StagedRig r;
      r.begin_staged();
      r.stage_and_mark(0, 1000);
      r.end(10);
      REQUIRE(r.synced(1000, 4096).commits.size() == 1);  // "applying", in flight
      if (copying) REQUIRE(r.committed().stage_apply);
      Actions a;
      if (what == 0) a = r.extent(resync_data(8192));
      if (what == 1) a = r.mark(65536);
      if (what == 2) a = r.end(10);
      REQUIRE(a.fail.size() == 1);
      CHECK(a.fail[0].code == proto::ErrorCode::protocol);
      CHECK(a.submit.empty());
      CHECK_FALSE(a.flush);
      CHECK_FALSE(a.stage_sync);
      CHECK(r.m.replica().resync.active());  // the copy's end still has its resync
      if (!copying) continue;
      a = r.applied();  // the copy finishes: generation 2 at the target, as without the second end
      REQUIRE(a.commits.size() == 1);
      CHECK(a.commits[0].state.generation == 2);
      CHECK(a.commits[0].state.committed_seq == 10);
    }
  }
}

TEST_CASE("a log session that opens while generation 2's commit is in flight writes nothing before it") {
  StagedRig r;
  r.reach_apply();
  Actions a = r.applied();
  REQUIRE(a.commits.size() == 1);  // generation 2, no stage: in flight
  r.run([&](Actions& x) { r.m.end_session(x); });
  proto::Hello h = original_hello(11, 20);
  h.generation = 2;
  h.applied_seq = 10;
  h.applied_epoch = 3;
  REQUIRE(r.hello(h).hello_reply);
  apply::RecordId id = 0;
  a = r.send(rec(MsgType::write, 11, 4), &id);
  REQUIRE(a.fail.empty());
  CHECK(a.submit.empty());  // the store still says "applying": a restart would copy the stage over it
  a = r.committed();
  REQUIRE(a.submit.size() == 1);
  CHECK(a.submit[0].id == id);
}

TEST_CASE("while staging, log records are refused: they belong on top of a generation the disk does not hold yet") {
  StagedRig r;
  r.begin_staged();
  Actions a = r.send(rec(MsgType::write, 11, 4));
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::resync_needed);
  CHECK(a.fail[0].message.find("staging the resync of generation 2") != std::string::npos);
  CHECK(a.submit.empty());
}

TEST_CASE("a first full copy goes in place even with staging on") {
  SUBCASE("no whole generation yet") {
    StagedRig r(fresh_state());
    r.open_maintenance();
    Actions a = r.begin();
    CHECK_FALSE(a.stage_open);
    r.committed();
    CHECK(r.m.replica().state == proto::CloneState::inconsistent);
    a = r.extent(resync_data(0));
    REQUIRE(a.submit.size() == 1);
    CHECK_FALSE(a.submit[0].to_stage);
  }
  SUBCASE("staging off") {
    StagedRig r(consistent_gen1(), apply::Limits{});
    r.open_maintenance();
    CHECK_FALSE(r.begin().stage_open);
  }
}

TEST_CASE("after an unclean stop a consistent clone's resync is staged too: its disk, a crash state, stays whole") {
  apply::ReplicaState saved = consistent_gen1();
  saved.reserved_seq = saved.committed_seq + 1000;  // records past the commit may be on the disk
  SUBCASE("a first resync") {
    StagedRig r(saved);
    r.begin_staged();
    r.stage_and_mark(0, 1000);
    CHECK(r.m.replica().state == proto::CloneState::consistent);
  }
  SUBCASE("the power went while staging, and the original comes back with another target") {
    saved.resync = {2, 10, 3, 0, 4096, 0};
    saved.stage = {apply::StagePhase::staging, 1000, 4096, 0};
    StagedRig r(saved);
    r.open_maintenance();
    Actions a = r.begin({2, 12, 4, 4096, 0});
    REQUIRE(a.fail.empty());
    REQUIRE(a.stage_open);
    CHECK(a.stage_open->create);  // a new stage: the old one's extents were for another target
    REQUIRE(a.commits.size() == 1);
    CHECK(a.commits[0].state.stage.phase == apply::StagePhase::staging);
    CHECK(a.commits[0].state.state == proto::CloneState::consistent);
    r.committed();
    a = r.extent(resync_data(0));
    REQUIRE(a.submit.size() == 1);
    CHECK(a.submit[0].to_stage);  // in place would have written the disk: unbootable until the end
  }
}

TEST_CASE("a stick that fails an append stops the resync with a sentence, and no later mark is synced or acked") {
  StagedRig r;
  r.begin_staged();
  r.stage_and_mark(0, 1000);
  apply::RecordId id = 0;
  r.extent(resync_data(4096), &id);
  r.mark(8192);
  Actions a = r.io_done(id, base::Status::error(28, "the stage file: write failed: No space left on device"));
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::stage_full);
  CHECK(a.fail[0].message.find("No space left") != std::string::npos);
  CHECK(a.fail[0].message.find("still holds generation 1, whole and bootable") != std::string::npos);
  CHECK_FALSE(a.stage_sync);
  CHECK(a.disk_failed.empty());  // the disk is fine: only the stick failed
  CHECK(r.m.replica().state == proto::CloneState::consistent);
  CHECK(r.m.replica().resync.cursor_bytes == 4096);
}

// Found in review: a stage append that fails after its session ended left the
// failure set into the next session, whose extents then never went out.
TEST_CASE("a stage failure after its session ended does not hold up the next session's resync") {
  StagedRig r;
  r.begin_staged();
  r.stage_and_mark(0, 1000);
  apply::RecordId id = 0;
  REQUIRE(r.extent(resync_data(4096), &id).submit.size() == 1);
  r.run([&](Actions& a) { r.m.end_session(a); });
  r.io_done(id, base::Status::error(EIO, "the stick went away."));
  if (!r.last.commits.empty()) r.committed();
  r.open_maintenance();
  Actions a = r.begin();
  REQUIRE(a.fail.empty());
  REQUIRE(a.resync_state);
  CHECK(a.resync_state->cursor_bytes == 4096);
  a = r.extent(resync_data(4096), &id);
  REQUIRE(a.submit.size() == 1);
  CHECK(a.submit[0].to_stage);
}

TEST_CASE("a failed stage sync acks no mark; the durable cursor stays") {
  StagedRig r;
  r.begin_staged();
  r.stage_then_mark(0);
  Actions a = r.synced(0, 0, base::Status::error(5, "cannot sync the stage file: Input/output error"));
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::disk_io);  // a stick's EIO may pass: retried
  CHECK(a.resync_mark_acks.empty());
  CHECK(a.commits.empty());
  CHECK(r.m.replica().resync.cursor_bytes == 0);
}

TEST_CASE("after a restart while staging, the same begin resumes staging at the durable cursor and stage length") {
  apply::ReplicaState saved = consistent_gen1();
  saved.resync = {2, 10, 3, 4096, 4096, 0};
  saved.stage = {apply::StagePhase::staging, 1000, 4096, 0};
  StagedRig r(saved);
  r.open_maintenance();
  Actions a = r.begin();
  REQUIRE(a.fail.empty());
  REQUIRE(a.stage_open);
  CHECK_FALSE(a.stage_open->create);
  CHECK(a.stage_open->durable_bytes == 1000);
  REQUIRE(a.resync_state);
  CHECK(a.resync_state->resumed);
  CHECK(a.resync_state->cursor_bytes == 4096);
  r.stage_and_mark(4096, 2000);
}

TEST_CASE(
    "a stage that cannot be opened while staging is forgotten: the next begin starts afresh, the disk is generation "
    "1") {
  apply::ReplicaState saved = consistent_gen1();
  saved.resync = {2, 10, 3, 4096, 4096, 0};
  saved.stage = {apply::StagePhase::staging, 1000, 4096, 0};
  StagedRig r(saved);
  r.open_maintenance();
  r.begin();
  Actions a = r.run([&](Actions& x) { r.m.on_stage_opened(base::Status::error(2, "no such file"), x); });
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].message.find("starts again from the beginning") != std::string::npos);
  REQUIRE(a.commits.size() == 1);
  CHECK_FALSE(a.commits[0].state.resync.active());
  CHECK_FALSE(a.commits[0].state.stage.active());
  CHECK(a.commits[0].state.state == proto::CloneState::consistent);
  CHECK(a.commits[0].state.generation == 1);
}

TEST_CASE("a failed open of a stage a new begin replaced fails nothing: the worker's stage is the new one's") {
  StagedRig r;
  r.begin_staged();  // its open is still with the worker
  Actions a;
  r.m.end_session(a);
  r.open_maintenance();
  a = r.begin({2, 12, 4, 4096, 0});  // another target: a new stage
  REQUIRE(a.fail.empty());
  REQUIRE(a.stage_open);
  CHECK(a.stage_open->create);
  r.committed();
  // The first open fails; the second, queued behind it, is still to come.
  bool counted = true;
  a = r.run([&](Actions& x) { counted = r.m.on_stage_opened(base::Status::error(EIO, "the stick went away."), x); });
  CHECK_FALSE(counted);  // the daemon says it changes nothing
  CHECK(a.fail.empty());
  CHECK(a.commits.empty());
  CHECK(r.m.staging());
  CHECK(r.m.replica().resync.generation == 2);
  SUBCASE("the second opens, and the resync stages") {
    a = r.run([&](Actions& x) { r.m.on_stage_opened(base::Status::ok(), x); });
    CHECK(a.fail.empty());
    a = r.extent(resync_data(0));
    REQUIRE(a.submit.size() == 1);
    CHECK(a.submit[0].to_stage);
  }
  SUBCASE("the second fails too: that one is the stage in use") {
    a = r.run([&](Actions& x) { counted = r.m.on_stage_opened(base::Status::error(EIO, "the stick went away."), x); });
    CHECK(counted);
    REQUIRE(a.fail.size() == 1);
    CHECK(a.fail[0].message.find("generation 2") != std::string::npos);
    CHECK_FALSE(r.m.staging());
  }
}

TEST_CASE("a staged resync interrupted before the clone was Diverged starts again with an empty stage") {
  apply::ReplicaState saved = consistent_gen1();
  saved.resync = {2, 10, 3, 4096, 4096, 0};
  saved.stage = {apply::StagePhase::staging, 1000, 4096, 0};
  StagedRig r(saved);
  r.run([&](Actions& a) { r.m.mark_diverged("the root file system changed", a); });
  r.committed();
  CHECK(r.m.replica().resync.cursor_bytes == 0);
  CHECK(r.m.replica().stage.durable_bytes == 0);
  CHECK(r.m.replica().stage.phase == apply::StagePhase::staging);
  r.run([&](Actions& a) { REQUIRE(r.m.apply_decision(apply::Decision::discard_clone_changes, "test", 0, a).is_ok()); });
  r.committed();
  StagedRig again(r.m.replica());
  again.open_maintenance();
  Actions a = again.begin();
  REQUIRE(a.fail.empty());
  REQUIRE(a.stage_open);
  CHECK(a.stage_open->create);  // the stage is made afresh
  REQUIRE(a.resync_state);
  CHECK(a.resync_state->cursor_bytes == 0);
}

TEST_CASE("a start that finds 'applying' finishes the copy without any original, and refuses sessions meanwhile") {
  apply::ReplicaState saved = consistent_gen1();
  saved.resync = {2, 10, 3, 4096, 1 << 20, 0};
  saved.stage = {apply::StagePhase::applying, 3000, 8192, 10};
  saved.state = proto::CloneState::inconsistent;
  // A fingerprint the store calls valid (a clean stop's, taken of the disk
  // part-way through the copy, as an older cloned did): the copy makes it stale.
  saved.fingerprint = {1, 2, 3};
  saved.fingerprint_valid = true;
  StagedRig r(saved);
  Actions a = r.run([&](Actions& x) { r.m.resume_staged_apply(x); });
  REQUIRE(a.stage_open);
  CHECK_FALSE(a.stage_open->create);
  CHECK(a.stage_open->durable_bytes == 3000);
  CHECK(a.stage_apply);
  CHECK_FALSE(r.m.quiet());

  a = r.hello(original_hello());
  CHECK_FALSE(a.hello_reply);
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::busy);
  r.m.end_session(a);
  r.open_maintenance();  // a maintenance session opens, but its resync waits
  a = r.begin();
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::busy);
  CHECK(a.fail[0].message.find("finishes without the original") != std::string::npos);
  r.m.end_session(a);
  a = r.applied();
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.generation == 2);
  CHECK(a.commits[0].state.state == proto::CloneState::consistent);
  CHECK_FALSE(a.commits[0].state.fingerprint_valid);  // taken afresh once quiet (DivergenceGuard)
  a = r.committed();
  CHECK(a.stage_remove);
  CHECK_FALSE(a.resync_done);  // no session asked
}

TEST_CASE("an original that reconnects while its staged resync's end finishes is told busy, then that it is done") {
  StagedRig r;
  r.begin_staged();
  r.stage_and_mark(0, 1000);
  r.end(10);
  REQUIRE(r.synced(1000, 4096).commits.size() == 1);  // "applying"
  Actions a = r.committed();
  REQUIRE(a.stage_apply);
  r.run([&](Actions& x) { r.m.end_session(x); });  // the connection drops during the copy

  r.open_maintenance();
  a = r.begin();  // the original's retry
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::busy);  // retried, not final
  r.run([&](Actions& x) { r.m.end_session(x); });

  REQUIRE(r.applied().commits.size() == 1);  // generation 2, its commit in flight
  r.open_maintenance();
  a = r.begin();
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::busy);
  CHECK(a.fail[0].message.find("committing the end") != std::string::npos);
  r.run([&](Actions& x) { r.m.end_session(x); });

  // A new session is open when that commit completes (CI, stop 25): it has
  // not asked about the resync, so it is told nothing; the original of
  // that session would take an unasked resync_done for a broken protocol.
  r.open_maintenance();
  a = r.committed();
  CHECK(a.stage_remove);
  CHECK_FALSE(a.resync_done);
  CHECK(a.resync_mark_acks.empty());
  CHECK_FALSE(a.resync_state);
  CHECK(a.fail.empty());
  a = r.begin();
  REQUIRE(a.fail.empty());
  REQUIRE(a.resync_state);  // the resync it already holds: answered as done
  CHECK(a.resync_state->cursor_bytes == a.resync_state->total_bytes);
  a = r.end(10);
  REQUIRE(a.resync_done);
  CHECK(a.resync_done->generation == 2);
}

TEST_CASE("a disk that fails during the apply is a disk failure, and 'applying' stays for the next start") {
  apply::ReplicaState saved = consistent_gen1();
  saved.resync = {2, 10, 3, 4096, 1 << 20, 0};
  saved.stage = {apply::StagePhase::applying, 3000, 8192, 10};
  StagedRig r(saved);
  r.run([&](Actions& x) { r.m.resume_staged_apply(x); });
  Actions a = r.applied(base::Status::error(5, "write failed"), true);
  REQUIRE(a.disk_failed.size() == 1);
  CHECK(a.disk_failed[0].message.find("next start finishes the copy") != std::string::npos);
  CHECK(r.m.replica().stage.phase == apply::StagePhase::applying);
}

namespace {

// A store that says "applying", resumed at start (the copy's actions out).
StagedRig resumed_applying() {
  apply::ReplicaState saved = consistent_gen1();
  saved.resync = {2, 10, 3, 4096, 1 << 20, 0};
  saved.stage = {apply::StagePhase::applying, 3000, 8192, 10};
  saved.state = proto::CloneState::inconsistent;
  return StagedRig(saved);
}

}  // namespace

TEST_CASE("a stick that fails to give the stage while applying is tried again after a wait, and the copy finishes") {
  StagedRig r = resumed_applying();
  Actions a = r.run([&](Actions& x) { r.m.resume_staged_apply(x); });
  REQUIRE(a.stage_open);
  REQUIRE(a.stage_apply);
  // The open fails with an error that may pass; the apply job queued behind
  // it comes back failed too, and is the old try's.
  a = r.run([&](Actions& x) { r.m.on_stage_opened(base::Status::error(EIO, "the stick went away."), x); });
  CHECK(a.commits.empty());  // nothing given up
  CHECK(a.fail.empty());
  CHECK(r.m.stage_retry_wait_ms() == 1000);
  CHECK(r.m.stage_next_try() == 2);
  CHECK(r.m.applying_stage());
  // The old apply job has not come back: no new try, however late.
  CHECK_FALSE(r.tick(50'000).stage_open);
  CHECK_FALSE(r.tick(50'999).stage_open);
  CHECK_FALSE(r.tick(60'000).stage_open);
  a = r.applied(base::Status::error(EIO, "no stage is open to apply."));
  CHECK(a.commits.empty());
  a = r.tick(60'500);  // the wait (1 s from the first tick, at 50 s) is over
  REQUIRE(a.stage_open);
  CHECK_FALSE(a.stage_open->create);
  CHECK(a.stage_open->durable_bytes == 3000);
  CHECK(a.stage_apply);
  // Sessions are still refused meanwhile.
  a = r.hello(original_hello());
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::busy);
  r.m.end_session(a);
  a = r.applied();
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.generation == 2);
  CHECK(a.commits[0].state.state == proto::CloneState::consistent);
  CHECK_FALSE(a.commits[0].state.needs_resync);
  CHECK(r.m.stage_retry_wait_ms() == 0);
}

TEST_CASE("a stick that keeps failing while applying is given up after five tries: a resync is needed") {
  StagedRig r = resumed_applying();
  r.run([&](Actions& x) { r.m.resume_staged_apply(x); });
  uint64_t now = 1000;
  Actions a;
  for (unsigned t = 1; t <= 5; ++t) {
    CAPTURE(t);
    // This time the open works and the stick fails a read during the copy.
    a = r.applied(base::Status::error(EIO, "read error on the stick"), false);
    if (t == 5) break;
    CHECK(a.commits.empty());
    CHECK(r.m.stage_next_try() == t + 1);
    const uint64_t wait = r.m.stage_retry_wait_ms();
    CHECK(wait >= 1000);
    r.tick(now);
    CHECK_FALSE(r.tick(now + wait - 1).stage_apply);
    now += wait;
    a = r.tick(now);
    REQUIRE(a.stage_apply);
  }
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.needs_resync);
  CHECK(a.commits[0].state.state == proto::CloneState::inconsistent);
  CHECK_FALSE(a.commits[0].state.stage.active());
  CHECK(a.commits[0].state.state_reason.find("could not be read from the stick after 5 tries (") != std::string::npos);
  CHECK(a.commits[0].state.state_reason.find("read error on the stick") != std::string::npos);
  CHECK(now - 1000 >= 150'000);  // minutes of tries, not seconds
  r.committed();
  CHECK_FALSE(r.tick(now + 1'000'000).stage_apply);
}

TEST_CASE("a commit that completes while a stage's retry waits starts no copy: the retry reopens the stage") {
  StagedRig r = resumed_applying();
  r.run([&](Actions& x) { r.m.resume_staged_apply(x); });
  r.run([&](Actions& x) { r.m.on_stage_opened(base::Status::error(EIO, "the stick went away."), x); });
  REQUIRE(r.m.stage_retry_wait_ms() == 1000);
  // A maintenance session opens meanwhile (only its log and resync are
  // refused), and its start commits.
  Actions a = r.hello(maintenance_hello(2));
  REQUIRE(a.hello_reply);
  REQUIRE(a.commits.size() == 1);
  a = r.committed();
  CHECK_FALSE(a.stage_apply);
  CHECK_FALSE(a.stage_open);
  // The failed try's job comes back after: still the old try's, no new count.
  a = r.applied(base::Status::error(EIO, "the stick went away."));
  CHECK(a.commits.empty());
  CHECK(r.m.stage_next_try() == 2);
  r.tick(10'000);
  a = r.tick(11'000);
  REQUIRE(a.stage_open);  // the retry opens the stage afresh, then copies
  CHECK(a.stage_apply);
  r.m.end_session(a);
  a = r.applied();
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.generation == 2);
}

TEST_CASE("a shutdown asked while the copy runs goes on when the stick fails it: no wait for the retry") {
  StagedRig r = resumed_applying();
  r.run([&](Actions& x) { r.m.resume_staged_apply(x); });
  Actions a = r.run([&](Actions& x) { r.m.begin_shutdown(x); });
  CHECK(a.commits.empty());  // the copy is bounded and local: it finishes first
  a = r.applied(base::Status::error(EIO, "read error on the stick"), false);
  REQUIRE(a.commits.size() == 1);  // the final commit, at once
  CHECK(a.commits[0].state.stage.phase == apply::StagePhase::applying);
  r.committed();
  CHECK(r.m.done_for_shutdown());
}

TEST_CASE("a stage that is gone or is another generation's is given up at once while applying") {
  for (const int code : {ENOENT, EINVAL}) {
    CAPTURE(code);
    StagedRig r = resumed_applying();
    r.run([&](Actions& x) { r.m.resume_staged_apply(x); });
    Actions a = r.run([&](Actions& x) { r.m.on_stage_opened(base::Status::error(code, "lost"), x); });
    REQUIRE(a.commits.size() == 1);
    CHECK(a.commits[0].state.needs_resync);
    CHECK(r.m.stage_retry_wait_ms() == 0);
  }
}

TEST_CASE("a stage's retry waits for no shutdown: the next start tries again") {
  StagedRig r = resumed_applying();
  r.run([&](Actions& x) { r.m.resume_staged_apply(x); });
  r.applied(base::Status::error(EIO, "read error on the stick"), false);
  REQUIRE(r.m.stage_retry_wait_ms() > 0);
  Actions a = r.run([&](Actions& x) { r.m.begin_shutdown(x); });
  REQUIRE(a.commits.size() == 1);  // the final commit: still "applying"
  CHECK(a.commits[0].state.stage.phase == apply::StagePhase::applying);
  r.committed();
  CHECK(r.m.done_for_shutdown());
  CHECK_FALSE(r.tick(1'000'000).stage_apply);
}

TEST_CASE("a new resync that goes in place replaces a staged one: nothing of it goes to the stage, the stage goes") {
  apply::ReplicaState saved = consistent_gen1();
  saved.resync = {2, 10, 3, 4096, 4096, 0};
  saved.stage = {apply::StagePhase::staging, 1000, 4096, 0};
  StagedRig r(saved, apply::Limits{});  // staging turned off since
  r.open_maintenance();
  Actions a = r.begin({3, 10, 3, 4096, 0});
  REQUIRE(a.fail.empty());
  CHECK_FALSE(a.stage_open);
  REQUIRE(a.commits.size() == 1);
  CHECK_FALSE(a.commits[0].state.stage.active());
  CHECK_FALSE(a.stage_drop);  // a crash before the commit resumes the staged resync: its file stays
  a = r.committed();
  CHECK(a.stage_drop);  // the stick's space back now, not at the next start
  CHECK_FALSE(a.stage_remove);
  a = r.extent(resync_data(0));
  REQUIRE(a.submit.size() == 1);
  CHECK_FALSE(a.submit[0].to_stage);
}

TEST_CASE("a begin for the resync the clone already finished (its answer was lost) is answered as done") {
  apply::ReplicaState done = consistent_gen1();
  done.generation = 2;
  done.committed_seq = done.reserved_seq = 10;
  done.committed_epoch = 3;
  StagedRig r(done);
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  if (!r.last.commits.empty()) r.committed();
  Actions a = r.begin();  // {2, 10, 3}: this very resync
  REQUIRE(a.fail.empty());
  REQUIRE(a.resync_state);
  CHECK(a.resync_state->resumed);
  CHECK(a.resync_state->cursor_bytes == kDisk);
  CHECK_FALSE(a.stage_open);
  CHECK(a.commits.empty());
  a = r.mark(kDisk);
  REQUIRE(a.resync_mark_acks.size() == 1);
  a = r.end(10);
  REQUIRE(a.resync_done);
  CHECK(a.resync_done->generation == 2);
  CHECK(a.resync_done->seq == 10);
  CHECK_FALSE(r.m.resync_running());

  StagedRig other(done);  // another target is another resync: refused as before
  REQUIRE(other.hello(maintenance_hello(2)).hello_reply);
  if (!other.last.commits.empty()) other.committed();
  a = other.begin({2, 11, 4, 4096, 0});
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::generation_mismatch);
}

TEST_CASE("a stage that fails its checksum during the apply: inconsistent, a resync is needed, no resync_done") {
  StagedRig r;
  r.reach_apply();
  Actions a = r.applied(base::Status::error(EBADMSG, "the staged entry at byte 64 fails its checksum"));
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::resync_needed);
  CHECK(a.fail[0].message.find("fails its checksum") != std::string::npos);
  CHECK(a.disk_failed.empty());
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.needs_resync);
  CHECK(a.commits[0].state.state == proto::CloneState::inconsistent);
  CHECK_FALSE(a.commits[0].state.stage.active());
  a = r.committed();
  CHECK_FALSE(a.resync_done);
  CHECK_FALSE(a.stage_remove);
}

TEST_CASE("a repair of a consistent clone is staged too: its ranges land together, the generation stays") {
  StagedRig r;
  REQUIRE(r.hello(maintenance_hello(1)).hello_reply);
  if (!r.last.commits.empty()) r.committed();
  Actions a = r.begin({1, 5, 2, 4096, proto::kResyncRepair});
  REQUIRE(a.fail.empty());
  REQUIRE(a.stage_open);
  CHECK(a.stage_open->generation == 1);
  CHECK(a.stage_open->base_generation == 1);
  r.committed();
  CHECK(r.m.replica().state == proto::CloneState::consistent);
  r.stage_and_mark(8192, 500);
  r.end(5);
  r.synced(500, 4096);
  a = r.committed();
  REQUIRE(a.stage_apply);
  a = r.applied();
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.generation == 1);
  CHECK(a.commits[0].state.committed_seq == 5);
  CHECK(a.commits[0].state.state == proto::CloneState::consistent);
  a = r.committed();
  REQUIRE(a.resync_done);
  CHECK(a.clear_out_of_sync);
  CHECK(a.stage_remove);
}

// Found by fuzz/apply: a staged begin set the cursor to 0 but kept the marks
// of the resync it replaced that were synced behind a commit in flight.
// Every commit then asked for another, and the new resync's session got acks
// of marks it never sent, twice for one cursor.
TEST_CASE("a synced mark of a staged resync replaced by another is dropped: no ack of the replaced one's marks") {
  StagedRig r;
  r.begin_staged();
  r.stage_then_mark(0);
  REQUIRE(r.synced(1000, 4096).commits.size() == 1);  // in flight: cursor 4096
  r.stage_then_mark(4096);
  CHECK(r.synced(2000, 8192).commits.empty());  // 8192 waits for the commit in flight
  r.run([&](Actions& a) { r.m.end_session(a); });
  r.open_maintenance();
  Actions a = r.begin({3, 10, 3, 8192, 0});
  REQUIRE(a.fail.empty());
  REQUIRE(a.stage_open);
  int commits = 0;
  for (; commits < 10; ++commits) {
    a = r.committed();
    CHECK(a.resync_mark_acks.empty());
    if (a.commits.empty()) break;
  }
  CHECK(commits <= 2);  // "staging" of generation 3, and nothing after it
  CHECK(r.m.replica().resync.cursor_bytes == 0);
  apply::RecordId id = 0;
  r.extent(resync_data(0, 8192), &id);
  r.mark(8192);
  r.io_done(id);
  REQUIRE(r.synced(900, 8192).commits.size() == 1);
  a = r.committed();
  REQUIRE(a.resync_mark_acks.size() == 1);
  CHECK(a.resync_mark_acks[0] == 8192);
}

// Found in review: Diverged empties a staged resync's stage (its cursor goes
// to 0); a sync in flight from before then wrote the old stage's length back,
// and the next resume reopened the old stage instead of an empty one.
TEST_CASE("a stage sync in flight when Diverged empties the stage does not put its length back") {
  StagedRig r;
  r.begin_staged();
  REQUIRE(r.stage_then_mark(0).stage_sync);  // in flight
  r.run([&](Actions& a) { r.m.mark_diverged("the first MiB changed", a); });
  CHECK(r.m.replica().stage.durable_bytes == 0);
  r.run([&](Actions& a) { r.m.end_session(a); });
  r.synced(1000, 4096);  // the old stage's figures
  CHECK(r.m.replica().stage.durable_bytes == 0);
  CHECK(r.m.replica().stage.staged_disk_bytes == 0);
  CHECK(r.m.replica().resync.cursor_bytes == 0);
  int commits = 0;
  for (Actions a = r.committed(); !a.commits.empty() && commits < 5; a = r.committed()) ++commits;
  CHECK(r.m.replica().stage.durable_bytes == 0);
}
