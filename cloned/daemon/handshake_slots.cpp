// SPDX-License-Identifier: MIT
#include "cloned/daemon/handshake_slots.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>

namespace cloned {

uint64_t handshake_to_evict(const std::vector<PendingHandshake>& pending, const std::string& host, size_t slots_max) {
  const size_t share = slots_max / 2 > 0 ? slots_max / 2 : 1;
  std::map<std::string, size_t> per_host;
  for (const PendingHandshake& p : pending) ++per_host[p.host];
  // Who may go: the newcomer's own address at its share, else (all slots
  // taken) every address that holds the most.
  size_t most = 0;
  if (per_host[host] >= share) {
    most = SIZE_MAX;
  } else if (pending.size() >= slots_max) {
    for (const auto& [h, n] : per_host) most = std::max(most, n);
  } else {
    return 0;
  }
  const auto may_go = [&](const PendingHandshake& p) {
    return most == SIZE_MAX ? p.host == host : per_host[p.host] == most;
  };
  // Oldest first: the oldest silent one, else the oldest.
  for (const PendingHandshake& p : pending)
    if (may_go(p) && !p.spoke) return p.id;
  for (const PendingHandshake& p : pending)
    if (may_go(p)) return p.id;
  return 0;
}

void HelloRateLimit::refill(Bucket& b, uint64_t now_ms) const {
  if (now_ms <= b.at_ms) return;
  b.milli = std::min(burst_milli_, b.milli + (now_ms - b.at_ms) * per_second_);
  b.at_ms = now_ms;
}

std::string HelloRateLimit::key_of(const std::string& host) {
  in6_addr a{};
  if (inet_pton(AF_INET6, host.c_str(), &a) != 1 || IN6_IS_ADDR_V4MAPPED(&a)) return host;
  std::memset(a.s6_addr + 8, 0, 8);
  char text[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(AF_INET6, &a, text, sizeof text) == nullptr) return host;
  return std::string(text) + "/64";
}

HelloRateLimit::Bucket& HelloRateLimit::bucket_for(const std::string& key, uint64_t now_ms) {
  if (auto it = buckets_.find(key); it != buckets_.end()) return it->second;
  if (buckets_.size() >= hosts_max_) {
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      refill(it->second, now_ms);
      it = it->second.milli >= burst_milli_ ? buckets_.erase(it) : std::next(it);
    }
  }
  if (buckets_.size() >= hosts_max_) return overflow_;
  return buckets_.emplace(key, Bucket{burst_milli_, now_ms}).first->second;
}

bool HelloRateLimit::admit(const std::string& host, uint64_t now_ms) {
  Bucket& b = bucket_for(key_of(host), now_ms);
  refill(b, now_ms);
  if (b.milli < 1000) return false;
  b.milli -= 1000;
  return true;
}

void LogRateLimit::roll(uint64_t now_ms) {
  if (now_ms - window_start_ms_ >= window_ms_) {
    window_start_ms_ = now_ms;
    used_ = 0;
  }
}

bool LogRateLimit::admit(uint64_t now_ms, uint64_t& held) {
  roll(now_ms);
  if (used_ >= burst_) {
    ++held_;
    return false;
  }
  ++used_;
  held = held_;
  held_ = 0;
  return true;
}

uint64_t LogRateLimit::take_held(uint64_t now_ms) {
  if (held_ == 0 || now_ms - window_start_ms_ < window_ms_) return 0;
  const uint64_t held = held_;
  held_ = 0;
  window_start_ms_ = now_ms;
  used_ = 0;
  return held;
}

}  // namespace cloned
