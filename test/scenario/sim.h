// SPDX-License-Identifier: MIT
// Shared by the level-2 scenario tests: a seeded original (a log of records
// and the source image at each epoch boundary) and a clone (the real apply
// machine over the fault-injecting device, its actions carried out with
// seeded delays and completion orders).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "base/aligned_buffer.h"
#include "blockio/faulty_device.h"
#include "blockio/memory_device.h"
#include "cloned/apply/apply.h"
#include "test/scenario/sim_stage.h"

namespace sim {

constexpr uint64_t kDiskBytes = 256 * 1024;
constexpr uint32_t kBlock = 512;

struct Rec {
  proto::RecordHeader h;
  std::vector<uint8_t> payload;
};

// The original: a seeded log of records and the source image at each epoch end.
struct Original {
  std::vector<Rec> log;                               // log[i] has seq i+1
  std::map<uint64_t, std::string> marks;              // marked barriers: seq -> name
  std::map<uint64_t, std::vector<uint8_t>> at_epoch;  // epoch -> image after it
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
    }
    apply_to(r, image);
    log.push_back(r);
  }
  static void apply_to(const Rec& r, std::vector<uint8_t>& img) {
    if (r.h.type == proto::MsgType::barrier) return;
    if (r.h.type == proto::MsgType::write)
      std::copy(r.payload.begin(), r.payload.end(), img.begin() + static_cast<long>(r.h.offset_bytes));
    else
      std::fill_n(img.begin() + static_cast<long>(r.h.offset_bytes), r.h.length_bytes, 0);
  }
  // The same log over a disk that changed behind it at the end of epoch `e`
  // (the log was lost, or another system booted it): `changed` is the disk
  // then, and the log's later records apply on top of it. It keeps the images
  // at epoch ends from `changed` on: the earlier ones are no state of that disk.
  Original diverged_after(uint64_t e, std::vector<uint8_t> changed) const {
    Original d;
    d.log = log;
    d.marks = marks;
    d.at_epoch[e] = changed;
    d.image = std::move(changed);
    for (const Rec& r : log) {
      if (r.h.epoch <= e) continue;
      apply_to(r, d.image);
      if (r.h.type == proto::MsgType::barrier) d.at_epoch[r.h.epoch] = d.image;
    }
    return d;
  }
  // Calls visit(epoch, image) for each epoch end in order: the images kept,
  // then those after the last one kept, replayed from it.
  template <typename Visit>
  void each_epoch_image(Visit&& visit) const {
    if (at_epoch.empty()) return;
    for (const auto& [e, img] : at_epoch) visit(e, img);
    const auto& [last, last_img] = *at_epoch.rbegin();
    if (log.empty() || log.back().h.epoch <= last) return;
    std::vector<uint8_t> img = last_img;
    for (const Rec& r : log) {
      if (r.h.epoch <= last) continue;
      apply_to(r, img);
      if (r.h.type == proto::MsgType::barrier) visit(r.h.epoch, img);
    }
  }
};

// How often the workers' lag was modelled (Clone::worker_lag).
struct LagTally {
  uint64_t early_flushes = 0, late_reports = 0;
  uint64_t let_go_after_session_end = 0;  // writes an early flush let go, performed after the session ended
};

