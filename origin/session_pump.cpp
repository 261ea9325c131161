// SPDX-License-Identifier: MIT
// Session: the I/O loop. One poll(2) over the socket and the wake eventfd;
// sealed frames wait in a bounded send buffer (backpressure: records stay in
// the retained log until there is room), everything received is handled as it
// arrives, and the keepalive and idle timers run off the poll timeout.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "origin/session.h"

namespace origin {

namespace {

constexpr size_t kRecvChunkBytes = 256 * 1024;
constexpr uint64_t kGoodbyeGraceMs = 1000;
std::string u64s(uint64_t v) { return std::to_string(v); }

}  // namespace

void Session::queue_plain(const base::Bytes& plain) { sealer_->seal(plain, send_buf_); }

void Session::drain_wake_fd() {
  uint64_t count = 0;
  while (::read(wake_fd_, &count, sizeof count) > 0) {
  }
}

int Session::poll_timeout_ms(uint64_t now) const {
  uint64_t wait = config_.idle_timeout_ms - std::min<uint64_t>(now - last_recv_ms_, config_.idle_timeout_ms);
  if (send_pending() == 0)
    wait = std::min<uint64_t>(wait, config_.keepalive_interval_ms -
                                        std::min<uint64_t>(now - last_send_ms_, config_.keepalive_interval_ms));
  return static_cast<int>(std::min<uint64_t>(wait, 1000) + 1);
}

base::Status Session::pump() {
  for (;;) {
    if (listener_.stop_requested()) return established_ ? say_goodbye() : base::Status::ok();
    BASE_TRY(fill_send_buffer());
    const uint64_t now = net::now_ms();
    if (now - last_recv_ms_ >= config_.idle_timeout_ms)
      return base::Status::error(ETIMEDOUT, "the clone was silent for " + u64s(now - last_recv_ms_) + " ms");
    if (send_pending() == 0 && now - last_send_ms_ >= config_.keepalive_interval_ms) {
      base::Bytes ping;
      proto::encode_ping(++ping_token_, log_.advertised_end_seq(), ping);
      queue_plain(ping);
    }
    pollfd fds[2] = {{fd_.get(), static_cast<short>(POLLIN | (send_pending() > 0 ? POLLOUT : 0)), 0},
                     {wake_fd_, POLLIN, 0}};
    int rc = ::poll(fds, wake_fd_ >= 0 ? 2 : 1, poll_timeout_ms(now));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return base::Status::from_errno("poll failed");
    if (wake_fd_ >= 0 && (fds[1].revents & POLLIN)) drain_wake_fd();
    if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) BASE_TRY(receive());
    if (fds[0].revents & POLLOUT) BASE_TRY(flush_some());
  }
}

base::Status Session::fill_send_buffer() {
  if (!established_ || config_.health_only) return base::Status::ok();
  uint64_t queued = 0;
  while (send_pending() < config_.send_buffer_bytes_max) {
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
    sealer_->seal(r->plain, send_buf_);
    ++next_send_seq_;
    ++queued;
  }
  if (queued > 0) listener_.on_records_queued(queued);
  return base::Status::ok();
}

base::Status Session::flush_some() {
  uint64_t sent = 0;
  while (send_pending() > 0) {
    ssize_t n = ::send(fd_.get(), send_buf_.data() + send_head_, send_pending(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) return base::Status::from_errno("sending to the clone failed");
    send_head_ += static_cast<size_t>(n);
    sent += static_cast<uint64_t>(n);
  }
  if (send_head_ == send_buf_.size()) {
    send_buf_.clear();
    send_head_ = 0;
  } else if (send_head_ >= send_buf_.size() / 2) {
    send_buf_.erase(send_buf_.begin(), send_buf_.begin() + static_cast<std::ptrdiff_t>(send_head_));
    send_head_ = 0;
  }
  if (sent > 0) {
    last_send_ms_ = net::now_ms();
    listener_.on_bytes_sent(sent);
  }
  return base::Status::ok();
}

base::Status Session::receive() {
  ssize_t n = ::recv(fd_.get(), recv_buf_.get(), kRecvChunkBytes, MSG_DONTWAIT);
  if (n == 0) return base::Status::error(ECONNRESET, "the clone closed the connection");
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return base::Status::ok();
    return base::Status::from_errno("receiving from the clone failed");
  }
  base::ByteSpan in(recv_buf_.get(), static_cast<size_t>(n));
  while (!in.empty()) {
    proto::Frame frame;
    bool has_frame = false;
    // A frame that fails authentication means the stream was damaged or
    // tampered with on the way: this connection is dead, a new one may work.
    BASE_TRY(reader_->feed(in, frame, has_frame).with_context("a frame from the clone was refused"));
    if (!has_frame) continue;
    // Only a whole, authenticated frame counts as hearing from the clone: a
    // damaged length prefix would otherwise keep a dead stream "alive".
    last_recv_ms_ = net::now_ms();
    BASE_TRY(handle_frame(frame.plain()));
  }
  return base::Status::ok();
}

// Sends what is queued, then half-closes and reads until the clone closes
// its side (bounded): closing with unread input would make the kernel send a
// reset, which can destroy our last message before the clone reads it.
void Session::close_gracefully() {
  const uint64_t deadline = net::now_ms() + kGoodbyeGraceMs;
  (void)net::write_all(fd_.get(), base::ByteSpan(send_buf_).subspan(send_head_), deadline);
  send_buf_.clear();
  send_head_ = 0;
  ::shutdown(fd_.get(), SHUT_WR);
  uint8_t discard[16 * 1024];  // not recv_buf_: a caller may still be parsing it
  while (net::wait_fd(fd_.get(), POLLIN, deadline).is_ok()) {
    ssize_t n = ::recv(fd_.get(), discard, sizeof discard, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) break;
  }
  fd_.reset();
}

// An orderly end: the clone logs it as such and keeps nothing half-open.
base::Status Session::say_goodbye() {
  base::Bytes plain;
  proto::encode_goodbye({proto::ErrorCode::shutting_down, "the original has finished and closes the session."}, plain);
  queue_plain(plain);
  close_gracefully();
  return base::Status::ok();
}

}  // namespace origin
