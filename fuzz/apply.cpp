// SPDX-License-Identifier: MIT
// Fuzz target: the apply state machine fed decoded records, with the daemon's
// side played by this driver (completions in any order, failures, ticks,
// session ends, shutdown) as link.cpp and daemon.cpp drive it.
//
// Input: one byte picks the loaded state, then a list of operations, each an
// opcode byte and its arguments (see step()). Records come two ways: raw
// message bytes through decode_record, as a peer sends them, and compact
// fields that the driver encodes, so that most of them are valid and the
// machine gets deep into epochs, overlaps, backpressure and catch-up.
//
// Checked on every action (docs/ARCHITECTURE.md, the invariants):
//  - a submitted record is inside the disk, aligned, and overlaps nothing in
//    flight (3, 5); no more than io_depth_max are in flight;
//  - a flush is asked for only with nothing in flight, one at a time, and a
//    barrier ack follows a completed flush, epochs increasing (4);
//  - one store commit at a time; held bytes stay bounded (9).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cloned/apply/apply.h"
#include "fuzz/fuzz_support.h"

namespace {

constexpr uint64_t kDiskBytes = 1 << 20;
constexpr uint32_t kBlockBytes = 512;

apply::Limits limits() {
  apply::Limits l;
  l.held_bytes_max = 64 * 1024;
  l.io_depth_max = 4;
  l.commit_interval_ms = 10;
  l.reserve_ahead_records = 8;
  return l;
}

apply::ReplicaState loaded_state(uint8_t pick) {
  apply::ReplicaState s;
  s.pair_id = fuzz::fixed_pair_id();
  if (pick % 2 == 1) {  // after an unclean stop: the disk may hold records past the commit
    s.committed_seq = 6;
    s.committed_epoch = 2;
    s.reserved_seq = 20;
    s.state = proto::CloneState::consistent;
  }
  return s;
}

struct Driver {
  apply::Machine machine;
  std::vector<apply::SubmitIo> in_flight;
  std::vector<apply::SubmitIo> held;  // behind the next flush (after_flush_gate)
  std::vector<apply::RecordId> cancelled;  // completed unwritten by the next io_done
  uint64_t failed_gate = 0;   // the highest SubmitIo::covered_by_gate of a write that failed
  uint64_t settled_gate = 0;  // the highest gate flushed or cancelled
  uint64_t flush_gate = 0;    // of the flush pending
  bool flush_pending = false;
  size_t commits_pending = 0;
  bool session = false;  // a connection is in session (the daemon's session_)
  bool shutdown = false;
  uint64_t last_ack_epoch = 0;
  uint64_t now_ms = 0;

  explicit Driver(uint8_t pick) : machine({kDiskBytes, kBlockBytes, 4096}, loaded_state(pick), limits()) {}

  static bool overlaps(const proto::RecordHeader& a, const proto::RecordHeader& b) {
    return a.offset_bytes < b.offset_bytes + b.length_bytes && b.offset_bytes < a.offset_bytes + a.length_bytes;
  }

  void handle(apply::Actions& a, bool after_flush) {
    for (const apply::SubmitIo& s : a.submit) {
      const proto::RecordHeader& h = s.header;
      FUZZ_CHECK(h.type == proto::MsgType::write || h.type == proto::MsgType::trim || h.type == proto::MsgType::zero);
      FUZZ_CHECK(h.length_bytes > 0 && h.offset_bytes <= kDiskBytes && h.length_bytes <= kDiskBytes - h.offset_bytes);
      FUZZ_CHECK(h.offset_bytes % kBlockBytes == 0 && h.length_bytes % kBlockBytes == 0);
      if (s.after_flush_gate != 0) {  // may overlap what is in flight: it starts after
        for (const apply::SubmitIo& f : held)
          FUZZ_CHECK(!overlaps(h, f.header) && f.after_flush_gate == s.after_flush_gate);
        FUZZ_CHECK(s.after_flush_gate > settled_gate && s.covered_by_gate == s.after_flush_gate + 1);
        held.push_back(s);
        FUZZ_CHECK(held.size() <= limits().io_depth_max);
        continue;
      }
      for (const apply::SubmitIo& f : in_flight) FUZZ_CHECK(!overlaps(h, f.header));
      FUZZ_CHECK(held.empty());  // the machine waits for the flush they wait for
      in_flight.push_back(s);
      FUZZ_CHECK(in_flight.size() <= limits().io_depth_max);
    }
    if (a.cancel_after_flush) cancel_held();
    if (a.flush) {
      FUZZ_CHECK(in_flight.empty() && !flush_pending);
      FUZZ_CHECK(a.flush_gate == 0 || a.flush_gate > settled_gate);
      for (const apply::SubmitIo& s : held) FUZZ_CHECK(s.after_flush_gate == a.flush_gate);
      flush_pending = true;
      flush_gate = a.flush_gate;
    }
    for (const apply::SendBarrierAck& b : a.barrier_acks) {
      FUZZ_CHECK(after_flush && b.epoch > last_ack_epoch);
      last_ack_epoch = b.epoch;
    }
    commits_pending += a.commits.size();
    FUZZ_CHECK(commits_pending <= 1);
    for (const apply::FailSession& f : a.fail) FUZZ_CHECK(!f.message.empty());
    FUZZ_CHECK(machine.held_bytes() <= limits().held_bytes_max + proto::kMaxWritePayloadBytes + apply::kRecordOverheadBytes);
    // A failed session is closed by the daemon right away (close_conn).
    if (!a.fail.empty() && session) end_session();
  }

