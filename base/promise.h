// SPDX-License-Identifier: MIT
// The few promises a person relies on (design.md invariants 4-6: an ack means
// durable, nothing written or acknowledged past the durable reservation),
// checked in every build, NDEBUG or not. A broken one stops the process with
// a sentence in the journal, rather than let it acknowledge what it cannot
// back: systemd restarts the daemon, which resumes from its durable state.
//
// assert() stays the tool for programmer errors in general (conventions.md);
// CLONED_PROMISE is for the handful of checks that guard the user's data and
// are cheap enough for the hot path. `what` is evaluated only when the
// condition is false, so building its sentence costs nothing otherwise.
#pragma once

#include <string>

namespace base {

// Logs "broken promise at FILE:LINE (CONDITION): WHAT" at error level and
// aborts. Never returns.
[[noreturn]] void broken_promise(const char* file, int line, const char* condition, const std::string& what);

}  // namespace base

#define CLONED_PROMISE(condition, what) \
  ((condition) ? static_cast<void>(0) : ::base::broken_promise(__FILE__, __LINE__, #condition, (what)))
