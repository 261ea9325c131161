// SPDX-License-Identifier: MIT
// The apply machine's resync, repair and Diverged rules, driven without
// sockets or disks.
#include <doctest/doctest.h>

#include "cloned/apply/tests/rig.h"

using namespace apply_test;

namespace {

struct ResyncRig : Rig {
  using Rig::Rig;
  Actions begin(const proto::ResyncBegin& b) {
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
  // Opens a maintenance session and begins generation 2 at record 10 (epoch 3).
  void begin_gen2() {
    REQUIRE(hello(maintenance_hello(2)).hello_reply);
    if (!last.commits.empty()) committed();
    Actions a = begin({2, 10, 3, 4096, 0});
    REQUIRE(a.fail.empty());
    REQUIRE(a.commits.size() == 1);
    CHECK_FALSE(a.resync_state);  // not before the "in progress" mark is durable
    a = committed();
    REQUIRE(a.resync_state);
  }
  // One 4 KiB extent at `offset` written, a mark just past it, and the flush
  // the mark asks for done.
  void block_and_mark(uint64_t offset) {
    apply::RecordId id = 0;
    extent(resync_data(offset), &id);
    io_done(id);
    mark(offset + 4096);
    flushed();
  }
  // begin_gen2, one extent and a mark at 4096 made durable and acknowledged,
  // then the session ends: a resync interrupted at cursor 4096.
  void interrupt_at_4096() {
    begin_gen2();
    block_and_mark(0);
    REQUIRE(committed().resync_mark_acks.size() == 1);
    run([&](Actions& x) { m.end_session(x); });
    REQUIRE(m.replica().resync.cursor_bytes == 4096);
  }
  // begin_gen2, then a mark at 4096 flushed (its commit in flight) and one at
  // 8192 flushed behind it (waiting for that commit), then the session ends.
  void flush_a_mark_behind_a_commit() {
    begin_gen2();
    block_and_mark(0);
    REQUIRE(last.commits.size() == 1);  // in flight: cursor 4096
    block_and_mark(4096);
    CHECK(last.commits.empty());  // 8192 waits for the commit in flight
    run([&](Actions& x) { m.end_session(x); });
  }
  // Completes commits (at most 10) until one asks for no other; how many asked
  // for another. No mark is acked meanwhile.
  int commits_until_quiet() {
    int asked = 0;
    for (int i = 0; i < 10; ++i) {
      Actions a = committed();
      CHECK(a.resync_mark_acks.empty());
      if (a.commits.empty()) break;
      ++asked;
    }
    return asked;
  }
};

}  // namespace

TEST_CASE("an incremental hello of another generation is refused; a maintenance hello opens but takes no records") {
  ResyncRig r;
  Actions a = r.hello(maintenance_hello(2, 1, 1000));
  REQUIRE(a.hello_reply);
  CHECK(a.hello_reply->generation == 1);
  a = r.send(rec(MsgType::write, 1, 1));
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::resync_needed);
  CHECK(a.fail[0].message.find("generation 2") != std::string::npos);
  CHECK(a.submit.empty());

  ResyncRig plain;
  proto::Hello h = original_hello();
  h.generation = 2;
  a = plain.hello(h);
  CHECK_FALSE(a.hello_reply);
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::generation_mismatch);
}

TEST_CASE("a resync: durable mark first, extents, marks acked after flush and commit, end consistent at the target") {
  ResyncRig r;
  r.begin_gen2();
  const apply::ReplicaState& during = r.m.replica();
  CHECK(during.state == proto::CloneState::inconsistent);
  CHECK(during.generation == 2);
  CHECK(during.resync.active());
  CHECK(r.last.resync_state->cursor_bytes == 0);
  CHECK_FALSE(r.last.resync_state->resumed);

  apply::RecordId id1 = 0, id2 = 0;
  Actions a = r.extent(resync_data(0), &id1);
  REQUIRE(a.submit.size() == 1);
  CHECK(a.submit[0].only.empty());
  a = r.extent(resync_data(8192), &id2);
  REQUIRE(a.submit.size() == 1);
  a = r.mark(65536);
  CHECK_FALSE(a.flush);  // the extents before it are not written yet
  a = r.io_done(id1);
  CHECK_FALSE(a.flush);
  a = r.io_done(id2);
  CHECK(a.flush);
  a = r.flushed();
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.resync.cursor_bytes == 65536);
  CHECK(a.resync_mark_acks.empty());  // not before the commit
  a = r.committed();
  REQUIRE(a.resync_mark_acks.size() == 1);
  CHECK(a.resync_mark_acks[0] == 65536);

  a = r.end(10);
  CHECK(a.flush);
  a = r.flushed();
  REQUIRE(a.commits.size() == 1);
  CHECK_FALSE(a.commits[0].state.resync.active());
  CHECK(a.commits[0].state.state == proto::CloneState::consistent);
  CHECK(a.commits[0].state.generation == 2);
  CHECK(a.commits[0].state.committed_seq == 10);
  a = r.committed();
  REQUIRE(a.resync_done);
  CHECK(a.resync_done->generation == 2);
  CHECK(a.resync_done->seq == 10);
  CHECK(a.clear_out_of_sync);
  // The log continues at record 11 of epoch 4.
  a = r.send(rec(MsgType::write, 11, 4));
  CHECK(a.fail.empty());
}

