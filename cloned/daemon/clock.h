// SPDX-License-Identifier: MIT
// The daemon's one clock for deadlines, ticks and the sleep policy.
#pragma once

#include <cstdint>

namespace cloned {

// Milliseconds on the monotonic clock.
uint64_t now_ms();

}  // namespace cloned
