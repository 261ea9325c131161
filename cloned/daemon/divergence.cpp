// SPDX-License-Identifier: MIT
// Diverged detection in the daemon (divergence.h, docs/DIVERGED.md).
#include "cloned/daemon/divergence.h"

#include <string>

#include "base/log.h"
#include "cloned/diverge/fingerprint.h"

namespace cloned {

namespace {

std::string joined(const std::vector<std::string>& sentences) {
  std::string out;
  for (const std::string& s : sentences) out += (out.empty() ? "" : "; ") + s;
  return out;
}

}  // namespace

DivergenceGuard::DivergenceGuard(bool enabled, DivergenceHost& host, blockio::BlockDevice& device,
                                 const digest::DigestKey& key, apply::Machine& machine, StoreWorker& store)
    : enabled_(enabled), host_(host), device_(device), key_(key), machine_(machine), store_(store) {}

base::Result<diverge::Fingerprint> DivergenceGuard::take_durable() {
  if (base::Status s = device_.flush(); !s.is_ok()) return s.with_context("cannot flush the disk first");
  return diverge::take_fingerprint(device_, key_);
}

DivergenceGuard::Check DivergenceGuard::check(const char* when) {
  if (!enabled_) return Check::go_on;
  const apply::ReplicaState& r = machine_.replica();
  if (r.state == proto::CloneState::diverged) return Check::diverged;
  // A staged generation being copied onto the disk: it is changing by our
  // own hand, and is fingerprinted once the copy is done.
  if (machine_.applying_stage()) return Check::go_on;
  if (!r.fingerprint_valid) {
    // Nothing to compare with: a baseline, if the disk is quiet.
    if (machine_.in_session() && !machine_.quiet()) return Check::go_on;
    base::Result<diverge::Fingerprint> now = take_durable();
    if (!now) {
      LOG_ERROR("cannot fingerprint the clone's disk %s: %s", when, now.status().message().c_str());
      return Check::go_on;  // a read error is the disk workers' and health's business; nothing to compare
    }
    LOG_NOTICE(
        "no valid fingerprint of the disk to compare %s (first start, or the last run stopped while "
        "writing); recording one (%llu bytes read in %llu ms)",
        when, static_cast<unsigned long long>(now->bytes_read),
        static_cast<unsigned long long>(now->elapsed_us / 1000));
    apply::Actions actions;
    machine_.set_fingerprint(diverge::encode(*now), actions);
    host_.apply(actions);
    return Check::go_on;
  }
  base::Result<diverge::Fingerprint> now = diverge::take_fingerprint(device_, key_);
  if (!now) {
    LOG_ERROR(
        "cannot fingerprint the clone's disk %s: %s; no writes until it can be compared with the one "
        "recorded",
        when, now.status().message().c_str());
    return Check::unreadable;
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
  if (diffs.empty()) return Check::go_on;
  const std::string reason = joined(diffs);
  LOG_ERROR(
      "the clone's disk was changed outside cloned (%s): it is DIVERGED and takes no writes until "
      "clonectl decide",
      reason.c_str());
  host_.record_event("error", "diverged", reason);
  apply::Actions actions;
  machine_.mark_diverged(reason, actions);
  host_.apply(actions);
  return Check::diverged;
}

void DivergenceGuard::invalidate() {
  apply::Actions actions;
  machine_.invalidate_fingerprint(actions);
  host_.apply(actions);
}

void DivergenceGuard::refresh_if_quiet(bool stopping) {
  if (!enabled_ || machine_.in_session() || machine_.hello_pending() || stopping) return;
  if (machine_.fingerprint_valid() || machine_.replica().state == proto::CloneState::diverged) return;
  if (machine_.applying_stage()) return;
  if (!machine_.quiet() || machine_.disk_failed()) return;
  base::Result<diverge::Fingerprint> now = take_durable();
  if (!now) {
    LOG_WARN("cannot fingerprint the clone's disk after the session: %s", now.status().message().c_str());
    return;
  }
  apply::Actions actions;
  machine_.set_fingerprint(diverge::encode(*now), actions);
  host_.apply(actions);
  LOG_DEBUG("fingerprint of the disk recorded after the session (%llu bytes read)",
            static_cast<unsigned long long>(now->bytes_read));
}

bool DivergenceGuard::baseline_kept() const {
  return !enabled_ || machine_.fingerprint_valid() || machine_.replica().state == proto::CloneState::diverged ||
         machine_.applying_stage() || machine_.disk_failed();
}

void DivergenceGuard::save_final() {
  // A staged generation part-way onto the disk (a retry waiting, or a copy
  // that has not begun): a fingerprint of it would be of neither generation,
  // and the next start's copy would make it a false Diverged. The store says
  // "no valid fingerprint" since the end (stage_end_reached); one is taken
  // once the copy is done (refresh_if_quiet).
  if (!enabled_ || machine_.disk_failed() || machine_.applying_stage()) return;
  apply::ReplicaState r = machine_.replica();
  if (r.state == proto::CloneState::diverged) return;
  base::Result<diverge::Fingerprint> now = take_durable();
  if (!now) return;
  r.fingerprint = diverge::encode(*now);
  r.fingerprint_valid = true;
  store_.commit(r);
}

}  // namespace cloned
