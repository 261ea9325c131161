// SPDX-License-Identifier: MIT
// A Snapshot and its changes as text for a person (`clonectl health`) and as
// JSON for programs (`clonectl health --json`, the original's reports).
// Pure functions of their arguments; the JSON field names are stable.
#pragma once

#include <string>
#include <vector>

#include "hwhealth/snapshot.h"

namespace hwhealth {

struct TextOptions {
  bool details = false;  // also every ATA attribute, NVMe field and temperature sensor
};

// Several lines ending in '\n': the verdict, one line per source, the findings.
std::string format_text(const Snapshot& snapshot, const TextOptions& options = {});

// One line: "CRITICAL ata.failing: /dev/sda says it is FAILING ...".
std::string format_change_text(const Change& change);

// One JSON object, no trailing newline. Layout in docs/HEALTH.md.
std::string format_json(const Snapshot& snapshot);

// A JSON array of changes, no trailing newline.
std::string format_changes_json(const std::vector<Change>& changes);

}  // namespace hwhealth
