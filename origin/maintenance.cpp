// SPDX-License-Identifier: MIT
#include "origin/maintenance.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <functional>
#include <map>
#include <thread>

#include "base/aligned_buffer.h"
#include "base/log.h"
#include "base/units.h"
#include "proto/resync.h"
#include "origin/image.h"
#include "origin/progress.h"

namespace origin {

namespace {

constexpr uint32_t kVerifyBlockBytes = proto::kMinExtentBytes;  // the second look's granularity
constexpr uint64_t kWaitStepMs = 200;

std::string u64s(uint64_t v) { return std::to_string(v); }

using FrameHandler = std::function<base::Status(proto::MsgType, base::ByteSpan)>;

// One maintenance session's connection: sealed frames out, opened frames in,
// pings answered, the clone's errors turned into a Status.
class Link {
 public:
  // Connects, authenticates, exchanges hellos.
  base::Status open(const SessionConfig& config, proto::Hello& clone_hello) {
    ClientLink link;
    base::Status s = connect_to_clone(config, link);
    if (!s.is_ok()) {
      fatal_ = link.refused_for_good;
      return s;
    }
    fd_ = std::move(link.fd);
    sealer_ = std::make_unique<proto::FrameSealer>(link.keys.send);
    reader_ = std::make_unique<proto::FrameReader>(link.keys.recv, kRecvFrameBytesMax);
    idle_timeout_ms_ = config.idle_timeout_ms;
    keepalive_ms_ = config.keepalive_interval_ms;
    last_recv_ms_ = last_send_ms_ = net::now_ms();
    proto::Hello h = original_hello(config, 1, 0);
    h.flags |= proto::kHelloMaintenance;
    base::Bytes plain;
    proto::encode_hello(h, plain);
    queue(plain);
    bool got = false;
    const uint64_t deadline = net::now_ms() + config.connect_timeout_ms;
    const FrameHandler on_hello = [&](proto::MsgType t, base::ByteSpan m) {
        if (t != proto::MsgType::hello) return violation("the clone's first message is not a hello");
        BASE_TRY(proto::decode_hello(m, clone_hello).with_context("the clone's hello is malformed"));
        if (clone_hello.role != proto::Role::clone || clone_hello.pair_id != config.pair_id)
          return fatal(EPROTO, "the peer is not this pair's clone");
        if (clone_hello.disk_size_bytes != config.disk_size_bytes ||
            clone_hello.logical_block_bytes != config.logical_block_bytes)
          return fatal(EINVAL, "the clone's disk has " + u64s(clone_hello.disk_size_bytes) + " bytes in " +
                                   u64s(clone_hello.logical_block_bytes) + "-byte blocks but this original's has " +
                                   u64s(config.disk_size_bytes) + " in " + u64s(config.logical_block_bytes));
        got = true;
        return base::Status::ok();
    };
    while (!got) {
      if (net::now_ms() > deadline) return base::Status::error(ETIMEDOUT, "the clone did not answer the hello");
      BASE_TRY(pump(static_cast<int>(kWaitStepMs), on_hello));
    }
    return base::Status::ok();
  }

  void queue(const base::Bytes& plain) {
    const size_t before = send_buf_.size();
    sealer_->seal(plain, send_buf_);
    wire_bytes_ += send_buf_.size() - before;
  }
  size_t send_pending() const { return send_buf_.size() - send_head_; }
  uint64_t wire_bytes() const { return wire_bytes_; }
  uint64_t received_bytes() const { return received_bytes_; }
  bool fatal() const { return fatal_; }

  // Sends what it can and handles what arrives, waiting at most timeout_ms.
  base::Status pump(int timeout_ms, const FrameHandler& handler) {
    const uint64_t now = net::now_ms();
    if (now - last_recv_ms_ >= idle_timeout_ms_)
      return base::Status::error(ETIMEDOUT, "the clone was silent for " + u64s(now - last_recv_ms_) + " ms");
    if (send_pending() == 0 && now - last_send_ms_ >= keepalive_ms_) {
      base::Bytes ping;
      proto::encode_ping(++ping_token_, 0, ping);
      queue(ping);
    }
    pollfd p{fd_.get(), static_cast<short>(POLLIN | (send_pending() > 0 ? POLLOUT : 0)), 0};
    int rc = ::poll(&p, 1, timeout_ms);
    if (rc < 0 && errno != EINTR) return base::Status::from_errno("poll failed");
    if (rc <= 0) return base::Status::ok();
    if (p.revents & POLLOUT) BASE_TRY(flush_some());
    if (p.revents & (POLLIN | POLLERR | POLLHUP)) BASE_TRY(receive(handler));
    return base::Status::ok();
  }

