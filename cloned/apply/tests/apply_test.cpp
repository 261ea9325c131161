// SPDX-License-Identifier: MIT
// The apply state machine, driven without sockets or disks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <vector>

#include "cloned/apply/apply.h"

using apply::Actions;
using apply::Machine;
using proto::MsgType;

#include "cloned/apply/tests/rig.h"

using namespace apply_test;

TEST_CASE("a session opens with the clone's position and a reservation commit") {
  Rig r;
  Actions a = r.hello();
  REQUIRE(a.hello_reply);
  CHECK(a.hello_reply->role == proto::Role::clone);
  CHECK(a.hello_reply->applied_seq == 0);
  CHECK(a.hello_reply->state == proto::CloneState::fresh);
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.reserved_seq > 0);
  CHECK(a.commits[0].state.committed_seq == 0);
}

TEST_CASE("records wait for the reservation to be durable before they are written") {
  Rig r;
  r.hello();
  Actions a = r.send(rec(MsgType::write, 1, 1));
  CHECK(a.submit.empty());
  a = r.committed();
  CHECK(a.submit.size() == 1);
}

TEST_CASE("writes of one epoch go out together and the barrier waits for all of them") {
  Rig r;
  r.open();
  std::vector<apply::RecordId> ids;
  for (uint64_t i = 0; i < 4; ++i) {
    apply::RecordId id = 0;
    Actions a = r.send(rec(MsgType::write, i + 1, 1, i * 8192), &id);
    CHECK(a.submit.size() == 1);
    ids.push_back(id);
  }
  Actions a = r.send(rec(MsgType::barrier, 5, 1));
  CHECK_FALSE(a.flush);
  for (size_t i = 0; i < 3; ++i) CHECK_FALSE(r.io_done(ids[i]).flush);
  a = r.io_done(ids[3]);
  CHECK(a.flush);
  CHECK(a.barrier_acks.empty());  // not before the flush completed
  a = r.flushed();
  REQUIRE(a.barrier_acks.size() == 1);
  CHECK(a.barrier_acks[0].epoch == 1);
  CHECK(a.barrier_acks[0].seq == 5);
  CHECK(r.m.durable().seq == 5);
}

TEST_CASE("the barrier held back by writes in flight is told by its gate, for an early flush, and flushed with it") {
  Rig r;
  r.open();
  apply::RecordId w1 = 0, w2 = 0;
  REQUIRE(r.send(rec(MsgType::write, 1, 1, 0), &w1).submit.size() == 1);
  CHECK(r.m.gate_after_in_flight() == 0);                  // no barrier yet
  const uint64_t gate = r.last.submit[0].covered_by_gate;  // the next barrier flush's
  CHECK(gate != 0);
  CHECK(r.last.submit[0].after_flush_gate == 0);
  r.send(rec(MsgType::write, 2, 1, 8192), &w2);
  r.send(rec(MsgType::barrier, 3, 1));
  CHECK(r.m.gate_after_in_flight() == gate);
  CHECK(r.m.flushing_barrier_seq() == 0);
  // The next epoch's write goes out behind the barrier's flush, and does
  // not hold the barrier back; the flush after that one is to cover it.
  REQUIRE(r.send(rec(MsgType::write, 4, 2, 16384)).submit.size() == 1);
  CHECK(r.last.submit[0].after_flush_gate == gate);
  CHECK(r.last.submit[0].covered_by_gate == gate + 1);
  CHECK(r.m.gate_after_in_flight() == gate);
  r.io_done(w1);
  CHECK(r.m.gate_after_in_flight() == gate);
  Actions a = r.io_done(w2);
  CHECK(a.flush);
  CHECK(a.flush_gate == gate);
  CHECK(r.m.gate_after_in_flight() == 0);  // nothing of its epoch in flight: flushing
  CHECK(r.m.flushing_barrier_seq() == 3);
  a = r.flushed();
  CHECK(a.submit.empty());  // already out
  CHECK(r.m.in_flight() == 1);
  CHECK(r.m.in_flight_after_flush() == 0);  // an ordinary write of the open epoch now
  CHECK(r.m.flushing_barrier_seq() == 0);
  CHECK(r.m.gate_after_in_flight() == 0);  // a write in flight, no barrier behind it yet

  SUBCASE("a marked barrier may wait for a commit: never told") {
    r.send(rec(MsgType::barrier, 5, 2), nullptr, "before-update");
    CHECK(r.m.gate_after_in_flight() == 0);
  }
  SUBCASE("the next barrier's flush has the next gate") {
    REQUIRE(r.send(rec(MsgType::write, 5, 2, 32768)).submit.size() == 1);
    CHECK(r.last.submit[0].covered_by_gate == gate + 1);
    r.send(rec(MsgType::barrier, 6, 2));
    CHECK(r.m.gate_after_in_flight() == gate + 1);
  }
}