// Once the end is flushed it leaves the marks; its commit makes the clone
// consistent at the target. Until then more of the resync is no less a
// protocol error than while the end waits for its flush.
TEST_CASE("nothing of a resync is taken after its end, while the end waits for its flush or for its commit") {
  for (const bool end_flushed : {false, true}) {
    CAPTURE(end_flushed);
    for (const int what : {0, 1, 2, 3}) {  // resync_data, resync_zero, resync_mark, resync_end
      CAPTURE(what);
      ResyncRig r;
      r.begin_gen2();
      apply::RecordId id = 0;
      r.extent(resync_data(0), &id);
      r.io_done(id);
      REQUIRE(r.end(10).flush);
      if (end_flushed) {
        Actions a = r.flushed();
        REQUIRE(a.commits.size() == 1);  // consistent at the target, in flight
        CHECK_FALSE(a.commits[0].state.resync.active());
      }
      Actions a;
      if (what == 0) a = r.extent(resync_data(8192));
      proto::RecordHeader zero = resync_data(8192);
      zero.type = MsgType::resync_zero;
      if (what == 1) a = r.extent(zero);
      if (what == 2) a = r.mark(65536);
      if (what == 3) a = r.end(10);
      REQUIRE(a.fail.size() == 1);
      CHECK(a.fail[0].code == proto::ErrorCode::protocol);
      CHECK(a.submit.empty());  // nothing written after the end
      CHECK_FALSE(a.flush);
    }
  }
}

TEST_CASE("resync marks waiting for their acknowledgement stop the reading; twice as many are a protocol error") {
  for (const bool peer_ignores_it : {false, true}) {
    CAPTURE(peer_ignores_it);
    ResyncRig r;
    r.begin_gen2();
    apply::RecordId id = 0;
    r.extent(resync_data(0), &id);  // not written yet: no mark can be flushed
    for (size_t i = 0; i < apply::kResyncMarksMax; ++i) REQUIRE(r.mark(4096).fail.empty());
    CHECK_FALSE(r.m.can_accept());  // the daemon stops reading: backpressure, as for data
    if (!peer_ignores_it) {
      // The extent written, the marks flushed and committed: acknowledged, reading again.
      CHECK(r.io_done(id).flush);
      REQUIRE(r.flushed().commits.size() == 1);
      CHECK(r.committed().resync_mark_acks.size() == apply::kResyncMarksMax);
      CHECK(r.m.can_accept());
      continue;
    }
    // A peer that sent on regardless (what one read had already taken in is far less).
    for (size_t i = 0; i < apply::kResyncMarksMax; ++i) REQUIRE(r.mark(4096).fail.empty());
    Actions a = r.mark(4096);
    REQUIRE(a.fail.size() == 1);
    CHECK(a.fail[0].code == proto::ErrorCode::protocol);
    CHECK(a.fail[0].message.find("resync marks wait") != std::string::npos);
  }
}

TEST_CASE("a shutdown during a resync: what the original still sends is neither written nor refused") {
  ResyncRig r;
  r.begin_gen2();
  apply::RecordId id = 0;
  r.extent(resync_data(0), &id);
  Actions a = r.run([&](Actions& x) { r.m.begin_shutdown(x); });
  CHECK(a.fail.empty());
  // In flight when the daemon was told to stop: no protocol error (the
  // original would give up); the session ends with goodbye(shutting_down).
  a = r.extent(resync_data(8192));
  CHECK(a.fail.empty());
  CHECK(a.submit.empty());
  CHECK(r.mark(65536).fail.empty());
  CHECK(r.end(10).fail.empty());
  a = r.begin({2, 10, 3, 4096, 0});
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::shutting_down);
  CHECK(r.m.replica().resync.active());  // resumed by the next run
}

