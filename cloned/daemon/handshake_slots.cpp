// SPDX-License-Identifier: MIT
#include "cloned/daemon/handshake_slots.h"

#include <algorithm>
#include <cstdint>
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

bool HelloRateLimit::admit(const std::string& host, uint64_t now_ms) {
  auto it = buckets_.find(host);
  if (it == buckets_.end()) {
    if (buckets_.size() >= hosts_max_ && !buckets_.empty()) {
      auto quietest = buckets_.begin();
      for (auto b = buckets_.begin(); b != buckets_.end(); ++b) {
        refill(b->second, now_ms);
        if (b->second.milli > quietest->second.milli) quietest = b;
      }
      buckets_.erase(quietest);
    }
    it = buckets_.emplace(host, Bucket{burst_milli_, now_ms}).first;
  }
  Bucket& b = it->second;
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
