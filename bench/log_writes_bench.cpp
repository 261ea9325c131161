// SPDX-License-Identifier: MIT
// log-writes-bench LOG TARGET_FILE DISK_BYTES: what a real write stream is
// made of, and the baseline for bench/log_writes.sh. Walks a dm-log-writes
// log with the rule clone-origin replay --log-writes uses (plan_entry),
// prints the histogram of the records' sizes, then replays the log onto
// TARGET_FILE the bare way (pread from the log, O_DIRECT pwrite, fdatasync at
// each barrier; no crypto, no network, no state store) and prints its CPU
// and wall time. Prints key=value lines.
#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/file_io.h"
#include "bench/cpu_time.h"
#include "origin/log_writes_file.h"

namespace lw = origin::log_writes;

namespace {

// The histogram's bucket: the power of two at or above the size.
uint64_t bucket(uint64_t bytes) {
  uint64_t b = 512;
  while (b < bytes) b <<= 1;
  return b;
}

// Pass 1: the plan, and the histogram of its sizes printed.
bool plan_log(lw::LogFile& log, const lw::Target& target, std::vector<lw::Planned>& plan) {
  std::map<uint64_t, uint64_t> writes_by_size, trims_by_size;
  uint64_t offset = log.super().sector_bytes, write_bytes = 0, barriers = 0, marks = 0;
  lw::EpochState open;
  for (uint64_t i = 0; i < log.super().nr_entries; ++i) {
    lw::Entry e;
    if (base::Status s = log.read_entry(i, offset, target, e); !s.is_ok()) {
      std::fprintf(stderr, "log-writes-bench: %s\n", s.message().c_str());
      return false;
    }
    const size_t before = plan.size();
    lw::plan_entry(e, open, plan);
    for (size_t k = before; k < plan.size(); ++k) {
      const lw::Planned& p = plan[k];
      if (p.type == lw::Planned::Type::write) {
        ++writes_by_size[bucket(p.length_bytes)];
        write_bytes += p.length_bytes;
      } else if (p.type == lw::Planned::Type::trim) {
        ++trims_by_size[bucket(p.length_bytes)];
      } else {
        ++barriers;
        marks += p.mark.empty() ? 0 : 1;
      }
    }
    offset = e.next_log_offset_bytes;
  }
  std::printf("entries=%llu\nrecords=%zu\nwrite_bytes=%llu\nbarriers=%llu\nmarks=%llu\n",
              static_cast<unsigned long long>(log.super().nr_entries), plan.size(),
              static_cast<unsigned long long>(write_bytes), static_cast<unsigned long long>(barriers),
              static_cast<unsigned long long>(marks));
  for (auto [size, n] : writes_by_size)
    std::printf("write_size_le_%llu=%llu\n", static_cast<unsigned long long>(size), static_cast<unsigned long long>(n));
  for (auto [size, n] : trims_by_size)
    std::printf("trim_size_le_%llu=%llu\n", static_cast<unsigned long long>(size), static_cast<unsigned long long>(n));
  return true;
}

// Pass 2: the bare replay onto `fd`.
base::Status bare_replay(lw::LogFile& log, const std::vector<lw::Planned>& plan, int fd) {
  base::AlignedBuffer buf(1u << 20);
  for (const lw::Planned& p : plan) {
    if (p.type == lw::Planned::Type::write) {
      base::MutableByteSpan span = buf.span().subspan(0, p.length_bytes);
      BASE_TRY(log.read(span, p.data_log_offset));
      BASE_TRY(base::pwrite_full(fd, span, p.offset_bytes));
    } else if (p.type == lw::Planned::Type::trim) {
      if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(p.offset_bytes),
                      static_cast<off_t>(p.length_bytes)) != 0)
        return base::Status::from_errno("fallocate");
    } else if (::fdatasync(fd) != 0) {
      return base::Status::from_errno("fdatasync");
    }
  }
  return base::Status::ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: log-writes-bench LOG TARGET_FILE DISK_BYTES\n");
    return 2;
  }
  base::Result<lw::LogFile> log = lw::LogFile::open(argv[1]);
  if (!log) {
    std::fprintf(stderr, "log-writes-bench: %s\n", log.status().message().c_str());
    return 1;
  }
  const lw::Target target{std::strtoull(argv[3], nullptr, 10), 512};
  std::vector<lw::Planned> plan;
  if (!plan_log(*log, target, plan)) return 1;
  const int fd = ::open(argv[2], O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) {
    std::perror("log-writes-bench: open TARGET_FILE");
    return 1;
  }
  const double cpu0 = bench::process_cpu_seconds();
  const auto wall0 = std::chrono::steady_clock::now();
  const base::Status s = bare_replay(*log, plan, fd);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  ::close(fd);
  if (!s.is_ok()) {
    std::fprintf(stderr, "log-writes-bench: %s\n", s.message().c_str());
    return 1;
  }
  std::printf("bare_cpu_s=%.3f\nbare_wall_s=%.3f\n", bench::process_cpu_seconds() - cpu0, wall);
  return 0;
}
