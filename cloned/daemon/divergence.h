// SPDX-License-Identifier: MIT
// Diverged detection in the daemon (docs/DIVERGED.md): the disk's
// fingerprint is recorded when the disk is quiet (after a session, at a clean
// stop) and compared at startup and before the first write of each session.
// Any difference makes the clone Diverged: no writes until `clonectl decide`.
//
// The stored fingerprint is valid only while nothing of ours may have written
// since it was taken: it is invalidated, durably, before a session's first
// write (Machine::invalidate_fingerprint: at a log session's start, here; in
// a maintenance session by the machine, only before it writes, so that a
// session that stages or verifies leaves it valid). After a crash mid-session there is
// no valid fingerprint to compare with, and the start takes a new baseline
// (logged): a change made between that crash and the restart is not detected.
//
// Ownership: the Daemon owns this, the device, the machine and the store
// worker, and outlives it. Loop thread only (the fingerprint is read on it:
// a few MiB, at startup, before a session and once after one).
#pragma once

#include <string>

#include "blockio/device.h"
#include "cloned/apply/apply.h"
#include "cloned/daemon/workers.h"
#include "cloned/diverge/fingerprint.h"
#include "digest/digest.h"

namespace cloned {

class DivergenceHost {
 public:
  virtual void apply(apply::Actions& actions) = 0;  // carries out what the machine decided
  virtual void record_event(const std::string& level, const std::string& kind, const std::string& message) = 0;

 protected:
  ~DivergenceHost() = default;
};

class DivergenceGuard {
 public:
  // enabled: [apply] detect_divergence; when false every call does nothing
  // but invalidate (a fingerprint of an earlier run must not outlive writes
  // made while detection was off, or turning it on again finds our own
  // writes and calls them a change outside cloned).
  // `key` outlives the guard: kept by reference, never copied.
  DivergenceGuard(bool enabled, DivergenceHost& host, blockio::BlockDevice& device, const digest::DigestKey& key,
                  apply::Machine& machine, StoreWorker& store);
  DivergenceGuard(bool, DivergenceHost&, blockio::BlockDevice&, digest::DigestKey&&, apply::Machine&,
                  StoreWorker&) = delete;

  enum class Check {
    go_on,       // unchanged, or nothing to compare with (a baseline is recorded)
    diverged,    // (now) Diverged: no writes
    unreadable,  // the disk could not be read, and a valid fingerprint waits
                 // to be compared: no writes yet (they would make it stale,
                 // and a change outside cloned before them would go unseen)
  };
  // Compares the disk with the stored fingerprint; marks the clone Diverged
  // on a difference.
  Check check(const char* when);
  // A session opened: the stored fingerprint stops being valid (durably)
  // before anything is written.
  void invalidate();
  // After a session, once the disk is quiet: the new baseline. A baseline is
  // recorded only after a flush: writes still in the disk's cache would be
  // in it, and a power cut that lost them would then read as a change.
  void refresh_if_quiet(bool stopping);
  // The store holds what a start needs to compare the disk with (a valid
  // fingerprint), or nothing is to be compared (detection off, Diverged, a
  // staged copy, a failed disk). Before sleeping (the power may go while
  // asleep, and the next start must find the baseline).
  bool baseline_kept() const;
  // At a clean stop, after the final commit: the state with a fresh
  // fingerprint, queued on the store worker, which completes it before it
  // joins (queued jobs always complete; the daemon's destructor joins it).
  void save_final();

 private:
  const bool enabled_;
  DivergenceHost& host_;
  blockio::BlockDevice& device_;
  const digest::DigestKey& key_;
  apply::Machine& machine_;
  StoreWorker& store_;

  // The disk flushed, then fingerprinted: what a baseline may record.
  base::Result<diverge::Fingerprint> take_durable();
};

}  // namespace cloned