TEST_CASE("the next epoch's writes go out behind the barrier's flush, never ahead of it") {
  Rig r;
  r.open();
  apply::RecordId w1 = 0;
  r.send(rec(MsgType::write, 1, 1, 0), &w1);
  r.send(rec(MsgType::barrier, 2, 1));
  apply::RecordId w3 = 0;
  Actions a = r.send(rec(MsgType::write, 3, 2, 0), &w3);  // overlaps w1: it starts after the flush anyway
  REQUIRE(a.submit.size() == 1);
  CHECK(a.submit[0].header.seq == 3);
  CHECK(a.submit[0].after_flush_gate != 0);
  // Overlapping each other, they keep their order: the second waits.
  CHECK(r.send(rec(MsgType::write, 4, 2, 0)).submit.empty());
  a = r.io_done(w1);
  CHECK(a.flush);  // the epoch's own writes are done
  CHECK(a.submit.empty());
  CHECK(r.m.in_flight_after_flush() == 1);
  a = r.flushed();
  REQUIRE(a.barrier_acks.size() == 1);
  CHECK(a.submit.empty());  // record 4 still overlaps record 3, in flight
  a = r.io_done(w3);
  REQUIRE(a.submit.size() == 1);
  CHECK(a.submit[0].header.seq == 4);
  CHECK(a.submit[0].after_flush_gate == 0);
}

// Opens a session with write 1 and barrier 2 of epoch 1, and write 3 of
// epoch 2 submitted behind that barrier's flush; returns the two writes' ids.
std::pair<apply::RecordId, apply::RecordId> open_with_next_epoch_held(Rig& r) {
  r.open();
  apply::RecordId w1 = 0, w3 = 0;
  r.send(rec(MsgType::write, 1, 1, 0), &w1);
  r.send(rec(MsgType::barrier, 2, 1));
  REQUIRE(r.send(rec(MsgType::write, 3, 2, 8192), &w3).submit.size() == 1);
  REQUIRE(r.last.submit[0].after_flush_gate != 0);
  return {w1, w3};
}

TEST_CASE("writes behind a flush that fails come back unwritten and are dropped quietly") {
  Rig r;
  const auto [w1, w3] = open_with_next_epoch_held(r);
  CHECK(r.io_done(w1).flush);
  Actions a = r.flushed(base::Status::error(EIO, "flush failed."));
  CHECK(a.barrier_acks.empty());
  REQUIRE(a.disk_failed.size() == 1);
  CHECK(a.cancel_after_flush);  // no flush will come for them
  a = r.io_done(w3, base::Status::error(ECANCELED, "not written."));
  CHECK(a.disk_failed.empty());  // not a second disk error
  CHECK(a.fail.empty());
  CHECK(r.m.in_flight() == 0);
  CHECK(r.m.durable().seq == 0);
}

// A write held behind a barrier not yet flushed was told the gate after that
// barrier's (covered_by_gate). If the workers' early flush let it go and it
// failed, the workers hold every flush with that gate as failed: the next
// session's flushes must carry gates above it, or its first barrier's flush
// would let nothing behind it go (found in review: the session ended before
// the barrier's flush was asked, and the gate moved on by one only).
TEST_CASE("a session's end moves the gates past every gate its writes were told") {
  Rig r;
  const auto [w1, w3] = open_with_next_epoch_held(r);
  const uint64_t covered = r.last.submit[0].covered_by_gate;
  REQUIRE(covered > r.last.submit[0].after_flush_gate);
  SUBCASE("the held write refused for its digest before the barrier's flush is asked") {
    Actions a = r.io_done(w3, base::Status::error(EBADMSG, "digest."), /*digest_mismatch=*/true);
    CHECK_FALSE(a.fail.empty());
    r.io_done(w1);
  }
  SUBCASE("the session ended while the barrier's flush runs, the held write let go by it") {
    CHECK(r.io_done(w1).flush);
    r.run([&](Actions& a) { r.m.end_session(a); });
    r.flushed();
    r.io_done(w3);
  }
  REQUIRE(r.m.in_flight() == 0);
  r.open();
  const uint64_t seq = r.m.durable().seq, epoch = r.m.durable().epoch + 1;  // the first subcase: nothing durable
  REQUIRE(r.send(rec(MsgType::write, seq + 1, epoch, 0)).submit.size() == 1);
  r.send(rec(MsgType::barrier, seq + 2, epoch));
  CHECK(r.m.gate_after_in_flight() > covered);
  r.send(rec(MsgType::write, seq + 3, epoch + 1, 8192));
  REQUIRE(r.last.submit.size() == 1);
  CHECK(r.last.submit[0].after_flush_gate > covered);
}

