// SPDX-License-Identifier: MIT
// Resync and verify on the link (docs/PROTOCOL.md, "Resync and verify"): the
// part of a session that is not the log. Digest requests go to the disk
// workers (at most a few outstanding, and only the asking session gets the
// reply), resync extents and marks to the apply machine, a verify's findings
// to the state store, the original's progress reports to the log and the
// status.
//
// Ownership: the Daemon owns this, the machine, the workers and the
// connections, and outlives it. Loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "blockio/device.h"
#include "cloned/apply/apply.h"
#include "cloned/daemon/link_port.h"
#include "cloned/daemon/progress.h"
#include "cloned/daemon/workers.h"
#include "proto/frame.h"

namespace cloned {

// What a maintenance session needs besides the link.
class MaintenanceHost {
 public:
  // Carries out what the machine decided (Daemon::apply_actions).
  virtual void apply(apply::Actions& actions) = 0;
  // Keeps an accepted resync extent's frame until the machine submits it.
  virtual void keep_frame(apply::RecordId id, proto::Frame frame) = 0;
  // What the stick can take for a stage now (a resync_plan is judged on it).
  virtual apply::StageRoom stage_room() = 0;

 protected:
  ~MaintenanceHost() = default;
};

class Maintenance {
 public:
  Maintenance(LinkPort& link, MaintenanceHost& host, apply::Machine& machine, const blockio::Geometry& geometry,
              DiskWorkers& disk, StoreWorker& store);

  // A new session opened: replies to an older one's digest requests are dropped.
  void session_started();
  // The session closed: its digest scans not yet started are dropped unread.
  void session_ended();
  // A resync or verify message of the session on `c` (refused before the
  // machine answered its hello).
  void on_frame(Conn* c, proto::MsgType type, proto::Frame& frame);
  // A digest scan finished; `session` is the current session's connection or null.
  void on_digest_done(Conn* session, Completion& done);
  // The machine's resync answers (state, mark acks, done) to the session.
  void send_actions(Conn* c, apply::Actions& actions);

  const MaintenanceProgress& progress() const { return progress_; }

 private:
  void on_session_frame(Conn* c, proto::MsgType type, proto::Frame& frame);  // once in session
  base::Status on_digest_request(Conn* c, const proto::DigestRequest& q, bool& closed);
  base::Status on_out_of_sync(uint64_t offset_bytes, uint64_t length_bytes);
  void on_progress(const proto::Progress& p);

  LinkPort& link_;
  MaintenanceHost& host_;
  apply::Machine& machine_;
  const blockio::Geometry geometry_;
  DiskWorkers& disk_;
  StoreWorker& store_;
  uint64_t session_serial_ = 0;       // counts sessions: digest replies go to the one that asked
  uint32_t digests_outstanding_ = 0;  // of the current session
  MaintenanceProgress progress_;
  // Out-of-sync ranges on their way to the store: one store job takes every
  // range that came meanwhile, in one transaction (a verify can report
  // thousands, and each their own sync of the stick would delay the
  // machine's commits behind them); at most kMaxOutOfSyncRanges wait, as
  // many as the store keeps.
  struct OutOfSyncQueue {
    std::mutex mutex;
    std::vector<store::OutOfSyncRange> ranges;
    bool job_queued = false;
    uint64_t dropped = 0;
  };
  std::shared_ptr<OutOfSyncQueue> out_of_sync_ = std::make_shared<OutOfSyncQueue>();
};

}  // namespace cloned
