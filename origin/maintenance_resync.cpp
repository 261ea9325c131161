// SPDX-License-Identifier: MIT
// Resync and repair, the original's side (maintenance.h): begin or resume,
// scan, send what differs, mark, end; reconnect with backoff in between.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <optional>
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

// One extent on the wire: zeroes as such, data with its digest. Without a
// link (the plan), it is only counted.
void send_record(MaintenanceLink* link, const digest::DigestKey& key, uint64_t offset, base::ByteSpan data, bool zero,
                 ResyncReport& report) {
  if (link == nullptr) {
    (zero ? report.zero_bytes_sent : report.data_bytes_sent) += data.size();
    ++report.extents_sent;
    return;
  }
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
  link->queue(out);
  ++report.extents_sent;
}

// Sends a range of the image, read now, in pieces of at most one payload,
// each cut at `block` boundaries into runs of zeroes (a zero extent, or
// nothing where the clone holds zeroes already) and runs of data.
base::Status send_range(MaintenanceLink* link, SourceImage& image, const digest::DigestKey& key, Range r,
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
  // `link` null: nothing is sent, the extents are only counted in `report`.
  Sender(MaintenanceLink* link, SourceImage& image, const digest::DigestKey& key, uint32_t block, RateLimit& rate,
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
  MaintenanceLink* link_;
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

// What the scan found, kept to be sent once the clone has said yes to the
// plan: the ranges in disk order, and after which of them each first-level
// extent ends (where a mark may go). At most kPlanRangesMax ranges are kept;
// past that the plan still counts everything, and the rest of the disk is
// compared again while it is sent.
constexpr size_t kPlanRangesMax = size_t{1} << 20;  // 24 MiB
struct Plan {
  struct Found {
    Range range;
    Scanner::Found found;
  };
  std::vector<Found> found;
  std::vector<std::pair<size_t, uint64_t>> chunks;  // (ranges before it, its end)
  bool overflow = false;
  ResyncReport counted;  // what will be sent (extents_sent, data_bytes_sent, zero_bytes_sent)
  uint64_t kept_until(uint64_t from) const { return chunks.empty() ? from : chunks.back().second; }
};

// One resync session: begin (or resume), scan, end. `ranges` empty: the
// whole disk; else a repair of just those ranges. With a clone that takes a
// plan, the whole scan comes first, then the plan, then the data.
class ResyncSession {
 public:
  ResyncSession(MaintenanceLink& link, SourceImage& image, const digest::DigestKey& key,
                const MaintenanceOptions& options, ResyncReport& report)
      : link_(link),
        image_(image),
        options_(options),
        report_(report),
        rate_(options.rate_bytes_max),
        scanner_(link, image, key, options, rate_, report.digested_bytes),
        sender_(&link, image, key, options.fine_extent_bytes, rate_, report),
        total_(image.size_bytes()) {
    scanner_.set_extra_handler(scanner_extra(link, acked_));
  }

  base::Status run(proto::ResyncBegin begin, const std::vector<Range>& ranges, bool planned, bool& fatal) {
    if (planned) begin.flags |= proto::kResyncPlanFollows;
    what_ = ranges.empty() ? "resync" : "repair";
    base::Bytes msg;
    proto::encode_resync_begin(begin, msg);
    link_.queue(msg);
    BASE_TRY(link_.wait_for(proto::MsgType::resync_state, msg));
    proto::ResyncState state;
    BASE_TRY(proto::decode_resync_state(msg, state).with_context("the clone's resync_state is malformed"));
    report_.started_at_bytes = from_ = last_mark_ = acked_ = state.cursor_bytes;
    LOG_NOTICE("%s generation %" PRIu64 " %s at byte %" PRIu64 " of %" PRIu64,
               ranges.empty() ? "resync of" : "repair in", begin.generation, state.resumed ? "resumed" : "began",
               state.cursor_bytes, state.total_bytes);
    levels_ = descent_levels(begin.extent_bytes, options_.fine_extent_bytes);
    start_ns_ = base::monotonic_ns();
    if (planned && ranges.empty()) {
      BASE_TRY(send_planned(fatal));
    } else if (planned) {
      BASE_TRY(send_planned_repair(ranges, fatal));
    } else if (ranges.empty()) {
      BASE_TRY(scan_and_send(from_, total_));
    } else {
      for (const Range& r : ranges) BASE_TRY(sender_.add(r, Scanner::Found::differs));
    }
    return finish(begin);
  }

 private:
  base::Status chunk_done(uint64_t at) {
    if (at - last_mark_ >= options_.mark_interval_bytes || at == total_) {
      BASE_TRY(sender_.flush());  // the mark covers everything below it
      base::Bytes mark;
      proto::encode_resync_mark(at, mark);
      link_.queue(mark);
      last_mark_ = at;
    }
    const uint64_t now = base::monotonic_ns();
    if (now - last_progress_ns_ >= 1'000'000'000ull) {
      last_progress_ns_ = now;
      send_progress(link_, proto::ProgressKind::resync, at, total_);
      std::fprintf(stderr, "%s\n", progress_line("resync", at, total_, from_, start_ns_).c_str());
    }
    return base::Status::ok();
  }

  base::Status scan_and_send(uint64_t from, uint64_t to) {
    return scanner_.scan(
        from, to, levels_, [&](Range r, Scanner::Found found) { return sender_.add(r, found); },
        [&](uint64_t at) { return chunk_done(at); });
  }

  // Compares everything from the cursor, keeping what differs and counting
  // what it will cost, with the marks where the send will put them.
  base::Status scan_plan(Plan& plan) {
    RateLimit unlimited(0);
    Sender counter(nullptr, image_, key_of_nothing_, options_.fine_extent_bytes, unlimited, plan.counted);
    uint64_t last_mark = from_;
    return scanner_.scan(
        from_, total_, levels_,
        [&](Range r, Scanner::Found found) {
          if (!plan.overflow && plan.found.size() >= kPlanRangesMax) plan.overflow = true;
          if (!plan.overflow) plan.found.push_back({r, found});
          return counter.add(r, found);
        },
        [&](uint64_t at) -> base::Status {
          if (!plan.overflow) plan.chunks.emplace_back(plan.found.size(), at);
          if (at - last_mark >= options_.mark_interval_bytes || at == total_) {
            BASE_TRY(counter.flush());
            last_mark = at;
          }
          return base::Status::ok();
        });
  }

  // Tells the clone what will be sent (`counted`) and takes its verdict.
  base::Result<proto::ResyncPlanReply> ask_plan(const ResyncReport& counted, bool& fatal) {
    const proto::ResyncPlan p{counted.data_bytes_sent, counted.zero_bytes_sent, counted.extents_sent,
                              options_.in_place_unbootable ? proto::kPlanInPlaceUnbootable : 0u};
    LOG_NOTICE("the %s will send %s of data and %s of zeroes in %" PRIu64 " extents", what_,
               base::format_bytes(p.data_bytes).c_str(), base::format_bytes(p.zero_bytes).c_str(), p.extent_count);
    base::Bytes msg;
    proto::encode_resync_plan(p, msg);
    link_.queue(msg);
    BASE_TRY(link_.wait_for(proto::MsgType::resync_plan_reply, msg));
    proto::ResyncPlanReply reply;
    BASE_TRY(proto::decode_resync_plan_reply(msg, reply).with_context("the clone's resync_plan_reply is malformed"));
    BASE_TRY(judge_reply(reply, fatal));
    rate_.restart();  // the send keeps to the limit, whatever the comparison took
    return reply;
  }

  // A repair knows its ranges: their cost is counted without a scan.
  base::Status send_planned_repair(const std::vector<Range>& ranges, bool& fatal) {
    ResyncReport counted;
    RateLimit unlimited(0);
    Sender counter(nullptr, image_, key_of_nothing_, options_.fine_extent_bytes, unlimited, counted);
    for (const Range& r : ranges) BASE_TRY(counter.add(r, Scanner::Found::differs));
    BASE_TRY(counter.flush());
    BASE_TRY(ask_plan(counted, fatal).status());
    for (const Range& r : ranges) BASE_TRY(sender_.add(r, Scanner::Found::differs));
    return base::Status::ok();
  }

  base::Status send_planned(bool& fatal) {
    Plan plan;
    BASE_TRY(scan_plan(plan));
    base::Result<proto::ResyncPlanReply> asked = ask_plan(plan.counted, fatal);
    if (!asked) return asked.status();
    const proto::ResyncPlanReply& reply = *asked;
    if (reply.cursor_bytes < from_) {  // in place replaced a staged resync: from its start
      last_mark_ = reply.cursor_bytes;
      BASE_TRY(scan_and_send(reply.cursor_bytes, from_));
    }
    size_t next = 0;
    for (const auto& [count, at] : plan.chunks) {
      for (; next < count; ++next) {
        BASE_TRY(sender_.add(plan.found[next].range, plan.found[next].found));
        BASE_TRY(send_queued());
      }
      BASE_TRY(chunk_done(at));
      BASE_TRY(send_queued());
    }
    if (plan.overflow) BASE_TRY(scan_and_send(plan.kept_until(from_), total_));
    return base::Status::ok();
  }

  // With no digest replies to wait for (the scan is done), nothing else
  // moves the queue onto the socket: send it as it is made, at the rate's pace.
  base::Status send_queued() {
    const FrameHandler acks = scanner_extra(link_, acked_);
    while (link_.send_pending() > 0) BASE_TRY(link_.pump(acks));
    return base::Status::ok();
  }

  base::Status judge_reply(const proto::ResyncPlanReply& r, bool& fatal) {
    const std::string figures = "it needs " + base::format_bytes(r.needed_bytes) +
                                " on the clone's stick; the bound is " + base::format_bytes(r.bound_bytes) + " and " +
                                base::format_bytes(r.free_bytes) + " are free";
    switch (r.verdict) {
      case proto::PlanVerdict::staged:
        LOG_NOTICE("the clone stages the %s (%s): its disk stays bootable until the %s is whole", what_,
                   figures.c_str(), what_);
        return base::Status::ok();
      case proto::PlanVerdict::in_place:
        LOG_NOTICE("the clone takes the %s in place (it holds no whole generation to keep, or staging is off)", what_);
        return base::Status::ok();
      case proto::PlanVerdict::in_place_unbootable:
        LOG_WARN(
            "the %s does not fit the clone's stage (%s): it goes in place, as --in-place-unbootable (or [resync] "
            "in_place_unbootable) allows; "
            "the clone is NOT bootable until the %s completes",
            what_, figures.c_str(), what_);
        return base::Status::ok();
      case proto::PlanVerdict::refused:
        break;
    }
    // The clone's stage_full follows, with its sentence; if it does not, say it here.
    base::Bytes msg;
    base::Status s = link_.wait_for(proto::MsgType::resync_done, msg);
    fatal = true;
    if (!s.is_ok()) return s;
    return link_.fatal(ENOSPC, std::string("the ") + what_ + " does not fit the clone's stage (" + figures + ")");
  }

  base::Status finish(const proto::ResyncBegin& begin) {
    BASE_TRY(sender_.flush());
    send_progress(link_, proto::ProgressKind::resync, total_, total_);
    base::Bytes msg;
    proto::encode_resync_end(begin.target_seq, msg);
    link_.queue(msg);
    BASE_TRY(link_.wait_for(proto::MsgType::resync_done, msg, scanner_extra(link_, acked_)));
    proto::ResyncDone done;
    BASE_TRY(proto::decode_resync_done(msg, done).with_context("the clone's resync_done is malformed"));
    if (done.generation != begin.generation || done.seq < begin.target_seq)
      return link_.violation("resync_done names generation " + u64s(done.generation) + " at record " + u64s(done.seq));
    return base::Status::ok();
  }

  MaintenanceLink& link_;
  SourceImage& image_;
  const MaintenanceOptions& options_;
  ResyncReport& report_;
  RateLimit rate_;
  Scanner scanner_;
  Sender sender_;
  const digest::DigestKey key_of_nothing_{};  // the counting sender computes no digest
  const uint64_t total_;
  std::vector<uint32_t> levels_;
  uint64_t from_ = 0, last_mark_ = 0, acked_ = 0;
  uint64_t start_ns_ = 0, last_progress_ns_ = 0;
  const char* what_ = "resync";
};

// How a session ended, beyond its status: what decides a retry.
struct ResyncSessionEnd {
  bool fatal = false;                  // a new session would not help
  std::string unauthenticated_answer;  // what the clone's address refused the handshake with
  bool clone_busy = false;             // the clone refused with busy: it is working, not failing
};

base::Status resync_session(const SessionConfig& session, SourceImage& image, const proto::ResyncBegin& begin,
                            const std::vector<Range>& ranges, const MaintenanceOptions& options, ResyncReport& report,
                            ResyncSessionEnd& end) {
  MaintenanceLink link;
  proto::Hello clone;
  base::Status s = link.open(session, clone);
  end.fatal = link.fatal();
  end.unauthenticated_answer = link.unauthenticated_answer();
  if (!s.is_ok()) return s;
  ++report.sessions;
  // An older clone takes no plan.
  const bool planned = (clone.flags & proto::kHelloTakesResyncPlan) != 0;
  s = ResyncSession(link, image, session.digest_key, options, report).run(begin, ranges, planned, end.fatal);
  report.wire_bytes_sent += link.wire_bytes();
  report.wire_bytes_received += link.received_bytes();
  end.fatal = end.fatal || link.fatal();
  end.clone_busy = link.clone_busy();
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
  std::optional<uint64_t> last_start;  // where the last session that opened began
  for (;;) {
    ResyncSessionEnd end;
    const uint64_t sessions_before = report.sessions;
    base::Status s = resync_session(session, image, begin, {}, options, report, end);
    if (s.is_ok()) break;
    if (end.fatal) return s;
    if (refusals.final_after(end.unauthenticated_answer))
      return base::Status::error(s.code(), "the clone's address answered '" + end.unauthenticated_answer +
                                               "' before authenticating " + u64s(refusals.count()) +
                                               " times in a row: " + s.message());
    // A fresh count once the resync got further (this session began past
    // where the last one did: the last made progress durable), or while the
    // clone is busy copying a stage. A session that opens and fails at the
    // same place each time (a stick that fails with EIO, a link that drops
    // before every mark) counts, so the run ends with that error.
    if (report.sessions > sessions_before) {
      if (end.clone_busy || (last_start && report.started_at_bytes > *last_start)) failures = 0;
      last_start = report.started_at_bytes;
    }
    if (++failures >= policy.attempts_max)
      return base::Status::error(
          s.code(), "the resync gave up after " + u64s(failures) + " failed attempts in a row; last: " + s.message());
    if (policy.on_silence) policy.on_silence(s);  // a clone asleep is woken ([wake] auto)
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
  ResyncSessionEnd end;
  BASE_TRY(resync_session(session, image, begin, ranges, options, report, end));
  report.elapsed_ns = base::monotonic_ns() - start_ns;
  return report;
}

}  // namespace origin
