// SPDX-License-Identifier: MIT
// Fuzz target: the apply state machine fed decoded records, with the daemon's
// side played by this driver (completions in any order, failures, ticks,
// session ends, shutdown) as link.cpp and daemon.cpp drive it.
//
// Input: one byte picks the loaded state, then a list of operations, each an
// opcode byte and its arguments (see step()). Records come two ways: raw
// message bytes through decode_record, as a peer sends them, and compact
// fields that the driver encodes, so that most of them are valid and the
// machine gets deep into epochs, overlaps, backpressure and catch-up. The
// resync messages (begin, extents, marks, plan, end) come the compact way,
// beside log records, in place or staged (the loaded-state byte picks), with
// the stage's open, sync and copy completed as the stage worker would.
//
// Checked on every action (docs/ARCHITECTURE.md, the invariants):
//  - a submitted record is inside the disk, aligned, and overlaps nothing in
//    flight (3, 5); no more than io_depth_max are in flight;
//  - a flush is asked for only with nothing in flight, one at a time, and a
//    barrier ack follows a completed flush, epochs increasing (4);
//  - one store commit at a time; held bytes stay bounded (9);
//  - a resync's answers name the generation begun, its writes stay inside
//    the extent sent, and its mark acks never go back;
//  - write-ahead: a write reaches the disk only once the store says what a
//    power cut then needs: no valid fingerprint and not Diverged; a log
//    record within the committed reservation, of the generation the clone
//    holds, no stage being applied; a resync extent or a stage's copy with
//    that resync in the store and the clone saying inconsistent (4, 7, 8);
//  - once the disk holds part of a generation (an in-place resync extent or
//    a stage's copy sent to it), no state the store takes says consistent
//    until it holds whole a generation whose resync was ended (8).
// A power cut (opcode 0xff) drops the daemon and everything in flight; a new
// one loads what the store holds (a commit in flight landed or not) and starts
// as the daemon does: its Diverged guard (the input says whether the disk
// changed while it was down), then a staged generation being applied resumes
// by itself. The guard runs as in divergence.cpp: a log hello invalidates the
// fingerprint, a quiet clone out of session records one on a tick.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "cloned/apply/apply.h"
#include "fuzz/fuzz_support.h"

