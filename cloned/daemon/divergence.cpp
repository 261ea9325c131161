// SPDX-License-Identifier: MIT
// Diverged detection in the daemon (docs/DIVERGED.md): the disk's
// fingerprint is recorded when the disk is quiet (after a session, at a clean
// stop) and compared at startup and before the first write of each session.
// Any difference makes the clone Diverged: no writes until `clonectl decide`.
//
// The stored fingerprint is valid only while nothing of ours may have written
// since it was taken: it is invalidated, durably, before a session's first
// write (Machine::invalidate_fingerprint). After a crash mid-session there is
// no valid fingerprint to compare with, and the start takes a new baseline
// (logged): a change made between that crash and the restart is not detected.
#include <string>

#include "base/log.h"
#include "cloned/daemon/daemon.h"
#include "cloned/diverge/fingerprint.h"

namespace cloned {

namespace {

std::string joined(const std::vector<std::string>& sentences) {
  std::string out;
  for (const std::string& s : sentences) out += (out.empty() ? "" : "; ") + s;
  return out;
}

}  // namespace

// Compares the disk with the stored fingerprint; marks the clone Diverged on
// a difference. Returns false when the clone is (now) Diverged.
bool Daemon::check_divergence(const char* when) {
  if (!config_.detect_divergence) return true;
  const apply::ReplicaState& r = machine_.replica();
  if (r.state == proto::CloneState::diverged) return false;
  base::Result<diverge::Fingerprint> now = diverge::take_fingerprint(*device_, keys_.digest_key);
  if (!now) {
    LOG_ERROR("cannot fingerprint the clone's disk %s: %s", when, now.status().message().c_str());
    return true;  // a read error is the disk workers' and health's business; nothing to compare
  }
  last_fingerprint_us_ = now->elapsed_us;
  last_fingerprint_bytes_ = now->bytes_read;
  if (!r.fingerprint_valid) {
    LOG_NOTICE("no valid fingerprint of the disk to compare %s (first start, or the last run stopped while "
               "writing); recording one (%llu bytes read in %llu ms)",
               when, static_cast<unsigned long long>(now->bytes_read),
               static_cast<unsigned long long>(now->elapsed_us / 1000));
    if (!machine_.in_session() || machine_.quiet()) {
      apply::Actions actions;
      machine_.set_fingerprint(diverge::encode(*now), actions);
      apply_actions(actions);
    }
    return true;
  }
  diverge::Fingerprint before;
  std::vector<std::string> diffs;
  if (base::Status s = diverge::decode(r.fingerprint, before); !s.is_ok()) {
    // The store is on a USB stick: damage there must not pass for "unchanged".
    diffs.push_back("the stored fingerprint is unreadable (" + s.message() + ")");
  } else {
    diffs = diverge::differences(before, *now);
  }
  LOG_INFO("fingerprint of the disk checked %s: %zu difference(s), %llu bytes read in %llu ms", when, diffs.size(),
           static_cast<unsigned long long>(now->bytes_read), static_cast<unsigned long long>(now->elapsed_us / 1000));
  if (diffs.empty()) return true;
  const std::string reason = joined(diffs);
  LOG_ERROR("the clone's disk was changed outside cloned (%s): it is DIVERGED and takes no writes until "
            "clonectl decide",
            reason.c_str());
  record_event("error", "diverged", reason);
  apply::Actions actions;
  machine_.mark_diverged(reason, actions);
  apply_actions(actions);
  return false;
}

// Before the first write of a session: the stored fingerprint must match the
// disk, and stops being valid (durably) before anything is written.
void Daemon::before_session_writes() {
  if (!config_.detect_divergence) return;
  if (!check_divergence("before this session's first write")) return;
  apply::Actions actions;
  machine_.invalidate_fingerprint(actions);
  apply_actions(actions);
}

// After a session, once the disk is quiet: the new baseline.
void Daemon::refresh_fingerprint_if_quiet() {
  if (!config_.detect_divergence || machine_.in_session() || machine_.hello_pending() || stopping_) return;
  if (machine_.fingerprint_valid() || machine_.replica().state == proto::CloneState::diverged) return;
  if (!machine_.quiet() || machine_.disk_failed()) return;
  base::Result<diverge::Fingerprint> now = diverge::take_fingerprint(*device_, keys_.digest_key);
  if (!now) {
    LOG_WARN("cannot fingerprint the clone's disk after the session: %s", now.status().message().c_str());
    return;
  }
  apply::Actions actions;
  machine_.set_fingerprint(diverge::encode(*now), actions);
  apply_actions(actions);
  LOG_DEBUG("fingerprint of the disk recorded after the session (%llu bytes read)",
            static_cast<unsigned long long>(now->bytes_read));
}

// At a clean stop, after the final commit: the state with a fresh fingerprint,
// saved synchronously (the store thread is idle by now).
void Daemon::save_final_fingerprint() {
  if (!config_.detect_divergence || machine_.disk_failed()) return;
  apply::ReplicaState r = machine_.replica();
  if (r.state == proto::CloneState::diverged) return;
  base::Result<diverge::Fingerprint> now = diverge::take_fingerprint(*device_, keys_.digest_key);
  if (!now) return;
  r.fingerprint = diverge::encode(*now);
  r.fingerprint_valid = true;
  store_worker_->commit(r);
}

}  // namespace cloned
