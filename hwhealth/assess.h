// SPDX-License-Identifier: MIT
// The judgment: findings from one snapshot, in smartd's spirit
// (shared/reference/linux-apis.md §5). docs/HEALTH.md lists every rule with
// its code and severity.
//
// Rules on levels look at `current` alone (the drive says it is failing, an
// attribute is at its threshold, a temperature is over its critical mark).
// Rules on counters that rose need `previous` (nullptr on the first poll, or
// when the previous baseline was lost): they compare error_counters() of
// `current` with the baseline's counters and produce event findings. Sources that are not available produce no
// findings: they are reported as sources, and verdict() does not call them
// healthy.
#pragma once

#include <vector>

#include "hwhealth/baseline.h"
#include "hwhealth/finding.h"
#include "hwhealth/snapshot.h"

namespace hwhealth {

// At most kFindingsMax findings, critical first, then warning, then info;
// within a severity in rule order.
std::vector<Finding> assess(const Snapshot& current, const Baseline* previous);

// The parts, for tests and for callers that judge one source.
void assess_smart(const SmartReading& smart, std::vector<Finding>& out);
void assess_temperatures(const std::vector<TemperatureSensor>& sensors, std::vector<Finding>& out);
void assess_memory_ecc(const std::vector<MemoryController>& controllers, std::vector<Finding>& out);
void assess_batteries(const std::vector<Battery>& batteries, std::vector<Finding>& out);
void assess_counters(const Snapshot& current, const Baseline& previous, std::vector<Finding>& out);

}  // namespace hwhealth