TEST_CASE("resync data never overwrites a range the log wrote after it during the resync") {
  ResyncRig r;
  r.begin_gen2();
  apply::RecordId log_id = 0;
  Actions a = r.send(rec(MsgType::write, 11, 4, 4096, 4096), &log_id);
  REQUIRE(a.fail.empty());
  // Covers [0, 16384): the log's [4096, 8192) must be left out.
  apply::RecordId big = 0;
  a = r.extent(resync_data(0, 16384), &big);
  a = r.io_done(log_id);
  REQUIRE(a.submit.size() == 1);
  REQUIRE(a.submit[0].only.size() == 2);
  CHECK(a.submit[0].only[0].offset_bytes == 0);
  CHECK(a.submit[0].only[0].length_bytes == 4096);
  CHECK(a.submit[0].only[1].offset_bytes == 8192);
  CHECK(a.submit[0].only[1].length_bytes == 8192);
  // Wholly inside the log's range: dropped, nothing written.
  apply::RecordId inside = 0;
  a = r.extent(resync_data(4096, 4096), &inside);
  CHECK(a.submit.empty());  // waits for the overlapping extent in flight
  a = r.io_done(big);
  REQUIRE(a.dropped.size() == 1);
  CHECK(a.dropped[0] == inside);
}

TEST_CASE("an interrupted resync resumes at its durable cursor; incremental hellos are told to resume it") {
  ResyncRig r;
  r.begin_gen2();
  apply::RecordId id = 0;
  r.extent(resync_data(0), &id);
  r.io_done(id);
  r.mark(4096);
  r.flushed();
  r.committed();
  apply::RecordId lost = 0;
  Actions a = r.extent(resync_data(65536), &lost);  // submitted, then the link drops
  REQUIRE(a.submit.size() == 1);
  a = r.run([&](Actions& x) { r.m.on_io_done(lost, base::Status::ok(), false, x); });
  r.run([&](Actions& x) { r.m.end_session(x); });
  r.tick(1000);
  if (!r.last.commits.empty()) r.committed();

  apply::ReplicaState saved = r.m.replica();
  CHECK(saved.resync.cursor_bytes == 4096);
  ResyncRig again(saved);
  a = again.hello(original_hello());
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::resync_needed);
  CHECK(a.fail[0].message.find("in progress") != std::string::npos);

  ResyncRig resumed(saved);
  REQUIRE(resumed.hello(maintenance_hello(2)).hello_reply);
  a = resumed.begin({2, 10, 3, 4096, 0});
  REQUIRE(a.resync_state);
  CHECK(a.resync_state->resumed);
  CHECK(a.resync_state->cursor_bytes == 4096);
  CHECK(a.commits.empty());
}

TEST_CASE("a session that ends before its begin's commit: the same begin resumed writes nothing before that commit") {
  // The stick is slow: the "in progress" mark is still being committed when
  // the original drops and comes back with the same resync_begin.
  ResyncRig r(consistent_gen1());
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  if (!r.last.commits.empty()) r.committed();
  Actions a = r.begin({2, 10, 3, 4096, 0});
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.state == proto::CloneState::inconsistent);
  r.run([&](Actions& x) { r.m.end_session(x); });
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  a = r.begin({2, 10, 3, 4096, 0});
  REQUIRE(a.fail.empty());
  CHECK_FALSE(a.resync_state);  // found in review: it was answered "resumed" before the store held it
  a = r.extent(resync_data(0));
  CHECK(a.submit.empty());  // the store still says "consistent, generation 1"
  a = r.committed();        // now it says "resync of generation 2 in progress"
  REQUIRE(a.resync_state);
  CHECK(a.resync_state->resumed);
  CHECK(a.resync_state->cursor_bytes == 0);
  REQUIRE(a.submit.size() == 1);
  CHECK(a.submit[0].header.offset_bytes == 0);
}

TEST_CASE("an acknowledged position with more epochs than records is implausible: refused, not adopted") {
  apply::ReplicaState s = consistent_gen1();  // record 5, epoch 2
  s.reserved_seq = 1000;
  Rig r(s);
  proto::Hello h = original_hello(1, 20);
  h.applied_seq = 8;    // three records past the clone's
  h.applied_epoch = 6;  // four epochs past it: impossible, each ends with a barrier record
  Actions a = r.hello(h);
  CHECK_FALSE(a.hello_reply);
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::resync_needed);
  CHECK(r.m.replica().committed_seq == 5);
  Rig ok(s);
  h.applied_epoch = 5;  // three epochs of one barrier each
  a = ok.hello(h);
  REQUIRE(a.hello_reply);
  CHECK(a.hello_reply->applied_seq == 8);
  CHECK(a.hello_reply->applied_epoch == 5);
}