  // Sends everything queued (bounded by the idle timeout).
  base::Status drain() {
    while (send_pending() > 0) BASE_TRY(pump(static_cast<int>(kWaitStepMs), ignore_all()));
    return base::Status::ok();
  }

  void close() {
    if (!fd_) return;
    base::Bytes bye;
    proto::encode_goodbye({proto::ErrorCode::shutting_down, "the original has finished."}, bye);
    queue(bye);
    (void)net::write_all(fd_.get(), base::ByteSpan(send_buf_).subspan(send_head_), net::now_ms() + 1000);
    ::shutdown(fd_.get(), SHUT_WR);
    uint8_t discard[4096];
    const uint64_t deadline = net::now_ms() + 1000;
    while (net::wait_fd(fd_.get(), POLLIN, deadline).is_ok()) {
      ssize_t n = ::recv(fd_.get(), discard, sizeof discard, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) break;
    }
    fd_.reset();
  }

  base::Status violation(const std::string& what) { return fatal(EPROTO, "the clone broke the protocol: " + what); }
  base::Status fatal(int code, const std::string& message) {
    fatal_ = true;
    return base::Status::error(code, message);
  }
  static FrameHandler ignore_all() {
    return [](proto::MsgType, base::ByteSpan) { return base::Status::ok(); };
  }

 private:
  base::Status flush_some() {
    while (send_pending() > 0) {
      ssize_t n = ::send(fd_.get(), send_buf_.data() + send_head_, send_pending(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) return base::Status::from_errno("sending to the clone failed");
      send_head_ += static_cast<size_t>(n);
      last_send_ms_ = net::now_ms();
    }
    if (send_head_ == send_buf_.size()) {
      send_buf_.clear();
      send_head_ = 0;
    } else if (send_head_ >= (1u << 20)) {
      send_buf_.erase(send_buf_.begin(), send_buf_.begin() + static_cast<std::ptrdiff_t>(send_head_));
      send_head_ = 0;
    }
    return base::Status::ok();
  }

  base::Status receive(const FrameHandler& handler) {
    uint8_t buf[64 * 1024];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return base::Status::error(ECONNRESET, "the clone closed the connection");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return base::Status::ok();
      return base::Status::from_errno("receiving from the clone failed");
    }
    received_bytes_ += static_cast<uint64_t>(n);
    base::ByteSpan in(buf, static_cast<size_t>(n));
    while (!in.empty()) {
      proto::Frame frame;
      bool has = false;
      BASE_TRY(reader_->feed(in, frame, has).with_context("a frame from the clone was refused"));
      if (!has) continue;
      last_recv_ms_ = net::now_ms();
      BASE_TRY(handle(frame.plain(), handler));
    }
    return base::Status::ok();
  }

  base::Status handle(base::ByteSpan plain, const FrameHandler& handler) {
    base::Result<proto::MsgType> type = proto::peek_type(plain);
    if (!type) return violation(type.status().message());
    uint64_t a = 0, b = 0;
    switch (*type) {
      case proto::MsgType::ping: {
        if (!proto::decode_ping(plain, a, b).is_ok()) return violation("a malformed ping");
        base::Bytes pong;
        proto::encode_pong(a, pong);
        queue(pong);
        return base::Status::ok();
      }
      case proto::MsgType::pong:
      case proto::MsgType::committed:
      case proto::MsgType::barrier_ack:
      case proto::MsgType::receipt_ack:
      // Not acknowledged here: the clone keeps its health reports for the
      // next replication or health session; wake info is for those too.
      case proto::MsgType::health_report:
      case proto::MsgType::wake_info:
        return base::Status::ok();
      case proto::MsgType::error:
      case proto::MsgType::goodbye: {
        proto::ErrorMsg m;
        const bool is_error = *type == proto::MsgType::error;
        if (!(is_error ? proto::decode_error(plain, m) : proto::decode_goodbye(plain, m)).is_ok())
          return violation("a malformed error or goodbye");
        if (!is_error) return base::Status::error(ECONNRESET, "the clone said goodbye: " + m.message);
        const std::string text = "the clone refused: " + m.message + " (" + proto::error_code_name(m.code) + ")";
        if (is_retryable(m.code)) return base::Status::error(EAGAIN, text);
        return fatal(EPROTO, text);
      }
      default:
        return handler(*type, plain);
    }
  }