TEST_CASE("a write behind a flush cancelled for no reason the machine knows ends the session") {
  // The executor must not cancel on its own; if it does, the barrier after
  // the unwritten record must never be flushed, or the clone would be
  // durable past a record it does not hold.
  Rig r;
  const auto [w1, w3] = open_with_next_epoch_held(r);
  r.send(rec(MsgType::barrier, 4, 2));
  const base::Status cancelled = base::Status::error(ECANCELED, "not written.");

  SUBCASE("before its barrier's flush is asked for") {
    Actions a = r.io_done(w3, cancelled);
    REQUIRE(a.fail.size() == 1);
    CHECK(a.fail[0].code == proto::ErrorCode::internal);
    CHECK(a.fail[0].message.find("record 3 was not written") != std::string::npos);
    CHECK_FALSE(r.m.in_session());
    CHECK_FALSE(r.io_done(w1).flush);  // the session's barriers are gone
    CHECK(r.m.durable().seq == 0);
  }
  SUBCASE("while its barrier's flush runs: the flush is acknowledged, nothing behind it") {
    CHECK(r.io_done(w1).flush);
    Actions a = r.io_done(w3, cancelled);
    CHECK(a.fail.empty());  // the flush's result decides
    a = r.flushed();
    REQUIRE(a.barrier_acks.size() == 1);
    CHECK(a.barrier_acks[0].seq == 2);
    REQUIRE(a.fail.size() == 1);
    CHECK(a.fail[0].code == proto::ErrorCode::internal);
    CHECK_FALSE(a.flush);
    CHECK_FALSE(r.m.in_session());
    CHECK(r.m.durable().seq == 2);
  }
  SUBCASE("while its barrier's flush runs, and the flush fails: a disk error, nothing more") {
    CHECK(r.io_done(w1).flush);
    CHECK(r.io_done(w3, cancelled).fail.empty());
    Actions a = r.flushed(base::Status::error(EIO, "flush failed."));
    REQUIRE(a.fail.size() == 1);
    CHECK(a.fail[0].code == proto::ErrorCode::disk_io);
    CHECK(r.m.durable().seq == 0);
  }
  CHECK(r.m.in_flight() == 0);
}

TEST_CASE("writes behind a barrier that is dropped unflushed are cancelled") {
  Rig r;
  const auto [w1, w3] = open_with_next_epoch_held(r);

  SUBCASE("the session ends") {
    Actions a = r.run([&](Actions& x) { r.m.end_session(x); });
    CHECK(a.cancel_after_flush);
    CHECK_FALSE(r.io_done(w1).flush);  // its barrier is gone
    a = r.io_done(w3, base::Status::error(ECANCELED, "not written."));
    CHECK(a.disk_failed.empty());
    CHECK(r.m.in_flight() == 0);
  }
  SUBCASE("a write of its epoch fails") {
    Actions a = r.io_done(w1, base::Status::error(EIO, "write failed."));
    REQUIRE(a.disk_failed.size() == 1);
    CHECK(a.cancel_after_flush);
    CHECK_FALSE(a.flush);
  }
  SUBCASE("but not while its flush is under way: they start after it") {
    CHECK(r.io_done(w1).flush);
    Actions a = r.run([&](Actions& x) { r.m.end_session(x); });
    CHECK_FALSE(a.cancel_after_flush);
    r.flushed();
    CHECK(r.m.durable().seq == 2);
    CHECK(r.m.in_flight_after_flush() == 0);
    r.io_done(w3);
    CHECK(r.m.in_flight() == 0);
  }
}

// The workers flush for a barrier's gate as soon as its epoch is written (an
// early flush) and start the writes held behind it; a cancel asked when the
// session ends may come after that. The disk then holds the epoch and a write
// of the next, past a barrier the machine never saw flushed: a session that
// replays the epoch from the durable position passes through states the
// original never had (a block the epoch wrote twice at its first value, beside
// the next epoch's write), so it is a catch-up, marked inconsistent first.
TEST_CASE("a held write let go by an early flush after its barrier was dropped makes the next session a catch-up") {
  Rig r(consistent_gen1());
  r.open();
  apply::RecordId w6 = 0, w8 = 0;
  REQUIRE(r.send(rec(MsgType::write, 6, 3, 0), &w6).submit.size() == 1);
  r.send(rec(MsgType::barrier, 7, 3));
  REQUIRE(r.send(rec(MsgType::write, 8, 4, 8192), &w8).submit.size() == 1);
  REQUIRE(r.last.submit[0].after_flush_gate != 0);
  bool let_go = false;
  SUBCASE("the early flush ran, and the held write was written, before the session ended") {
    let_go = true;
    CHECK(r.io_done(w8).fail.empty());  // the machine has not asked its barrier's flush yet
    CHECK_FALSE(r.run([&](Actions& x) { r.m.end_session(x); }).cancel_after_flush);  // none left to cancel
    CHECK_FALSE(r.io_done(w6).flush);                                                // its barrier is gone
  }
  SUBCASE("the early flush ran before the cancel: the held write was written after it") {
    let_go = true;
    CHECK(r.run([&](Actions& x) { r.m.end_session(x); }).cancel_after_flush);
    CHECK_FALSE(r.io_done(w6).flush);
    CHECK(r.io_done(w8).fail.empty());
  }
  SUBCASE("the cancel came first: nothing of epoch 4 reached the disk") {
    CHECK(r.run([&](Actions& x) { r.m.end_session(x); }).cancel_after_flush);
    CHECK_FALSE(r.io_done(w6).flush);
    CHECK(r.io_done(w8, base::Status::error(ECANCELED, "not written.")).fail.empty());
  }
  CAPTURE(let_go);
  REQUIRE(r.m.in_flight() == 0);
  CHECK(r.m.durable().seq == 5);

  Actions a = r.hello();
  REQUIRE(a.hello_reply);
  CHECK(a.hello_reply->applied_seq == 5);
  apply::RecordId again = 0;
  if (let_go) {
    REQUIRE(a.commits.size() == 1);
    CHECK(a.commits[0].state.state == proto::CloneState::inconsistent);
    CHECK(a.commits[0].state.consistent_at_seq == 8);
    CHECK(a.commits[0].state.reserved_seq >= 8);
    // The replay's first write waits for that commit.
    CHECK(r.send(rec(MsgType::write, 6, 3, 0), &again).submit.empty());
    CHECK(r.committed().submit.size() == 1);
  } else {
    CHECK(a.commits.empty());  // the disk is at the durable position: a plain session
    CHECK(r.send(rec(MsgType::write, 6, 3, 0), &again).submit.size() == 1);
  }
  r.send(rec(MsgType::barrier, 7, 3));
  CHECK(r.io_done(again).flush);
  r.flushed();
  CHECK(r.m.replica().state == (let_go ? proto::CloneState::inconsistent : proto::CloneState::consistent));
  apply::RecordId w8_again = 0;
  REQUIRE(r.send(rec(MsgType::write, 8, 4, 8192), &w8_again).submit.size() == 1);
  r.send(rec(MsgType::barrier, 9, 4));
  CHECK(r.io_done(w8_again).flush);
  CHECK(r.flushed().barrier_acks.size() == 1);
  CHECK(r.m.durable().seq == 9);
  CHECK(r.m.replica().state == proto::CloneState::consistent);  // caught up past record 8
}

