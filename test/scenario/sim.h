// SPDX-License-Identifier: MIT
// Shared by the level-2 scenario tests: a seeded original (a log of records
// and the source image at each epoch boundary) and a clone (the real apply
// machine over the fault-injecting device, its actions carried out with
// seeded delays and completion orders).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/aligned_buffer.h"
#include "blockio/faulty_device.h"
#include "blockio/memory_device.h"
#include "cloned/apply/apply.h"

namespace sim {

constexpr uint64_t kDiskBytes = 256 * 1024;
constexpr uint32_t kBlock = 512;

struct Rec {
  proto::RecordHeader h;
  std::vector<uint8_t> payload;
};

// The original: a seeded log of records and the source image at each epoch end.
struct Original {
  std::vector<Rec> log;                                  // log[i] has seq i+1
  std::map<uint64_t, std::string> marks;                 // marked barriers: seq -> name
  std::map<uint64_t, std::vector<uint8_t>> at_epoch;     // epoch -> image after it
  std::vector<uint8_t> image = std::vector<uint8_t>(kDiskBytes, 0);

  Original() = default;  // a log filled by the caller (a real write stream)
  explicit Original(uint64_t seed, int epochs) {
    std::mt19937_64 rng(seed);
    at_epoch[0] = image;
    uint64_t seq = 0;
    for (int e = 1; e <= epochs; ++e) {
      int n = 1 + static_cast<int>(rng() % 8);
      for (int i = 0; i < n; ++i) add_extent(rng, ++seq, static_cast<uint64_t>(e));
      Rec b;
      b.h.type = proto::MsgType::barrier;
      b.h.seq = ++seq;
      b.h.epoch = static_cast<uint64_t>(e);
      // Every fourth barrier names a mark (no draw from rng: seeds keep their streams).
      if (e % 4 == 0) {
        const std::string name = "mark-" + std::to_string(e);
        b.h.flags = proto::kBarrierFlagMark;
        b.payload.assign(name.begin(), name.end());
        marks[b.h.seq] = name;
      }
      log.push_back(b);
      at_epoch[static_cast<uint64_t>(e)] = image;
    }
  }
  // The newest mark at or before `seq` ("" when none).
  std::string newest_mark(uint64_t seq) const {
    auto it = marks.upper_bound(seq);
    return it == marks.begin() ? std::string() : std::prev(it)->second;
  }
  void add_extent(std::mt19937_64& rng, uint64_t seq, uint64_t epoch) {
    Rec r;
    uint64_t blocks = 1 + rng() % 16;
    r.h.offset_bytes = (rng() % (kDiskBytes / kBlock - blocks)) * kBlock;
    r.h.length_bytes = blocks * kBlock;
    r.h.seq = seq;
    r.h.epoch = epoch;
    int kind = static_cast<int>(rng() % 10);
    r.h.type = kind == 0 ? proto::MsgType::trim : kind == 1 ? proto::MsgType::zero : proto::MsgType::write;
    if (r.h.type == proto::MsgType::write) {
      r.payload.resize(r.h.length_bytes);
      for (auto& b : r.payload) b = static_cast<uint8_t>(rng());
      std::copy(r.payload.begin(), r.payload.end(), image.begin() + static_cast<long>(r.h.offset_bytes));
    } else {
      std::fill_n(image.begin() + static_cast<long>(r.h.offset_bytes), r.h.length_bytes, 0);
    }
    log.push_back(r);
  }
};

// The clone: a machine whose actions are carried out with seeded delays.
struct Clone {
  blockio::FaultyDevice& disk;
  std::mt19937_64& rng;
  apply::Machine machine;
  std::map<apply::RecordId, uint64_t> id_to_index;  // into the original's log
  std::vector<apply::RecordId> pending_io;
  bool pending_flush = false;
  std::vector<apply::ReplicaState> pending_commits;
  apply::ReplicaState& stored;  // what the state store holds
  uint64_t acked_epoch = 0;              // the last barrier ack the clone sent
  std::vector<apply::SendBarrierAck> acks_on_the_wire;  // not yet seen by the original
  apply::SendBarrierAck& original_saw;   // the last ack the original received
  bool failed = false;
  bool hello_sent = false;
  uint64_t hello_applied = 0;            // the position the clone's hello reported
  apply::Actions last;                   // what the last step() produced
  std::vector<apply::MarkReached> marks_reached;  // reported, not yet checked

