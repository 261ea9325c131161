// SPDX-License-Identifier: MIT
// Internal to resync and verify: the digest scan. It compares [from, to) of
// the clone's disk with the source image in extents, a few digest requests
// in flight (the clone hashes them in parallel while this side hashes its
// own), and reports each extent whose digests differ.
//
// With more than one level (resync), an extent that differs is compared
// again in the next, smaller extents (a request for just that extent, or for
// a run of adjacent ones), down to the last level: only what differs there
// is reported, so a scattered 4 KiB change costs a 4 KiB extent, not a whole
// coarse one, and an unchanged disk costs only the coarse digests. Two cases
// need no descent: a source extent of zeroes (reported whole; it travels as
// one zero extent) and a clone extent of zeroes (reported as such: what is
// not zero in the source differs, and nothing else does).
//
// Threading: one thread, the caller's. A Scanner borrows the link, the image,
// the key, the options, the rate limit and the byte counter; all outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "base/status.h"
#include "base/units.h"
#include "digest/digest.h"
#include "origin/image.h"
#include "origin/maintenance.h"
#include "origin/maintenance_link.h"

namespace origin {

// Holds the average of bytes per second under the limit (0: none) by sleeping.
class RateLimit {
 public:
  explicit RateLimit(uint64_t bytes_per_s);
  void take(uint64_t bytes);
  // Averages from now on: a slow phase before leaves no credit for a burst.
  void restart() {
    start_ns_ = base::monotonic_ns();
    used_ = 0;
  }

 private:
  uint64_t rate_;
  uint64_t start_ns_;
  uint64_t used_ = 0;
};

// Digests of `count` extents of `image` from `offset`, the last cut at the
// disk's end (as the clone cuts it). `buf` is scratch space, kept by the caller.
base::Status image_digests(SourceImage& image, const digest::DigestKey& key, uint64_t offset, uint32_t extent,
                           uint32_t count, base::Bytes& buf, std::vector<digest::Digest>& out);

// The extent sizes a scan descends through, from `coarse` down to `fine`
// (both powers of two, fine <= coarse): each level 16 times smaller than the
// one before, the last one `fine`. 1M, 4K: {1M, 64K, 4K}; 64K, 4K: {64K, 4K}.
std::vector<uint32_t> descent_levels(uint32_t coarse, uint32_t fine);

class Scanner {
 public:
  // What differs in a reported range.
  enum class Found : uint8_t {
    differs,     // the range as a whole (send it, or its zeroes)
    clone_zero,  // the clone holds zeroes there: only the source's non-zero blocks differ
  };
  using Differ = std::function<base::Status(Range, Found)>;
  using ChunkDone = std::function<base::Status(uint64_t)>;

  // `digested` counts the bytes compared at the first level, as they are (an
  // interrupted scan counts too).
  Scanner(MaintenanceLink& link, SourceImage& image, const digest::DigestKey& key, const MaintenanceOptions& o,
          RateLimit& rate, uint64_t& digested)
      : link_(link), image_(image), key_(key), options_(o), rate_(rate), digested_(digested) {}

  // Compares in extents of levels[0], descending through the next levels
  // where they differ; calls `differ` for each range found different, and
  // `chunk_done(at)` in disk order once every range below `at` (the end of a
  // first-level request) has been reported. Both are called in disk order.
  base::Status scan(uint64_t from, uint64_t to, const std::vector<uint32_t>& levels, const Differ& differ,
                    const ChunkDone& chunk_done);

  // Messages other than digest replies that may arrive during a scan
  // (without one, any other message is a violation).
  void set_extra_handler(FrameHandler h) { extra_ = std::move(h); }

 private:
  struct Pending;
  struct Walk;
  base::Status issue_more(Walk& w);
  base::Status issue(Pending& p);
  base::Status on_reply(Walk& w, proto::MsgType t, base::ByteSpan m);
  base::Status handle_answered(Walk& w, const Differ& differ, const ChunkDone& chunk_done);
  base::Status handle(Walk& w, const Pending& p, const Differ& differ);
  void descend(Walk& w, const Pending& parent, Range run);
  bool is_zero(const digest::Digest& d, uint64_t length_bytes);

  MaintenanceLink& link_;
  SourceImage& image_;
  const digest::DigestKey& key_;
  const MaintenanceOptions& options_;
  RateLimit& rate_;
  uint64_t ids_ = 0;
  uint64_t& digested_;
  FrameHandler extra_;
  base::Bytes buf_;
  std::map<uint64_t, digest::Digest> zero_digests_;  // by length
};

}  // namespace origin
