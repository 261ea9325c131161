// SPDX-License-Identifier: MIT
// The link's resync and verify messages (docs/PROTOCOL.md, "Resync and
// verify"): digest requests go to the disk workers, resync extents and marks
// to the apply machine, findings of a verify to the state store, progress to
// the log and the status.
#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "base/log.h"
#include "base/units.h"
#include "cloned/daemon/conn.h"
#include "cloned/daemon/daemon.h"

namespace cloned {

namespace {

// Digest requests of one session waiting or being hashed: the original keeps
// a few in flight to overlap its own hashing with ours; more is a misbehaving
// peer (each costs a worker's read buffer).
constexpr uint32_t kDigestsOutstandingMax = 16;
constexpr uint64_t kProgressLogIntervalMs = 10000;

std::string u64s(uint64_t v) { return std::to_string(v); }

const char* kind_name(proto::ProgressKind k) { return k == proto::ProgressKind::resync ? "resync" : "verify"; }

}  // namespace

void Daemon::on_maintenance_frame(Conn* c, proto::MsgType type, proto::Frame& frame) {
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
      apply_actions(actions);
      return;
    }
    case proto::MsgType::digest_request: {
      proto::DigestRequest q;
      if (!(s = proto::decode_digest_request(plain, q)).is_ok()) break;
      const blockio::Geometry g = device_->geometry();
      if (q.offset_bytes % g.logical_block_bytes != 0 || q.offset_bytes >= g.size_bytes ||
          q.offset_bytes + uint64_t{q.extent_bytes} * (q.count - 1) >= g.size_bytes) {
        s = base::Status::error(ERANGE, "digest_request at offset " + u64s(q.offset_bytes) + " for " + u64s(q.count) + " x " +
                                            u64s(q.extent_bytes) + " bytes is not inside the disk (" + u64s(g.size_bytes) +
                                            " bytes) or not block-aligned.");
        send_error(c, proto::ErrorCode::out_of_range, s.message());
        return close_conn(c, s.message());
      }
      if (digests_outstanding_ >= kDigestsOutstandingMax) {
        s = base::Status::error(EPROTO, "more than " + u64s(kDigestsOutstandingMax) + " digest requests outstanding.");
        break;
      }
      ++digests_outstanding_;
      disk_workers_->digest(q, session_serial_);
      return;
    }
    case proto::MsgType::resync_data:
    case proto::MsgType::resync_zero: {
      proto::RecordHeader h;
      base::ByteSpan payload;
      if (!(s = proto::decode_resync_extent(plain, h, payload)).is_ok()) break;
      apply::RecordId id = 0;
      machine_.on_resync_extent(h, id, actions);
      if (id != 0 && type == proto::MsgType::resync_data) frames_.emplace(id, std::move(frame));
      apply_actions(actions);
      return;
    }
    case proto::MsgType::resync_mark: {
      uint64_t cursor = 0;
      if (!(s = proto::decode_resync_mark(plain, cursor)).is_ok()) break;
      machine_.on_resync_mark(cursor, actions);
      apply_actions(actions);
      return;
    }
    case proto::MsgType::resync_end: {
      uint64_t at = 0;
      if (!(s = proto::decode_resync_end(plain, at)).is_ok()) break;
      machine_.on_resync_end(at, actions);
      apply_actions(actions);
      return;
    }
    case proto::MsgType::out_of_sync: {
      uint64_t offset = 0, length = 0;
      if (!(s = proto::decode_out_of_sync(plain, offset, length)).is_ok()) break;
      LOG_WARN("verify: the clone differs from the original at offset %" PRIu64 ", %" PRIu64 " bytes", offset, length);
      record_event("warning", "verify", "out of sync: offset " + u64s(offset) + ", " + u64s(length) + " bytes");
      store_worker_->run_job([offset, length](store::Store& st) { return st.add_out_of_sync(offset, length); });
      return;
    }
    case proto::MsgType::progress: {
      proto::Progress p;
      if (!(s = proto::decode_progress(plain, p)).is_ok()) break;
      note_progress(p);
      return;
    }
    default:
      s = base::Status::error(EPROTO, "message type " + u64s(static_cast<uint64_t>(type)) + " is sent by the clone, not to it.");
      break;
  }
  send_error(c, s.code() == EMSGSIZE ? proto::ErrorCode::too_large : proto::ErrorCode::protocol, s.message());
  close_conn(c, s.message());
}