TEST_CASE("a gate is never named twice: the barriers a session leaves unflushed take theirs with them") {
  // The next session sends the same seqs again; were its barrier's flush to
  // carry the same number, the executor would take the old gate's fate
  // (cancelled, or let go by an early flush) for the new one's.
  Rig r;
  uint64_t old_gate = 0;
  SUBCASE("writes were held behind it, and are cancelled") {
    const auto [w1, w3] = open_with_next_epoch_held(r);
    old_gate = r.last.submit[0].after_flush_gate;
    CHECK(r.m.gate_after_in_flight() == old_gate);
    Actions a = r.run([&](Actions& x) { r.m.end_session(x); });
    CHECK(a.cancel_after_flush);
    r.io_done(w1);
    r.io_done(w3, base::Status::error(ECANCELED, "not written."));
  }
  SUBCASE("only an early flush was asked for it (it may have run)") {
    r.open();
    apply::RecordId w1 = 0;
    r.send(rec(MsgType::write, 1, 1, 0), &w1);
    r.send(rec(MsgType::barrier, 2, 1));
    old_gate = r.m.gate_after_in_flight();
    CHECK(old_gate != 0);
    Actions a = r.run([&](Actions& x) { r.m.end_session(x); });
    CHECK_FALSE(a.cancel_after_flush);
    CHECK_FALSE(r.io_done(w1).flush);
  }
  REQUIRE(r.m.in_flight() == 0);

  r.open();
  apply::RecordId n1 = 0;
  REQUIRE(r.send(rec(MsgType::write, 1, 1, 0), &n1).submit.size() == 1);
  CHECK(r.last.submit[0].covered_by_gate > old_gate);
  r.send(rec(MsgType::barrier, 2, 1));
  const uint64_t new_gate = r.m.gate_after_in_flight();
  CHECK(new_gate > old_gate);
  REQUIRE(r.send(rec(MsgType::write, 3, 2, 8192)).submit.size() == 1);
  CHECK(r.last.submit[0].after_flush_gate == new_gate);
  Actions a = r.io_done(n1);
  CHECK(a.flush);
  CHECK(a.flush_gate == new_gate);
}

TEST_CASE("nothing goes out behind a marked barrier: it may wait for a commit") {
  Rig r;
  r.open();
  apply::RecordId w1 = 0;
  r.send(rec(MsgType::write, 1, 1, 0), &w1);
  r.send(rec(MsgType::barrier, 2, 1), nullptr, "before-update");
  CHECK(r.send(rec(MsgType::write, 3, 2, 8192)).submit.empty());
  CHECK(r.m.in_flight_after_flush() == 0);
}

TEST_CASE("overlapping writes in one epoch are written in log order") {
  Rig r;
  r.open();
  apply::RecordId first = 0;
  CHECK(r.send(rec(MsgType::write, 1, 1, 0, 8192), &first).submit.size() == 1);
  CHECK(r.send(rec(MsgType::write, 2, 1, 4096, 4096)).submit.empty());
  Actions a = r.io_done(first);
  REQUIRE(a.submit.size() == 1);
  CHECK(a.submit[0].header.seq == 2);
}

