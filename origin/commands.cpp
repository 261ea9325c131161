// SPDX-License-Identifier: MIT
#include "origin/commands.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>

#include "base/units.h"
#include "origin/image.h"
#include "origin/log.h"
#include "origin/position.h"
#include "origin/progress.h"
#include "origin/replicator.h"
#include "origin/spool.h"
#include "origin/wake.h"

namespace origin {

using base::u64s;

namespace {

std::string seconds_text(uint64_t elapsed_ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(elapsed_ns) / 1e9);
  return buf;
}

OriginPosition with_clean(OriginPosition p, bool clean) {
  p.clean = clean;
  return p;
}

// Where a finished run leaves the numbering: past its records, clean.
OriginPosition advanced(OriginPosition p, const WorkloadGenerator& gen) {
  p.next_seq = gen.next_seq();
  p.next_epoch = gen.next_epoch();
  p.clean = true;
  return p;
}

std::string replication_line(const char* what, uint64_t done_bytes, uint64_t total_bytes, uint64_t start_ns,
                             const ReplicatorCounters& c) {
  return std::string(what) + ": " + base::format_bytes(done_bytes) + " of " + base::format_bytes(total_bytes) + ", " +
         format_rate(done_bytes, base::monotonic_ns() - start_ns) + ", acked seq " + u64s(c.acked_seq) +
         ", committed seq " + u64s(c.committed_seq) + (c.reconnects > 0 ? ", reconnects " + u64s(c.reconnects) : "");
}

// What a run sends, and where the generator left the numbering.
struct Produced {
  uint64_t last_seq = 0;
  uint64_t record_count = 0;
  uint64_t data_bytes = 0;
};

base::Status produce_workload(WorkloadGenerator& gen, SourceImage& image, RetainedLog& log,
                              std::atomic<uint64_t>& done_bytes, Produced& out) {
  std::vector<Record> batch;
  bool replicating = true;
  // Made in small batches so that their digests are computed together.
  while (replicating && gen.next_batch(batch, kSealBatchRecords, kSealBatchBytes)) {
    for (Record& rec : batch) {
      BASE_TRY(image.apply(rec));
      out.last_seq = rec.header.seq;
      ++out.record_count;
      replicating = log.append(std::make_shared<const Record>(std::move(rec)));
      if (!replicating) break;  // the replicator failed
    }
    done_bytes.store(gen.data_bytes_done());
  }
  out.data_bytes = gen.data_bytes_done();
  return image.sync();
}

base::Status compare_and_report(const std::string& source, const std::string& clone) {
  base::Result<CompareResult> cmp = compare_images(source, clone);
  if (!cmp) return cmp.status();
  if (!cmp->identical) return base::Status::error(EIO, cmp->sentence);
  std::printf("identical\n");
  return base::Status::ok();
}

}  // namespace

