// SPDX-License-Identifier: MIT
// Internal to resync and verify: the digest scan. It compares [from, to) of
// the clone's disk with the source image in extents, a few digest requests
// in flight (the clone hashes them in parallel while this side hashes its
// own), and reports each extent whose digests differ, in disk order.
//
// Threading: one thread, the caller's. A Scanner borrows the link, the image,
// the key, the options, the rate limit and the byte counter; all outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "base/status.h"
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

 private:
  uint64_t rate_;
  uint64_t start_ns_;
  uint64_t used_ = 0;
};

// Digests of `count` extents of `image` from `offset`, the last cut at the
// disk's end (as the clone cuts it). `buf` is scratch space, kept by the caller.
base::Status image_digests(SourceImage& image, const digest::DigestKey& key, uint64_t offset, uint32_t extent,
                           uint32_t count, base::Bytes& buf, std::vector<digest::Digest>& out);

class Scanner {
 public:
  // `digested` counts the bytes compared, as they are (an interrupted scan counts too).
  Scanner(MaintenanceLink& link, SourceImage& image, const digest::DigestKey& key, const MaintenanceOptions& o,
          RateLimit& rate, uint64_t& digested)
      : link_(link), image_(image), key_(key), options_(o), rate_(rate), digested_(digested) {}

  // Calls `differ` for each extent whose digests differ, in disk order, and
  // `chunk_done` after each request's range is handled.
  base::Status scan(uint64_t from, uint64_t to, uint32_t extent, const std::function<base::Status(Range)>& differ,
                    const std::function<base::Status(uint64_t)>& chunk_done);

  // Messages other than digest replies that may arrive during a scan
  // (without one, any other message is a violation).
  void set_extra_handler(FrameHandler h) { extra_ = std::move(h); }

 private:
  struct Pending;
  base::Status request(uint64_t offset, uint64_t to, uint32_t extent, uint32_t per_request, Pending& p);

  MaintenanceLink& link_;
  SourceImage& image_;
  const digest::DigestKey& key_;
  const MaintenanceOptions& options_;
  RateLimit& rate_;
  uint64_t ids_ = 0;
  uint64_t& digested_;
  FrameHandler extra_;
  base::Bytes buf_;
};

}  // namespace origin