  Clone(blockio::FaultyDevice& d, std::mt19937_64& r, apply::ReplicaState& s, apply::SendBarrierAck& saw,
        const apply::Limits& limits)
      : disk(d), rng(r), machine(d.geometry(), s, limits), stored(s), original_saw(saw) {}

  // For actions that may carry a refusal on purpose.
  void handle_quietly(apply::Actions& a) {
    std::vector<apply::FailSession> expected;
    expected.swap(a.fail);
    handle(a);
    a.fail.swap(expected);
  }
  void handle(apply::Actions& a) {
    if (a.hello_reply) {
      hello_sent = true;
      hello_applied = a.hello_reply->applied_seq;
    }
    for (const auto& s : a.submit) pending_io.push_back(s.id);
    if (a.flush) pending_flush = true;
    for (const auto& c : a.commits) pending_commits.push_back(c.state);
    marks_reached.insert(marks_reached.end(), a.marks_reached.begin(), a.marks_reached.end());
    for (const auto& b : a.barrier_acks) {
      acked_epoch = std::max(acked_epoch, b.epoch);
      acks_on_the_wire.push_back(b);
    }
    if (!a.fail.empty()) {
      failed = true;
      FAIL_CHECK(a.fail[0].message);
    }
  }
  // Completes one pending operation, chosen at random. False when idle.
  bool step(const Original& o) {
    // Acks reach the original after a random delay; a power cut loses those
    // still on the wire.
    if (!acks_on_the_wire.empty() && rng() % 2 == 0) {
      original_saw = acks_on_the_wire.back();
      acks_on_the_wire.clear();
    }
    std::vector<int> kinds;
    if (!pending_io.empty()) kinds.push_back(0);
    if (pending_flush) kinds.push_back(1);
    if (!pending_commits.empty()) kinds.push_back(2);
    if (kinds.empty()) return false;
    apply::Actions a;
    switch (kinds[rng() % kinds.size()]) {
      case 0: {
        size_t i = rng() % pending_io.size();
        apply::RecordId id = pending_io[i];
        pending_io.erase(pending_io.begin() + static_cast<long>(i));
        machine.on_io_done(id, perform(o.log[id_to_index.at(id)]), false, a);
        break;
      }
      case 1:
        pending_flush = false;
        machine.on_flush_done(disk.flush(), a);
        break;
      case 2:
        stored = pending_commits.front();
        pending_commits.erase(pending_commits.begin());
        machine.on_commit_done(base::Status::ok(), a);
        break;
    }
    handle(a);
    last = a;
    return true;
  }
  base::Status perform(const Rec& r) {
    switch (r.h.type) {
      case proto::MsgType::write: {
        base::AlignedBuffer buf(r.payload.size());
        std::copy(r.payload.begin(), r.payload.end(), buf.data());
        return disk.write(r.h.offset_bytes, buf.span());
      }
      case proto::MsgType::trim: return disk.discard(r.h.offset_bytes, r.h.length_bytes);
      default: return disk.write_zeroes(r.h.offset_bytes, r.h.length_bytes);
    }
  }
};

inline proto::Hello hello_from(const Original& o, const proto::PairId& pair, const apply::SendBarrierAck& saw) {
  proto::Hello h;
  h.role = proto::Role::original;
  h.pair_id = pair;
  h.disk_size_bytes = kDiskBytes;
  h.logical_block_bytes = kBlock;
  h.generation = 1;
  h.log_start_seq = 1;
  h.log_end_seq = o.log.size();
  h.applied_seq = saw.seq;
  h.applied_epoch = saw.epoch;
  return h;
}

inline std::vector<uint8_t> disk_image(blockio::FaultyDevice& d) {
  return static_cast<blockio::MemoryDevice&>(d.inner()).contents();
}

}  // namespace sim