namespace {

constexpr uint64_t kDiskBytes = 1 << 20;
constexpr uint32_t kBlockBytes = 512;

apply::Limits limits(uint8_t pick) {
  apply::Limits l;
  l.stage_resync = (pick & 4) != 0;
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
  if ((pick & 2) != 0) {  // an in-place resync of generation 2 was interrupted at 64 KiB
    s.resync = apply::ResyncProgress{2, 40, 5, 64 * 1024, 4096, 0};
    s.state = proto::CloneState::inconsistent;
    s.state_reason = "resync interrupted";
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
  const apply::Limits lim;
  // Resync, as the original would send it: the generation of the last begin,
  // the cursor of its last mark, its mark acks so far.
  uint64_t hello_generation = 1;
  uint64_t resync_generation = 0;
  uint64_t resync_target_seq = 0;
  uint64_t last_mark = 0;
  uint64_t last_mark_ack = 0;
  uint64_t arrivals = 0;                      // resync extents accepted
  std::map<apply::RecordId, uint64_t> arrival;  // of each accepted extent (0: a log record)
  std::deque<uint64_t> marks_unacked;         // extents accepted before each mark sent
  // Extents accepted and not yet completed or dropped (by arrival), and the
  // highest arrival through which every extent was complete when a flush or
  // a stage sync that then succeeded was asked: a mark's ack needs its
  // extents there (checked while the store holds the resync in progress).
  std::set<uint64_t> pending_arrivals;
  uint64_t flush_covers = 0, sync_covers = 0;
  uint64_t flushed_arrivals = 0, synced_arrivals = 0;  // by the disk's flushes, by the stage's syncs
  // The last resync_end taken: the extents before it, and whether the stage held them.
  uint64_t end_arrivals = 0;
  bool end_staged = false, end_pending = false;
  uint64_t complete_through() const { return pending_arrivals.empty() ? arrivals : *pending_arrivals.begin() - 1; }
  void settled(apply::RecordId id) {
    const auto it = arrival.find(id);
    if (it != arrival.end()) pending_arrivals.erase(it->second);
  }
  // The stage worker: an open, a sync or a copy asked and not yet answered,
  // and what has been appended (the file's bytes, the disk bytes they hold).
  unsigned stage_opens_pending = 0;  // asked, not yet answered: a begin can ask another first
  bool stage_sync_pending = false;
  bool stage_apply_pending = false;
  uint64_t stage_file_bytes = 0;
  uint64_t stage_disk_bytes = 0;

  // The store: what it holds, and the commit in flight. An answer that says
  // something is durable must find it in `stored`.
  apply::ReplicaState stored;
  apply::ReplicaState committing;
  bool answer_at_once = false;  // a begin that announced a plan is answered before any commit

  // Power cuts: asked, whether the commit in flight then landed, and
  // whether the disk was changed outside cloned before the next start.
  bool cut = false;
  bool cut_commit_lands = false;
  bool cut_disk_changed = false;
  // The disk holds parts of generations (an extent of an in-place resync,
  // or a stage's copy, sent to it), and the generations whose resync the
  // clone took the end of since it last began: facts of the disk and of the
  // original, kept across a cut. A resync covers the whole disk: once the
  // store holds one of these whole, so does the disk.
  bool mixed = false;
  std::set<uint64_t> ended;

  // A resync in place in the loaded store may have written anything: mixed
  // (after a cut the last daemon's driver says).
  Driver(uint8_t pick, const apply::ReplicaState& loaded)
      : machine({kDiskBytes, kBlockBytes, 4096}, loaded, limits(pick)),
        lim(limits(pick)),
        stored(loaded),
        mixed(loaded.resync.active()) {}

  // As the daemon starts: the Diverged guard, then (start_stage) a generation
  // being applied from the stage finishes by itself. The original's side
  // goes on as it was, and the disk is as the last daemon left it.
  void start_after_cut(const Driver& before) {
    hello_generation = before.hello_generation;
    resync_generation = before.resync_generation;
    resync_target_seq = before.resync_target_seq;
    mixed = before.mixed;
    ended = before.ended;
    if (machine.staging() || machine.applying_stage()) {  // the stage file outlives the daemon
      stage_file_bytes = before.stage_file_bytes;
      stage_disk_bytes = before.stage_disk_bytes;
    }
    check_claim(stored);
    guard_check(before.cut_disk_changed);
    apply::Actions a;
    if (machine.applying_stage()) machine.resume_staged_apply(a);
    handle(a, false);
  }

  // The daemon's Diverged guard (divergence.cpp), the disk's fingerprint as
  // the input says. At start and before a session: a baseline if none is
  // valid, Diverged if the disk changed since the one kept.
  void guard_check(bool changed) {
    const apply::ReplicaState& r = machine.replica();
    if (r.state == proto::CloneState::diverged || machine.applying_stage()) return;
    apply::Actions a;
    if (!r.fingerprint_valid) {
      if (machine.in_session() && !machine.quiet()) return;
      machine.set_fingerprint(base::Bytes{1, 2, 3}, a);
    } else if (changed) {
      machine.mark_diverged("the disk changed outside cloned (injected).", a);
    } else {
      return;
    }
    handle(a, false);
  }

  // After a session, quiet: the fingerprint of the disk as it is left.
  void guard_refresh() {
    if (machine.in_session() || machine.hello_pending() || shutdown || machine.fingerprint_valid() ||
        machine.replica().state == proto::CloneState::diverged || machine.applying_stage() || !machine.quiet() ||
        machine.disk_failed())
      return;
    apply::Actions a;
    machine.set_fingerprint(base::Bytes{1, 2, 3}, a);
    handle(a, false);
  }

  // What the store holds after the cut.
  apply::ReplicaState after_cut() const { return commits_pending > 0 && cut_commit_lands ? committing : stored; }

  static bool overlaps(const proto::RecordHeader& a, const proto::RecordHeader& b) {
    return a.offset_bytes < b.offset_bytes + b.length_bytes && b.offset_bytes < a.offset_bytes + a.length_bytes;
  }

  static bool resync_type(proto::MsgType t) {
    return t == proto::MsgType::resync_data || t == proto::MsgType::resync_zero;
  }

  // A write's extent, and a resync extent's parts to write, are on the disk
  // and aligned; only resync extents go to the stage, and only when staging.
  void check_extent(const apply::SubmitIo& s) const {
    const proto::RecordHeader& h = s.header;
    FUZZ_CHECK(h.type == proto::MsgType::write || h.type == proto::MsgType::trim || h.type == proto::MsgType::zero ||
               resync_type(h.type));
    FUZZ_CHECK(h.length_bytes > 0 && h.offset_bytes <= kDiskBytes && h.length_bytes <= kDiskBytes - h.offset_bytes);
    FUZZ_CHECK(h.offset_bytes % kBlockBytes == 0 && h.length_bytes % kBlockBytes == 0);
    FUZZ_CHECK(s.only.empty() || resync_type(h.type));
    for (const apply::Extent& e : s.only) {
      FUZZ_CHECK(e.length_bytes > 0 && e.offset_bytes >= h.offset_bytes);
      FUZZ_CHECK(e.offset_bytes + e.length_bytes <= h.offset_bytes + h.length_bytes);
      FUZZ_CHECK(e.offset_bytes % kBlockBytes == 0 && e.length_bytes % kBlockBytes == 0);
    }
    FUZZ_CHECK(!s.to_stage || (lim.stage_resync && resync_type(h.type)));
  }

  // The write-ahead rule: were the power cut as this write reaches the disk,
  // the store would say what the disk may hold. No fingerprint it holds is
  // valid (the next start would call the clone's own write a change from
  // outside), and it does not say Diverged. A log record lies within the
  // committed reservation (the next start knows the disk unclean up to it),
  // of the generation the clone holds, with no stage being copied; a resync
  // extent written in place finds that resync in the store and the clone
  // inconsistent (it is bootable no more until the resync ends).
  void check_write_ahead(const apply::SubmitIo& s) {
    if (s.to_stage) return;
    FUZZ_CHECK(!stored.fingerprint_valid && stored.state != proto::CloneState::diverged);
    if (resync_type(s.header.type)) {
      FUZZ_CHECK(stored.resync.active() && stored.resync.generation == resync_generation && !stored.stage.active() &&
                 stored.state != proto::CloneState::consistent);
      mixed = true;
    } else {
      FUZZ_CHECK(s.header.seq <= stored.reserved_seq && stored.stage.phase != apply::StagePhase::applying &&
                 stored.generation == machine.replica().generation);
    }
  }

  // A state the store takes (a commit landed, or what a cut left): with the
  // disk mixed it says consistent only once it holds whole a generation
  // whose end was taken.
  void check_claim(const apply::ReplicaState& s) {
    if (!mixed) return;
    if (!s.resync.active() && ended.count(s.generation) != 0)
      mixed = false;
    else
      FUZZ_CHECK(s.state != proto::CloneState::consistent);
  }

  void handle(apply::Actions& a, bool after_flush) {
    for (apply::RecordId id : a.dropped) settled(id);
    handle_stage(a);  // the open goes before the appends, as in the daemon
    for (const apply::SubmitIo& s : a.submit) {
      const proto::RecordHeader& h = s.header;
      check_extent(s);
      check_write_ahead(s);
      if (s.to_stage) {
        const bool data = h.type == proto::MsgType::resync_data;
        stage_file_bytes += apply::kStageEntryHeaderBytes + (data ? h.length_bytes : 0);
        stage_disk_bytes += h.length_bytes;
      }
      if (s.after_flush_gate != 0) {  // may overlap what is in flight: it starts after
        for (const apply::SubmitIo& f : held)
          FUZZ_CHECK(!overlaps(h, f.header) && f.after_flush_gate == s.after_flush_gate);
        FUZZ_CHECK(s.after_flush_gate > settled_gate && s.covered_by_gate == s.after_flush_gate + 1);
        held.push_back(s);
        FUZZ_CHECK(held.size() <= lim.io_depth_max);
        continue;
      }
      for (const apply::SubmitIo& f : in_flight) FUZZ_CHECK(!overlaps(h, f.header));
      FUZZ_CHECK(held.empty());  // the machine waits for the flush they wait for
      in_flight.push_back(s);
      FUZZ_CHECK(in_flight.size() <= lim.io_depth_max);
    }
    if (a.cancel_after_flush) cancel_held();
    if (a.flush) {
      FUZZ_CHECK(!flush_pending);
      // A barrier's flush waits for every write; a mark's (gate 0) for the
      // resync extents that came before the mark, not for those after it or
      // for the log's writes (no barrier is acked by it).
      for (const apply::SubmitIo& f : in_flight) {
        FUZZ_CHECK(a.flush_gate == 0);
        if (resync_type(f.header.type))
          FUZZ_CHECK(!marks_unacked.empty() && arrival[f.id] > marks_unacked.front());
      }
      FUZZ_CHECK(a.flush_gate == 0 || a.flush_gate > settled_gate);
      for (const apply::SubmitIo& s : held) FUZZ_CHECK(s.after_flush_gate == a.flush_gate);
      flush_pending = true;
      flush_gate = a.flush_gate;
      flush_covers = complete_through();
    }
    for (const apply::SendBarrierAck& b : a.barrier_acks) {
      FUZZ_CHECK(after_flush && b.epoch > last_ack_epoch);
      last_ack_epoch = b.epoch;
    }
    handle_resync(a);
    if (!a.commits.empty()) committing = a.commits.back().state;
    commits_pending += a.commits.size();
    FUZZ_CHECK(commits_pending <= 1);
    for (const apply::FailSession& f : a.fail) FUZZ_CHECK(!f.message.empty());
    FUZZ_CHECK(machine.held_bytes() <= lim.held_bytes_max + proto::kMaxWritePayloadBytes + apply::kRecordOverheadBytes);
    // A failed session is closed by the daemon right away (close_conn).
    if (!a.fail.empty() && session) end_session();
  }

  void handle_resync(const apply::Actions& a) {
    if (a.resync_state) {
      const proto::ResyncState& st = *a.resync_state;
      FUZZ_CHECK(st.generation == resync_generation && st.total_bytes == kDiskBytes);
      FUZZ_CHECK(st.cursor_bytes <= kDiskBytes && st.cursor_bytes % kBlockBytes == 0);
      // Durable first: the store holds this resync (or, for one the clone
      // holds whole, its generation), unless a plan's begin is answered.
      const bool whole = st.cursor_bytes == kDiskBytes && !stored.resync.active() && stored.generation == st.generation;
      FUZZ_CHECK(answer_at_once || whole || (stored.resync.active() && stored.resync.generation == st.generation));
      // The original goes on from there. Marks sent before this answer (the
      // reference original waits for it) may be acked with it, below it.
      last_mark = std::max(last_mark, st.cursor_bytes);
    }
    for (uint64_t cursor : a.resync_mark_acks) {
      FUZZ_CHECK(cursor >= last_mark_ack && cursor <= kDiskBytes);
      // Acked only once the store holds the cursor (or holds the resync whole).
      if (stored.resync.active()) {
        FUZZ_CHECK(stored.resync.generation == resync_generation && cursor <= stored.resync.cursor_bytes);
        // A staged resync's marks are the stage's to make durable, others the disk's.
        const uint64_t durable = stored.stage.active() ? synced_arrivals : flushed_arrivals;
        FUZZ_CHECK(marks_unacked.empty() || marks_unacked.front() <= durable);
      } else
        FUZZ_CHECK(stored.generation == resync_generation);
      last_mark_ack = cursor;
      if (!marks_unacked.empty()) marks_unacked.pop_front();
    }
    if (a.resync_done) {
      // Every extent before the end was durable where its resync put it first.
      if (end_pending) FUZZ_CHECK(end_arrivals <= (end_staged ? synced_arrivals : flushed_arrivals));
      end_pending = false;
      FUZZ_CHECK(a.resync_done->generation == resync_generation && a.resync_done->seq >= resync_target_seq);
      // The store holds the new generation, whole, at that record.
      FUZZ_CHECK(!stored.resync.active() && !stored.stage.active() && stored.generation == a.resync_done->generation &&
                 stored.committed_seq == a.resync_done->seq);
      last_ack_epoch = a.resync_done->epoch;  // the log goes on from the resync's position
    }
  }

  // The stage worker takes one thing at a time; the open comes first.
  void handle_stage(const apply::Actions& a) {
    const bool any = a.stage_open || a.stage_sync || a.stage_apply || a.stage_remove || a.stage_drop;
    FUZZ_CHECK(!any || lim.stage_resync);
    if (a.stage_open) {
      ++stage_opens_pending;
      stage_file_bytes = a.stage_open->create ? apply::kStageHeaderBytes : a.stage_open->durable_bytes;
      if (a.stage_open->create) stage_disk_bytes = 0;
    }
    if (a.stage_sync) {
      FUZZ_CHECK(!stage_sync_pending && !flush_pending);
      stage_sync_pending = true;
      sync_covers = complete_through();
    }
    if (a.stage_apply) {
      // The copy onto the disk: the store says "applying" first, so that a
      // cut during it leaves a clone that says so and finishes it.
      FUZZ_CHECK(!stage_apply_pending && stored.stage.phase == apply::StagePhase::applying &&
                 stored.state != proto::CloneState::consistent && !stored.fingerprint_valid);
      mixed = true;
      ended.insert(stored.resync.generation);  // "applying": the stage holds the end
      stage_apply_pending = true;
    }
    if (a.stage_remove || a.stage_drop) stage_file_bytes = stage_disk_bytes = 0;
  }

  // The stage worker answers: `how` 0xff fails it (a full stick now and then).
  void stage_done(uint8_t how) {
    apply::Actions a;
    const bool failed = how >= 0xfe;
    const base::Status st = !failed ? base::Status::ok()
                                    : base::Status::error(how == 0xff ? ENOSPC : EIO, "injected stage error.");
    if (stage_opens_pending > 0) {
      --stage_opens_pending;
      machine.on_stage_opened(st, a);
    } else if (stage_sync_pending) {
      stage_sync_pending = false;
      if (st.is_ok()) synced_arrivals = std::max(synced_arrivals, sync_covers);
      machine.on_stage_synced(st, stage_file_bytes, stage_disk_bytes, a);
    } else if (stage_apply_pending) {
      stage_apply_pending = false;
      machine.on_stage_applied(st, failed && (how & 1) == 0, a);
    } else {
      return;
    }
    handle(a, false);
  }

  void end_session() {
    session = false;
    marks_unacked.clear();
    apply::Actions a;
    machine.end_session(a);
    handle(a, false);
  }

  void hello(base::ByteSpan bytes) {
    base::Bytes msg(bytes.begin(), bytes.end());
    if (!msg.empty()) msg[0] = static_cast<uint8_t>(proto::MsgType::hello);
    proto::Hello h;
    if (!proto::decode_hello(msg, h).is_ok()) return;
    hello_generation = h.generation;
    last_mark = last_mark_ack = 0;  // until a resync_state says where the resync is
    guard_check(false);          // before anything of this session
    if (session) end_session();  // superseded by the new connection
    session = true;
    apply::Actions a;
    machine.start_session(h, a);
    handle(a, false);
    // A log session's first writes wait until the fingerprint is invalid.
    if (session && (h.flags & proto::kHelloMaintenance) == 0) {
      apply::Actions inv;
      machine.invalidate_fingerprint(inv);
      handle(inv, false);
    }
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

  // A begin of the last generation begun, the next or the one after (or
  // the hello's: a repair), to about the log position the clone is at.
  void resync_begin(base::ByteReader& r) {
    const uint8_t pick = r.u8();
    const uint8_t flags = r.u8();
    const auto seq_delta = static_cast<int8_t>(r.u8());
    if (!session || !machine.can_accept()) return;
    proto::ResyncBegin b;
    b.generation = std::max(hello_generation, resync_generation) + pick % 3 - (pick & 0x80 ? 1 : 0);
    b.target_seq = machine.received_seq() + static_cast<uint64_t>(seq_delta / 16);
    b.target_epoch = machine.durable().epoch + pick / 3 % 3;
    constexpr uint32_t kExtents[] = {kBlockBytes, 4096, 64 * 1024, 1 << 20, 1000};
    b.extent_bytes = kExtents[pick / 9 % 5];
    b.flags = flags & 0x0f;
    resync_generation = b.generation;
    end_pending = false;
    resync_target_seq = b.target_seq;
    apply::Actions a;
    machine.on_resync_begin(b, a);
    if (a.fail.empty()) ended.erase(b.generation);
    answer_at_once = (b.flags & proto::kResyncPlanFollows) != 0;
    handle(a, false);
    answer_at_once = false;
  }

  // Mostly just above the last mark: data or zeros, block-aligned or not.
  void resync_extent(base::ByteReader& r) {
    const uint8_t kind = r.u8();
    const uint64_t ahead = uint64_t{r.u8()} * kBlockBytes;
    const uint64_t length = (1 + uint64_t{r.u8()}) * kBlockBytes;
    if (!session || !machine.can_accept()) return;
    proto::RecordHeader h;
    h.type = (kind & 1) != 0 ? proto::MsgType::resync_zero : proto::MsgType::resync_data;
    h.seq = resync_target_seq;
    h.offset_bytes = last_mark + ahead - ((kind & 0x40) != 0 ? kBlockBytes : 0) + ((kind & 0x80) != 0 ? 1 : 0);
    h.length_bytes = length;
    apply::Actions a;
    apply::RecordId id = 0;
    machine.on_resync_extent(h, id, a);
    if (id != 0) {
      arrival[id] = ++arrivals;
      pending_arrivals.insert(arrivals);
    }
    handle(a, false);
  }

  void resync_mark(base::ByteReader& r) {
    const uint8_t step = r.u8();
    if (!session || !machine.can_accept()) return;
    const uint64_t ahead = static_cast<uint64_t>(step % 64) * 4096 + ((step & 0x40) != 0 ? 1 : 0);
    const uint64_t cursor = step == 0xff ? kDiskBytes : last_mark + ahead;
    last_mark = cursor;
    apply::Actions a;
    machine.on_resync_mark(cursor, a);
    if (a.fail.empty()) marks_unacked.push_back(arrivals);
    handle(a, false);
  }

  void resync_end(uint8_t how) {
    if (!session || !machine.can_accept()) return;
    apply::Actions a;
    machine.on_resync_end(resync_target_seq + (how == 0xff ? 1 : 0), a);
    if (a.fail.empty() && !shutdown) ended.insert(resync_generation);  // shutting down, it is ignored
    if (a.fail.empty() && !shutdown && !a.resync_done) {  // not a resync the clone held whole: its extents go first
      end_arrivals = arrivals;
      end_staged = machine.staging();
      end_pending = true;
    }
    handle(a, false);
  }

  // The plan's figures, and the stick's room for it, both from the input.
  void resync_plan(base::ByteReader& r) {
    proto::ResyncPlan plan;
    plan.data_bytes = uint64_t{r.u16()} * kBlockBytes;
    plan.zero_bytes = uint64_t{r.u8()} * 4096;
    plan.extent_count = r.u8();
    plan.flags = r.u8() & 1;
    apply::StageRoom room;
    room.bound_bytes = uint64_t{r.u16()} * 4096;
    room.free_bytes = uint64_t{r.u16()} * 4096;
    room.stage_file_bytes = stage_file_bytes;
    if (!session || !machine.can_accept()) return;
    apply::Actions a;
    machine.on_resync_plan(plan, room, a);
    handle(a, false);
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
      settled(id);
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
    settled(id);
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
    if (st.is_ok()) flushed_arrivals = std::max(flushed_arrivals, flush_covers);
    apply::Actions a;
    machine.on_flush_done(st, a);
    handle(a, true);
  }

  void commit_done(uint8_t how) {
    if (commits_pending == 0) return;
    --commits_pending;
    apply::Actions a;
    if (how != 0xff) {
      stored = committing;
      check_claim(stored);
    }
    machine.on_commit_done(how == 0xff ? base::Status::error(EIO, "injected store error.") : base::Status::ok(), a);
    handle(a, false);
  }

  void step(base::ByteReader& r) {
    apply::Actions a;
    const uint8_t op = r.u8();
    if (op == 0xff) {  // the caller makes the new daemon
      const uint8_t how = r.u8();
      cut = true;
      cut_commit_lands = (how & 1) != 0;
      cut_disk_changed = (how & 0x0e) == 0x0e;  // now and then: Diverged ends what an input can do
      return;
    }
    switch (op % 16) {
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
        guard_refresh();
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
      case 10: resync_begin(r); break;
      case 11: resync_extent(r); break;
      case 12: resync_mark(r); break;
      case 13: resync_end(r.u8()); break;
      case 14: resync_plan(r); break;
      case 15: stage_done(r.u8()); break;
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 4096) return 0;  // long enough for hundreds of operations
  const uint8_t pick = data[0];
  std::optional<Driver> d;
  d.emplace(pick, loaded_state(pick));
  d->guard_check(false);  // as the daemon starts
  base::ByteReader r(base::ByteSpan(data + 1, size - 1));
  // An operation cut short by the end of the input makes the reader fail
  // (sticky): stop there.
  while (r.remaining() > 0 && r.ok()) {
    d->step(r);
    if (!d->cut || !r.ok()) continue;
    const Driver before = std::move(*d);
    d.emplace(pick, before.after_cut());
    d->start_after_cut(before);
  }
  return 0;
}
