// SPDX-License-Identifier: MIT
// scan-bench: the clone's side of a whole-disk digest scan, as the daemon
// runs it (DiskWorkers digest jobs of 8 MiB, 8 in flight, on the configured
// number of threads, O_DIRECT reads), and the single-core speed of the keyed
// BLAKE2b, both over the same extent size: one message at a time (libsodium)
// and in the SIMD lanes the scan uses (digest::widest_lanes).
// bench/resync.sh runs it next to fio's raw O_DIRECT read of the same device.
// Also the keyed BLAKE2b of all cores at once over a 512 MiB buffer (cold
// data, as a scan's is: the single-core figures hash extents that stay in the
// cache), both ways. Prints key=value lines.
//
// usage: scan-bench DEVICE_OR_FILE [EXTENT_BYTES] [THREADS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/units.h"
#include "bench/cpu_time.h"
#include "blockio/disk.h"
#include "cloned/daemon/workers.h"
#include "config/config.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Keyed BLAKE2b over `total` bytes in memory, one thread, extent by extent
// through `lanes` (Lanes::one: libsodium, one message at a time), over one
// group of extents that stays in the cache.
double hash_rate_mib_s(uint32_t extent, uint64_t total, digest::Lanes lanes) {
  base::AlignedBuffer buf(uint64_t{extent} * static_cast<uint64_t>(lanes));
  for (size_t i = 0; i < buf.size(); ++i) buf.data()[i] = static_cast<uint8_t>(i * 131);
  const digest::DigestKey key{1};
  std::vector<digest::Digest> out;
  uint8_t sink = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t done = 0; done < total; done += buf.size()) {
    out.clear();
    digest::append_extent_digests(key, buf.span(), extent, out, lanes);
    sink ^= out[0][0];
  }
  const double s = seconds_since(t0);
  if (sink == 0x5a) std::fputs("", stderr);  // keeps the loop
  return static_cast<double>(total) / 1048576.0 / s;
}

// Keyed BLAKE2b on `threads` threads at once, each over its own part of a
// buffer of `total` bytes (far larger than the caches), 1 MiB at a time as a
// scan's disk worker hashes what it read: what hashing data that has just
// come from a disk costs, all cores together.
double cold_hash_rate_mib_s(uint32_t extent, uint64_t total, uint32_t threads, digest::Lanes lanes) {
  base::AlignedBuffer buf(total);
  for (size_t i = 0; i < buf.size(); i += 8) buf.data()[i] = static_cast<uint8_t>(i * 131 >> 3);
  const digest::DigestKey key{3};
  const uint64_t piece = std::max<uint64_t>(extent, 1u << 20);
  const uint64_t part = total / threads / piece * piece;
  std::vector<std::thread> pool;
  std::vector<uint8_t> sinks(threads, 0);
  const auto t0 = std::chrono::steady_clock::now();
  for (uint32_t t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::vector<digest::Digest> out;
      for (uint64_t at = t * part; at < (t + 1) * part; at += piece) {
        out.clear();
        digest::append_extent_digests(key, {buf.data() + at, piece}, extent, out, lanes);
        sinks[t] ^= out[0][0];
      }
    });
  for (std::thread& th : pool) th.join();
  const double s = seconds_since(t0);
  for (uint8_t x : sinks)
    if (x == 0x5a) std::fputs("", stderr);  // keeps the loops
  return static_cast<double>(part * threads) / 1048576.0 / s;
}

