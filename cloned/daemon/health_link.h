// SPDX-License-Identifier: MIT
// Health reports over the link (docs/PROTOCOL.md, "Health reports"): the
// HealthMonitor's start and its I/O error hook, health-only sessions, and
// sending the backlog to every ready peer with a bounded window of
// unacknowledged reports.
//
// Ownership: the Daemon owns this and the connections, and outlives it; the
// HealthLink owns the monitor (its thread is joined in the destructor). Loop
// thread only, except the monitor's `wake`, called on its own thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <vector>

#include "blockio/device.h"
#include "cloned/apply/apply.h"
#include "cloned/daemon/health_monitor.h"
#include "cloned/daemon/link_port.h"
#include "cloned/daemon/workers.h"
#include "config/config.h"
#include "proto/frame.h"

namespace cloned {

// One connection's share of the reports (a member of Conn).
struct HealthPeer {
  bool ready = false;                // the peer got the clone's hello
  bool only = false;                 // a `clone-origin health` session: no records
  std::deque<HealthOutgoing> queue;  // not sent yet
  std::set<uint64_t> unacked;        // sent, not acknowledged
};

// What the health link needs besides LinkPort.
class HealthHost {
 public:
  virtual std::vector<Conn*> connections() const = 0;  // a copy: sending may close some
  virtual bool loop_ending() const = 0;                // stopped or failed: send nothing more

 protected:
  ~HealthHost() = default;
};

class HealthLink {
 public:
  HealthLink(LinkPort& link, HealthHost& host, const apply::Machine& machine, const blockio::Geometry& geometry);
  ~HealthLink();
  HealthLink(const HealthLink&) = delete;
  HealthLink& operator=(const HealthLink&) = delete;

  // Opens the monitor's own store connection and starts it; on failure
  // monitoring is off (logged, and recorded through the link). `wake` is
  // called on the monitor's thread when it has reports (then call pump()).
  void start(const config::CloneConfig& config, std::function<void()> wake);
  void io_error(const Completion& c);        // a disk worker's failure
  void disk_failed(const std::string& why);  // the machine stopped taking writes: lasting, until a restart
  void poll_now();                           // after a resume: the hardware may have changed
  // The machine's replication state may have changed (after its actions):
  // told to the monitor when it did (invariant 8: reports say so).
  void note_state();
  void stop();  // joins the monitor's thread; no more reports

  // A health-only hello: accepted if it is from this pair's original, else
  // refused (the connection is closed). The daemon then opens the session
  // and greet() answers with the clone's hello.
  bool accept_hello(Conn* c, const proto::Hello& hello);
  void greet(Conn* c);
  void on_frame(Conn* c, proto::MsgType type, proto::Frame& frame);  // of a health-only session
  void on_ack(Conn* c, proto::Frame& frame);
  void peer_ready(Conn* c);  // c got the clone's hello: it gets the backlog
  void pump();               // the monitor posted reports

 private:
  void send(Conn* c);

  LinkPort& link_;
  HealthHost& host_;
  const apply::Machine& machine_;
  const blockio::Geometry geometry_;
  std::unique_ptr<HealthMonitor> monitor_;  // null when it could not start
  ReplicationNote told_;                    // what the monitor was last told
};

}  // namespace cloned