TEST_CASE("invalid records end the session and nothing of them is submitted") {
  struct Case {
    const char* name;
    proto::RecordHeader h;
    proto::ErrorCode code;
  };
  const Case cases[] = {
      {"gap", rec(MsgType::write, 2, 1), proto::ErrorCode::sequence_gap},
      {"wrong epoch", rec(MsgType::write, 1, 2), proto::ErrorCode::protocol},
      {"misaligned offset", rec(MsgType::write, 1, 1, 100, 512), proto::ErrorCode::misaligned},
      {"misaligned length", rec(MsgType::write, 1, 1, 0, 100), proto::ErrorCode::misaligned},
      {"past the end", rec(MsgType::write, 1, 1, kDisk - 512, 1024), proto::ErrorCode::out_of_range},
      {"offset overflow", rec(MsgType::trim, 1, 1, UINT64_MAX - 511, 1024), proto::ErrorCode::out_of_range},
      {"empty", rec(MsgType::zero, 1, 1, 0, 0), proto::ErrorCode::protocol},
      {"not a record", rec(MsgType::ping, 1, 1), proto::ErrorCode::protocol},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Rig r;
    r.open();
    apply::RecordId id = 99;
    Actions a = r.send(c.h, &id);
    REQUIRE(a.fail.size() == 1);
    CHECK(a.fail[0].code == c.code);
    CHECK(a.submit.empty());
    CHECK(id == 0);
    CHECK(r.m.queued() == 0);
    CHECK(r.m.held_bytes() == 0);
  }
}

TEST_CASE("a record before the hello is answered is refused") {
  Rig r;
  apply::RecordId id = 0;
  Actions a;
  r.m.on_record(rec(MsgType::write, 1, 1), id, a);
  REQUIRE(a.fail.size() == 1);
}

TEST_CASE("hellos that cannot continue are refused with the reason") {
  SUBCASE("another pair") {
    Rig r;
    proto::Hello h = original_hello();
    h.pair_id[0] ^= 1;
    CHECK(r.hello(h).fail.at(0).code == proto::ErrorCode::pair_mismatch);
  }
  SUBCASE("another disk size") {
    Rig r;
    proto::Hello h = original_hello();
    h.disk_size_bytes *= 2;
    CHECK(r.hello(h).fail.at(0).code == proto::ErrorCode::disk_mismatch);
  }
  SUBCASE("a logical block the clone's disk cannot take (smaller than its own, or none)") {
    for (const uint32_t block : {0u, 256u, 768u}) {  // the rig's disk has 512-byte blocks
      Rig r;
      proto::Hello h = original_hello();
      h.logical_block_bytes = block;
      Actions a = r.hello(h);
      CAPTURE(block);
      REQUIRE(a.fail.size() == 1);
      CHECK(a.fail[0].code == proto::ErrorCode::disk_mismatch);
      CHECK_FALSE(a.hello_reply);
    }
    Rig larger;  // its writes, aligned to 4096 bytes, are aligned to 512 too
    proto::Hello h = original_hello();
    h.logical_block_bytes = 4096;
    CHECK(larger.hello(h).hello_reply);
  }
  SUBCASE("another generation") {
    Rig r;
    proto::Hello h = original_hello();
    h.generation = 2;
    CHECK(r.hello(h).fail.at(0).code == proto::ErrorCode::generation_mismatch);
  }
  SUBCASE("the original dropped records the clone needs") {
    Rig r;
    Actions a = r.hello(original_hello(5, 10));
    REQUIRE(a.fail.size() == 1);
    CHECK(a.fail[0].code == proto::ErrorCode::resync_needed);
    CHECK(a.fail[0].message.find("record 1") != std::string::npos);
    CHECK_FALSE(a.hello_reply);
  }
}

TEST_CASE("backpressure: the machine stops accepting when held bytes reach the limit") {
  apply::Limits l;
  l.held_bytes_max = 3 * apply::record_cost_bytes(rec(MsgType::write, 1, 1));
  l.io_depth_max = 1;
  Rig r(fresh_state(), l);
  r.open();
  apply::RecordId first = 0;
  r.send(rec(MsgType::write, 1, 1, 0), &first);
  r.send(rec(MsgType::write, 2, 1, 8192));
  CHECK(r.m.can_accept());
  r.send(rec(MsgType::write, 3, 1, 16384));
  CHECK_FALSE(r.m.can_accept());
  r.io_done(first);
  CHECK(r.m.can_accept());
}

TEST_CASE("the position is committed in groups and each commit is acknowledged") {
  apply::Limits l;
  l.commit_interval_ms = 100;
  Rig r(fresh_state(), l);
  r.tick(1000);
  r.open();
  for (uint64_t e = 1; e <= 3; ++e) {
    apply::RecordId id = 0;
    r.send(rec(MsgType::write, 2 * e - 1, e, 0), &id);
    r.send(rec(MsgType::barrier, 2 * e, e));
    r.io_done(id);
    r.flushed();
  }
  CHECK(r.m.durable().seq == 6);
  CHECK(r.tick(1050).commits.empty());  // within the interval
  Actions a = r.tick(1200);
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.committed_seq == 6);
  CHECK(a.commits[0].state.committed_epoch == 3);
  CHECK(a.commits[0].state.state == proto::CloneState::consistent);
  a = r.committed();
  REQUIRE(a.committed.size() == 1);
  CHECK(a.committed[0].seq == 6);
  CHECK(r.tick(1400).commits.empty());  // nothing new to commit
}

TEST_CASE("receipt acks are batched and only sent when asked for") {
  Rig plain;
  plain.open();
  plain.send(rec(MsgType::write, 1, 1));
  Actions a;
  plain.m.on_read_batch_done(a);
  CHECK(a.receipt_acks.empty());

  Rig r;
  proto::Hello h = original_hello();
  h.flags = proto::kHelloWantReceiptAcks;
  r.hello(h);
  r.committed();
  r.send(rec(MsgType::write, 1, 1));
  r.send(rec(MsgType::write, 2, 1, 8192));
  Actions b;
  r.m.on_read_batch_done(b);
  REQUIRE(b.receipt_acks.size() == 1);
  CHECK(b.receipt_acks[0].seq == 2);
}

