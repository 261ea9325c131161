// SPDX-License-Identifier: MIT
// Verify, the original's side (maintenance.h): two digest scans, coarse and
// then in 4 KiB blocks, and the findings reported to the clone; and asking
// the clone for its hello.
#include <cerrno>
#include <cstdio>
#include <string>

#include "base/units.h"
#include "origin/maintenance.h"
#include "origin/maintenance_link.h"
#include "origin/scanner.h"
#include "proto/resync.h"

namespace origin {

using base::u64s;

namespace {

constexpr uint32_t kVerifyBlockBytes = proto::kMinExtentBytes;  // the second look's granularity

}  // namespace

base::Result<proto::Hello> ask_clone(const SessionConfig& session) {
  MaintenanceLink link;
  proto::Hello clone;
  BASE_TRY(link.open(session, clone));
  link.close();
  return clone;
}

base::Result<VerifyReport> verify_clone(const SessionConfig& session, const std::string& image_path, uint64_t at_seq,
                                        const MaintenanceOptions& options) {
  base::Result<std::unique_ptr<SourceImage>> opened = SourceImage::open_to_read(image_path, session.disk_size_bytes);
  if (!opened) return opened.status();
  SourceImage& image = **opened;
  MaintenanceLink link;
  proto::Hello clone;
  BASE_TRY(link.open(session, clone));
  if (clone.generation != session.generation || clone.state != proto::CloneState::consistent ||
      clone.applied_seq != at_seq)
    return base::Status::error(
        EAGAIN, std::string("the clone is ") + proto::clone_state_name(clone.state) + " at generation " +
                    u64s(clone.generation) + ", record " + u64s(clone.applied_seq) +
                    "; verify compares a consistent clone of generation " + u64s(session.generation) + " at record " +
                    u64s(at_seq) + " (replicate or resync first).");
  VerifyReport report;
  const uint64_t start_ns = base::monotonic_ns();
  RateLimit rate(options.rate_bytes_max);
  Scanner scanner(link, image, session.digest_key, options, rate, report.digested_bytes);
  std::vector<Range> suspects;
  const uint64_t total = image.size_bytes();
  uint64_t last_progress_ns = 0;
  BASE_TRY(scanner.scan(
      0, total, {options.extent_bytes},
      [&](Range r, Scanner::Found) {
        suspects.push_back(r);
        return base::Status::ok();
      },
      [&](uint64_t at) {
        const uint64_t now = base::monotonic_ns();
        if (now - last_progress_ns >= 1'000'000'000ull) {
          last_progress_ns = now;
          send_progress(link, proto::ProgressKind::verify, at, total);
          std::fprintf(stderr, "%s\n", progress_line("verify", at, total, 0, start_ns).c_str());
        }
        return base::Status::ok();
      }));
  report.suspect_extents = suspects.size();
  // The second look, in 4 KiB blocks: what differs still, and exactly where.
  for (const Range& sus : suspects) {
    uint64_t rechecked = 0;
    Scanner fine(link, image, session.digest_key, options, rate, rechecked);
    BASE_TRY(fine.scan(
        sus.offset_bytes, sus.offset_bytes + sus.length_bytes, {kVerifyBlockBytes},
        [&](Range r, Scanner::Found) {
          if (!report.out_of_sync.empty() &&
              report.out_of_sync.back().offset_bytes + report.out_of_sync.back().length_bytes == r.offset_bytes)
            report.out_of_sync.back().length_bytes += r.length_bytes;
          else
            report.out_of_sync.push_back(r);
          return base::Status::ok();
        },
        [](uint64_t) { return base::Status::ok(); }));
  }
  for (const Range& r : report.out_of_sync) {
    base::Bytes out;
    proto::encode_out_of_sync(r.offset_bytes, r.length_bytes, out);
    link.queue(out);
  }
  send_progress(link, proto::ProgressKind::verify, total, total);
  BASE_TRY(link.drain());
  report.wire_bytes_sent = link.wire_bytes();
  link.close();
  report.elapsed_ns = base::monotonic_ns() - start_ns;
  return report;
}

}  // namespace origin
