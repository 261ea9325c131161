// SPDX-License-Identifier: MIT
// The link to the original, its second half: a connection's messages after
// the handshake (the hello, the session's records and pings, handing resync,
// health and sleep messages to their parts), sending, and closing.
#include <algorithm>

#include "base/log.h"
#include "base/units.h"
#include "cloned/daemon/conn.h"
#include "cloned/daemon/daemon.h"

namespace cloned {

namespace {
constexpr size_t kWriteQueueBytesMax = 4u << 20;  // acks the original does not read
constexpr uint64_t kCloseGraceMs = 2000;
}  // namespace

void Daemon::on_frame(Conn* c, proto::Frame frame) {
  base::Result<proto::MsgType> type = proto::peek_type(frame.plain());
  if (!type) {
    send_error(c, proto::ErrorCode::protocol, type.status().message());
    return close_conn(c, type.status().message());
  }
  if (c->phase == Conn::Phase::await_hello) {
    proto::Hello hello;
    base::Status s = *type == proto::MsgType::hello
                         ? proto::decode_hello(frame.plain(), hello)
                         : base::Status::error(EPROTO, "the first message after the handshake must be a hello.");
    if (!s.is_ok()) {
      send_error(c, proto::error_code_for(s), s.message());
      return close_conn(c, s.message());
    }
    return on_hello(c, hello);
  }
  if (c->health.only) return health_.on_frame(c, *type, frame);
  on_session_frame(c, *type, frame);
}

// A hello opens a session. A health-only one is the health link's (no
// records); any other supersedes the session before it (docs/PROTOCOL.md,
// section 7 rule 1: an original whose connection died unnoticed must not wait
// for the idle timeout), and Diverged detection runs before it can take a write.
void Daemon::on_hello(Conn* c, const proto::Hello& hello) {
  if ((hello.flags & proto::kHelloHealthOnly) != 0) {
    if (!health_.accept_hello(c, hello)) return;
    c->phase = Conn::Phase::session;
    c->deadline_ms = 0;
    c->last_recv_ms = now_ms();
    return health_.greet(c);
  }
  // Before anything of this session (and before it supersedes one): a disk
  // whose fingerprint cannot be compared takes no writes; the original
  // tries again (disk_io is retried) and health reports the disk.
  if (divergence_.check("before this session's first write") == DivergenceGuard::Check::unreadable) {
    const std::string why =
        "the clone cannot read its disk to check that nothing changed it outside cloned; no writes until it can";
    send_error(c, proto::ErrorCode::disk_io, why);
    return close_conn(c, why);
  }
  if (session_ != nullptr) {
    // Told, in case it is still alive: `busy`, so that it tries again later.
    base::Bytes told;
    proto::encode_error({proto::ErrorCode::busy,
                         "a newer session of the paired original (from " + c->peer + ") took over from this one."},
                        told);
    send_plain(session_, told);
    close_conn(session_, "superseded by a new session from " + c->peer);
  }
  session_ = c;
  maintenance_.session_started();
  c->phase = Conn::Phase::session;
  c->deadline_ms = 0;
  stats_.original_log_end = hello.log_end_seq;
  apply::Actions actions;
  machine_.start_session(hello, actions);
  apply_actions(actions);
  // A log session writes at once: invalidated now, its commit overlapping
  // the first records. A maintenance session's writes do it in the machine.
  // (By the hello's flag: a hello the machine defers is not in session yet.)
  if (session_ == c && (hello.flags & proto::kHelloMaintenance) == 0) divergence_.invalidate();
}

void Daemon::on_record_frame(Conn* c, proto::MsgType type, proto::Frame& frame) {
  proto::RecordHeader h;
  base::ByteSpan payload;
  if (base::Status s = proto::decode_record(frame.plain(), h, payload); !s.is_ok()) {
    send_error(c, proto::error_code_for(s), s.message());
    return close_conn(c, s.message());
  }
  ++stats_.records_received;
  apply::Actions actions;
  apply::RecordId id = 0;
  // A marked barrier's payload is its name (decode_record checked it).
  const std::string_view mark = type == proto::MsgType::barrier
                                    ? std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size())
                                    : std::string_view();
  machine_.on_record(h, id, actions, mark);
  if (id != 0 && type == proto::MsgType::write) frames_.emplace(id, std::move(frame));
  apply_actions(actions);
}