TEST_CASE("a resync must move to a newer generation; a repair needs a consistent clone at the target") {
  ResyncRig r;
  REQUIRE(r.hello(maintenance_hello(1)).hello_reply);
  Actions a = r.begin({1, 0, 0, 4096, 0});
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::generation_mismatch);

  ResyncRig fresh;
  REQUIRE(fresh.hello(maintenance_hello(1)).hello_reply);
  a = fresh.begin({1, 0, 0, 4096, proto::kResyncRepair});
  REQUIRE(a.fail.size() == 1);  // fresh, not consistent
  CHECK(a.fail[0].code == proto::ErrorCode::resync_needed);

  apply::ReplicaState s = fresh_state();
  s.state = proto::CloneState::consistent;
  s.committed_seq = s.reserved_seq = 20;
  s.committed_epoch = 5;
  ResyncRig ok(s);
  REQUIRE(ok.hello(maintenance_hello(1, 1, 20)).hello_reply);
  if (!ok.last.commits.empty()) ok.committed();
  a = ok.begin({1, 20, 5, 4096, proto::kResyncRepair});
  REQUIRE(a.fail.empty());
  a = ok.committed();
  REQUIRE(a.resync_state);
  CHECK(ok.m.replica().state == proto::CloneState::inconsistent);
  CHECK(ok.m.replica().generation == 1);
  apply::RecordId id = 0;
  ok.extent(resync_data(4096), &id);
  ok.io_done(id);
  ok.end(20);
  a = ok.flushed();
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.state == proto::CloneState::consistent);
  CHECK(a.commits[0].state.committed_seq == 20);
}

TEST_CASE("a Diverged clone takes no log and only a discarding resync its configuration allows") {
  ResyncRig r;
  r.run([&](Actions& a) { r.m.mark_diverged("the partition table changed", a); });
  r.committed();
  Actions a = r.hello(original_hello());
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::diverged);
  CHECK(a.fail[0].message.find("clonectl decide") != std::string::npos);

  ResyncRig m(r.m.replica());
  REQUIRE(m.hello(maintenance_hello(2)).hello_reply);
  a = m.begin({2, 0, 0, 4096, 0});
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::diverged);

  ResyncRig denied(r.m.replica());
  REQUIRE(denied.hello(maintenance_hello(2)).hello_reply);
  a = denied.begin({2, 0, 0, 4096, proto::kResyncDiscardCloneChanges});
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].message.find("allow_remote_discard") != std::string::npos);

  apply::Limits allow;
  allow.allow_remote_discard = true;
  ResyncRig allowed(r.m.replica(), allow);
  REQUIRE(allowed.hello(maintenance_hello(2)).hello_reply);
  a = allowed.begin({2, 0, 0, 4096, proto::kResyncDiscardCloneChanges});
  CHECK(a.fail.empty());
  CHECK(allowed.m.replica().state == proto::CloneState::inconsistent);
}

// Found in review: a resync interrupted at cursor c, the clone's disk then
// changed (it is marked Diverged), the changes discarded by decision, and the
// same begin sent again. Resumed at c, the resync would never compare what
// changed below c, and would end calling the clone consistent.
TEST_CASE("a resync interrupted before the clone was Diverged starts again from byte 0") {
  ResyncRig r;
  r.interrupt_at_4096();
  r.run([&](Actions& a) { r.m.mark_diverged("the partition table changed", a); });
  REQUIRE(r.last.commits.size() == 1);
  CHECK(r.last.commits[0].state.resync.cursor_bytes == 0);
  r.committed();
  r.run([&](Actions& a) { REQUIRE(r.m.apply_decision(apply::Decision::discard_clone_changes, "test", 0, a).is_ok()); });
  r.committed();
  ResyncRig again(r.m.replica());
  REQUIRE(again.hello(maintenance_hello(2)).hello_reply);
  Actions a = again.begin({2, 10, 3, 4096, 0});
  REQUIRE(a.fail.empty());
  REQUIRE(a.resync_state);
  CHECK(a.resync_state->cursor_bytes == 0);
}

// Found in review: a commit already in flight when a resync_begin of the same
// generation with a new target arrives holds the old resync (its cursor c).
// It must neither answer the begin (the original would start at c, and
// [0, c) would keep the old target's data) nor let the resync's writes go.
TEST_CASE("a commit in flight before a resync_begin answers neither the begin nor its writes") {
  ResyncRig r;
  r.interrupt_at_4096();
  r.run([&](Actions& a) { r.m.set_fingerprint(base::Bytes{1, 2, 3}, a); });
  if (!r.last.commits.empty()) r.committed();
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  if (!r.last.commits.empty()) r.committed();
  r.run([&](Actions& a) { r.m.invalidate_fingerprint(a); });  // as a session's start does
  REQUIRE(r.last.commits.size() == 1);                        // in flight, cursor 4096
  CHECK(r.last.commits[0].state.resync.cursor_bytes == 4096);
  Actions a = r.begin({2, 20, 5, 4096, 0});  // the original's log moved on: a new target
  REQUIRE(a.fail.empty());
  CHECK_FALSE(a.resync_state);
  apply::RecordId id = 0;
  r.extent(resync_data(8192), &id);
  CHECK(r.last.submit.empty());
  a = r.committed();  // the old one
  CHECK_FALSE(a.resync_state);
  CHECK(a.submit.empty());
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.resync.target_seq == 20);
  CHECK(a.commits[0].state.resync.cursor_bytes == 0);
  a = r.committed();
  REQUIRE(a.resync_state);
  CHECK(a.resync_state->cursor_bytes == 0);
  CHECK(a.submit.size() == 1);
}

