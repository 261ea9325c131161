// SPDX-License-Identifier: MIT
// A test rig around the apply machine: it remembers the actions of each
// event. Shared by the apply tests.
#pragma once

#include <doctest/doctest.h>

#include "cloned/apply/apply.h"

namespace apply_test {

using apply::Actions;
using apply::Machine;
using proto::MsgType;


inline constexpr uint64_t kDisk = 1 << 20;
inline const proto::PairId kPair{1, 2, 3};

inline apply::ReplicaState fresh_state() {
  apply::ReplicaState s;
  s.pair_id = kPair;
  s.generation = 1;
  return s;
}

inline proto::Hello original_hello(uint64_t log_start = 1, uint64_t log_end = 1000) {
  proto::Hello h;
  h.role = proto::Role::original;
  h.pair_id = kPair;
  h.disk_size_bytes = kDisk;
  h.logical_block_bytes = 512;
  h.generation = 1;
  h.log_start_seq = log_start;
  h.log_end_seq = log_end;
  return h;
}

inline proto::RecordHeader rec(MsgType t, uint64_t seq, uint64_t epoch, uint64_t off = 0, uint64_t len = 4096) {
  proto::RecordHeader h;
  h.type = t;
  h.seq = seq;
  h.epoch = epoch;
  if (t != MsgType::barrier) {
    h.offset_bytes = off;
    h.length_bytes = len;
  }
  return h;
}

// Wraps a machine and remembers what it asked for.
struct Rig {
  explicit Rig(apply::ReplicaState s = fresh_state(), apply::Limits l = {})
      : m(blockio::Geometry{kDisk, 512, 4096}, s, l) {}
  Machine m;
  Actions last;

  Actions run(auto&& f) {
    Actions a;
    f(a);
    last = a;
    return a;
  }
  Actions hello(const proto::Hello& h = original_hello()) { return run([&](Actions& a) { m.start_session(h, a); }); }
  Actions send(const proto::RecordHeader& h, apply::RecordId* id = nullptr, std::string_view mark = {}) {
    return run([&](Actions& a) {
      apply::RecordId got = 0;
      m.on_record(h, got, a, mark);
      if (id) *id = got;
    });
  }
  Actions io_done(apply::RecordId id, base::Status s = base::Status::ok(), bool digest = false) {
    return run([&](Actions& a) { m.on_io_done(id, s, digest, a); });
  }
  Actions flushed(base::Status s = base::Status::ok()) { return run([&](Actions& a) { m.on_flush_done(s, a); }); }
  Actions committed(base::Status s = base::Status::ok()) { return run([&](Actions& a) { m.on_commit_done(s, a); }); }
  Actions tick(uint64_t now) { return run([&](Actions& a) { m.on_tick(now, a); }); }
  // Opens a session and completes the reservation commit it asks for.
  void open() {
    Actions a = hello();
    REQUIRE(a.hello_reply);
    if (!a.commits.empty()) committed();
  }
};


// A clone that holds generation 1, whole, at record 5 (epoch 2).
inline apply::ReplicaState consistent_gen1() {
  apply::ReplicaState s = fresh_state();
  s.committed_seq = s.reserved_seq = 5;
  s.committed_epoch = 2;
  s.state = proto::CloneState::consistent;
  return s;
}

// An original's hello for a resync or verify of `generation`.
inline proto::Hello maintenance_hello(uint64_t generation, uint64_t log_start = 1, uint64_t log_end = 0) {
  proto::Hello h = original_hello(log_start, log_end);
  h.generation = generation;
  h.flags |= proto::kHelloMaintenance;
  return h;
}

inline proto::RecordHeader resync_data(uint64_t off, uint64_t len = 4096) {
  proto::RecordHeader h;
  h.type = MsgType::resync_data;
  h.offset_bytes = off;
  h.length_bytes = len;
  return h;
}

}  // namespace apply_test
