// SPDX-License-Identifier: MIT
// Internal: the detail tables of format_text (TextOptions::details).
#pragma once

#include <string>

#include "hwhealth/snapshot.h"

namespace hwhealth {

// Appends the ATA attribute table or the NVMe health log, and every
// temperature sensor, as lines ending in '\n'.
void append_text_details(const Snapshot& snapshot, std::string& out);

}  // namespace hwhealth