  void end_session() {
    session = false;
    apply::Actions a;
    machine.end_session(a);
    handle(a, false);
  }

  void hello(base::ByteSpan bytes) {
    base::Bytes msg(bytes.begin(), bytes.end());
    if (!msg.empty()) msg[0] = static_cast<uint8_t>(proto::MsgType::hello);
    proto::Hello h;
    if (!proto::decode_hello(msg, h).is_ok()) return;
    if (session) end_session();  // superseded by the new connection
    session = true;
    apply::Actions a;
    machine.start_session(h, a);
    handle(a, false);
  }

  void record(const proto::RecordHeader& h) {
    if (!session || !machine.can_accept()) return;  // the daemon stops reading
    apply::Actions a;
    apply::RecordId id = 0;
    machine.on_record(h, id, a);
    handle(a, false);
  }

  void raw_record(base::ByteSpan msg) {
    proto::RecordHeader h;
    base::ByteSpan payload;
    if (proto::decode_record(msg, h, payload).is_ok()) record(h);
  }

  // Mostly valid: the next seq give or take, the open epoch give or take,
  // block-aligned extents somewhere on (or just off) the disk.
  void compact_record(base::ByteReader& r) {
    proto::RecordHeader h;
    const uint8_t kind = r.u8();
    h.type = static_cast<proto::MsgType>(static_cast<uint8_t>(proto::MsgType::write) + kind % 4);
    h.seq = machine.received_seq() + 1 + static_cast<uint64_t>(static_cast<int8_t>(r.u8()) / 64);
    h.epoch = std::max<uint64_t>(machine.durable().epoch + 1, 1) + r.u8() % 4;
    h.offset_bytes = uint64_t{r.u16()} * kBlockBytes % (kDiskBytes + 4 * kBlockBytes);
    h.length_bytes = h.type == proto::MsgType::barrier ? 0 : (1 + uint64_t{r.u8()}) * kBlockBytes;
    if ((kind & 0x80) != 0) h.offset_bytes += 1;  // misaligned now and then
    record(h);
  }

  void cancel_held() {
    for (const apply::SubmitIo& s : held) {
      cancelled.push_back(s.id);
      settled_gate = std::max(settled_gate, s.after_flush_gate);
    }
    held.clear();
  }

  void io_done(base::ByteReader& r) {
    if (!cancelled.empty()) {
      const apply::RecordId id = cancelled.back();
      cancelled.pop_back();
      apply::Actions a;
      machine.on_io_done(id, base::Status::error(ECANCELED, "not written."), false, a);
      handle(a, false);
      return;
    }
    if (in_flight.empty()) return;
    const size_t i = r.u8() % in_flight.size();
    const uint8_t how = r.u8();
    const apply::RecordId id = in_flight[i].id;
    const uint64_t covered_by = in_flight[i].covered_by_gate;
    in_flight.erase(in_flight.begin() + static_cast<long>(i));
    const bool digest_mismatch = how == 0xfe;
    const base::Status st = how < 0xfd ? base::Status::ok() : base::Status::error(EIO, "injected I/O error.");
    if (!st.is_ok()) failed_gate = std::max(failed_gate, covered_by);
    apply::Actions a;
    machine.on_io_done(id, st, digest_mismatch, a);
    handle(a, false);
  }

  void flush_done(uint8_t how) {
    if (!flush_pending) return;
    flush_pending = false;
    const base::Status st = how == 0xff ? base::Status::error(EIO, "injected flush error.") : base::Status::ok();
    if (st.is_ok() && failed_gate < flush_gate) {
      for (const apply::SubmitIo& s : held) {
        for (const apply::SubmitIo& f : in_flight) FUZZ_CHECK(!overlaps(s.header, f.header));
        in_flight.push_back(s);
      }
      held.clear();
    } else {
      cancel_held();
    }
    settled_gate = std::max(settled_gate, flush_gate);
    apply::Actions a;
    machine.on_flush_done(st, a);
    handle(a, true);
  }

  void commit_done(uint8_t how) {
    if (commits_pending == 0) return;
    --commits_pending;
    apply::Actions a;
    machine.on_commit_done(how == 0xff ? base::Status::error(EIO, "injected store error.") : base::Status::ok(), a);
    handle(a, false);
  }

  void step(base::ByteReader& r) {
    apply::Actions a;
    switch (r.u8() % 10) {
      case 0: hello(r.span(std::min<size_t>(85, r.remaining()))); break;
      case 1: raw_record(r.span(std::min<size_t>(r.u8() + size_t{24}, r.remaining()))); break;
      case 2: compact_record(r); break;
      case 3: io_done(r); break;
      case 4: flush_done(r.u8()); break;
      case 5: commit_done(r.u8()); break;
      case 6:
        now_ms += uint64_t{r.u8()} * 5;
        machine.on_tick(now_ms, a);
        handle(a, false);
        break;
      case 7:
        if (session) end_session();
        break;
      case 8:
        if (session) machine.on_read_batch_done(a);
        handle(a, false);
        break;
      case 9:
        if (!shutdown) machine.begin_shutdown(a);
        else machine.force_shutdown(a);
        shutdown = true;
        handle(a, false);
        break;
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 4096) return 0;  // long enough for hundreds of operations
  Driver d(data[0]);
  base::ByteReader r(base::ByteSpan(data + 1, size - 1));
  // An operation cut short by the end of the input makes the reader fail
  // (sticky): stop there.
  while (r.remaining() > 0 && r.ok()) d.step(r);
  return 0;
}