base::Status run_workload(const config::OriginConfig& config, const config::DerivedKeys& keys,
                          const WorkloadCommand& command) {
  BASE_TRY(check_workload_options(command.workload, config.disk_size_bytes, config.logical_block_bytes));
  BASE_TRY(check_epoch_fits_retention(command.workload, config.retention_bytes_max));
  base::Result<OriginPosition> pos = load_clean_position(config.state_dir);
  if (!pos) return pos.status();
  base::Result<std::unique_ptr<SourceImage>> image = SourceImage::open(command.source_path, config.disk_size_bytes);
  if (!image) return image.status();

  const uint64_t start_ns = base::monotonic_ns();
  RetainedLog log(config.retention_bytes_max, pos->next_seq);
  SessionConfig session_config = make_session_config(config, keys);
  session_config.generation = pos->generation;
  Replicator replicator(session_config, make_reconnect_policy(config), log);
  attach_wake(replicator, config);
  BASE_TRY(replicator.start());
  // Nothing touches the image before the clone has accepted a session: a
  // clone that refuses at once leaves the image and the position as they were.
  BASE_TRY(replicator.wait_established());
  BASE_TRY(save_position(config.state_dir, with_clean(*pos, false)));
  WorkloadGenerator gen(command.workload, config.disk_size_bytes, config.logical_block_bytes, keys.digest_key,
                        pos->next_seq, pos->next_epoch);
  std::atomic<uint64_t> done_bytes{0};
  ProgressReporter progress([&] {
    return replication_line("workload", done_bytes.load(), command.workload.total_bytes, start_ns,
                            replicator.counters());
  });
  Produced produced;
  base::Status s = produce_workload(gen, **image, log, done_bytes, produced);
  // Committed, not only durable: the position saved next drops these records,
  // and a clone that crashed before its store held them would need them again.
  if (s.is_ok()) s = replicator.wait_committed(produced.last_seq);
  progress.stop();
  if (!s.is_ok()) return s;
  BASE_TRY(save_position(config.state_dir, advanced(*pos, gen)));
  const uint64_t elapsed_ns = base::monotonic_ns() - start_ns;
  replicator.stop();
  const ReplicatorCounters c = replicator.counters();
  std::printf("workload done: %s in %s (%s), %llu records (seq %llu..%llu) durable on the clone, %llu reconnects\n",
              base::format_bytes(produced.data_bytes).c_str(), seconds_text(elapsed_ns).c_str(),
              format_rate(produced.data_bytes, elapsed_ns).c_str(),
              static_cast<unsigned long long>(produced.record_count), static_cast<unsigned long long>(pos->next_seq),
              static_cast<unsigned long long>(produced.last_seq), static_cast<unsigned long long>(c.reconnects));
  std::fflush(stdout);
  if (!command.compare_path.empty()) return compare_and_report(command.source_path, command.compare_path);
  return base::Status::ok();
}

base::Status run_capture(const config::OriginConfig& config, const config::DerivedKeys& keys,
                         const CaptureCommand& command) {
  BASE_TRY(check_workload_options(command.workload, config.disk_size_bytes, config.logical_block_bytes));
  BASE_TRY(check_epoch_fits_retention(command.workload, config.retention_bytes_max));
  base::Result<OriginPosition> pos = load_clean_position(config.state_dir);
  if (!pos) return pos.status();
  base::Result<std::unique_ptr<SourceImage>> image = SourceImage::open(command.source_path, config.disk_size_bytes);
  if (!image) return image.status();
  base::Result<std::unique_ptr<SpoolWriter>> spool =
      SpoolWriter::create(command.spool_path, config.pair_id, pos->next_seq, keys.digest_key);
  if (!spool) return spool.status();
  BASE_TRY(save_position(config.state_dir, with_clean(*pos, false)));

  const uint64_t start_ns = base::monotonic_ns();
  WorkloadGenerator gen(command.workload, config.disk_size_bytes, config.logical_block_bytes, keys.digest_key,
                        pos->next_seq, pos->next_epoch);
  std::atomic<uint64_t> done_bytes{0};
  ProgressReporter progress([&] {
    const uint64_t done = done_bytes.load();
    return "capture: " + base::format_bytes(done) + " of " + base::format_bytes(command.workload.total_bytes) + ", " +
           format_rate(done, base::monotonic_ns() - start_ns);
  });
  std::vector<Record> batch;
  uint64_t records = 0;
  while (gen.next_batch(batch, kSealBatchRecords, kSealBatchBytes)) {
    for (const Record& rec : batch) {
      BASE_TRY((*image)->apply(rec));
      BASE_TRY((*spool)->append(rec));
      ++records;
    }
    done_bytes.store(gen.data_bytes_done());
  }
  BASE_TRY((*image)->sync());
  BASE_TRY((*spool)->finish());
  progress.stop();
  // The spool now holds the records: the numbering moves on past them.
  BASE_TRY(save_position(config.state_dir, advanced(*pos, gen)));
  const uint64_t elapsed_ns = base::monotonic_ns() - start_ns;
  std::printf("capture done: %s in %s (%s), %llu records (seq %llu..%llu) in %s\n",
              base::format_bytes(gen.data_bytes_done()).c_str(), seconds_text(elapsed_ns).c_str(),
              format_rate(gen.data_bytes_done(), elapsed_ns).c_str(), static_cast<unsigned long long>(records),
              static_cast<unsigned long long>(pos->next_seq), static_cast<unsigned long long>(gen.next_seq() - 1),
              command.spool_path.c_str());
  return base::Status::ok();
}

}  // namespace origin