// Found by fuzz/apply: the reservation promise took a snapshot from before
// a resync was begun again in the same generation for the current one. At a
// target past the old reservation (16,384 records on) the daemon stopped on
// a broken promise when that commit completed.
TEST_CASE("a commit in flight when a resync is begun again far ahead in the same generation breaks no promise") {
  ResyncRig r;
  r.begin_gen2();  // record 10
  apply::RecordId id = 0;
  r.extent(resync_data(0), &id);
  r.io_done(id);
  r.mark(4096);
  Actions a = r.flushed();
  REQUIRE(a.commits.size() == 1);  // in flight: reserved up to record 10 + 16,384
  CHECK(a.commits[0].state.reserved_seq < 20'000);
  r.run([&](Actions& x) { r.m.end_session(x); });
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  a = r.begin({2, 20'000, 7, 4096, 0});  // begun again: the original's log moved on
  REQUIRE(a.fail.empty());
  CHECK_FALSE(a.resync_state);
  a = r.committed();  // the old snapshot: covers nothing of the new position
  CHECK_FALSE(a.resync_state);
  CHECK(a.resync_mark_acks.empty());
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.resync.target_seq == 20'000);
  CHECK(a.commits[0].state.reserved_seq >= 20'000);
  a = r.committed();
  REQUIRE(a.resync_state);
  CHECK(a.resync_state->cursor_bytes == 0);
}

// Found by fuzz/apply: a commit taken before the begin (no resync in it) and
// still in flight when the whole resync had reached its end was taken for the
// end's commit. resync_done went to the original, and the verify's ranges
// were let go, before the store held the new generation: a power cut then
// left a clone at generation 1 that the original believed at 2.
TEST_CASE("a commit in flight since before a resync_begin is not taken for the commit of the resync's end") {
  ResyncRig r;
  r.run([&](Actions& a) { r.m.set_fingerprint(base::Bytes{1, 2, 3}, a); });
  REQUIRE(r.last.commits.size() == 1);  // in flight: generation 1, no resync in it
  CHECK_FALSE(r.last.commits[0].state.resync.active());
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  REQUIRE(r.last.commits.empty());
  Actions a = r.begin({2, 10, 3, 4096, 0});
  REQUIRE(a.fail.empty());
  a = r.end(10);
  REQUIRE(a.flush);
  a = r.flushed();
  CHECK(a.commits.empty());  // one commit at a time
  a = r.committed();         // the fingerprint's
  CHECK_FALSE(a.resync_done);
  CHECK_FALSE(a.clear_out_of_sync);
  int commits = 0;
  while (!a.commits.empty() && !a.resync_done && commits++ < 4) a = r.committed();
  REQUIRE(a.resync_done);
  CHECK(a.resync_done->generation == 2);
  CHECK(a.clear_out_of_sync);
  CHECK(r.m.replica().generation == 2);
}

// Found in review: a mark flushed while a commit of an earlier cursor was in
// flight, then the session ended and a new resync began (cursor 0) before
// that commit completed. The mark stayed waiting for a commit to cover it:
// every commit asked another (a stream of store commits on the stick) until
// the new resync passed it, and then its ack went to a session that never
// sent that mark.
TEST_CASE("a flushed mark of a resync begun again is dropped: no stream of commits, no ack of another resync's mark") {
  ResyncRig r;
  r.flush_a_mark_behind_a_commit();
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  Actions a = r.begin({2, 10, 3, 8192, 0});  // begun again: another extent size, cursor 0
  REQUIRE(a.fail.empty());
  CHECK(r.commits_until_quiet() <= 2);  // the begin's "in progress", and nothing after it
  CHECK(r.m.replica().resync.cursor_bytes == 0);
  // The new resync's own mark past 8192 is acked once, for itself.
  apply::RecordId id = 0;
  r.extent(resync_data(0, 8192), &id);
  r.io_done(id);
  r.extent(resync_data(8192, 8192), &id);
  r.io_done(id);
  r.mark(16384);
  r.flushed();
  a = r.committed();
  REQUIRE(a.resync_mark_acks.size() == 1);
  CHECK(a.resync_mark_acks[0] == 16384);
}

// Found by fuzz/apply: the marks a session had flushed behind a commit were
// acked, once that commit (or the next) covered them, to the next session of
// the same resync, which resumed above them and never sent them.
TEST_CASE("a resumed resync's session is not acked the marks an earlier session flushed") {
  ResyncRig r;
  r.flush_a_mark_behind_a_commit();
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  Actions a = r.begin({2, 10, 3, 4096, 0});  // the same resync: resumed
  REQUIRE(a.fail.empty());
  REQUIRE(a.resync_state);
  CHECK(a.resync_state->resumed);
  CHECK(a.resync_state->cursor_bytes == 8192);  // on the disk, flushed
  CHECK(r.commits_until_quiet() <= 2);          // 4096 in flight, then 8192; no acks
  CHECK(r.m.replica().committed_seq == 10);
  r.block_and_mark(8192);
  a = r.committed();
  REQUIRE(a.resync_mark_acks.size() == 1);
  CHECK(a.resync_mark_acks[0] == 12288);
}

// Found in review: a mark is acked only by a commit of a snapshot taken after
// its flush. One in flight from a replaced resync of the same generation,
// at a higher cursor, acked the new resync's mark though the store held the
// old one.
TEST_CASE("a mark flushed while a replaced resync's commit is in flight is acked by a later commit only") {
  ResyncRig r;
  r.begin_gen2();
  r.block_and_mark(0);
  REQUIRE(r.last.commits.size() == 1);  // in flight: generation 2 to record 10, cursor 4096
  r.run([&](Actions& a) { r.m.end_session(a); });
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  REQUIRE(r.begin({2, 20, 5, 4096, 0}).fail.empty());  // begun again at another target: cursor 0
  r.run([&](Actions& a) { r.m.end_session(a); });
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  Actions a = r.begin({2, 20, 5, 4096, 0});  // the same: resumed at 0, answered once the store holds it
  CHECK_FALSE(a.resync_state);
  r.mark(4096);  // over what matches, no extent before it (from a peer that does not wait for the answer)
  REQUIRE(r.flushed().fail.empty());
  a = r.committed();  // the replaced resync's: target 10, cursor 4096
  CHECK(a.resync_mark_acks.empty());
  CHECK_FALSE(a.resync_state);
  int acks = 0, answers = 0;
  for (int i = 0; i < 5 && !a.commits.empty(); ++i) {
    a = r.committed();
    for (uint64_t c : a.resync_mark_acks) {
      CHECK(c == 4096);
      ++acks;
    }
    if (a.resync_state) {
      ++answers;
      CHECK(a.resync_state->resumed);
      CHECK(a.resync_state->cursor_bytes <= 4096);  // what that commit holds
    }
  }
  CHECK(acks == 1);
  CHECK(answers == 1);
  CHECK(r.m.replica().resync.target_seq == 20);
}

// The same after the clone is found Diverged (its resync's cursor goes back
// to 0 and stays there until a decision): the stream of commits never ended.
TEST_CASE("a flushed mark of a resync interrupted by Diverged is dropped: no stream of commits") {
  ResyncRig r;
  r.flush_a_mark_behind_a_commit();
  r.run([&](Actions& x) { r.m.mark_diverged("the first MiB changed", x); });
  CHECK(r.commits_until_quiet() <= 1);  // the Diverged state's, and nothing after it
  CHECK(r.m.replica().state == proto::CloneState::diverged);
}

// Found in review: a commit of generation 1 in flight when generation 2's
// resync begins (at a lower record, as after the original lost its log)
// told the original "committed 50" for its new log: the original forgets
// its records up to what the clone says its store holds.
TEST_CASE("a commit of the generation a resync replaces tells the original nothing of its position") {
  apply::ReplicaState s = consistent_gen1();
  s.committed_seq = s.reserved_seq = 50;
  s.committed_epoch = 10;
  ResyncRig r(s);
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  if (r.last.commits.empty()) r.run([&](Actions& a) { r.m.set_fingerprint(base::Bytes{1, 2, 3}, a); });
  REQUIRE(r.last.commits.size() == 1);  // in flight: generation 1 at record 50
  CHECK(r.last.commits[0].state.generation == 1);
  CHECK(r.last.commits[0].state.committed_seq == 50);
  Actions a = r.begin({2, 10, 3, 4096, 0});
  REQUIRE(a.fail.empty());
  a = r.committed();  // the old one
  CHECK(a.committed.empty());
  CHECK(r.m.committed().seq <= 10);
  REQUIRE(a.commits.size() == 1);  // generation 2's "in progress"
  CHECK(a.commits[0].state.generation == 2);
  CHECK(a.commits[0].state.committed_seq == 10);
  a = r.committed();
  CHECK(a.committed.empty());  // nothing past what the original has had committed
  REQUIRE(a.resync_state);
  CHECK(r.m.committed().seq == 10);
}

// Found in review of the above: the same generation begun again (another
// extent size: not a resume) takes a lower position than a commit in flight
// of the log that ran in its first session; that commit is stale too.
TEST_CASE("a commit from before a resync begun again in the same generation tells nothing of its position") {
  ResyncRig r;
  r.begin_gen2();  // generation 2 at record 10
  apply::RecordId id = 0;
  r.send(rec(MsgType::write, 11, 4, 0), &id);
  REQUIRE(r.last.submit.size() == 1);
  r.io_done(id);
  r.send(rec(MsgType::barrier, 12, 4));
  REQUIRE(r.last.flush);
  r.flushed();
  REQUIRE(r.m.durable().seq == 12);
  r.tick(10'000);
  REQUIRE(r.last.commits.size() == 1);  // in flight: record 12 of generation 2
  CHECK(r.last.commits[0].state.committed_seq == 12);
  r.run([&](Actions& x) { r.m.end_session(x); });
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  Actions a = r.begin({2, 10, 3, 8192, 0});  // begun again: another extent size
  REQUIRE(a.fail.empty());
  CHECK(r.m.committed().seq <= 10);
  a = r.committed();  // the old one
  CHECK(a.committed.empty());
  CHECK(r.m.committed().seq <= r.m.durable().seq);
}

// Found in review: the daemon invalidated the fingerprint at every hello, so a
// session that only staged or verified left a disk changed behind its back
// undetected. Now the daemon invalidates it at a log session's hello only, and
// the machine before a maintenance session writes: an in-place resync begun
// or resumed (the disk may have been fingerprinted while it was interrupted:
// refresh_if_quiet), its first log record.
TEST_CASE("a resumed in-place resync invalidates a fingerprint taken meanwhile before it writes again") {
  ResyncRig r;
  r.interrupt_at_4096();
  r.run([&](Actions& a) { r.m.set_fingerprint(base::Bytes{1, 2, 3}, a); });
  REQUIRE(r.last.commits.size() == 1);
  r.committed();
  REQUIRE(r.m.fingerprint_valid());
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  if (!r.last.commits.empty()) r.committed();
  CHECK(r.m.fingerprint_valid());
  Actions a = r.begin({2, 10, 3, 4096, 0});
  REQUIRE(a.fail.empty());
  REQUIRE(a.resync_state);
  CHECK(a.resync_state->cursor_bytes == 4096);
  CHECK_FALSE(r.m.fingerprint_valid());
  REQUIRE(a.commits.size() == 1);
  CHECK_FALSE(a.commits[0].state.fingerprint_valid);
  apply::RecordId id = 0;
  r.extent(resync_data(8192), &id);
  CHECK(r.last.submit.empty());  // not before the store says the fingerprint is gone
  a = r.committed();
  CHECK(a.submit.size() == 1);
}

TEST_CASE("a maintenance session's first log record invalidates a valid fingerprint before it is written") {
  ResyncRig r(consistent_gen1());
  r.run([&](Actions& a) { r.m.set_fingerprint(base::Bytes{1, 2, 3}, a); });
  REQUIRE(r.last.commits.size() == 1);
  r.committed();
  REQUIRE(r.hello(maintenance_hello(1, 1, 10)).hello_reply);  // the log lines up: it is taken
  if (!r.last.commits.empty()) r.committed();
  CHECK(r.m.fingerprint_valid());
  Actions a = r.send(rec(MsgType::write, 6, 3, 0));
  CHECK_FALSE(r.m.fingerprint_valid());
  REQUIRE(a.commits.size() == 1);
  CHECK_FALSE(a.commits[0].state.fingerprint_valid);
  CHECK(a.submit.empty());  // not before the store says the fingerprint is gone
  a = r.committed();
  CHECK(a.submit.size() == 1);
}

TEST_CASE("a decision while shutting down is refused: nothing commits after the final commit") {
  ResyncRig r(consistent_gen1());
  r.run([&](Actions& a) { r.m.mark_diverged("changed", a); });
  if (!r.last.commits.empty()) r.committed();
  r.run([&](Actions& a) { r.m.begin_shutdown(a); });
  base::Status s = base::Status::ok();
  r.run([&](Actions& a) { s = r.m.apply_decision(apply::Decision::keep_diverged, "test", 0, a); });
  CHECK(s.code() == EAGAIN);
  CHECK(s.message().find("cloned is stopping") != std::string::npos);
  CHECK(r.m.replica().decision.empty());
}

TEST_CASE("a resync_begin or resync_end past any log position is a protocol error") {
  ResyncRig r;
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  if (!r.last.commits.empty()) r.committed();
  Actions a = r.begin({2, UINT64_MAX - 1, 3, 4096, 0});
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::protocol);
  CHECK(a.fail[0].message.find("past any log") != std::string::npos);
  ResyncRig e;
  e.begin_gen2();
  a = e.end(UINT64_MAX);
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::protocol);
}

TEST_CASE("resync extents are validated before anything is written") {
  ResyncRig r;
  r.begin_gen2();
  Actions a = r.extent(resync_data(100, 4096));
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::misaligned);
  ResyncRig r2;
  r2.begin_gen2();
  a = r2.extent(resync_data(kDisk - 4096, 8192));
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::out_of_range);
  ResyncRig r3;
  REQUIRE(r3.hello(maintenance_hello(2)).hello_reply);
  a = r3.extent(resync_data(0));
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::protocol);
}

