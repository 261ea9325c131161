// SPDX-License-Identifier: MIT
// Resync and repair, the original's side (maintenance.h): begin or resume,
// scan, send what differs, mark, end; reconnect with backoff in between.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <thread>

#include "base/aligned_buffer.h"
#include "base/log.h"
#include "base/units.h"
#include "origin/maintenance.h"
#include "origin/maintenance_link.h"
#include "origin/scanner.h"
#include "proto/resync.h"

namespace origin {

using base::u64s;

namespace {

bool all_zero(base::ByteSpan s) {
  return std::all_of(s.begin(), s.end(), [](uint8_t b) { return b == 0; });
}

// One extent on the wire: zeroes as such, data with its digest.
void send_record(MaintenanceLink& link, const digest::DigestKey& key, uint64_t offset, base::ByteSpan data, bool zero,
                 ResyncReport& report) {
  proto::RecordHeader h;
  h.offset_bytes = offset;
  h.length_bytes = data.size();
  base::Bytes out;
  if (zero) {
    h.type = proto::MsgType::resync_zero;
    proto::encode_record(h, {}, out);
    report.zero_bytes_sent += data.size();
  } else {
    h.type = proto::MsgType::resync_data;
    h.digest = digest::keyed_digest(key, data);
    proto::encode_record(h, data, out);
    report.data_bytes_sent += data.size();
  }
  link.queue(out);
  ++report.extents_sent;
}

// Sends a range of the image, read now, in pieces of at most one payload,
// each cut at `block` boundaries into runs of zeroes (a zero extent, or
// nothing where the clone holds zeroes already) and runs of data.
base::Status send_range(MaintenanceLink& link, SourceImage& image, const digest::DigestKey& key, Range r,
                        bool clone_zero, uint32_t block, base::AlignedBuffer& buf, ResyncReport& report) {
  for (uint64_t done = 0; done < r.length_bytes;) {
    const uint64_t n = std::min<uint64_t>(r.length_bytes - done, proto::kMaxWritePayloadBytes);
    BASE_TRY(image.read(r.offset_bytes + done, base::MutableByteSpan(buf.data(), n)));
    const auto zero_at = [&](uint64_t at) {
      return all_zero(base::ByteSpan(buf.data() + at, std::min(n - at, uint64_t{block})));
    };
    for (uint64_t at = 0; at < n;) {
      const bool zero = zero_at(at);
      uint64_t end = std::min(n, at + block);
      while (end < n && zero_at(end) == zero) end = std::min(n, end + block);
      if (!(zero && clone_zero))
        send_record(link, key, r.offset_bytes + done + at, base::ByteSpan(buf.data() + at, end - at), zero, report);
      at = end;
    }
    done += n;
  }
  return base::Status::ok();
}

// Joins adjacent ranges found different (up to one payload, so that what
// waits here and what one call queues stay small) before sending them.
class Sender {
 public:
  Sender(MaintenanceLink& link, SourceImage& image, const digest::DigestKey& key, uint32_t block, RateLimit& rate,
         ResyncReport& report)
      : link_(link),
        image_(image),
        key_(key),
        block_(block),
        rate_(rate),
        report_(report),
        buf_(proto::kMaxWritePayloadBytes) {}

  base::Status add(Range r, Scanner::Found found) {
    rate_.take(r.length_bytes);
    if (run_.length_bytes > 0 && run_.offset_bytes + run_.length_bytes == r.offset_bytes && found == found_ &&
        run_.length_bytes + r.length_bytes <= proto::kMaxWritePayloadBytes) {
      run_.length_bytes += r.length_bytes;
      return base::Status::ok();
    }
    BASE_TRY(flush());
    run_ = r;
    found_ = found;
    return base::Status::ok();
  }

  base::Status flush() {
    const Range r = run_;
    run_ = {};
    if (r.length_bytes == 0) return base::Status::ok();
    return send_range(link_, image_, key_, r, found_ == Scanner::Found::clone_zero, block_, buf_, report_);
  }