TEST_CASE("after an unclean stop the clone is marked inconsistent before replaying") {
  apply::ReplicaState s = fresh_state();
  s.state = proto::CloneState::consistent;
  s.committed_seq = 10;
  s.committed_epoch = 5;
  s.reserved_seq = 1000;
  Rig r(s);
  Actions a = r.hello(original_hello(11, 14));
  REQUIRE(a.hello_reply);
  CHECK(a.hello_reply->applied_seq == 10);
  CHECK(a.hello_reply->applied_epoch == 5);
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.state == proto::CloneState::inconsistent);
  CHECK(a.commits[0].state.consistent_at_seq == 14);  // min(reservation, original's log end)
  // No write before that mark is durable.
  apply::RecordId id = 0;
  CHECK(r.send(rec(MsgType::write, 11, 6), &id).submit.empty());
  CHECK(r.committed().submit.size() == 1);
  r.send(rec(MsgType::barrier, 12, 6));
  r.io_done(id);
  r.flushed();
  CHECK(r.m.replica().state == proto::CloneState::inconsistent);
  apply::RecordId id2 = 0;
  r.send(rec(MsgType::write, 13, 7), &id2);
  r.send(rec(MsgType::barrier, 14, 7));
  r.io_done(id2);
  r.flushed();
  CHECK(r.m.replica().state == proto::CloneState::consistent);
  a = r.tick(10'000);
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.state == proto::CloneState::consistent);
}

TEST_CASE("after an unclean stop with nothing newer at the original the clone stays consistent") {
  apply::ReplicaState s = fresh_state();
  s.state = proto::CloneState::consistent;
  s.committed_seq = 10;
  s.committed_epoch = 5;
  s.reserved_seq = 1000;
  Rig r(s);
  Actions a = r.hello(original_hello(11, 10));
  REQUIRE(a.hello_reply);
  CHECK(a.hello_reply->state == proto::CloneState::consistent);
}

TEST_CASE("after an unclean stop a maintenance session does not settle the window, even at record 0") {
  // A verify or resync hello says its log ends at 0: that is "no log", not
  // "nothing was sent past record 0".
  apply::ReplicaState s = fresh_state();
  s.state = proto::CloneState::consistent;
  s.reserved_seq = 1000;
  Rig r(s);
  REQUIRE(r.m.unclean_until_seq() == 1000);
  proto::Hello h = maintenance_hello(1);
  Actions a = r.hello(h);
  REQUIRE(a.hello_reply);
  CHECK(r.m.unclean_until_seq() == 1000);
  if (!a.commits.empty()) r.committed();
  CHECK(r.m.unclean_until_seq() == 1000);
  // Nor does that session take log records over the unsettled window.
  a = r.send(rec(MsgType::write, 1, 1));
  CHECK(a.submit.empty());
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].message.find("may hold records up to 1000 after an unclean stop") != std::string::npos);
  r.m.end_session(a);
  // The log session that follows still replays under the inconsistent mark.
  a = r.hello(original_hello(1, 14));
  REQUIRE(a.hello_reply);
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.state == proto::CloneState::inconsistent);
  CHECK(a.commits[0].state.consistent_at_seq == 14);
}

TEST_CASE("a hello waits until the previous session's writes have completed") {
  Rig r;
  r.open();
  apply::RecordId id = 0;
  r.send(rec(MsgType::write, 1, 1), &id);
  Actions a;
  r.m.end_session(a);
  a = r.hello();
  CHECK_FALSE(a.hello_reply);
  CHECK(r.m.hello_pending());
  a = r.io_done(id);
  REQUIRE(a.hello_reply);
  CHECK(a.hello_reply->applied_seq == 0);
}

TEST_CASE("ending a session drops the records not yet written") {
  apply::Limits l;
  l.io_depth_max = 1;
  Rig r(fresh_state(), l);
  r.open();
  apply::RecordId a1, a2 = 0;
  r.send(rec(MsgType::write, 1, 1, 0), &a1);
  r.send(rec(MsgType::write, 2, 1, 8192), &a2);
  Actions a;
  r.m.end_session(a);
  REQUIRE(a.dropped.size() == 1);
  CHECK(a.dropped[0] == a2);
  r.io_done(a1);
  CHECK(r.m.held_bytes() == 0);
}

TEST_CASE("a digest mismatch fails the session but not the disk") {
  Rig r;
  r.open();
  apply::RecordId id = 0;
  r.send(rec(MsgType::write, 1, 1), &id);
  Actions a = r.io_done(id, base::Status::error(EBADMSG, "digest mismatch"), true);
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::digest_mismatch);
  CHECK(a.disk_failed.empty());
  CHECK_FALSE(r.m.disk_failed());
}

