// SPDX-License-Identifier: MIT
// Who gives up a handshake slot to a newcomer (issue 14, finding 1), how
// often one address gets a ClientHello answered, and how often notices about
// unauthenticated peers reach the journal (finding 3).
// Pure: no I/O, no clock of their own, so unit tests drive them.
//
// A genuine original finishes its handshake in one round trip; a peer that
// holds a slot without finishing is the one to go. So a newcomer is never
// turned away for lack of a slot: the oldest unfinished handshake of the
// newcomer's own address goes if that address already holds its share (half
// the slots), else, once all slots are taken, the oldest of the address that
// holds the most. One address (a stranger on the LAN) can then hold at most
// half the slots, and can never push out an original that holds fewer.
// Between addresses that hold as many, a handshake whose peer has not sent its
// ClientHello goes before one that has (the original sends it at once): found
// in review, strangers on three addresses, each holding one slot and
// reconnecting, pushed out the original's in turn.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cloned {

struct PendingHandshake {
  uint64_t id = 0;
  std::string host;    // the peer's address, without its port
  bool spoke = false;  // its ClientHello arrived
};

// `pending`: the handshakes in progress, oldest first, not counting the
// newcomer from `host`. Returns the id of the one to end, or 0 for none.
uint64_t handshake_to_evict(const std::vector<PendingHandshake>& pending, const std::string& host, size_t slots_max);

// ClientHellos answered per address: a token bucket each, `burst` deep,
// refilled at `per_second`. Each hello answered costs the clone two X25519
// operations on its loop, and a stranger that knows the pair's id (it travels
// in clear) could otherwise send them as fast as it can connect. A genuine
// original sends one per connection, and reconnects at its backoff, far under
// the refill. An IPv6 address counts by its /64 (one host may hold many of
// its addresses). The table keeps `hosts_max` addresses: a full bucket holds
// nothing worth keeping and goes first; past that, new addresses share one
// overflow bucket, so that many addresses cycled get no more than that.
inline constexpr uint32_t kHelloBurst = 32;      // from one address at once
inline constexpr uint32_t kHellosPerSecond = 4;  // from one address after that
inline constexpr size_t kHelloHostsMax = 256;    // addresses remembered
class HelloRateLimit {
 public:
  HelloRateLimit(uint32_t burst, uint32_t per_second, size_t hosts_max)
      : burst_milli_(uint64_t{burst} * 1000),
        per_second_(per_second),
        hosts_max_(hosts_max),
        overflow_{burst_milli_, 0} {}
  // True: answer this hello (it takes a token).
  bool admit(const std::string& host, uint64_t now_ms);
  size_t hosts() const { return buckets_.size(); }
  // The key an address counts under: itself, or an IPv6 address's /64.
  static std::string key_of(const std::string& host);

 private:
  struct Bucket {
    uint64_t milli = 0;  // thousandths of a hello
    uint64_t at_ms = 0;  // when it was last refilled
  };
  void refill(Bucket& b, uint64_t now_ms) const;
  Bucket& bucket_for(const std::string& key, uint64_t now_ms);
  uint64_t burst_milli_;
  uint64_t per_second_;
  size_t hosts_max_;
  std::map<std::string, Bucket> buckets_;
  Bucket overflow_;
};

// At most `burst` lines per window; the rest are counted, and the count is
// told with the next line let through or by take_held().
class LogRateLimit {
 public:
  LogRateLimit(uint32_t burst, uint64_t window_ms) : burst_(burst), window_ms_(window_ms) {}
  // True: log now; `held` is how many were held back since the last line.
  bool admit(uint64_t now_ms, uint64_t& held);
  // Lines held back and not yet told, once their window is over (0: none);
  // for a summary line when the flood has stopped.
  uint64_t take_held(uint64_t now_ms);

 private:
  void roll(uint64_t now_ms);
  uint32_t burst_;
  uint64_t window_ms_;
  uint64_t window_start_ms_ = 0;
  uint32_t used_ = 0;
  uint64_t held_ = 0;
};

}  // namespace cloned