void Daemon::on_session_frame(Conn* c, proto::MsgType type, proto::Frame& frame) {
  stats_.bytes_received += frame.plain_bytes;
  switch (type) {
    case proto::MsgType::write:
    case proto::MsgType::trim:
    case proto::MsgType::zero:
    case proto::MsgType::barrier:
      return on_record_frame(c, type, frame);
    case proto::MsgType::ping: {
      uint64_t token = 0, log_end = 0;
      if (proto::decode_ping(frame.plain(), token, log_end).is_ok()) {
        stats_.original_log_end = std::max(stats_.original_log_end, log_end);
        base::Bytes out;
        proto::encode_pong(token, out);
        send_plain(c, out);
        return;
      }
      break;
    }
    case proto::MsgType::pong:
      return;
    case proto::MsgType::resync_begin:
    case proto::MsgType::digest_request:
    case proto::MsgType::resync_data:
    case proto::MsgType::resync_zero:
    case proto::MsgType::resync_mark:
    case proto::MsgType::resync_end:
    case proto::MsgType::out_of_sync:
    case proto::MsgType::progress:
    case proto::MsgType::resync_plan:
    case proto::MsgType::resync_plan_reply:
    case proto::MsgType::resync_state:
    case proto::MsgType::digest_reply:
    case proto::MsgType::resync_mark_ack:
    case proto::MsgType::resync_done:
      return maintenance_.on_frame(c, type, frame);
    case proto::MsgType::health_ack:
      return health_.on_ack(c, frame);
    case proto::MsgType::sleep_request:
      if (proto::decode_sleep_request(frame.plain()).is_ok()) {
        if (waker_) waker_->on_sleep_request();
        return;
      }
      break;
    case proto::MsgType::goodbye:
    case proto::MsgType::error: {
      proto::ErrorMsg m;
      base::Status s = type == proto::MsgType::error ? proto::decode_error(frame.plain(), m)
                                                     : proto::decode_goodbye(frame.plain(), m);
      return close_conn(c, std::string(type == proto::MsgType::error ? "the original reported an error: "
                                                                     : "the original said goodbye: ") +
                               (s.is_ok() ? m.message : "(unreadable)"));
    }
    default:
      break;
  }
  const std::string msg =
      "unexpected or malformed message of type " + std::to_string(static_cast<int>(type)) + " in a session.";
  send_error(c, proto::ErrorCode::protocol, msg);
  close_conn(c, msg);
}

void Daemon::send_plain(Conn* c, const base::Bytes& plain) {
  if (c->phase == Conn::Phase::closing || !c->sealer) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&c->tcp);
  if (uv_stream_get_write_queue_size(stream) > kWriteQueueBytesMax) {
    return close_conn(c, "the original does not read what the clone sends");
  }
  auto* w = new WriteReq;
  c->sealer->seal(plain, w->data);
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(w->data.data()), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, stream, &b, 1, [](uv_write_t* req, int) { delete reinterpret_cast<WriteReq*>(req); });
  if (rc != 0) {
    delete w;
    return close_conn(c, std::string("write failed: ") + uv_strerror(rc));
  }
  c->last_send_ms = now_ms();
}

void Daemon::send_error(Conn* c, proto::ErrorCode code, const std::string& message) {
  ++stats_.refused;
  record_event("warning", "refused", c->peer + ": " + proto::error_code_name(code) + ": " + message);
  base::Bytes out;
  proto::encode_error({code, message}, out);
  send_plain(c, out);
}

// Ends a connection: its session (if any) ends now; the socket is shut down
// after pending writes (so an error message reaches the peer), then closed.
void Daemon::close_conn(Conn* c, const std::string& why) {
  if (c->phase == Conn::Phase::closing) return;
  const bool was_session = c == session_;
  const bool was_handshake = c->handshaking();
  c->phase = Conn::Phase::closing;
  c->deadline_ms = now_ms() + kCloseGraceMs;
  if (!why.empty()) {
    if (was_handshake) {
      ++stats_.refused;
      uint64_t held = 0;
      if (stranger_log_.admit(now_ms(), held))
        LOG_NOTICE("dropped %s during the handshake: %s%s", c->peer.c_str(), why.c_str(),
                   held == 0 ? "" : (" (" + base::u64s(held) + " such notices held back before this one)").c_str());
    } else {
      LOG_INFO("link to %s closed: %s", c->peer.c_str(), why.c_str());
    }
  }
  if (was_session) {
    session_ = nullptr;
    maintenance_.session_ended();
    stats_.peer.clear();
    apply::Actions actions;
    machine_.end_session(actions);
    apply_actions(actions);
    if (waker_) waker_->on_session_ended();
    record_event("info", "session", "session with " + c->peer + " ended: " + why);
    publish_status();
  }
  auto* stream = reinterpret_cast<uv_stream_t*>(&c->tcp);
  uv_read_stop(stream);
  c->reading = false;
  c->shutdown_req.data = c;
  if (uv_shutdown(&c->shutdown_req, stream, [](uv_shutdown_t* req, int) {
        Conn* conn = static_cast<Conn*>(req->data);
        conn->deadline_ms = 1;  // close at the next tick
      }) != 0) {
    c->deadline_ms = 1;
  }
}

}  // namespace cloned
