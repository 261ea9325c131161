// SPDX-License-Identifier: MIT
// Fuzz target: a dm-log-writes log as clone-origin reads it (origin/
// log_writes_file.h over log_writes.h). The input is the log file; the target
// walks its entries as replay --log-writes does, with the same rule that
// turns them into records, and checks what the rule promises: every record
// fits the protocol's limits and the clone's disk, every write's data lies
// inside the log, a mark is a valid mark name, and a refusal names its entry.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "origin/log_writes_file.h"

namespace lw = origin::log_writes;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::ScratchFile file(".log");
  const std::string& path = file.write(data, size);
  base::Result<lw::LogFile> log = lw::LogFile::open(path);
  if (!log) return 0;
  // A small disk, so entries past its end are common; 4096-byte blocks for a
  // 4096-sector log, else 512.
  const uint32_t block = log->super().sector_bytes;
  const lw::Target target{1ull << 24, block};
  std::vector<lw::Planned> planned;
  lw::EpochState epoch;
  uint64_t offset = block;
  for (uint64_t index = 0; index < log->super().nr_entries && index < 4096; ++index) {
    lw::Entry e;
    const base::Status s = log->read_entry(index, offset, target, e);
    if (!s.is_ok()) {
      FUZZ_CHECK(s.message().find(lw::where(index, offset)) != std::string::npos);
      break;
    }
    FUZZ_CHECK(e.next_log_offset_bytes > offset && e.next_log_offset_bytes <= size);
    planned.clear();
    lw::plan_entry(e, epoch, planned);
    for (const lw::Planned& p : planned) {
      switch (p.type) {
        case lw::Planned::Type::barrier:
          FUZZ_CHECK(p.mark.empty() || proto::is_valid_mark_name(p.mark));
          break;
        case lw::Planned::Type::write:
          FUZZ_CHECK(p.length_bytes >= 1 && p.length_bytes <= proto::kMaxWritePayloadBytes);
          FUZZ_CHECK(p.data_log_offset >= offset + block && p.data_log_offset + p.length_bytes <= size);
          [[fallthrough]];
        case lw::Planned::Type::trim:
          FUZZ_CHECK(p.length_bytes >= 1 && p.length_bytes <= proto::kMaxExtentBytes);
          FUZZ_CHECK(p.offset_bytes % block == 0 && p.length_bytes % block == 0);
          FUZZ_CHECK(p.offset_bytes + p.length_bytes <= target.disk_bytes);
          break;
      }
    }
    offset = e.next_log_offset_bytes;
  }
  (void)log->window_digest(block, std::min<uint64_t>(size, block + 4096));
  return 0;
}
