// SPDX-License-Identifier: MIT
// Session: the loop. The connection (connection.h) polls the socket and the
// wake eventfd, runs the keepalive and idle timers and hands over frames;
// this side feeds it records from the retained log while its bounded send
// buffer has room (backpressure: records stay in the log until then).
#include <cerrno>

#include "base/units.h"
#include "origin/session.h"

namespace origin {

namespace {

// The longest one poll waits: the stop request is polled, not signalled.
constexpr int kWaitMsMax = 1000;

}  // namespace

using base::u64s;

base::Status Session::pump() {
  const FrameHandler handler = [this](proto::MsgType type, base::ByteSpan plain) { return handle_frame(type, plain); };
  for (;;) {
    if (listener_.stop_requested()) return established_ ? say_goodbye() : base::Status::ok();
    listener_.on_reading_log();
    BASE_TRY(fill_send_buffer());
    const uint64_t sent_before = conn_.wire_bytes_sent();
    BASE_TRY(conn_.pump(kWaitMsMax, handler, wake_fd_, log_.advertised_end_seq()));
    if (conn_.wire_bytes_sent() > sent_before) listener_.on_bytes_sent(conn_.wire_bytes_sent() - sent_before);
  }
}

base::Status Session::fill_send_buffer() {
  if (!established_ || config_.health_only) return base::Status::ok();
  uint64_t queued = 0;
  while (conn_.send_pending() < config_.send_buffer_bytes_max) {
    RecordPtr r = log_.get(next_send_seq_);
    if (!r) {
      if (next_send_seq_ < log_.start_seq())
        return refuse(proto::ErrorCode::resync_needed, ERANGE,
                      "resync needed: record " + u64s(next_send_seq_) + " is no longer held by this original.");
      break;  // not captured yet
    }
    if (r->header.epoch != expected_epoch_)
      return refuse(proto::ErrorCode::resync_needed, ERANGE,
                    "resync needed: record " + u64s(r->header.seq) + " belongs to epoch " + u64s(r->header.epoch) +
                        " but the clone expects epoch " + u64s(expected_epoch_) + "; the two logs disagree.");
    expected_epoch_ = r->header.type == proto::MsgType::barrier ? r->header.epoch + 1 : r->header.epoch;
    conn_.queue(r->plain);
    ++next_send_seq_;
    ++queued;
  }
  if (queued > 0) listener_.on_records_queued(queued);
  return base::Status::ok();
}

// An orderly end: the clone logs it as such and keeps nothing half-open.
base::Status Session::say_goodbye() {
  conn_.say_goodbye("the original has finished and closes the session.");
  return base::Status::ok();
}

}  // namespace origin
