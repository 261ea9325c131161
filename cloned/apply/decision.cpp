// SPDX-License-Identifier: MIT
#include "cloned/apply/decision.h"

#include "base/units.h"

namespace apply {

bool parse_decision(const std::string& text, Decision& out) {
  if (text == "discard-clone-changes") out = Decision::discard_clone_changes;
  else if (text == "keep-diverged") out = Decision::keep_diverged;
  else return false;
  return true;
}

const char* decision_name(Decision d) {
  return d == Decision::discard_clone_changes ? "discard-clone-changes" : "keep-diverged";
}

base::Status apply_decision(ReplicaState& s, Decision d, const std::string& who, int64_t unix_ms) {
  if (s.state != proto::CloneState::diverged)
    return base::Status::error(EINVAL, std::string("the clone is not Diverged (it is ") + proto::clone_state_name(s.state) +
                                           "); there is nothing to decide.");
  const std::string when = base::format_utc_time(unix_ms);
  s.decision = std::string(decision_name(d)) + " at " + when + " by " + who;
  // The disk as it is now is the new baseline either way.
  s.fingerprint_valid = false;
  if (d == Decision::discard_clone_changes) {
    s.state = proto::CloneState::inconsistent;
    s.needs_resync = true;
    s.state_reason = "the clone's own changes are to be discarded (decided " + std::string(when) +
                     "): it takes the original's data again after a resync (clone-origin resync)";
  } else if (s.state_reason.find("(kept by decision)") == std::string::npos) {
    s.state_reason += " (kept by decision)";
  }
  return base::Status::ok();
}

}  // namespace apply