TEST_CASE("resync data below the last mark is a protocol error: the mark said everything below it was sent") {
  ResyncRig r;
  r.begin_gen2();
  REQUIRE(r.extent(resync_data(65536)).fail.empty());
  REQUIRE(r.mark(131072).fail.empty());
  CHECK(r.extent(resync_data(131072)).fail.empty());  // at the mark: fine
  Actions a = r.extent(resync_data(126976));          // the last block below it
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::protocol);
  CHECK(a.fail[0].message.find("after a mark at 131072") != std::string::npos);
}

TEST_CASE("a resync_mark off the logical block size is refused: a resume from it could not send an aligned extent") {
  ResyncRig r;
  r.begin_gen2();
  REQUIRE(r.extent(resync_data(0)).fail.empty());
  Actions a = r.mark(4096 + 100);
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::misaligned);
  CHECK(a.fail[0].message.find("not a multiple of the logical block size") != std::string::npos);
  CHECK(r.m.replica().resync.cursor_bytes == 0);
}

// A resync asked again once it is whole acks its marks at once; a mark past
// the disk's end is refused there as anywhere (found by fuzz/apply: it was
// acked).
TEST_CASE("the marks of a resync the clone already holds whole are acked, those past the disk's end refused") {
  ResyncRig r;
  r.begin_gen2();
  REQUIRE(r.end(10).flush);
  r.flushed();
  REQUIRE(r.committed().resync_done);
  r.run([&](Actions& a) { r.m.end_session(a); });
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  Actions a = r.begin({2, 10, 3, 4096, 0});
  REQUIRE(a.resync_state);
  const uint64_t size = a.resync_state->total_bytes;
  CHECK(a.resync_state->cursor_bytes == size);
  a = r.mark(size);
  REQUIRE(a.resync_mark_acks.size() == 1);
  CHECK(a.resync_mark_acks[0] == size);
  a = r.mark(size + 4096);
  CHECK(a.resync_mark_acks.empty());
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::protocol);
  CHECK(a.fail[0].message.find("past the disk's end") != std::string::npos);
}

