// SPDX-License-Identifier: MIT
// Maintenance sessions (maintenance.h): resync and verify messages.
#include "cloned/daemon/maintenance.h"

#include <cinttypes>
#include <utility>

#include "base/log.h"
#include "base/units.h"
#include "cloned/daemon/clock.h"
#include "cloned/daemon/conn.h"

namespace cloned {

namespace {

// Digest requests of one session waiting or being hashed: the original keeps
// a few in flight to overlap its own hashing with ours; more is a misbehaving
// peer (each costs a worker's read buffer).
constexpr uint32_t kDigestsOutstandingMax = 16;

using base::u64s;

}  // namespace

Maintenance::Maintenance(LinkPort& link, MaintenanceHost& host, apply::Machine& machine,
                         const blockio::Geometry& geometry, DiskWorkers& disk, StoreWorker& store)
    : link_(link), host_(host), machine_(machine), geometry_(geometry), disk_(disk), store_(store) {}

void Maintenance::session_started() {
  ++session_serial_;
  digests_outstanding_ = 0;
}

// Its scans still queued are dropped, not run: the next session gets
// the workers first (DiskWorkers::drop_digests_before).
void Maintenance::session_ended() { disk_.drop_digests_before(session_serial_ + 1); }

void Maintenance::on_frame(Conn* c, proto::MsgType type, proto::Frame& frame) {
  // Nothing before the clone's hello (found in review: while the machine held
  // a hello back, digests were read and out-of-sync ranges kept for a session
  // it might then refuse). The machine refuses its own messages the same way.
  if (!machine_.in_session()) {
    const std::string why = "a maintenance message before the clone answered the hello.";
    link_.send_error(c, proto::ErrorCode::protocol, why);
    return link_.close_conn(c, why);
  }
  on_session_frame(c, type, frame);
}

void Maintenance::on_session_frame(Conn* c, proto::MsgType type, proto::Frame& frame) {
  const base::ByteSpan plain = frame.plain();
  base::Status s;
  apply::Actions actions;
  switch (type) {
    case proto::MsgType::resync_begin: {
      proto::ResyncBegin b;
      if (!(s = proto::decode_resync_begin(plain, b)).is_ok()) break;
      LOG_NOTICE("%s asks for a %s of generation %" PRIu64 " to record %" PRIu64 " in %s extents", c->peer.c_str(),
                 (b.flags & proto::kResyncRepair) ? "repair" : "resync", b.generation, b.target_seq,
                 base::format_bytes(b.extent_bytes).c_str());
      machine_.on_resync_begin(b, actions);
      return host_.apply(actions);
    }
    case proto::MsgType::digest_request: {
      proto::DigestRequest q;
      if (!(s = proto::decode_digest_request(plain, q)).is_ok()) break;
      bool closed = false;
      s = on_digest_request(c, q, closed);
      if (s.is_ok() || closed) return;
      break;
    }
    case proto::MsgType::resync_data:
    case proto::MsgType::resync_zero: {
      proto::RecordHeader h;
      base::ByteSpan payload;
      if (!(s = proto::decode_resync_extent(plain, h, payload)).is_ok()) break;
      apply::RecordId id = 0;
      machine_.on_resync_extent(h, id, actions);
      if (id != 0 && type == proto::MsgType::resync_data) host_.keep_frame(id, std::move(frame));
      return host_.apply(actions);
    }
    case proto::MsgType::resync_mark: {
      uint64_t cursor = 0;
      if (!(s = proto::decode_resync_mark(plain, cursor)).is_ok()) break;
      machine_.on_resync_mark(cursor, actions);
      return host_.apply(actions);
    }
    case proto::MsgType::resync_end: {
      uint64_t at = 0;
      if (!(s = proto::decode_resync_end(plain, at)).is_ok()) break;
      machine_.on_resync_end(at, actions);
      return host_.apply(actions);
    }
    case proto::MsgType::resync_plan: {
      proto::ResyncPlan plan;
      if (!(s = proto::decode_resync_plan(plain, plan)).is_ok()) break;
      machine_.on_resync_plan(plan, host_.stage_room(), actions);
      return host_.apply(actions);
    }
    case proto::MsgType::out_of_sync: {
      uint64_t offset = 0, length = 0;
      if (!(s = proto::decode_out_of_sync(plain, offset, length)).is_ok()) break;
      if ((s = on_out_of_sync(offset, length)).is_ok()) return;
      break;
    }
    case proto::MsgType::progress: {
      proto::Progress p;
      if (!(s = proto::decode_progress(plain, p)).is_ok()) break;
      return on_progress(p);
    }
    default:
      s = base::Status::error(EPROTO, "message type " + u64s(static_cast<uint64_t>(type)) + " is sent by the clone, not to it.");
      break;
  }
  link_.send_error(c, proto::error_code_for(s), s.message());
  link_.close_conn(c, s.message());
}

// Queues the scan, or says why not: out of range (answered here, `closed`) or
// too many outstanding (a protocol error for the caller to answer).
base::Status Maintenance::on_digest_request(Conn* c, const proto::DigestRequest& q, bool& closed) {
  const blockio::Geometry& g = geometry_;
  if (q.offset_bytes % g.logical_block_bytes != 0 || q.offset_bytes >= g.size_bytes ||
      q.offset_bytes + uint64_t{q.extent_bytes} * (q.count - 1) >= g.size_bytes) {
    const base::Status s = base::Status::error(
        ERANGE, "digest_request at offset " + u64s(q.offset_bytes) + " for " + u64s(q.count) + " x " +
                    u64s(q.extent_bytes) + " bytes is not inside the disk (" + u64s(g.size_bytes) +
                    " bytes) or not block-aligned.");
    link_.send_error(c, proto::ErrorCode::out_of_range, s.message());
    link_.close_conn(c, s.message());
    closed = true;
    return s;
  }
  if (digests_outstanding_ >= kDigestsOutstandingMax)
    return base::Status::error(EPROTO, "more than " + u64s(kDigestsOutstandingMax) + " digest requests outstanding.");
  ++digests_outstanding_;
  disk_.digest(q, session_serial_);
  return base::Status::ok();
}

base::Status Maintenance::on_out_of_sync(uint64_t offset, uint64_t length) {
  const uint64_t size = geometry_.size_bytes;
  if (length == 0 || offset >= size || length > size - offset)
    return base::Status::error(EPROTO, "out_of_sync at offset " + u64s(offset) + " for " + u64s(length) +
                                           " bytes is not inside the disk (" + u64s(size) + " bytes).");
  LOG_WARN("verify: the clone differs from the original at offset %" PRIu64 ", %" PRIu64 " bytes", offset, length);
  link_.record_event("warning", "verify", "out of sync: offset " + u64s(offset) + ", " + u64s(length) + " bytes");
  bool queue_job = false;
  {
    std::lock_guard<std::mutex> lock(out_of_sync_->mutex);
    if (out_of_sync_->ranges.size() >= store::kMaxOutOfSyncRanges) {
      if (out_of_sync_->dropped++ == 0)
        LOG_WARN("verify: %zu out-of-sync ranges wait for the state store; more are not recorded",
                 store::kMaxOutOfSyncRanges);
      return base::Status::ok();
    }
    out_of_sync_->ranges.push_back({offset, length, 0});
    queue_job = !std::exchange(out_of_sync_->job_queued, true);
  }
  if (queue_job)
    store_.run_job([queue = out_of_sync_](store::Store& st) {
      std::vector<store::OutOfSyncRange> batch;
      {
        std::lock_guard<std::mutex> lock(queue->mutex);
        batch.swap(queue->ranges);
        queue->job_queued = false;
        queue->dropped = 0;
      }
      return st.add_out_of_sync(batch);
    });
  return base::Status::ok();
}

void Maintenance::on_progress(const proto::Progress& p) {
  if (progress_.note(p, now_ms())) LOG_NOTICE("%s: %s", progress_kind_name(p.kind), progress_.text().c_str());
}

void Maintenance::on_digest_done(Conn* c, Completion& done) {
  if (done.session_serial != session_serial_) return;  // its session is gone
  if (digests_outstanding_ > 0) --digests_outstanding_;
  if (c == nullptr) return;
  if (!done.status.is_ok()) {
    LOG_ERROR("reading the clone's disk for digests failed: %s", done.status.message().c_str());
    link_.record_event("error", "disk", done.status.message());
    link_.send_error(c, proto::ErrorCode::disk_io, done.status.message());
    return link_.close_conn(c, done.status.message());
  }
  proto::DigestReply r;
  r.id = done.request.id;
  r.offset_bytes = done.request.offset_bytes;
  r.extent_bytes = done.request.extent_bytes;
  r.digests = std::move(done.digests);
  base::Bytes out;
  proto::encode_digest_reply(r, out);
  link_.send_plain(c, out);
}

void Maintenance::send_actions(Conn* c, apply::Actions& a) {
  base::Bytes out;
  if (a.resync_state) {
    out.clear();
    proto::encode_resync_state(*a.resync_state, out);
    link_.send_plain(c, out);
    const std::string what = a.resync_state->resumed ? "resumed" : "began";
    link_.record_event("notice", "resync", what + " generation " + u64s(a.resync_state->generation) + " at byte " +
                                               u64s(a.resync_state->cursor_bytes));
  }
  if (a.plan_reply) {
    const proto::ResyncPlanReply& r = *a.plan_reply;
    out.clear();
    proto::encode_resync_plan_reply(r, out);
    link_.send_plain(c, out);
    const std::string what = std::string(proto::plan_verdict_name(r.verdict)) + ": the stage needs " +
                             base::format_bytes(r.needed_bytes) + ", bound " + base::format_bytes(r.bound_bytes) +
                             ", free " + base::format_bytes(r.free_bytes);
    LOG_NOTICE("resync plan %s", what.c_str());
    link_.record_event(r.verdict == proto::PlanVerdict::staged ? "notice" : "warning", "resync", "plan " + what);
  }
  for (uint64_t cursor : a.resync_mark_acks) {
    out.clear();
    proto::encode_resync_mark_ack(cursor, out);
    link_.send_plain(c, out);
  }
  if (a.resync_done) {
    out.clear();
    proto::encode_resync_done(*a.resync_done, out);
    link_.send_plain(c, out);
    LOG_NOTICE("resync complete: generation %" PRIu64 " at record %" PRIu64, a.resync_done->generation, a.resync_done->seq);
    link_.record_event("notice", "resync", "complete: generation " + u64s(a.resync_done->generation) +
                                               " at record " + u64s(a.resync_done->seq));
    progress_.finish();
  }
}

}  // namespace cloned