TEST_CASE("a write refused for its digest ends the session before its epoch's barrier can be flushed") {
  // The refused write is not on the disk: a flush of the barrier behind it
  // would make the clone durable past a record it never wrote.
  Rig r;
  r.open();
  apply::RecordId w1 = 0, w2 = 0;
  r.send(rec(MsgType::write, 1, 1, 0), &w1);
  r.send(rec(MsgType::write, 2, 1, 8192), &w2);
  r.send(rec(MsgType::barrier, 3, 1));
  SUBCASE("the last write of the epoch") {
    CHECK_FALSE(r.io_done(w2).flush);
    Actions a = r.io_done(w1, base::Status::error(EBADMSG, "digest mismatch"), true);
    REQUIRE(a.fail.size() == 1);
    CHECK(a.fail[0].code == proto::ErrorCode::digest_mismatch);
    CHECK_FALSE(a.flush);
  }
  SUBCASE("another write still in flight") {
    Actions a = r.io_done(w1, base::Status::error(EBADMSG, "digest mismatch"), true);
    REQUIRE(a.fail.size() == 1);
    CHECK_FALSE(r.io_done(w2).flush);
  }
  CHECK(r.m.flushing_barrier_seq() == 0);
  CHECK(r.m.durable().seq == 0);
  CHECK(r.m.in_flight() == 0);
}

TEST_CASE("a disk error stops all writing and is reported") {
  Rig r;
  r.open();
  apply::RecordId id = 0;
  r.send(rec(MsgType::write, 1, 1), &id);
  Actions a = r.io_done(id, base::Status::error(EIO, "write failed"));
  CHECK(a.disk_failed.size() == 1);
  CHECK(a.fail.at(0).code == proto::ErrorCode::disk_io);
  CHECK(r.m.disk_failed());
  CHECK_FALSE(r.m.can_accept());
}

TEST_CASE("shutdown finishes the epoch being received and commits a clean position") {
  Rig r;
  r.open();
  apply::RecordId id = 0;
  r.send(rec(MsgType::write, 1, 1), &id);
  Actions a;
  r.m.begin_shutdown(a);
  CHECK(a.commits.empty());
  r.send(rec(MsgType::barrier, 2, 1));
  Actions later = r.send(rec(MsgType::write, 3, 2, 8192));  // the next epoch: not written
  CHECK(later.submit.empty());
  r.io_done(id);
  a = r.flushed();
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.committed_seq == 2);
  CHECK(a.commits[0].state.reserved_seq == 2);  // clean: nothing written past it
  CHECK_FALSE(r.m.done_for_shutdown());
  r.committed();
  CHECK(r.m.done_for_shutdown());
}

TEST_CASE("a forced shutdown mid-epoch keeps the reservation over what was written") {
  Rig r;
  r.open();
  apply::RecordId id = 0;
  r.send(rec(MsgType::write, 1, 1), &id);
  Actions a;
  r.m.begin_shutdown(a);
  r.m.force_shutdown(a);
  a = r.io_done(id);
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.committed_seq == 0);
  CHECK(a.commits[0].state.reserved_seq == 1);
  r.committed();
  CHECK(r.m.done_for_shutdown());
}

TEST_CASE("shutdown with no session commits at once") {
  Rig r;
  Actions a;
  r.m.begin_shutdown(a);
  REQUIRE(a.commits.size() == 1);
  r.committed();
  CHECK(r.m.done_for_shutdown());
}

TEST_CASE("after an unclean stop the clone resumes from the last barrier the original saw acknowledged") {
  apply::ReplicaState s = fresh_state();
  s.state = proto::CloneState::consistent;
  s.committed_seq = 10;
  s.committed_epoch = 5;
  s.reserved_seq = 100;
  Rig r(s);
  proto::Hello h = original_hello(11, 30);
  h.applied_seq = 20;  // acked before the crash, after the last commit
  h.applied_epoch = 9;
  Actions a = r.hello(h);
  REQUIRE(a.hello_reply);
  CHECK(a.hello_reply->applied_seq == 20);
  CHECK(a.hello_reply->applied_epoch == 9);
  // Still a replay window up to the original's log end: marked.
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.state == proto::CloneState::inconsistent);
  CHECK(a.commits[0].state.consistent_at_seq == 30);
}

TEST_CASE("an acknowledged position the clone cannot have written is refused") {
  Rig r;  // clean: nothing can be on the disk past the committed position
  proto::Hello h = original_hello();
  h.applied_seq = 20;
  h.applied_epoch = 9;
  Actions a = r.hello(h);
  REQUIRE(a.fail.size() == 1);
  CHECK(a.fail[0].code == proto::ErrorCode::resync_needed);
}