  net::UniqueFd fd_;
  std::unique_ptr<proto::FrameSealer> sealer_;
  std::unique_ptr<proto::FrameReader> reader_;
  base::Bytes send_buf_;
  size_t send_head_ = 0;
  uint64_t wire_bytes_ = 0;
  uint64_t received_bytes_ = 0;
  uint64_t last_recv_ms_ = 0, last_send_ms_ = 0;
  uint64_t idle_timeout_ms_ = 20000, keepalive_ms_ = 5000;
  uint64_t ping_token_ = 0;
  bool fatal_ = false;
};

// The original's image, read for digests and data.
class Image {
 public:
  base::Status open(const std::string& path, uint64_t expected_size) {
    fd_ = net::UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_) return base::Status::from_errno("cannot open the source image " + path);
    base::Result<uint64_t> size = file_or_device_size(fd_.get(), path);
    if (!size) return size.status();
    if (*size != expected_size)
      return base::Status::error(EINVAL, "the source image " + path + " has " + u64s(*size) + " bytes but the pair's disk has " +
                                             u64s(expected_size) + "; a clone must be a disk of the same size.");
    size_ = *size;
    path_ = path;
    return base::Status::ok();
  }
  uint64_t size() const { return size_; }

  base::Status read(uint64_t offset, base::MutableByteSpan out) {
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::pread(fd_.get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return base::Status::from_errno("reading the source image " + path_);
      if (n == 0) return base::Status::error(EIO, "the source image " + path_ + " ended early");
      done += static_cast<size_t>(n);
    }
    return base::Status::ok();
  }

  // Digests of `count` extents from `offset`, the last cut at the disk's end
  // (as the clone cuts it).
  base::Status digests(const digest::DigestKey& key, uint64_t offset, uint32_t extent, uint32_t count,
                       std::vector<digest::Digest>& out) {
    out.clear();
    const uint64_t total = std::min<uint64_t>(uint64_t{extent} * count, size_ - offset);
    buf_.resize(std::min<uint64_t>(total, 8u << 20));
    for (uint64_t done = 0; done < total;) {
      const uint64_t n = std::min<uint64_t>(buf_.size() / extent * extent, total - done);
      BASE_TRY(read(offset + done, base::MutableByteSpan(buf_.data(), n)));
      for (uint64_t at = 0; at < n; at += extent)
        out.push_back(digest::keyed_digest(key, base::ByteSpan(buf_.data() + at, std::min<uint64_t>(extent, n - at))));
      done += n;
    }
    return base::Status::ok();
  }

 private:
  net::UniqueFd fd_;
  uint64_t size_ = 0;
  std::string path_;
  base::Bytes buf_;
};

bool all_zero(base::ByteSpan s) {
  return std::all_of(s.begin(), s.end(), [](uint8_t b) { return b == 0; });
}

// Holds the average of bytes per second under the limit (0: none).
class RateLimit {
 public:
  explicit RateLimit(uint64_t bytes_per_s) : rate_(bytes_per_s), start_ns_(base::monotonic_ns()) {}
  void take(uint64_t bytes) {
    if (rate_ == 0) return;
    used_ += bytes;
    const uint64_t due_ns = static_cast<uint64_t>(static_cast<double>(used_) * 1e9 / static_cast<double>(rate_));
    const uint64_t elapsed = base::monotonic_ns() - start_ns_;
    if (due_ns > elapsed) std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<uint64_t>(due_ns - elapsed, 1'000'000'000)));
  }

 private:
  uint64_t rate_;
  uint64_t start_ns_;
  uint64_t used_ = 0;
};

// One digest request in flight with this side's digests of the same range.
struct Pending {
  proto::DigestRequest request;
  std::vector<digest::Digest> local;
  std::vector<digest::Digest> remote;
  bool answered = false;
};

// Compares [from, to) of the disk in extents, a few requests in flight, and
// calls `differ` for each extent whose digests differ, in disk order, and
// `chunk_done` after each request's range is handled.
class Scanner {
 public:
  // `digested` counts the bytes compared, as they are (an interrupted scan counts too).
  Scanner(Link& link, Image& image, const digest::DigestKey& key, const MaintenanceOptions& o, RateLimit& rate,
          uint64_t& digested)
      : link_(link), image_(image), key_(key), options_(o), rate_(rate), digested_(digested) {}

