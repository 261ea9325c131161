// SPDX-License-Identifier: MIT
// The seeded simulation's resync (issue 18): the original, whose disk changed
// behind its log, resyncs the clone to generation 2 in maintenance sessions
// over the same faulty network: resync_begin (announcing a plan when the
// clone's hello asks for one), resync_plan, the extents that differ from the
// clone's cursor on, marks, resync_end. A clone that holds generation 1
// whole stages it (the disk stays generation 1 until generation 2 is whole
// on the stick); one with nothing whole to keep takes it in place. Crashes
// and power cuts come at any phase: before the staging, during it, at the
// switch to "applying", during the apply (the disk's writes fail part-way,
// then the power goes), after the commit, and during a start with no
// original that finishes an apply.
#include <algorithm>
#include <cstring>

#include "proto/resync.h"
#include "test/scenario/simulation.h"

namespace simulation {
namespace {

constexpr uint32_t kExtent = 4096;
constexpr uint64_t kMarkEvery = 4;  // extents
constexpr uint64_t kStickFreeBytes = 1ull << 40;

// What the original sends once the clone has answered the begin: an extent
// (resync_data or resync_zero, `h`), a mark or the end (`value`).
struct Message {
  proto::MsgType type;
  proto::RecordHeader h;
  uint64_t value = 0;
};

// The disk as the clone's digests read it (unflushed writes included).
std::vector<uint8_t> visible(blockio::FaultyDevice& d) {
  base::AlignedBuffer buf(kDiskBytes);
  REQUIRE(d.read(0, buf.span()).is_ok());
  return {buf.data(), buf.data() + kDiskBytes};
}

// The original's comparison from the clone's cursor on (clone-origin does it
// with digests; here against the disk itself), what it will send for it,
// and the plan's figures.
std::vector<Message> messages_from(World& w, uint64_t cursor, proto::ResyncPlan& plan) {
  const std::vector<uint8_t> disk = visible(w.disk);
  const std::vector<uint8_t>& source = w.resync_source();
  std::vector<Message> out;
  for (uint64_t e = cursor / kExtent; e < kDiskBytes / kExtent; ++e) {
    const uint64_t off = e * kExtent;
    if (std::memcmp(disk.data() + off, source.data() + off, kExtent) != 0) {
      const auto from = source.begin() + static_cast<long>(off);
      const bool zero = std::all_of(from, from + kExtent, [](uint8_t b) { return b == 0; });
      Message m{zero ? proto::MsgType::resync_zero : proto::MsgType::resync_data, {}};
      m.h.type = m.type;
      m.h.offset_bytes = off;
      m.h.length_bytes = kExtent;
      out.push_back(m);
      ++plan.extent_count;
      (zero ? plan.zero_bytes : plan.data_bytes) += kExtent;
    }
    if ((e + 1) % kMarkEvery == 0) out.push_back({proto::MsgType::resync_mark, {}, (e + 1) * kExtent});
  }
  out.push_back({proto::MsgType::resync_end, {}, w.resync_seq});
  return out;
}

bool is_extent(const Message& m) {
  return m.type == proto::MsgType::resync_data || m.type == proto::MsgType::resync_zero;
}

base::Bytes encode(const Message& m, const std::vector<uint8_t>& source) {
  base::Bytes plain;
  switch (m.type) {
    case proto::MsgType::resync_data:
      proto::encode_record(m.h, {source.data() + m.h.offset_bytes, m.h.length_bytes}, plain);
      break;
    case proto::MsgType::resync_zero:
      proto::encode_record(m.h, {}, plain);
      break;
    case proto::MsgType::resync_mark:
      proto::encode_resync_mark(m.value, plain);
      break;
    default:
      proto::encode_resync_end(m.value, plain);
      break;
  }
  return plain;
}

// A frame as the clone's daemon takes it: decoded and handed to the machine,
// a resync extent's bytes kept under its id. False when the session failed:
// only a begin refused as busy may (the clone still finishes the end of a
// session that dropped; the original retries after a while).
bool dispatch(World& w, Clone& c, const proto::Frame& frame) {
  const base::ByteSpan plain = frame.plain();
  apply::Actions a;
  switch (static_cast<proto::MsgType>(plain[0])) {
    case proto::MsgType::resync_begin: {
      proto::ResyncBegin b;
      REQUIRE(proto::decode_resync_begin(plain, b).is_ok());
      c.machine.on_resync_begin(b, a);
      if (!a.fail.empty() && a.fail[0].code == proto::ErrorCode::busy) {
        ++w.faults.busy;
        c.handle_quietly(a);
        return false;
      }
      break;
    }
    case proto::MsgType::resync_plan: {
      proto::ResyncPlan p;
      REQUIRE(proto::decode_resync_plan(plain, p).is_ok());
      c.machine.on_resync_plan(p, {kRoomyStage.max_bytes, kStickFreeBytes}, a);
      break;
    }
    case proto::MsgType::resync_data:
    case proto::MsgType::resync_zero: {
      proto::RecordHeader h;
      base::ByteSpan payload;
      REQUIRE(proto::decode_resync_extent(plain, h, payload).is_ok());
      apply::RecordId id = 0;
      c.machine.on_resync_extent(h, id, a);
      if (id != 0) c.keep_extent(id, h, payload);
      break;
    }
    case proto::MsgType::resync_mark: {
      uint64_t cursor = 0;
      REQUIRE(proto::decode_resync_mark(plain, cursor).is_ok());
      c.machine.on_resync_mark(cursor, a);
      break;
    }
    default: {
      uint64_t consistent_at = 0;
      REQUIRE(proto::decode_resync_end(plain, consistent_at).is_ok());
      c.machine.on_resync_end(consistent_at, a);
      break;
    }
  }
  c.handle(a);
  return !c.failed;
}

// Sometimes the apply's disk writes fail part-way, and the power goes.
void cut_applies(World& w, StageWorker& worker, bool faults_on, unsigned per_mille) {
  worker.apply_fault = [&w, faults_on, per_mille](uint64_t entries) {
    if (!faults_on || !w.chance(per_mille)) return int64_t{-1};
    return static_cast<int64_t>(w.rng() % (entries + 1));
  };
}

// The staging began or went on (the disk keeps G), or the resync went in place.
void note_how(World& w, const Clone& c, const proto::ResyncState& state) {
  if (c.machine.staging()) w.episode_staged = true;
  if (c.machine.replica().resync.active() && !c.machine.staging()) w.episode_in_place = true;
  if (state.resumed && state.cursor_bytes > 0 && state.cursor_bytes < state.total_bytes && c.machine.staging())
    ++w.faults.resumed_past_zero;
}

}  // namespace

SessionEnd run_resync_session(World& w, Clone& c, StageWorker& worker, bool faults_on) {
  ++w.faults.resync_sessions;
  cut_applies(w, worker, faults_on, 150);
  Link link = connect(w.auth, w.pair);
  proto::Hello hello = w.hello();
  hello.flags = proto::kHelloMaintenance;
  open_session(w, c, hello);
  if (worker.apply_cut) return SessionEnd::power_cut;
  // Only the session that sent a resync_end is answered with resync_done:
  // an earlier session's end that finishes now is not this one's business.
  bool end_sent = false;
  const auto unasked_done = [&] {
    CHECK_MESSAGE((!c.answers.done || end_sent), "seed " << w.seed << ": a resync_done this session did not ask for");
    return c.answers.done && !end_sent;
  };
  // The begin is on its way while the clone goes on with what it had (an
  // earlier session's end committing, a staged copy): CI, stop 25.
  for (uint64_t i = w.rng() % 3 == 0 ? w.rng() % 8 : 0; i > 0 && !worker.apply_cut && c.step(w.original); --i)
    w.check_staging(c);
  if (worker.apply_cut) return SessionEnd::power_cut;
  if (unasked_done()) return SessionEnd::disconnected;
  const bool plan = (c.hello_flags & proto::kHelloTakesResyncPlan) != 0;
  auto send = [&](const base::Bytes& plain) {
    return w.deliver(link, plain, faults_on, [&](const proto::Frame& f) { return dispatch(w, c, f); });
  };
  base::Bytes begin;
  proto::encode_resync_begin({2, w.resync_seq, w.resync_epoch, kExtent, plan ? proto::kResyncPlanFollows : 0u}, begin);
  if (!send(begin)) return SessionEnd::disconnected;
  enum class Waiting { state, plan_reply, nothing } waiting = Waiting::state;
  std::vector<Message> out;
  size_t next = 0;
  for (uint64_t step = 0; step < 20000; ++step) {
    SessionEnd end = SessionEnd::done;
    if (!begin_step(w, c, faults_on, end)) return end;
    if (waiting == Waiting::state && c.answers.state) {
      proto::ResyncPlan figures;
      out = messages_from(w, c.answers.state->cursor_bytes, figures);
      waiting = plan ? Waiting::plan_reply : Waiting::nothing;
      if (!plan) note_how(w, c, *c.answers.state);
      base::Bytes plain;
      proto::encode_resync_plan(figures, plain);
      if (plan && !send(plain)) return SessionEnd::disconnected;
    } else if (waiting == Waiting::plan_reply && c.answers.plan_reply) {
      CHECK_MESSAGE(c.answers.plan_reply->verdict != proto::PlanVerdict::refused,
                    "seed " << w.seed << ": a roomy stage refused the plan");
      waiting = Waiting::nothing;
      note_how(w, c, *c.answers.state);
    } else if (waiting == Waiting::nothing && next < out.size() && w.rng() % 2 == 0 &&
               (!is_extent(out[next]) || c.machine.can_accept())) {
      end_sent = end_sent || out[next].type == proto::MsgType::resync_end;
      if (!send(encode(out[next], w.resync_source()))) return SessionEnd::disconnected;
      ++next;
    }
    end_step(w, c);
    if (worker.apply_cut) return SessionEnd::power_cut;
    if (unasked_done()) return SessionEnd::disconnected;
    if (c.answers.done) return SessionEnd::done;
  }
  FAIL("seed " << w.seed << ": a resync session made no progress in 20000 steps");
  return SessionEnd::disconnected;
}

void check_after_resync_cut(World& w) {
  const apply::ReplicaState& s = w.stored;
  if (s.resync.active() && !s.stage.active()) {  // in place: not a bootable copy until it ends, and says so
    ++w.faults.cut_in_place;
    CHECK(s.state == proto::CloneState::inconsistent);
    return;
  }
  switch (check_staged_cut(s, 2, disk_image(w.disk), w.old_image, w.resync_source())) {
    case StagedCut::old_generation:
      ++(s.stage.active() ? w.faults.cut_staging : w.faults.cut_before_staging);
      break;
    case StagedCut::applying:
      ++w.faults.cut_applying;
      break;
    case StagedCut::new_generation:
      ++w.faults.cut_committed;
      break;
  }
}

bool start_process(World& w, Clone& c, StageWorker& worker, bool faults_on) {
  apply::Actions a;
  start_stage(c.machine, worker, a);
  c.handle(a);
  if (!c.machine.applying_stage()) return true;
  cut_applies(w, worker, faults_on, 300);
  while (c.step(w.original)) w.check_bounds(c);
  if (worker.apply_cut) {
    ++w.faults.cut_while_finishing;
    process_lost(w, worker, SessionEnd::power_cut);
    return false;
  }
  ++w.faults.finished_alone;  // the original was not there: generation 2 is whole all the same
  CHECK_FALSE(w.stored.stage.active());
  CHECK(w.stored.generation == 2);
  CHECK_MESSAGE(disk_image(w.disk) == w.resync_source(), "seed " << w.seed << ": the start left another disk");
  return true;
}

}  // namespace simulation
