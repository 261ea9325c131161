// SPDX-License-Identifier: MIT
// clone-origin resync and verify.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <thread>

#include "base/units.h"
#include "origin/commands.h"
#include "origin/image.h"
#include "origin/maintenance.h"
#include "origin/position.h"
#include "origin/progress.h"
#include "origin/wake.h"

namespace origin {

using base::u64s;

namespace {

MaintenanceOptions options_from(const config::OriginConfig& config, uint32_t extent_override) {
  MaintenanceOptions o;
  o.extent_bytes = extent_override != 0 ? extent_override : static_cast<uint32_t>(config.resync_extent_bytes);
  o.rate_bytes_max = config.resync_rate_bytes_max;
  o.mark_interval_bytes = config.resync_mark_interval_bytes;
  o.in_place_unbootable = config.resync_in_place_unbootable;
  return o;
}

std::string percent(uint64_t part, uint64_t whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f%%", whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
  return buf;
}

// A woken laptop answers within seconds; past this the clone is off or away.
constexpr uint64_t kWakeWaitMs = 60000;

// The clone's hello. A clone that looks asleep is woken ([wake] auto) and
// asked again as the reconnect policy spaces it, for at most kWakeWaitMs
// (found in review: a resync or verify of a sleeping clone failed at once,
// only log sessions woke it). A busy one (its handshake slots, or this
// address's handshakes, spent for now) is asked again too, as the
// replicator does.
base::Result<proto::Hello> ask_awake_clone(const SessionConfig& session, const ReconnectPolicy& policy) {
  uint32_t backoff_ms = policy.initial_ms;
  const uint64_t start_ms = base::monotonic_ns() / 1'000'000;
  for (uint32_t attempt = 1;; ++attempt) {
    base::Result<proto::Hello> hello = ask_clone(session);
    if (hello) return hello;
    const bool busy = hello.status().code() == EBUSY;
    const bool asleep = policy.on_silence && looks_asleep(hello.status());
    if (!busy && !asleep) return hello;
    if (attempt >= policy.attempts_max || base::monotonic_ns() / 1'000'000 - start_ms >= kWakeWaitMs)
      return base::Status::error(hello.status().code(),
                                 busy ? "the clone stayed busy for " + u64s(kWakeWaitMs / 1000) +
                                            " s (last: " + hello.status().message() + ")"
                                      : "the clone did not answer within " + u64s(kWakeWaitMs / 1000) +
                                            " s of the first magic packet: it is off, or away from this network "
                                            "(last: " +
                                            hello.status().message() + ")");
    if (asleep) policy.on_silence(hello.status());
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(policy.max_ms, backoff_ms * 2);
  }
}

ReconnectPolicy waking_policy(const config::OriginConfig& config) {
  ReconnectPolicy policy = make_reconnect_policy(config);
  policy.on_silence = silence_waker(config);
  return policy;
}

}  // namespace

base::Status run_resync(const config::OriginConfig& config, const config::DerivedKeys& keys,
                        const ResyncCommand& command) {
  base::Result<OriginPosition> pos = load_position(config.state_dir);
  if (!pos) return pos.status();
  SessionConfig session = make_session_config(config, keys);
  session.generation = pos->generation;
  const ReconnectPolicy policy = waking_policy(config);
  base::Result<proto::Hello> clone = ask_awake_clone(session, policy);
  if (!clone) return clone.status();
  base::Result<std::string> source = source_identity(command.source_path);
  if (!source) return source.status();
  // Resume the resync this original started, if the clone still has it under
  // way and the source is the one it read; else a generation past both sides'.
  uint64_t generation = std::max(pos->generation, clone->generation) + 1;
  if (pos->resync_generation != 0 && clone->generation == pos->resync_generation &&
      clone->state == proto::CloneState::inconsistent) {
    if (pos->resync_source == *source) {
      generation = pos->resync_generation;
    } else {
      // Below the interrupted resync's cursor the clone holds the other
      // source's data, which a resume would keep.
      std::printf("the interrupted resync of generation %llu read another source (or this one changed since); "
                  "starting generation %llu from byte 0\n",
                  static_cast<unsigned long long>(pos->resync_generation), static_cast<unsigned long long>(generation));
    }
  }
  OriginPosition during = *pos;
  during.resync_generation = generation;
  during.resync_source = *source;
  during.clean = false;
  BASE_TRY(save_position(config.state_dir, during));

  const MaintenanceOptions options = [&] {
    MaintenanceOptions o = options_from(config, command.extent_bytes);
    o.discard_clone_changes = command.discard_clone_changes;
    o.in_place_unbootable = o.in_place_unbootable || command.in_place_unbootable;
    return o;
  }();
  base::Result<ResyncReport> r = resync_clone(session, policy, command.source_path, generation,
                                              pos->next_seq - 1, pos->next_epoch - 1, options);
  if (!r) return r.status();
  OriginPosition after = *pos;
  after.generation = generation;
  after.resync_generation = 0;
  after.resync_source.clear();
  after.clean = true;
  after.log_writes = {};  // the clone is the source now: a new log may be shipped from here
  BASE_TRY(save_position(config.state_dir, after));
  session.generation = generation;
  base::Result<proto::Hello> now = ask_awake_clone(session, policy);
  if (!now) return now.status();
  const uint64_t size = config.disk_size_bytes;
  std::printf("resync done: generation %llu at record %llu in %.1f s over %llu session(s); compared %s by digest "
              "(from byte %llu), sent %llu extents: %s of data (%s of the disk), %s as zero extents; %s on the wire\n",
              static_cast<unsigned long long>(generation), static_cast<unsigned long long>(pos->next_seq - 1),
              static_cast<double>(r->elapsed_ns) / 1e9, static_cast<unsigned long long>(r->sessions),
              base::format_bytes(r->digested_bytes).c_str(), static_cast<unsigned long long>(r->started_at_bytes),
              static_cast<unsigned long long>(r->extents_sent), base::format_bytes(r->data_bytes_sent).c_str(),
              percent(r->data_bytes_sent, size).c_str(), base::format_bytes(r->zero_bytes_sent).c_str(),
              base::format_bytes(r->wire_bytes_sent).c_str());
  std::printf("data_bytes_sent=%llu wire_bytes_sent=%llu wire_bytes_received=%llu digested_bytes=%llu\n",
              static_cast<unsigned long long>(r->data_bytes_sent), static_cast<unsigned long long>(r->wire_bytes_sent),
              static_cast<unsigned long long>(r->wire_bytes_received),
              static_cast<unsigned long long>(r->digested_bytes));
  if (now->state != proto::CloneState::consistent)
    return base::Status::error(EAGAIN, std::string("the resync completed but the clone reports ") +
                                           proto::clone_state_name(now->state) + "; see clonectl status on the clone.");
  std::printf("the clone is consistent: a bootable copy of %s\n", command.source_path.c_str());
  return base::Status::ok();
}

base::Status run_verify(const config::OriginConfig& config, const config::DerivedKeys& keys,
                        const VerifyCommand& command) {
  base::Result<OriginPosition> pos = load_position(config.state_dir);
  if (!pos) return pos.status();
  if (!pos->clean || pos->resync_generation != 0)
    return base::Status::error(EBUSY, "the original's position is not clean (" + position_path(config.state_dir) +
                                          "): an earlier run or resync did not finish; run clone-origin resync first.");
  SessionConfig session = make_session_config(config, keys);
  session.generation = pos->generation;
  MaintenanceOptions options = options_from(config, command.extent_bytes);
  options.in_place_unbootable = options.in_place_unbootable || command.in_place_unbootable;
  const uint64_t at_seq = pos->next_seq - 1;
  const ReconnectPolicy policy = waking_policy(config);
  base::Result<proto::Hello> awake = ask_awake_clone(session, policy);
  if (!awake && !policy.on_silence && looks_asleep(awake.status()))  // [wake] auto is off
    return base::Status::error(awake.status().code(), awake.status().message() +
                                                          " The clone may be asleep: wake it with clone-origin wake, "
                                                          "then verify again.");
  if (!awake) return awake.status();
  base::Result<VerifyReport> v = verify_clone(session, command.source_path, at_seq, options);
  if (!v) return v.status();
  auto print_ranges = [](const std::vector<Range>& ranges) {
    for (const Range& r : ranges)
      std::printf("out of sync: offset %llu, %llu bytes\n", static_cast<unsigned long long>(r.offset_bytes),
                  static_cast<unsigned long long>(r.length_bytes));
  };
  print_ranges(v->out_of_sync);
  std::printf("verify done: compared %s in %.1f s (%s); %llu extent(s) differed at first, %zu range(s) out of sync\n",
              base::format_bytes(v->digested_bytes).c_str(), static_cast<double>(v->elapsed_ns) / 1e9,
              format_rate(v->digested_bytes, v->elapsed_ns).c_str(), static_cast<unsigned long long>(v->suspect_extents),
              v->out_of_sync.size());
  if (v->out_of_sync.empty()) return base::Status::ok();
  if (!command.repair)
    return base::Status::error(EIO, u64s(v->out_of_sync.size()) + " range(s) of the clone differ from " + command.source_path +
                                        "; repair them with clone-origin verify --repair.");
  base::Result<ResyncReport> fixed =
      repair_clone(session, command.source_path, at_seq, pos->next_epoch - 1, v->out_of_sync, options);
  if (!fixed) return fixed.status();
  std::printf("repair done: rewrote %llu extent(s), %s\n", static_cast<unsigned long long>(fixed->extents_sent),
              base::format_bytes(fixed->data_bytes_sent + fixed->zero_bytes_sent).c_str());
  base::Result<VerifyReport> again = verify_clone(session, command.source_path, at_seq, options);
  if (!again) return again.status();
  print_ranges(again->out_of_sync);
  std::printf("verify after repair: %zu range(s) out of sync\n", again->out_of_sync.size());
  if (!again->out_of_sync.empty())
    return base::Status::error(EIO, u64s(again->out_of_sync.size()) + " range(s) still differ after the repair: the clone's "
                                                                      "disk may be failing (clonectl health on the clone).");
  return base::Status::ok();
}

}  // namespace origin