TEST_CASE("a barrier is acknowledged only inside the durable reservation, so a restart believes every ack") {
  // Issue 12 (seeds 7273, 16413, 972): the reservation runs out exactly at a
  // barrier. The barrier must wait for the commit that covers it, or a power
  // cut before that commit leaves a store whose reservation is one short of
  // what the original was told is durable.
  apply::Limits limits;
  limits.reserve_ahead_records = 1;
  Rig r(fresh_state(), limits);
  r.open();
  apply::RecordId w1 = 0;
  Actions a = r.send(rec(MsgType::write, 1, 1), &w1);
  REQUIRE(a.commits.size() == 1);               // the write waits for a reservation...
  CHECK(a.commits[0].state.reserved_seq == 1);  // ...of exactly itself
  CHECK(r.committed().submit.size() == 1);
  a = r.send(rec(MsgType::barrier, 2, 1));
  REQUIRE(a.commits.size() == 1);  // record 2 is past the reservation: raise it
  const apply::ReplicaState stored = a.commits[0].state;
  CHECK(stored.reserved_seq >= 2);
  a = r.io_done(w1);
  CHECK_FALSE(a.flush);  // not before that commit is durable
  a = r.committed();
  CHECK(a.flush);
  a = r.flushed();
  REQUIRE(a.barrier_acks.size() == 1);
  CHECK(a.barrier_acks[0].seq == 2);

  // The power goes now, before the position itself is committed: the next
  // process believes the original's "you acknowledged 2".
  Rig after(stored, limits);
  proto::Hello h = original_hello(1, 2);
  h.applied_seq = 2;
  h.applied_epoch = 1;
  a = after.hello(h);
  CHECK(a.fail.empty());
  REQUIRE(a.hello_reply);
  CHECK(a.hello_reply->applied_seq == 2);
}

TEST_CASE("a marked barrier is acknowledged only once the store holds its mark, and then reported reached") {
  Rig r;
  r.open();
  apply::RecordId w1 = 0;
  r.send(rec(MsgType::write, 1, 1), &w1);
  proto::RecordHeader b = rec(MsgType::barrier, 2, 1);
  b.flags = proto::kBarrierFlagMark;
  Actions a = r.send(b, nullptr, "before-upgrade");
  REQUIRE(a.commits.size() == 1);  // the mark goes to the store first
  const apply::ReplicaState stored = a.commits[0].state;
  CHECK(stored.mark.name == "before-upgrade");
  CHECK(stored.mark.seq == 2);
  CHECK(stored.mark.epoch == 1);
  a = r.io_done(w1);
  CHECK_FALSE(a.flush);  // not before the mark is durable
  CHECK(r.m.last_mark() == nullptr);
  a = r.committed();
  CHECK(a.flush);
  CHECK(r.m.last_mark() == nullptr);  // stored, but its barrier is not durable yet
  a = r.flushed();
  REQUIRE(a.barrier_acks.size() == 1);
  REQUIRE(a.marks_reached.size() == 1);
  CHECK(a.marks_reached[0].name == "before-upgrade");
  CHECK(a.marks_reached[0].seq == 2);
  REQUIRE(r.m.last_mark() != nullptr);
  CHECK(r.m.last_mark()->name == "before-upgrade");

  // A second mark: the first becomes mark_before, and stays the reached one
  // until the second's barrier is durable.
  r.send(rec(MsgType::write, 3, 2), &w1);
  b = rec(MsgType::barrier, 4, 2);
  b.flags = proto::kBarrierFlagMark;
  a = r.send(b, nullptr, "after-upgrade");
  REQUIRE(a.commits.size() == 1);
  CHECK(a.commits[0].state.mark.name == "after-upgrade");
  CHECK(a.commits[0].state.mark_before.name == "before-upgrade");
  const apply::ReplicaState second = a.commits[0].state;
  CHECK(r.m.last_mark()->name == "before-upgrade");

  // The power goes after the second mark's commit, before its barrier is
  // durable: the next process reports the first.
  Rig after(second);
  REQUIRE(after.m.last_mark() != nullptr);
  CHECK(after.m.last_mark()->name == "before-upgrade");
  const apply::LogMark* from_store = apply::reached_mark(second, second.committed_seq);
  REQUIRE(from_store != nullptr);
  CHECK(from_store->name == "before-upgrade");
}

TEST_CASE("an unmarked barrier resent at a marked one's seq forgets the name") {
  Rig r;
  r.open();
  proto::RecordHeader b = rec(MsgType::barrier, 1, 1);
  b.flags = proto::kBarrierFlagMark;
  Actions a = r.send(b, nullptr, "m1");
  REQUIRE(a.commits.size() == 1);
  a = r.run([&](Actions& x) { r.m.end_session(x); });
  r.committed();  // the mark's commit completes after the session ended
  a = r.hello();
  REQUIRE(a.hello_reply);
  if (!a.commits.empty()) r.committed();
  a = r.send(rec(MsgType::barrier, 1, 1));
  CHECK(a.flush);  // no name, nothing to store first
  a = r.flushed();
  CHECK(a.marks_reached.empty());
}

TEST_CASE("a write is charged the memory its frame really holds") {
  const uint64_t small = apply::record_cost_bytes(rec(MsgType::write, 1, 1, 0, 512));
  const uint64_t four_k = apply::record_cost_bytes(rec(MsgType::write, 1, 1, 0, 4096));
  const uint64_t one_mib = apply::record_cost_bytes(rec(MsgType::write, 1, 1, 0, 1 << 20));
  CHECK(small >= 8192);
  CHECK(four_k >= 12288);
  CHECK(one_mib >= (1u << 20) + 4096);
  CHECK(one_mib < (1u << 20) + 16384);
  CHECK(apply::record_cost_bytes(rec(MsgType::trim, 1, 1, 0, 1 << 30)) == apply::kRecordOverheadBytes);
}