// Busy and total jiffies of all cores, from /proc/stat's first line.
struct CpuTimes {
  uint64_t busy = 0, total = 0;
};
CpuTimes machine_cpu() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  const uint64_t busy = user + nice + system + irq + softirq + steal;
  return {busy, busy + idle + iowait};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: scan-bench DEVICE_OR_FILE [EXTENT_BYTES] [THREADS]\n");
    return 2;
  }
  const std::string path = argv[1];
  const uint32_t extent = argc > 2 ? static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10)) : 65536;
  const uint32_t threads = argc > 3 ? static_cast<uint32_t>(std::strtoul(argv[3], nullptr, 10)) : 4;
  if (!proto::is_valid_extent_size(extent) || threads == 0 || threads > 64) {
    std::fprintf(stderr, "scan-bench: extent must be a power of two from 4096 to 1048576, threads 1..64\n");
    return 2;
  }
  blockio::OpenOptions o;
  o.exclusive = false;
  base::Result<std::unique_ptr<blockio::BlockDevice>> dev = blockio::open_disk(path, o);
  if (!dev) {
    std::fprintf(stderr, "scan-bench: %s\n", dev.status().message().c_str());
    return 1;
  }
  const uint64_t size = (*dev)->geometry().size_bytes;
  // One message at a time (libsodium), and in the lanes the scan uses.
  const digest::Lanes lanes = digest::widest_lanes();
  const uint32_t cores = std::max(1u, std::thread::hardware_concurrency());
  std::printf("lanes=%d\nlanes_name=%s\ncores=%u\n", static_cast<int>(lanes),
              std::string(digest::lanes_name(lanes)).c_str(), cores);
  std::printf("blake2b_single_core_mib_s=%.1f\n", hash_rate_mib_s(extent, 1ull << 30, digest::Lanes::one));
  std::printf("blake2b_lanes_single_core_mib_s=%.1f\n", hash_rate_mib_s(extent, 1ull << 30, lanes));
  const uint64_t cold_bytes = 512ull << 20;
  std::printf("blake2b_all_cores_cold_mib_s=%.1f\n",
              cold_hash_rate_mib_s(extent, cold_bytes, cores, digest::Lanes::one));
  std::printf("blake2b_lanes_all_cores_cold_mib_s=%.1f\n", cold_hash_rate_mib_s(extent, cold_bytes, cores, lanes));

  cloned::Completions done;
  const digest::DigestKey key{2};
  const config::CloneConfig daemon;  // the workers with the daemon's priority and time slice
  cloned::DiskWorkers workers(**dev, key, threads, done, false,
                              {daemon.writer_priority_boost, daemon.writer_time_slice_us});
  const uint32_t per_request = std::min<uint32_t>(proto::kMaxDigestsPerRequest, (8u << 20) / extent);
  const uint64_t request_bytes = uint64_t{per_request} * extent;
  uint64_t next = 0, answered = 0, in_flight = 0, requests = 0;
  const CpuTimes m0 = machine_cpu();
  const double cpu0 = bench::process_cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  while (answered < size) {
    while (in_flight < 8 && next < size) {
      const uint32_t count =
          static_cast<uint32_t>(std::min<uint64_t>(per_request, (size - next + extent - 1) / extent));
      workers.digest({++requests, next, extent, count}, 1);
      next += uint64_t{count} * extent;
      ++in_flight;
    }
    for (cloned::Completion& c : done.take_all()) {
      if (c.kind != cloned::Completion::Kind::digest) continue;
      if (!c.status.is_ok()) {
        std::fprintf(stderr, "scan-bench: %s\n", c.status.message().c_str());
        return 1;
      }
      answered += std::min(request_bytes, size - c.request.offset_bytes);
      --in_flight;
    }
    if (in_flight == 8 || next >= size) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const double s = seconds_since(t0);
  const double cpu = bench::process_cpu_seconds() - cpu0;
  const CpuTimes m1 = machine_cpu();
  const double busy =
      m1.total > m0.total ? static_cast<double>(m1.busy - m0.busy) / static_cast<double>(m1.total - m0.total) : 0.0;
  std::printf("scan_cpu_s=%.3f\nscan_machine_busy=%.2f\n", cpu, busy);
  std::printf("scan_bytes=%llu\nscan_seconds=%.3f\nscan_mib_s=%.1f\nthreads=%u\nextent_bytes=%u\n",
              static_cast<unsigned long long>(size), s, static_cast<double>(size) / 1048576.0 / s, threads, extent);
  return 0;
}
