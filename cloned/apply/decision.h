// SPDX-License-Identifier: MIT
// The owner's decision for a Diverged clone (`clonectl decide`), as a change
// of the replica state. Pure: the caller saves the result (clonectl into the
// store while the daemon is stopped, or the daemon itself).
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "cloned/apply/replica.h"

namespace apply {

enum class Decision {
  // The clone's own changes go: it waits for a resync from the original
  // (needs_resync), inconsistent until then.
  discard_clone_changes,
  // The clone keeps its changes and stays Diverged (no writes); the current
  // disk becomes the new baseline, so the same changes do not alarm again.
  keep_diverged,
};

// "discard-clone-changes" / "keep-diverged"; false for anything else.
bool parse_decision(const std::string& text, Decision& out);
const char* decision_name(Decision d);

// Applies `d` to a Diverged clone's state; refuses any other state with a
// sentence. `who` and `unix_ms` go into the recorded decision.
base::Status apply_decision(ReplicaState& state, Decision d, const std::string& who, int64_t unix_ms);

}  // namespace apply
