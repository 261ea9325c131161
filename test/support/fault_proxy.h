// SPDX-License-Identifier: MIT
// A TCP proxy on loopback that injects network faults between an original and
// a clone (issue "Prove it under faults", part 4): each connection it carries
// gets one seeded fault at a seeded byte offset, in a seeded direction: a cut
// (both sides closed), a flipped byte (after the handshake's first bytes), or
// a stall. It stops injecting once both quotas are met, so the run can end.
// It can also answer the first connections itself with a forged refusal.
// It runs on its own thread; every wait is bounded.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

namespace harness {

struct FaultQuota {
  uint64_t cuts = 50;
  uint64_t flips = 50;
  uint64_t offset_min_bytes = 16 << 10;  // a fault comes this far into a connection...
  uint64_t offset_max_bytes = 1 << 19;    // ...and no further
  // The first this many connections are not carried: the proxy reads the
  // ClientHello and answers a ServerHello refusal with `forged_status` (2:
  // unknown_pair), as anyone answering at the clone's address could.
  uint64_t forged_refusals = 0;
  uint16_t forged_status = 2;
};

struct FaultCounts {
  std::atomic<uint64_t> connections{0}, cuts{0}, flips{0}, stalls{0}, bytes{0}, forged{0};
};

class FaultProxy {
 public:
  // Listens on 127.0.0.1:listen_port (0: any free port; see port()).
  FaultProxy(uint16_t target_port, uint64_t seed, const FaultQuota& quota, uint16_t listen_port = 0);
  ~FaultProxy();  // stops the thread, closes everything
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  uint16_t port() const { return port_; }
  const FaultCounts& counts() const { return counts_; }

 private:
  void run();
  uint16_t target_port_;
  uint64_t seed_;
  FaultQuota quota_;
  FaultCounts counts_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace harness
