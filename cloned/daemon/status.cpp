// SPDX-License-Identifier: MIT
#include "cloned/daemon/status.h"

#include <sstream>
#include <toml++/toml.h>

namespace cloned {

// The document goes through toml++ both ways: its formatter does the quoting
// and escaping, so any reason or peer text comes back as it was sent.
std::string encode_live_status(const LiveStatus& s) {
  toml::table t;
  auto num = [&](const char* k, uint64_t v) { t.insert(k, static_cast<int64_t>(v)); };
  auto str = [&](const char* k, const std::string& v) { t.insert(k, v); };
  num("pid", static_cast<uint64_t>(s.pid));
  num("updated_unix_ms", static_cast<uint64_t>(s.updated_unix_ms));
  str("state", s.state);
  str("state_reason", s.state_reason);
  t.insert("disk_failed", s.disk_failed);
  num("generation", s.generation);
  num("applied_seq", s.applied_seq);
  num("applied_epoch", s.applied_epoch);
  num("committed_seq", s.committed_seq);
  num("unclean_until_seq", s.unclean_until_seq);
  num("original_log_end", s.original_log_end);
  str("last_mark", s.last_mark);
  num("last_mark_seq", s.last_mark_seq);
  str("link", s.link);
  str("peer", s.peer);
  num("session_since_unix_ms", static_cast<uint64_t>(s.session_since_unix_ms));
  num("sessions", s.sessions);
  num("refused", s.refused);
  num("bytes_received", s.bytes_received);
  num("records_received", s.records_received);
  num("held_bytes", s.held_bytes);
  str("disk", s.disk);
  str("listen", s.listen);
  str("progress", s.progress);
  str("wake_interface", s.wake_interface);
  str("wake_mac", s.wake_mac);
  str("wake_arm", s.wake_arm);
  str("wake_reason", s.wake_reason);
  str("wake_power", s.wake_power);
  str("wake_phase", s.wake_phase);
  str("wake_decision", s.wake_decision);
  num("wake_idle_sleep_s", s.wake_idle_sleep_s);
  num("wake_sleep_count", s.wake_sleep_count);
  num("wake_last_sleep_unix_ms", static_cast<uint64_t>(s.wake_last_sleep_unix_ms));
  num("wake_last_wake_unix_ms", static_cast<uint64_t>(s.wake_last_wake_unix_ms));
  std::ostringstream text;
  text << "# The live status of cloned, answered on its control socket.\n"
       << toml::toml_formatter(t, toml::format_flags::none) << "\n";
  return text.str();
}

base::Result<LiveStatus> decode_live_status(const std::string& text) {
  toml::table t;
  try {
    t = toml::parse(text);
  } catch (const std::exception& e) {
    return base::Status::error(EPROTO, std::string("the daemon's status answer is not a TOML document: ") + e.what());
  }
  if (!t["pid"].is_integer() || !t["state"].is_string())
    return base::Status::error(EPROTO, "the daemon's status answer lacks pid or state; is clonectl as new as cloned?");
  LiveStatus s;
  auto u = [&](const char* k) { return static_cast<uint64_t>(t[k].value_or<int64_t>(0)); };
  auto str = [&](const char* k) { return std::string(t[k].value_or<std::string_view>("")); };
  s.pid = t["pid"].value_or<int64_t>(0);
  s.updated_unix_ms = t["updated_unix_ms"].value_or<int64_t>(0);
  s.state = str("state");
  s.state_reason = str("state_reason");
  s.disk_failed = t["disk_failed"].value_or(false);
  s.generation = u("generation");
  s.applied_seq = u("applied_seq");
  s.applied_epoch = u("applied_epoch");
  s.committed_seq = u("committed_seq");
  s.unclean_until_seq = u("unclean_until_seq");
  s.original_log_end = u("original_log_end");
  s.last_mark = str("last_mark");
  s.last_mark_seq = u("last_mark_seq");
  s.link = str("link");
  s.peer = str("peer");
  s.session_since_unix_ms = t["session_since_unix_ms"].value_or<int64_t>(0);
  s.sessions = u("sessions");
  s.refused = u("refused");
  s.bytes_received = u("bytes_received");
  s.records_received = u("records_received");
  s.held_bytes = u("held_bytes");
  s.disk = str("disk");
  s.listen = str("listen");
  s.progress = str("progress");
  s.wake_interface = str("wake_interface");
  s.wake_mac = str("wake_mac");
  s.wake_arm = t["wake_arm"].value_or<std::string_view>("not_configured");
  s.wake_reason = str("wake_reason");
  s.wake_power = str("wake_power");
  s.wake_phase = str("wake_phase");
  s.wake_decision = str("wake_decision");
  s.wake_idle_sleep_s = u("wake_idle_sleep_s");
  s.wake_sleep_count = u("wake_sleep_count");
  s.wake_last_sleep_unix_ms = t["wake_last_sleep_unix_ms"].value_or<int64_t>(0);
  s.wake_last_wake_unix_ms = t["wake_last_wake_unix_ms"].value_or<int64_t>(0);
  return s;
}

}  // namespace cloned