  base::Status scan(uint64_t from, uint64_t to, uint32_t extent, const std::function<base::Status(Range)>& differ,
                    const std::function<base::Status(uint64_t)>& chunk_done) {
    const uint32_t per_request = static_cast<uint32_t>(
        std::clamp<uint64_t>(options_.request_bytes_max / extent, 1, proto::kMaxDigestsPerRequest));
    uint64_t next_request = from, next_handle = from;
    std::map<uint64_t, Pending> pending;  // by offset
    const FrameHandler on_reply = [&](proto::MsgType t, base::ByteSpan m) -> base::Status {
      if (t != proto::MsgType::digest_reply)
        return extra_ ? extra_(t, m) : link_.violation("unexpected message " + u64s(static_cast<uint64_t>(t)));
      proto::DigestReply r;
      BASE_TRY(proto::decode_digest_reply(m, r).with_context("the clone's digest reply is malformed"));
      auto it = pending.find(r.offset_bytes);
      if (it == pending.end() || it->second.request.id != r.id || it->second.answered ||
          r.digests.size() != it->second.local.size() || r.extent_bytes != extent)
        return link_.violation("a digest reply that answers no request (id " + u64s(r.id) + ")");
      it->second.remote = std::move(r.digests);
      it->second.answered = true;
      return base::Status::ok();
    };
    while (next_handle < to) {
      while (pending.size() < options_.digests_in_flight && next_request < to &&
             link_.send_pending() < options_.send_buffer_bytes_max) {
        Pending p;
        p.request.id = ++ids_;
        p.request.offset_bytes = next_request;
        p.request.extent_bytes = extent;
        p.request.count = static_cast<uint32_t>(std::min<uint64_t>(per_request, (to - next_request + extent - 1) / extent));
        base::Bytes out;
        proto::encode_digest_request(p.request, out);
        link_.queue(out);
        rate_.take(p.request.length_bytes());
        BASE_TRY(image_.digests(key_, p.request.offset_bytes, extent, p.request.count, p.local));
        next_request += p.request.length_bytes();
        pending.emplace(p.request.offset_bytes, std::move(p));
      }
      BASE_TRY(link_.pump(static_cast<int>(kWaitStepMs), on_reply));
      // Handle answered requests in disk order.
      while (!pending.empty() && pending.begin()->first == next_handle && pending.begin()->second.answered &&
             link_.send_pending() < options_.send_buffer_bytes_max) {
        Pending& p = pending.begin()->second;
        for (size_t i = 0; i < p.local.size(); ++i) {
          if (digest::digest_equal(p.local[i], p.remote[i])) continue;
          const uint64_t off = p.request.offset_bytes + i * uint64_t{extent};
          BASE_TRY(differ({off, std::min<uint64_t>(extent, image_.size() - off)}));
        }
        digested_ += std::min<uint64_t>(p.request.length_bytes(), image_.size() - p.request.offset_bytes);
        next_handle += p.request.length_bytes();
        pending.erase(pending.begin());
        BASE_TRY(chunk_done(std::min(next_handle, to)));
      }
    }
    return base::Status::ok();
  }

  // Messages other than digest replies that may arrive during a scan.
  void set_extra_handler(FrameHandler h) { extra_ = std::move(h); }

