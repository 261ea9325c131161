// SPDX-License-Identifier: MIT
// clone-origin replay: sends a spool's records to the clone.
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>

#include "base/units.h"
#include "origin/commands.h"
#include "origin/log.h"
#include "origin/position.h"
#include "origin/progress.h"
#include "origin/replicator.h"
#include "origin/spool.h"
#include "origin/wake.h"

namespace origin {

using base::u64s;

namespace {

// The second pass: the file was validated whole by scan_spool, but it is
// read and validated again record by record (it could have changed since):
// every entry's keyed digest, but not the payloads' digests again, which
// scan_spool checked on bytes that entry digest binds (SpoolReader::open).
base::Status feed_spool(const std::string& path, const config::OriginConfig& config, const config::DerivedKeys& keys,
                        RetainedLog& log, std::atomic<uint64_t>& done_bytes) {
  base::Result<std::unique_ptr<SpoolReader>> reader =
      SpoolReader::open(path, config.pair_id, keys.digest_key, /*payload_digests=*/false);
  if (!reader) return reader.status();
  for (;;) {
    auto rec = std::make_shared<Record>();
    bool has = false;
    BASE_TRY((*reader)->next(*rec, has));
    if (!has) return base::Status::ok();
    const uint64_t bytes = rec->data_bytes();
    if (!log.append(std::move(rec))) return base::Status::ok();  // the replicator failed: it says why
    done_bytes.fetch_add(bytes);
  }
}

}  // namespace

base::Status run_replay(const config::OriginConfig& config, const config::DerivedKeys& keys,
                        const ReplayCommand& command) {
  base::Result<SpoolSummary> sum = scan_spool(command.spool_path, config.pair_id, keys.digest_key);
  if (!sum) return sum.status();
  if (sum->record_count == 0) {
    std::printf("replay done: spool %s holds no records\n", command.spool_path.c_str());
    return base::Status::ok();
  }
  if (!sum->ends_with_barrier)
    return base::Status::error(EBADMSG, "spool " + command.spool_path + " ends with record " + u64s(sum->last_seq) +
                                            ", which is not a barrier: the capture was cut short, and its last epoch "
                                            "could never be made durable; nothing was sent.");
  // Refused, as a workload, after a run that left the image ahead of the
  // clone: the spool's records would be numbered past what the clone missed.
  base::Result<OriginPosition> pos = load_clean_position(config.state_dir);
  if (!pos) return pos.status();
  const uint64_t start_ns = base::monotonic_ns();
  RetainedLog log(config.retention_bytes_max, sum->first_seq);
  log.set_known_end_seq(sum->last_seq);  // the hello tells the clone how far this original's log goes
  SessionConfig session_config = make_session_config(config, keys);
  session_config.generation = pos->generation;  // the spool was captured in this generation
  Replicator replicator(session_config, make_reconnect_policy(config), log);
  attach_wake(replicator, config);
  BASE_TRY(replicator.start());
  std::atomic<uint64_t> done_bytes{0};
  ProgressReporter progress([&] {
    const ReplicatorCounters c = replicator.counters();
    return "replay: " + base::format_bytes(done_bytes.load()) + " of " + base::format_bytes(sum->data_bytes) +
           " read, " + format_rate(done_bytes.load(), base::monotonic_ns() - start_ns) + ", acked seq " +
           u64s(c.acked_seq) + " of " + u64s(sum->last_seq);
  });
  base::Status s = feed_spool(command.spool_path, config, keys, log, done_bytes);
  if (s.is_ok()) s = replicator.wait_committed(sum->last_seq);  // as the workload: committed before the position moves
  progress.stop();
  if (!s.is_ok()) return s;
  const uint64_t elapsed_ns = base::monotonic_ns() - start_ns;
  replicator.stop();
  std::printf("replay done: %s in %.3f s (%s), %llu records (seq %llu..%llu) durable on the clone, %llu reconnects\n",
              base::format_bytes(sum->data_bytes).c_str(), static_cast<double>(elapsed_ns) / 1e9,
              format_rate(sum->data_bytes, elapsed_ns).c_str(), static_cast<unsigned long long>(sum->record_count),
              static_cast<unsigned long long>(sum->first_seq), static_cast<unsigned long long>(sum->last_seq),
              static_cast<unsigned long long>(replicator.counters().reconnects));
  return base::Status::ok();
}

}  // namespace origin