void Daemon::on_digest_done(Completion& done) {
  if (done.session_serial != session_serial_) return;  // its session is gone
  if (digests_outstanding_ > 0) --digests_outstanding_;
  Conn* c = session_;
  if (c == nullptr) return;
  if (!done.status.is_ok()) {
    LOG_ERROR("reading the clone's disk for digests failed: %s", done.status.message().c_str());
    record_event("error", "disk", done.status.message());
    send_error(c, proto::ErrorCode::disk_io, done.status.message());
    return close_conn(c, done.status.message());
  }
  proto::DigestReply r;
  r.id = done.request.id;
  r.offset_bytes = done.request.offset_bytes;
  r.extent_bytes = done.request.extent_bytes;
  r.digests = std::move(done.digests);
  base::Bytes out;
  proto::encode_digest_reply(r, out);
  send_plain(c, out);
}

void Daemon::send_resync_actions(Conn* c, apply::Actions& a) {
  base::Bytes out;
  if (a.resync_state) {
    out.clear();
    proto::encode_resync_state(*a.resync_state, out);
    send_plain(c, out);
    const std::string what = a.resync_state->resumed ? "resumed" : "began";
    record_event("notice", "resync", what + " generation " + u64s(a.resync_state->generation) + " at byte " +
                                         u64s(a.resync_state->cursor_bytes));
  }
  for (uint64_t cursor : a.resync_mark_acks) {
    out.clear();
    proto::encode_resync_mark_ack(cursor, out);
    send_plain(c, out);
  }
  if (a.resync_done) {
    out.clear();
    proto::encode_resync_done(*a.resync_done, out);
    send_plain(c, out);
    LOG_NOTICE("resync complete: generation %" PRIu64 " at record %" PRIu64, a.resync_done->generation, a.resync_done->seq);
    record_event("notice", "resync", "complete: generation " + u64s(a.resync_done->generation) + " at record " +
                                         u64s(a.resync_done->seq));
    progress_.active = false;
  }
}

void Daemon::note_progress(const proto::Progress& p) {
  const uint64_t now = now_ms();
  if (!progress_.active || progress_.kind != p.kind || p.done_bytes < progress_.done_bytes) {
    progress_ = {};
    progress_.active = true;
    progress_.kind = p.kind;
    progress_.first_ms = now;
    progress_.first_done = p.done_bytes;
    progress_.last_log_ms = now;
  }
  progress_.done_bytes = p.done_bytes;
  progress_.total_bytes = p.total_bytes;
  progress_.updated_ms = now;
  if (now > progress_.first_ms)
    progress_.rate_bytes_per_s = static_cast<double>(p.done_bytes - progress_.first_done) * 1000.0 /
                                 static_cast<double>(now - progress_.first_ms);
  if (p.done_bytes >= p.total_bytes) {
    LOG_NOTICE("%s: %s", kind_name(p.kind), progress_text().c_str());
    progress_.active = false;
  } else if (now - progress_.last_log_ms >= kProgressLogIntervalMs) {
    progress_.last_log_ms = now;
    LOG_NOTICE("%s: %s", kind_name(p.kind), progress_text().c_str());
  }
}

// "45.0% (460 MiB of 1 GiB), 120 MiB/s, ETA 5 s"
std::string Daemon::progress_text() const {
  const MaintenanceProgress& p = progress_;
  if (p.total_bytes == 0) return "";
  char line[160];
  const double pct = 100.0 * static_cast<double>(p.done_bytes) / static_cast<double>(p.total_bytes);
  std::string eta = "ETA unknown";
  if (p.rate_bytes_per_s > 0 && p.done_bytes < p.total_bytes)
    eta = "ETA " + u64s(static_cast<uint64_t>(static_cast<double>(p.total_bytes - p.done_bytes) / p.rate_bytes_per_s)) + " s";
  else if (p.done_bytes >= p.total_bytes)
    eta = "done";
  std::snprintf(line, sizeof line, "%.1f%% (%s of %s), %s/s, %s", pct, base::format_bytes(p.done_bytes).c_str(),
                base::format_bytes(p.total_bytes).c_str(),
                base::format_bytes(static_cast<uint64_t>(p.rate_bytes_per_s)).c_str(), eta.c_str());
  return line;
}

}  // namespace cloned
