// SPDX-License-Identifier: MIT
// Internal: the parts of /proc/self/mountinfo (proc(5)) that say which block
// device is mounted where.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace blockio {

struct MountEntry {
  dev_t device = 0;          // field 3, MAJ:MIN (anonymous 0:N for tmpfs, overlayfs...)
  std::string mount_point;   // field 5, unescaped
  std::string source;        // after the " - " separator: fstype, then this
};

// Lines that do not parse are skipped; a real kernel never writes one.
std::vector<MountEntry> parse_mountinfo(std::string_view text);

}  // namespace blockio