// Invariant 9: the log's ranges kept during an in-place resync are bounded.
// Those below a flushed mark are let go; past the bound the session ends and
// the resync resumes at its durable cursor with none kept.
TEST_CASE("the log's ranges kept beside a resync: let go below a flushed mark, bounded above it") {
  apply::Limits l;
  l.log_ranges_max = 8;
  ResyncRig r(fresh_state(), l);
  r.begin_gen2();
  uint64_t seq = 11;
  const auto log_write = [&](uint64_t offset) {
    apply::RecordId id = 0;
    Actions a = r.send(rec(MsgType::write, seq++, 4, offset, 4096), &id);
    if (id != 0) r.io_done(id);
    return a;
  };
  // Eight separate ranges below byte 65536 (every other block): at the bound.
  for (uint64_t i = 0; i < 8; ++i) REQUIRE(log_write(i * 8192).fail.empty());
  apply::RecordId id = 0;
  r.extent(resync_data(0, 65536), &id);
  r.io_done(id);
  REQUIRE(r.mark(65536).flush);
  r.flushed();
  REQUIRE(r.committed().resync_mark_acks.size() == 1);
  // Let go: eight more above the mark fit.
  for (uint64_t i = 0; i < 8; ++i) REQUIRE(log_write(65536 + i * 16384).fail.empty());
  // Adjacent to a kept range: merged, not a ninth.
  REQUIRE(log_write(65536 + 4096).fail.empty());
  // A ninth separate one: the session ends, saying where the resync resumes.
  Actions a = log_write(65536 + 8 * 16384);
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::too_large);
  CHECK(a.fail[0].message.find("more than 8 separate ranges") != std::string::npos);
  CHECK(a.fail[0].message.find("continues at byte 65536") != std::string::npos);
  r.run([&](Actions& x) { r.m.end_session(x); });
  // The next session resumes with none kept: the ranges it keeps start again.
  REQUIRE(r.hello(maintenance_hello(2)).hello_reply);
  a = r.begin({2, 10, 3, 4096, 0});
  REQUIRE(a.resync_state);
  CHECK(a.resync_state->cursor_bytes == 65536);
}