 private:
  Link& link_;
  Image& image_;
  const digest::DigestKey& key_;
  const MaintenanceOptions& options_;
  RateLimit& rate_;
  uint64_t ids_ = 0;
  uint64_t& digested_;
  FrameHandler extra_;
};

// Waits for one message of `type` (others go to `other`), up to the idle timeout.
base::Status wait_for(Link& link, proto::MsgType type, base::Bytes& out, const FrameHandler& other = nullptr) {
  bool got = false;
  const FrameHandler handler = [&](proto::MsgType t, base::ByteSpan m) -> base::Status {
    if (t == type) {
      out.assign(m.begin(), m.end());
      got = true;
      return base::Status::ok();
    }
    if (other) return other(t, m);
    return link.violation("unexpected message " + u64s(static_cast<uint64_t>(t)) + " while waiting for " +
                          u64s(static_cast<uint64_t>(type)));
  };
  while (!got) BASE_TRY(link.pump(static_cast<int>(kWaitStepMs), handler));
  return base::Status::ok();
}

// Sends one extent of the image: zeroes as such, data with its digest.
base::Status send_extent(Link& link, Image& image, const digest::DigestKey& key, Range r, base::AlignedBuffer& buf,
                         ResyncReport& report) {
  for (uint64_t done = 0; done < r.length_bytes;) {
    const uint64_t n = std::min<uint64_t>(r.length_bytes - done, proto::kMaxWritePayloadBytes);
    base::MutableByteSpan data(buf.data(), n);
    BASE_TRY(image.read(r.offset_bytes + done, data));
    proto::RecordHeader h;
    h.offset_bytes = r.offset_bytes + done;
    h.length_bytes = n;
    base::Bytes out;
    if (all_zero(data)) {
      h.type = proto::MsgType::resync_zero;
      proto::encode_record(h, {}, out);
      report.zero_bytes_sent += n;
    } else {
      h.type = proto::MsgType::resync_data;
      h.digest = digest::keyed_digest(key, data);
      proto::encode_record(h, data, out);
      report.data_bytes_sent += n;
    }
    link.queue(out);
    ++report.extents_sent;
    done += n;
  }
  return base::Status::ok();
}

void send_progress(Link& link, proto::ProgressKind kind, uint64_t done, uint64_t total) {
  base::Bytes out;
  proto::encode_progress({kind, std::min(done, total), total}, out);
  link.queue(out);
}

std::string progress_line(const char* what, uint64_t done, uint64_t total, uint64_t start_done, uint64_t start_ns) {
  const uint64_t elapsed = base::monotonic_ns() - start_ns;
  const double rate = elapsed > 0 ? static_cast<double>(done - start_done) * 1e9 / static_cast<double>(elapsed) : 0;
  char line[200];
  std::snprintf(line, sizeof line, "%s: %.1f%% (%s of %s), %s, ETA %s", what,
                total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0,
                base::format_bytes(done).c_str(), base::format_bytes(total).c_str(),
                format_rate(done - start_done, elapsed).c_str(),
                rate > 0 ? (u64s(static_cast<uint64_t>(static_cast<double>(total - done) / rate)) + " s").c_str() : "unknown");
  return line;
}

// Mark acks may still arrive while the end is awaited.
FrameHandler scanner_extra(Link& link, uint64_t& acked) {
  return [&link, &acked](proto::MsgType t, base::ByteSpan m) -> base::Status {
    if (t != proto::MsgType::resync_mark_ack) return link.violation("unexpected message " + u64s(static_cast<uint64_t>(t)));
    return proto::decode_resync_mark_ack(m, acked);
  };
}

// One resync session: begin (or resume), scan, end. `ranges` empty: the
// whole disk; else a repair of just those ranges.
base::Status resync_session(const SessionConfig& session, Image& image, const proto::ResyncBegin& begin,
                            const std::vector<Range>& ranges, const MaintenanceOptions& options, ResyncReport& report,
                            bool& fatal) {
  Link link;
  proto::Hello clone;
  base::Status s = link.open(session, clone);
  fatal = link.fatal();
  if (!s.is_ok()) return s;
  ++report.sessions;
  const digest::DigestKey& key = session.digest_key;
  s = [&]() -> base::Status {
    base::Bytes msg;
    proto::encode_resync_begin(begin, msg);
    link.queue(msg);
    BASE_TRY(wait_for(link, proto::MsgType::resync_state, msg));
    proto::ResyncState state;
    BASE_TRY(proto::decode_resync_state(msg, state).with_context("the clone's resync_state is malformed"));
    report.started_at_bytes = state.cursor_bytes;
    LOG_NOTICE("%s generation %" PRIu64 " %s at byte %" PRIu64 " of %" PRIu64, ranges.empty() ? "resync of" : "repair in",
               begin.generation, state.resumed ? "resumed" : "began", state.cursor_bytes, state.total_bytes);
    RateLimit rate(options.rate_bytes_max);
    Scanner scanner(link, image, key, options, rate, report.digested_bytes);
    base::AlignedBuffer buf(proto::kMaxWritePayloadBytes);
    uint64_t last_mark = state.cursor_bytes, acked = state.cursor_bytes;
    scanner.set_extra_handler(scanner_extra(link, acked));
    const uint64_t start_ns = base::monotonic_ns();
    uint64_t last_progress_ns = 0;
    const uint64_t total = image.size();
    auto differ = [&](Range r) {
      rate.take(r.length_bytes);
      return send_extent(link, image, key, r, buf, report);
    };
    auto chunk_done = [&](uint64_t at) -> base::Status {
      if (at - last_mark >= options.mark_interval_bytes || at == total) {
        base::Bytes mark;
        proto::encode_resync_mark(at, mark);
        link.queue(mark);
        last_mark = at;
      }
      const uint64_t now = base::monotonic_ns();
      if (now - last_progress_ns >= 1'000'000'000ull) {
        last_progress_ns = now;
        send_progress(link, proto::ProgressKind::resync, at, total);
        std::fprintf(stderr, "%s\n", progress_line("resync", at, total, state.cursor_bytes, start_ns).c_str());
      }
      return base::Status::ok();
    };
    if (ranges.empty()) {
      BASE_TRY(scanner.scan(state.cursor_bytes, total, begin.extent_bytes, differ, chunk_done));
    } else {
      for (const Range& r : ranges) BASE_TRY(differ(r));
    }
    send_progress(link, proto::ProgressKind::resync, total, total);
    msg.clear();
    proto::encode_resync_end(begin.target_seq, msg);
    link.queue(msg);
    BASE_TRY(wait_for(link, proto::MsgType::resync_done, msg, scanner_extra(link, acked)));
    proto::ResyncDone done;
    BASE_TRY(proto::decode_resync_done(msg, done).with_context("the clone's resync_done is malformed"));
    if (done.generation != begin.generation || done.seq < begin.target_seq)
      return link.violation("resync_done names generation " + u64s(done.generation) + " at record " + u64s(done.seq));
    return base::Status::ok();
  }();
  report.wire_bytes_sent += link.wire_bytes();
  report.wire_bytes_received += link.received_bytes();
  fatal = fatal || link.fatal();
  if (s.is_ok()) link.close();
  return s;
}

}  // namespace


base::Result<proto::Hello> ask_clone(const SessionConfig& session) {
  Link link;
  proto::Hello clone;
  BASE_TRY(link.open(session, clone));
  link.close();
  return clone;
}

base::Result<ResyncReport> resync_clone(const SessionConfig& session, const ReconnectPolicy& policy,
                                        const std::string& image_path, uint64_t generation, uint64_t target_seq,
                                        uint64_t target_epoch, const MaintenanceOptions& options) {
  Image image;
  BASE_TRY(image.open(image_path, session.disk_size_bytes));
  proto::ResyncBegin begin{generation, target_seq, target_epoch, options.extent_bytes,
                           options.discard_clone_changes ? proto::kResyncDiscardCloneChanges : 0u};
  ResyncReport report;
  report.generation = generation;
  const uint64_t start_ns = base::monotonic_ns();
  uint32_t failures = 0, backoff_ms = policy.initial_ms;
  for (;;) {
    bool fatal = false;
    const uint64_t sessions_before = report.sessions;
    base::Status s = resync_session(session, image, begin, {}, options, report, fatal);
    if (s.is_ok()) break;
    if (fatal) return s;
    if (report.sessions > sessions_before) failures = 0;  // it got somewhere: a fresh count
    if (++failures >= policy.attempts_max)
      return base::Status::error(s.code(), "the resync gave up after " + u64s(failures) + " failed attempts in a row; last: " +
                                               s.message());
    LOG_NOTICE("resync interrupted (%s); resuming in %u ms", s.message().c_str(), backoff_ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(policy.max_ms, backoff_ms * 2);
  }
  report.elapsed_ns = base::monotonic_ns() - start_ns;
  return report;
}

base::Result<ResyncReport> repair_clone(const SessionConfig& session, const std::string& image_path, uint64_t at_seq,
                                        uint64_t at_epoch, const std::vector<Range>& ranges,
                                        const MaintenanceOptions& options) {
  Image image;
  BASE_TRY(image.open(image_path, session.disk_size_bytes));
  proto::ResyncBegin begin{session.generation, at_seq, at_epoch, options.extent_bytes, proto::kResyncRepair};
  ResyncReport report;
  report.generation = session.generation;
  const uint64_t start_ns = base::monotonic_ns();
  bool fatal = false;
  BASE_TRY(resync_session(session, image, begin, ranges, options, report, fatal));
  report.elapsed_ns = base::monotonic_ns() - start_ns;
  return report;
}

base::Result<VerifyReport> verify_clone(const SessionConfig& session, const std::string& image_path, uint64_t at_seq,
                                        const MaintenanceOptions& options) {
  Image image;
  BASE_TRY(image.open(image_path, session.disk_size_bytes));
  Link link;
  proto::Hello clone;
  BASE_TRY(link.open(session, clone));
  if (clone.generation != session.generation || clone.state != proto::CloneState::consistent || clone.applied_seq != at_seq)
    return base::Status::error(EAGAIN, std::string("the clone is ") + proto::clone_state_name(clone.state) + " at generation " +
                                           u64s(clone.generation) + ", record " + u64s(clone.applied_seq) +
                                           "; verify compares a consistent clone of generation " + u64s(session.generation) +
                                           " at record " + u64s(at_seq) + " (replicate or resync first).");
  VerifyReport report;
  const uint64_t start_ns = base::monotonic_ns();
  RateLimit rate(options.rate_bytes_max);
  Scanner scanner(link, image, session.digest_key, options, rate, report.digested_bytes);
  std::vector<Range> suspects;
  const uint64_t total = image.size();
  uint64_t last_progress_ns = 0;
  BASE_TRY(scanner.scan(0, total, options.extent_bytes,
                        [&](Range r) {
                          suspects.push_back(r);
                          return base::Status::ok();
                        },
                        [&](uint64_t at) {
                          const uint64_t now = base::monotonic_ns();
                          if (now - last_progress_ns >= 1'000'000'000ull) {
                            last_progress_ns = now;
                            send_progress(link, proto::ProgressKind::verify, at, total);
                            std::fprintf(stderr, "%s\n", progress_line("verify", at, total, 0, start_ns).c_str());
                          }
                          return base::Status::ok();
                        }));
  report.suspect_extents = suspects.size();
  // The second look, in 4 KiB blocks: what differs still, and exactly where.
  for (const Range& sus : suspects) {
    uint64_t rechecked = 0;
    Scanner fine(link, image, session.digest_key, options, rate, rechecked);
    BASE_TRY(fine.scan(sus.offset_bytes, sus.offset_bytes + sus.length_bytes, kVerifyBlockBytes,
                       [&](Range r) {
                         if (!report.out_of_sync.empty() &&
                             report.out_of_sync.back().offset_bytes + report.out_of_sync.back().length_bytes == r.offset_bytes)
                           report.out_of_sync.back().length_bytes += r.length_bytes;
                         else
                           report.out_of_sync.push_back(r);
                         return base::Status::ok();
                       },
                       [](uint64_t) { return base::Status::ok(); }));
  }
  for (const Range& r : report.out_of_sync) {
    base::Bytes out;
    proto::encode_out_of_sync(r.offset_bytes, r.length_bytes, out);
    link.queue(out);
  }
  send_progress(link, proto::ProgressKind::verify, total, total);
  BASE_TRY(link.drain());
  report.wire_bytes_sent = link.wire_bytes();
  link.close();
  report.elapsed_ns = base::monotonic_ns() - start_ns;
  return report;
}

}  // namespace origin