 private:
  MaintenanceLink& link_;
  SourceImage& image_;
  const digest::DigestKey& key_;
  uint32_t block_;
  RateLimit& rate_;
  ResyncReport& report_;
  base::AlignedBuffer buf_;
  Range run_;
  Scanner::Found found_ = Scanner::Found::differs;
};

// Mark acks may still arrive while the end is awaited.
FrameHandler scanner_extra(MaintenanceLink& link, uint64_t& acked) {
  return [&link, &acked](proto::MsgType t, base::ByteSpan m) -> base::Status {
    if (t != proto::MsgType::resync_mark_ack)
      return link.violation("unexpected message " + u64s(static_cast<uint64_t>(t)));
    return proto::decode_resync_mark_ack(m, acked);
  };
}

// One resync session: begin (or resume), scan, end. `ranges` empty: the
// whole disk; else a repair of just those ranges.
base::Status resync_session(const SessionConfig& session, SourceImage& image, const proto::ResyncBegin& begin,
                            const std::vector<Range>& ranges, const MaintenanceOptions& options, ResyncReport& report,
                            bool& fatal, std::string& unauthenticated_answer) {
  MaintenanceLink link;
  proto::Hello clone;
  base::Status s = link.open(session, clone);
  fatal = link.fatal();
  unauthenticated_answer = link.unauthenticated_answer();
  if (!s.is_ok()) return s;
  ++report.sessions;
  const digest::DigestKey& key = session.digest_key;
  s = [&]() -> base::Status {
    base::Bytes msg;
    proto::encode_resync_begin(begin, msg);
    link.queue(msg);
    BASE_TRY(link.wait_for(proto::MsgType::resync_state, msg));
    proto::ResyncState state;
    BASE_TRY(proto::decode_resync_state(msg, state).with_context("the clone's resync_state is malformed"));
    report.started_at_bytes = state.cursor_bytes;
    LOG_NOTICE("%s generation %" PRIu64 " %s at byte %" PRIu64 " of %" PRIu64,
               ranges.empty() ? "resync of" : "repair in", begin.generation, state.resumed ? "resumed" : "began",
               state.cursor_bytes, state.total_bytes);
    RateLimit rate(options.rate_bytes_max);
    Scanner scanner(link, image, key, options, rate, report.digested_bytes);
    Sender sender(link, image, key, options.fine_extent_bytes, rate, report);
    uint64_t last_mark = state.cursor_bytes, acked = state.cursor_bytes;
    scanner.set_extra_handler(scanner_extra(link, acked));
    const uint64_t start_ns = base::monotonic_ns();
    uint64_t last_progress_ns = 0;
    const uint64_t total = image.size_bytes();
    auto chunk_done = [&](uint64_t at) -> base::Status {
      if (at - last_mark >= options.mark_interval_bytes || at == total) {
        BASE_TRY(sender.flush());  // the mark covers everything below it
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
      BASE_TRY(scanner.scan(
          state.cursor_bytes, total, descent_levels(begin.extent_bytes, options.fine_extent_bytes),
          [&](Range r, Scanner::Found found) { return sender.add(r, found); }, chunk_done));
    } else {
      for (const Range& r : ranges) BASE_TRY(sender.add(r, Scanner::Found::differs));
    }
    BASE_TRY(sender.flush());
    send_progress(link, proto::ProgressKind::resync, total, total);
    msg.clear();
    proto::encode_resync_end(begin.target_seq, msg);
    link.queue(msg);
    BASE_TRY(link.wait_for(proto::MsgType::resync_done, msg, scanner_extra(link, acked)));
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

base::Result<ResyncReport> resync_clone(const SessionConfig& session, const ReconnectPolicy& policy,
                                        const std::string& image_path, uint64_t generation, uint64_t target_seq,
                                        uint64_t target_epoch, const MaintenanceOptions& options) {
  base::Result<std::unique_ptr<SourceImage>> opened = SourceImage::open_to_read(image_path, session.disk_size_bytes);
  if (!opened) return opened.status();
  SourceImage& image = **opened;
  proto::ResyncBegin begin{generation, target_seq, target_epoch, options.extent_bytes,
                           options.discard_clone_changes ? proto::kResyncDiscardCloneChanges : 0u};
  ResyncReport report;
  report.generation = generation;
  const uint64_t start_ns = base::monotonic_ns();
  uint32_t failures = 0, backoff_ms = policy.initial_ms;
  RefusalStreak refusals;
  for (;;) {
    bool fatal = false;
    std::string heard;
    const uint64_t sessions_before = report.sessions;
    base::Status s = resync_session(session, image, begin, {}, options, report, fatal, heard);
    if (s.is_ok()) break;
    if (fatal) return s;
    if (refusals.final_after(heard))
      return base::Status::error(s.code(), "the clone's address answered '" + heard + "' before authenticating " +
                                               u64s(refusals.count()) + " times in a row: " + s.message());
    if (report.sessions > sessions_before) failures = 0;  // it got somewhere: a fresh count
    if (++failures >= policy.attempts_max)
      return base::Status::error(
          s.code(), "the resync gave up after " + u64s(failures) + " failed attempts in a row; last: " + s.message());
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
  base::Result<std::unique_ptr<SourceImage>> opened = SourceImage::open_to_read(image_path, session.disk_size_bytes);
  if (!opened) return opened.status();
  SourceImage& image = **opened;
  proto::ResyncBegin begin{session.generation, at_seq, at_epoch, options.extent_bytes, proto::kResyncRepair};
  ResyncReport report;
  report.generation = session.generation;
  const uint64_t start_ns = base::monotonic_ns();
  bool fatal = false;
  std::string heard;
  BASE_TRY(resync_session(session, image, begin, ranges, options, report, fatal, heard));
  report.elapsed_ns = base::monotonic_ns() - start_ns;
  return report;
}

}  // namespace origin
