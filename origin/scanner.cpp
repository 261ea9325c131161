// SPDX-License-Identifier: MIT
#include "origin/scanner.h"

#include <algorithm>
#include <chrono>
#include <map>
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
    const uint64_t n = std::min<uint64_t>(buf.size() / extent * extent, total - done);
    BASE_TRY(image.read(offset + done, base::MutableByteSpan(buf.data(), n)));
    for (uint64_t at = 0; at < n; at += extent)
      out.push_back(digest::keyed_digest(key, base::ByteSpan(buf.data() + at, std::min<uint64_t>(extent, n - at))));
    done += n;
  }
  return base::Status::ok();
}

// One digest request in flight with this side's digests of the same range.
struct Scanner::Pending {
  proto::DigestRequest request;
  std::vector<digest::Digest> local;
  std::vector<digest::Digest> remote;
  bool answered = false;
};

// Queues the request for [offset, ...) and hashes the same range here.
base::Status Scanner::request(uint64_t offset, uint64_t to, uint32_t extent, uint32_t per_request, Pending& p) {
  p.request.id = ++ids_;
  p.request.offset_bytes = offset;
  p.request.extent_bytes = extent;
  p.request.count = static_cast<uint32_t>(std::min<uint64_t>(per_request, (to - offset + extent - 1) / extent));
  base::Bytes out;
  proto::encode_digest_request(p.request, out);
  link_.queue(out);
  rate_.take(p.request.length_bytes());
  return image_digests(image_, key_, p.request.offset_bytes, extent, p.request.count, buf_, p.local);
}

base::Status Scanner::scan(uint64_t from, uint64_t to, uint32_t extent,
                           const std::function<base::Status(Range)>& differ,
                           const std::function<base::Status(uint64_t)>& chunk_done) {
  const uint32_t per_request =
      static_cast<uint32_t>(std::clamp<uint64_t>(options_.request_bytes_max / extent, 1, proto::kMaxDigestsPerRequest));
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
      BASE_TRY(request(next_request, to, extent, per_request, p));
      next_request += p.request.length_bytes();
      pending.emplace(p.request.offset_bytes, std::move(p));
    }
    BASE_TRY(link_.pump(on_reply));
    // Handle answered requests in disk order.
    while (!pending.empty() && pending.begin()->first == next_handle && pending.begin()->second.answered &&
           link_.send_pending() < options_.send_buffer_bytes_max) {
      Pending& p = pending.begin()->second;
      for (size_t i = 0; i < p.local.size(); ++i) {
        if (digest::digest_equal(p.local[i], p.remote[i])) continue;
        const uint64_t off = p.request.offset_bytes + i * uint64_t{extent};
        BASE_TRY(differ({off, std::min<uint64_t>(extent, image_.size_bytes() - off)}));
      }
      digested_ += std::min<uint64_t>(p.request.length_bytes(), image_.size_bytes() - p.request.offset_bytes);
      next_handle += p.request.length_bytes();
      pending.erase(pending.begin());
      BASE_TRY(chunk_done(std::min(next_handle, to)));
    }
  }
  return base::Status::ok();
}

}  // namespace origin
