// SPDX-License-Identifier: MIT
// The daemon's hardware health monitoring (docs/HEALTH.md, "Monitoring").
//
// One std::thread polls a hwhealth::HealthSource on an interval and at once
// after an I/O error the disk workers met, judges the snapshot, turns what
// changed (and a periodic summary) into reports, stores them in the state
// store's backlog (its own Store connection, used only by this thread), keeps
// the latest assessment there for `clonectl health`, and deletes a report
// only once the original acknowledged it. Each poll's reports, assessment
// and baseline (what the next poll compares against) go to the store in one
// transaction; the thread starts from the stored baseline, so a restart
// reports only what changed since the last poll before it.
//
// Threads: the public methods may be called from any thread (the loop
// thread in the daemon). Reports to send are collected in an outbox; `wake`
// is called from the monitor thread when it has something (the daemon then
// calls take_outgoing() on the loop thread). SMART commands block for
// seconds: none of this runs on the loop.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "cloned/store/store.h"
#include "hwhealth/collect.h"
#include "hwhealth/report.h"
#include "proto/messages.h"

namespace cloned {

struct HealthSettings {
  std::string target_path;  // the configured target, named in findings
  uint32_t interval_s = 3600;
  uint32_t summary_interval_s = 86400;
  uint32_t backlog_max = 256;
  // A poll the store could not keep (busy past its timeout, a full or failing
  // stick) is tried again this soon, its I/O errors with it.
  uint32_t retry_ms = 30000;
  // A change of the clone's replication state polls at once, at most this
  // often (a link that drops mid-epoch flips it at every reconnect; found in
  // review); a change within the gap is polled when the gap ends.
  uint32_t state_poll_gap_ms = 60000;
};

// An I/O error the disk workers met: it becomes a critical finding.
struct IoErrorEvent {
  std::string op;  // "write", "write zeroes", "discard", "flush", "read"
  int err = 0;     // errno
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
  std::string message;
};

struct HealthOutgoing {
  uint64_t id = 0;
  std::shared_ptr<const base::Bytes> report;  // hwhealth::encode_report
};

// The clone's replication state as the monitor tells it (invariant 8): an
// inconsistent or Diverged clone is a lasting finding of every poll while it
// lasts, so that the reports and `clonectl health` say so until it ends.
struct ReplicationNote {
  proto::CloneState state = proto::CloneState::consistent;
  std::string reason;  // the replica's state_reason
  bool operator==(const ReplicationNote&) const = default;
};

inline constexpr size_t kIoErrorsPerPollMax = 16;  // more are counted in one finding
inline constexpr uint64_t kIoPollGapMs = 1000;     // I/O-triggered polls at most this often

class HealthMonitor {
 public:
  // `replication`: the clone's state when the monitor starts (its first
  // poll runs at once).
  HealthMonitor(HealthSettings settings, std::unique_ptr<store::Store> store,
                std::unique_ptr<hwhealth::HealthSource> source, std::function<void()> wake,
                ReplicationNote replication = {});
  ~HealthMonitor();  // stops and joins
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  void io_error(IoErrorEvent event);
  // The machine stopped taking writes after the disk failed (apply's
  // DiskFailed): every poll of this process from now on holds the lasting
  // critical finding cloned.disk_failed, so that `clonectl health` and the
  // reports say so until a restart (the I/O error itself is an event).
  void disk_failed(std::string why);
  // The clone's replication state changed: a change of state polls at once,
  // at most every state_poll_gap_ms (a new reason alone is told by the next
  // poll).
  void replication(ReplicationNote note);
  // Poll at once (after a resume from sleep: the hardware may have changed).
  void poll_now();
  void acked(uint64_t id);
  // A peer is ready for reports: every report in the backlog goes to the outbox.
  void want_backlog();
  std::vector<HealthOutgoing> take_outgoing();

  uint64_t polls() const;  // completed polls, for tests

 private:
  struct Work {
    std::vector<uint64_t> acks;
    std::vector<IoErrorEvent> io_errors;
    uint64_t io_errors_dropped = 0;
    bool backlog = false;
    bool poll_now = false;
    std::string disk_failed_why;  // non-empty once the machine stopped writing
    ReplicationNote replication;  // kept: it lasts
    bool state_poll = false;      // the replication state changed: poll (within state_poll_gap_ms)
    // Kept up to kIoErrorsPerPollMax; more are counted in one finding.
    void add_io_error(IoErrorEvent e) {
      if (io_errors.size() < kIoErrorsPerPollMax)
        io_errors.push_back(std::move(e));
      else
        ++io_errors_dropped;
    }
  };
  void run();
  bool poll(const Work& work);  // false: nothing of it was kept
  void requeue_io_errors(Work& work);
  void restore_baseline();
  // The daemon's own findings for this poll: its I/O errors (events), once
  // the disk failed the lasting cloned.disk_failed, and while the clone is
  // no bootable copy the lasting cloned.inconsistent or cloned.diverged.
  std::vector<hwhealth::Finding> own_findings(const Work& work) const;
  void post_backlog(uint64_t after_id);
  void post(uint64_t id, base::Bytes bytes);

  const HealthSettings settings_;
  std::unique_ptr<store::Store> store_;  // this thread's connection
  hwhealth::Collector collector_;
  std::function<void()> wake_;
  int64_t last_summary_unix_ms_ = 0;
  // The backlog goes out kOutboxMax reports at a time: the next page (after
  // this id; 0: none) once the peer has acked as many as the last page held.
  uint64_t backlog_next_after_id_ = 0;
  size_t backlog_page_acks_owed_ = 0;
  uint64_t state_poll_not_before_ms_ = 0;  // state-triggered polls at most every state_poll_gap_ms
  uint64_t io_poll_not_before_ms_ = 0;  // I/O-triggered polls at most every kIoPollGapMs; retry_ms after a failed one

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  Work pending_;
  bool stopping_ = false;
  std::vector<HealthOutgoing> outbox_;
  uint64_t polls_ = 0;
  std::thread thread_;
};

}  // namespace cloned