// The clone: a machine whose actions are carried out with seeded delays.
struct Clone {
  blockio::FaultyDevice& disk;
  std::mt19937_64& rng;
  apply::Machine machine;
  std::map<apply::RecordId, uint64_t> id_to_index;  // into the original's log
  std::vector<apply::RecordId> pending_io;
  // Writes behind the next flush (SubmitIo::after_flush_gate): started once
  // it succeeds, completed unwritten (ECANCELED) if it fails or a write it
  // covers failed, or when the machine cancels them. All wait for one gate,
  // named to no flush before and asked of the next barrier flush; gates
  // increase and none is named twice.
  std::vector<apply::RecordId> held_io;
  uint64_t held_gate = 0;
  uint64_t settled_gate = 0;  // the highest gate flushed or cancelled
  std::set<apply::RecordId> cancelled_io;
  std::map<apply::RecordId, uint64_t> covered_by;  // SubmitIo::covered_by_gate
  uint64_t failed_gate = 0;                        // the highest covering a write that failed
  bool pending_flush = false;
  uint64_t pending_flush_gate = 0;
  // The workers' early flush (Daemon::ask_early_flush): armed for the gate
  // the machine names while a barrier waits for its epoch's writes, it runs
  // once nothing submitted before it is pending, and lets the writes held
  // behind that gate go; the machine hears of it only when it asks that
  // flush itself. And completions that reach the machine late (a worker's
  // push waits for the loop's next drain): performed, not yet reported.
  bool worker_lag = false;           // models both (off: the random stream of seeds found before them)
  uint64_t early_asked_gate = 0;     // the last gate it was asked for
  uint64_t early_gate = 0;           // armed for this gate; 0: none
  uint64_t early_epoch = 0;          // the epoch its barrier ends
  bool early_ran = false;            // ran for early_gate (succeeded, or early_failure)
  base::Status early_failure;        // reported by the machine's next flush, whatever it is for
  bool written_since_ask = false;    // a write not behind the gate was submitted after it was armed
  uint64_t early_durable_epoch = 0;  // the highest epoch an early flush made durable
  std::vector<std::pair<apply::RecordId, base::Status>> unreported;
  std::set<apply::RecordId> let_go_early;  // by an early flush, not yet performed
  LagTally* lag_tally = nullptr;
  std::vector<apply::ReplicaState> pending_commits;
  apply::ReplicaState& stored;                          // what the state store holds
  uint64_t acked_epoch = 0;                             // the last barrier ack the clone sent
  std::vector<apply::SendBarrierAck> acks_on_the_wire;  // not yet seen by the original
  apply::SendBarrierAck& original_saw;                  // the last ack the original received
  bool failed = false;
  bool hello_sent = false;
  uint64_t hello_applied = 0;                     // the position the clone's hello reported
  uint32_t hello_flags = 0;                       // and its flags
  apply::Actions last;                            // what the last step() produced
  std::vector<apply::MarkReached> marks_reached;  // reported, not yet checked
  // Resync (resync.cpp): the stage worker when the clone stages (null: it
  // does not), the bytes of resync extents that go to the disk in place, and
  // the maintenance session's answers not yet read by the original.
  StageWorker* stage = nullptr;
  std::map<apply::RecordId, Rec> resync_extents;
  std::map<apply::RecordId, std::vector<apply::Extent>> resync_only;  // SubmitIo::only
  struct Answers {
    std::optional<proto::ResyncState> state;
    std::optional<proto::ResyncPlanReply> plan_reply;
    std::vector<uint64_t> mark_acks;
    std::optional<proto::ResyncDone> done;
  } answers;

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
      hello_flags = a.hello_reply->flags;
    }
    if (machine.staging()) {  // the disk keeps its generation: nothing goes to it
      for (const auto& s : a.submit) CHECK_MESSAGE(s.to_stage, "a staged resync wrote the disk before its end");
      CHECK_MESSAGE(!a.flush, "a staged resync flushed the disk before its end");
    }
    for (const auto& s : a.submit) {
      if (s.to_stage) continue;  // the stage worker's (below)
      covered_by[s.id] = s.covered_by_gate;
      if (s.after_flush_gate == 0) {
        written_since_ask = true;
        if (early_gate != 0 && !early_ran) early_gate = 0;  // disarmed: the workers have a new write to wait for
      }
      if (s.after_flush_gate != 0 && s.after_flush_gate == early_gate && early_ran) {
        // Its gate was flushed early (or failed so): started, or cancelled, at once.
        if (!early_failure.is_ok()) cancelled_io.insert(s.id);
        if (early_failure.is_ok()) let_go_early.insert(s.id);
        pending_io.push_back(s.id);
        continue;
      }
      if (s.after_flush_gate != 0) {
        CHECK_MESSAGE(s.after_flush_gate > settled_gate,
                      "a write behind gate " << s.after_flush_gate << ", one already flushed or cancelled");
        CHECK_MESSAGE((held_io.empty() || held_gate == s.after_flush_gate), "held writes behind two gates");
        CHECK_MESSAGE(s.covered_by_gate == s.after_flush_gate + 1, "a held write covered by the wrong gate");
        held_gate = s.after_flush_gate;
        held_io.push_back(s.id);
        continue;
      }
      pending_io.push_back(s.id);
      if (!s.only.empty()) resync_only[s.id] = s.only;
    }
    if (stage != nullptr) stage->take(a);
    for (apply::RecordId id : a.dropped) {
      resync_extents.erase(id);
      if (stage != nullptr) stage->extents.erase(id);
    }
    if (a.resync_state) answers.state = a.resync_state;
    if (a.plan_reply) answers.plan_reply = a.plan_reply;
    answers.mark_acks.insert(answers.mark_acks.end(), a.resync_mark_acks.begin(), a.resync_mark_acks.end());
    if (a.resync_done) answers.done = a.resync_done;
    if (a.flush) {
      pending_flush = true;
      pending_flush_gate = a.flush_gate;
      if (a.flush_gate != 0) {
        CHECK_MESSAGE((a.flush_gate > settled_gate || (a.flush_gate == early_gate && early_ran)),
                      "flush gate " << a.flush_gate << " named before");
        CHECK_MESSAGE((held_io.empty() || held_gate == a.flush_gate),
                      "writes held behind gate " << held_gate << " let go by the flush of gate " << a.flush_gate);
      } else {
        CHECK_MESSAGE(held_io.empty(), "writes held behind a flush no write waits for");
      }
    }
    if (a.cancel_after_flush) {
      cancel_held();
      if (!early_ran) early_gate = 0;  // its barrier is gone: an early flush not yet run has nothing to let go
    }
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
    arm_early_flush();
  }
  // As DiskWorkers::flush_when_drained: armed only while a write is still
  // outstanding at the workers (performed-but-unheard ones are not); a write
  // not behind the gate, submitted before it runs, disarms it.
  void arm_early_flush() {
    if (!worker_lag) return;
    const uint64_t gate = machine.gate_after_in_flight();
    if (gate == 0 || gate == early_asked_gate) return;  // as Daemon::ask_early_flush: each gate asked once
    early_asked_gate = gate;
    if (!io_outstanding()) return;
    early_gate = gate;
    early_epoch = machine.durable().epoch + 1;
    early_ran = false;
    written_since_ask = false;
  }
  bool io_outstanding() const {
    for (apply::RecordId id : pending_io)
      if (cancelled_io.count(id) == 0) return true;
    return false;
  }
  // Everything submitted before the early flush was armed is performed.
  bool early_flush_ready() const { return early_gate != 0 && !early_ran && !pending_flush && !io_outstanding(); }
  void cancel_held() {
    if (!held_io.empty()) settled_gate = std::max(settled_gate, held_gate);
    for (apply::RecordId id : held_io) {
      cancelled_io.insert(id);
      pending_io.push_back(id);
    }
    held_io.clear();
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
    if (stage != nullptr && stage->busy()) kinds.push_back(3);
    if (!unreported.empty()) kinds.push_back(4);
    if (early_flush_ready()) kinds.push_back(5);
    if (kinds.empty()) return false;
    apply::Actions a;
    switch (kinds[rng() % kinds.size()]) {
      case 0: {
        size_t i = rng() % pending_io.size();
        apply::RecordId id = pending_io[i];
        pending_io.erase(pending_io.begin() + static_cast<long>(i));
        base::Status st = base::Status::error(ECANCELED, "not written: the flush it waited for did not succeed");
        if (cancelled_io.erase(id) == 0) {
          check_write_order(o, id);
          st = perform(o, id);
          if (!st.is_ok()) failed_gate = std::max(failed_gate, covered_by[id]);  // a cancelled one never ran
          if (let_go_early.count(id) != 0 && !machine.in_session() && lag_tally != nullptr)
            ++lag_tally->let_go_after_session_end;
        }
        let_go_early.erase(id);
        covered_by.erase(id);
        if (worker_lag && rng() % 4 == 0) {  // the loop hears of it later
          unreported.emplace_back(id, st);
          if (lag_tally != nullptr) ++lag_tally->late_reports;
          break;
        }
        machine.on_io_done(id, st, false, a);
        break;
      }
      case 4: {
        const size_t i = rng() % unreported.size();
        const auto [id, st] = unreported[i];
        unreported.erase(unreported.begin() + static_cast<long>(i));
        machine.on_io_done(id, st, false, a);
        break;
      }
      case 5: {  // the workers' early flush: the machine is not told
        early_ran = true;
        if (lag_tally != nullptr) ++lag_tally->early_flushes;
        const base::Status st = disk.flush();
        if (st.is_ok() && failed_gate < early_gate) {
          if (held_gate == early_gate) {
            let_go_early.insert(held_io.begin(), held_io.end());
            pending_io.insert(pending_io.end(), held_io.begin(), held_io.end());
            held_io.clear();
          }
          early_durable_epoch = std::max(early_durable_epoch, early_epoch);
        } else {
          early_failure = st.is_ok() ? base::Status::error(EIO, "a write the early flush covers failed") : st;
          if (held_gate == early_gate) cancel_held();
        }
        settled_gate = std::max(settled_gate, early_gate);
        break;
      }
      case 1: {
        pending_flush = false;
        const uint64_t asked = pending_flush_gate;
        base::Status st;
        if (!early_failure.is_ok()) {
          st = std::exchange(early_failure, base::Status::ok());  // as Daemon::flush: the next flush reports it
        } else if (asked != 0 && asked == early_gate && early_ran && !written_since_ask) {
          // answered by the early flush: nothing written since
        } else {
          st = disk.flush();
        }
        if (asked != 0 && asked == early_gate) early_gate = 0;  // settled by the machine's own flush now
        const uint64_t gate = std::exchange(pending_flush_gate, 0);
        if (st.is_ok() && failed_gate < gate) {
          pending_io.insert(pending_io.end(), held_io.begin(), held_io.end());
          held_io.clear();
        } else {
          cancel_held();
        }
        settled_gate = std::max(settled_gate, gate);
        machine.on_flush_done(st, a);
        break;
      }
      case 2:
        stored = pending_commits.front();
        pending_commits.erase(pending_commits.begin());
        machine.on_commit_done(base::Status::ok(), a);
        break;
      case 3:
        stage->run_one(machine, disk, a);
        if (stage->apply_cut) {  // the disk failed as the power went: what the machine says of it is moot
          handle_quietly(a);
          last = a;
          return true;
        }
        break;
    }
    handle(a);
    last = a;
    return true;
  }
  // Invariant 5 as the disk sees it: a log record of epoch e + 1 is written
  // only once epoch e is durable (its barrier's flush has completed).
  void check_write_order(const Original& o, apply::RecordId id) const {
    if (resync_extents.count(id) != 0) return;
    const proto::RecordHeader& h = o.log[id_to_index.at(id)].h;
    CHECK_MESSAGE((h.epoch <= machine.durable().epoch + 1 || let_go_early.count(id) != 0),
                  "record " << h.seq << " of epoch " << h.epoch << " written with epoch " << machine.durable().epoch
                            << " durable");
  }
  // The bytes of an accepted resync extent: for the stage or for the disk.
  void keep_extent(apply::RecordId id, const proto::RecordHeader& h, base::ByteSpan payload) {
    if (machine.staging() && stage != nullptr) return stage->keep(id, h, payload);
    resync_extents[id] = Rec{h, std::vector<uint8_t>(payload.begin(), payload.end())};
  }
  base::Status perform(const Original& o, apply::RecordId id) {
    auto x = resync_extents.find(id);
    if (x == resync_extents.end()) return perform(o.log[id_to_index.at(id)]);
    const Rec r = std::move(x->second);
    resync_extents.erase(x);
    auto only = resync_only.find(id);
    std::vector<apply::Extent> parts{{r.h.offset_bytes, r.h.length_bytes}};
    if (only != resync_only.end()) {
      parts = std::move(only->second);
      resync_only.erase(only);
    }
    for (const apply::Extent& p : parts) {  // a resync extent: just its parts the log did not write
      Rec part;
      part.h = r.h;
      part.h.type = r.h.type == proto::MsgType::resync_zero ? proto::MsgType::zero : proto::MsgType::write;
      part.h.offset_bytes = p.offset_bytes;
      part.h.length_bytes = p.length_bytes;
      if (part.h.type == proto::MsgType::write) {
        const auto from = r.payload.begin() + static_cast<long>(p.offset_bytes - r.h.offset_bytes);
        part.payload.assign(from, from + static_cast<long>(p.length_bytes));
      }
      BASE_TRY(perform(part));
    }
    return base::Status::ok();
  }
  base::Status perform(const Rec& r) {
    switch (r.h.type) {
      case proto::MsgType::write: {
        base::AlignedBuffer buf(r.payload.size());
        std::copy(r.payload.begin(), r.payload.end(), buf.data());
        return disk.write(r.h.offset_bytes, buf.span());
      }
      case proto::MsgType::trim:
        return disk.discard(r.h.offset_bytes, r.h.length_bytes);
      default:
        return disk.write_zeroes(r.h.offset_bytes, r.h.length_bytes);
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
