// SPDX-License-Identifier: MIT
#include "origin/scanner.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <optional>
#include <thread>

#include "base/units.h"
#include "proto/resync.h"

namespace origin {

using base::u64s;

RateLimit::RateLimit(uint64_t bytes_per_s) : rate_(bytes_per_s), start_ns_(base::monotonic_ns()) {}

void RateLimit::take(uint64_t bytes) {
  if (rate_ == 0) return;
  used_ += bytes;
  const uint64_t due_ns = static_cast<uint64_t>(static_cast<double>(used_) * 1e9 / static_cast<double>(rate_));
  const uint64_t elapsed = base::monotonic_ns() - start_ns_;
  if (due_ns > elapsed)
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<uint64_t>(due_ns - elapsed, 1'000'000'000)));
}

base::Status image_digests(SourceImage& image, const digest::DigestKey& key, uint64_t offset, uint32_t extent,
                           uint32_t count, base::Bytes& buf, std::vector<digest::Digest>& out) {
  out.clear();
  const uint64_t total = std::min<uint64_t>(uint64_t{extent} * count, image.size_bytes() - offset);
  buf.resize(std::min<uint64_t>(total, 8u << 20));
  for (uint64_t done = 0; done < total;) {
    // Whole extents while they fit the buffer; a last one cut short by the
    // disk's end (the buffer is then all of `total`) as it is.
    const uint64_t n = std::min<uint64_t>(std::max<uint64_t>(buf.size() / extent, 1) * extent, total - done);
    BASE_TRY(image.read(offset + done, base::MutableByteSpan(buf.data(), n)));
    digest::append_extent_digests(key, base::ByteSpan(buf.data(), n), extent, out);
    done += n;
  }
  return base::Status::ok();
}

std::vector<uint32_t> descent_levels(uint32_t coarse, uint32_t fine) {
  assert(fine > 0 && fine <= coarse);
  std::vector<uint32_t> levels = {coarse};
  while (levels.back() > fine) levels.push_back(std::max(fine, levels.back() / 16));
  return levels;
}

namespace {

uint32_t per_request(uint32_t extent, const MaintenanceOptions& o) {
  return static_cast<uint32_t>(std::clamp<uint64_t>(o.request_bytes_max / extent, 1, proto::kMaxDigestsPerRequest));
}

}  // namespace

// One digest request, sent or still to send, with this side's digests of the
// same range once sent.
struct Scanner::Pending {
  proto::DigestRequest request;
  size_t level = 0;    // index into Walk::levels
  uint64_t chunk = 0;  // the first-level request it descends from, by offset
  std::vector<digest::Digest> local;
  std::vector<digest::Digest> remote;
  bool answered = false;
  // A range found different in a parent's reply after a descent before it:
  // reported when its turn comes, to keep the reports in disk order.
  std::optional<Found> report;
};

// The state of one scan. Requests' ranges never overlap: a request is
// handled (and forgotten) before its children are made.
struct Scanner::Walk {
  struct Chunk {
    uint64_t end = 0;             // what chunk_done reports
    uint64_t compared_bytes = 0;  // what `digested` counts
    uint64_t open = 0;            // its requests (itself or descendants) not yet handled
  };
  std::vector<uint32_t> levels;
  uint64_t to = 0;
  uint64_t next_top = 0;                 // where the next first-level request starts
  std::map<uint64_t, Pending> requests;  // by offset
  std::set<uint64_t> waiting;            // requests not yet sent, by offset: the lowest goes first
  std::map<uint64_t, Chunk> chunks;      // first-level requests not yet done, by offset
  size_t in_flight = 0;
};

// Sends waiting requests, lowest offset first, and starts first-level ones
// when none wait: descents finish before the scan moves on.
base::Status Scanner::issue_more(Walk& w) {
  while (w.in_flight < options_.digests_in_flight && link_.send_pending() < options_.send_buffer_bytes_max) {
    if (w.waiting.empty()) {
      if (w.next_top >= w.to || w.chunks.size() >= options_.digests_in_flight) break;
      const uint32_t extent = w.levels[0];
      Pending p;
      p.chunk = w.next_top;
      p.request.offset_bytes = w.next_top;
      p.request.extent_bytes = extent;
      p.request.count = static_cast<uint32_t>(
          std::min<uint64_t>(per_request(extent, options_), (w.to - w.next_top + extent - 1) / extent));
      w.next_top += p.request.length_bytes();
      w.chunks[p.chunk] = {std::min(w.next_top, w.to),
                           std::min<uint64_t>(p.request.length_bytes(), image_.size_bytes() - p.chunk), 1};
      w.waiting.insert(p.chunk);
      w.requests.emplace(p.chunk, std::move(p));
    }
    Pending& p = w.requests.at(*w.waiting.begin());
    w.waiting.erase(w.waiting.begin());
    BASE_TRY(issue(p));
    ++w.in_flight;
  }
  return base::Status::ok();
}

// Queues the request and hashes the same range here.
base::Status Scanner::issue(Pending& p) {
  p.request.id = ++ids_;
  base::Bytes out;
  proto::encode_digest_request(p.request, out);
  link_.queue(out);
  rate_.take(p.request.length_bytes());
  return image_digests(image_, key_, p.request.offset_bytes, p.request.extent_bytes, p.request.count, buf_, p.local);
}

base::Status Scanner::on_reply(Walk& w, proto::MsgType t, base::ByteSpan m) {
  if (t != proto::MsgType::digest_reply)
    return extra_ ? extra_(t, m) : link_.violation("unexpected message " + u64s(static_cast<uint64_t>(t)));
  proto::DigestReply r;
  BASE_TRY(proto::decode_digest_reply(m, r).with_context("the clone's digest reply is malformed"));
  auto it = w.requests.find(r.offset_bytes);
  if (it == w.requests.end() || it->second.request.id != r.id || it->second.answered ||
      r.digests.size() != it->second.local.size() || r.extent_bytes != it->second.request.extent_bytes)
    return link_.violation("a digest reply that answers no request (id " + u64s(r.id) + ")");
  it->second.remote = std::move(r.digests);
  it->second.answered = true;
  --w.in_flight;
  return base::Status::ok();
}

bool Scanner::is_zero(const digest::Digest& d, uint64_t length_bytes) {
  auto it = zero_digests_.find(length_bytes);
  if (it == zero_digests_.end()) {
    const base::Bytes zeroes(length_bytes, 0);
    it = zero_digests_.emplace(length_bytes, digest::keyed_digest(key_, zeroes)).first;
  }
  return digest::digest_equal(d, it->second);
}

// Asks again for `run` (adjacent extents of `parent` that differ) in the
// next level's extents.
void Scanner::descend(Walk& w, const Pending& parent, Range run) {
  if (run.length_bytes == 0) return;
  const uint32_t extent = w.levels[parent.level + 1];
  const uint64_t step = uint64_t{extent} * per_request(extent, options_);
  const uint64_t end = run.offset_bytes + run.length_bytes;
  for (uint64_t at = run.offset_bytes; at < end; at += step) {
    Pending child;
    child.level = parent.level + 1;
    child.chunk = parent.chunk;
    child.request.offset_bytes = at;
    child.request.extent_bytes = extent;
    child.request.count = static_cast<uint32_t>((std::min(step, end - at) + extent - 1) / extent);
    w.waiting.insert(at);
    w.requests.emplace(at, std::move(child));
    ++w.chunks.at(parent.chunk).open;
  }
}

// Reports what differs in an answered request, or descends into it.
base::Status Scanner::handle(Walk& w, const Pending& p, const Differ& differ) {
  if (p.report) return differ({p.request.offset_bytes, p.request.length_bytes()}, *p.report);
  const bool last = p.level + 1 == w.levels.size();
  const uint32_t extent = p.request.extent_bytes;
  Range run;  // adjacent extents to descend into
  bool descended = false;
  for (size_t i = 0; i < p.local.size(); ++i) {
    if (digest::digest_equal(p.local[i], p.remote[i])) continue;
    const uint64_t off = p.request.offset_bytes + i * uint64_t{extent};
    const Range r{off, std::min<uint64_t>(extent, image_.size_bytes() - off)};
    const bool source_zero = !last && is_zero(p.local[i], r.length_bytes);
    const bool clone_zero = !last && !source_zero && is_zero(p.remote[i], r.length_bytes);
    if (last || source_zero || clone_zero) {
      const Found found = clone_zero ? Found::clone_zero : Found::differs;
      if (!descended && run.length_bytes == 0) {
        BASE_TRY(differ(r, found));
        continue;
      }
      descend(w, p, run);
      run = {};
      descended = true;
      Pending later;
      later.chunk = p.chunk;
      later.request.offset_bytes = r.offset_bytes;
      later.request.extent_bytes = static_cast<uint32_t>(r.length_bytes);
      later.request.count = 1;
      later.answered = true;
      later.report = found;
      w.requests.emplace(r.offset_bytes, std::move(later));
      ++w.chunks.at(p.chunk).open;
    } else if (run.length_bytes > 0 && run.offset_bytes + run.length_bytes == off) {
      run.length_bytes += r.length_bytes;
    } else {
      descend(w, p, run);
      descended = descended || run.length_bytes > 0;
      run = r;
    }
  }
  descend(w, p, run);
  return base::Status::ok();
}

// Handles answered requests in disk order (the lowest first; a descent's
// requests come before anything past their parent) while the send buffer
// has room, then reports the first-level requests done.
base::Status Scanner::handle_answered(Walk& w, const Differ& differ, const ChunkDone& chunk_done) {
  while (!w.requests.empty() && w.requests.begin()->second.answered &&
         link_.send_pending() < options_.send_buffer_bytes_max) {
    const Pending p = std::move(w.requests.begin()->second);
    w.requests.erase(w.requests.begin());
    BASE_TRY(handle(w, p, differ));
    --w.chunks.at(p.chunk).open;
  }
  while (!w.chunks.empty() && w.chunks.begin()->second.open == 0) {
    const Walk::Chunk c = w.chunks.begin()->second;
    w.chunks.erase(w.chunks.begin());
    digested_ += c.compared_bytes;
    BASE_TRY(chunk_done(c.end));
  }
  return base::Status::ok();
}

base::Status Scanner::scan(uint64_t from, uint64_t to, const std::vector<uint32_t>& levels, const Differ& differ,
                           const ChunkDone& chunk_done) {
  assert(!levels.empty());
  Walk w;
  w.levels = levels;
  w.to = to;
  w.next_top = from;
  const FrameHandler on_frame = [&](proto::MsgType t, base::ByteSpan m) { return on_reply(w, t, m); };
  while (w.next_top < to || !w.chunks.empty()) {
    BASE_TRY(issue_more(w));
    BASE_TRY(link_.pump(on_frame));
    BASE_TRY(handle_answered(w, differ, chunk_done));
  }
  return base::Status::ok();
}

}  // namespace origin
