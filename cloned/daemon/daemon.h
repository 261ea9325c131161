// SPDX-License-Identifier: MIT
// The daemon's composition: the event loop (libuv), the listener and the
// connections to the original, the apply state machine, the disk workers and
// the store worker, and the parts wired to them: the Waker (sleep and wake),
// the HealthLink (health reports), Maintenance (resync and verify) and the
// DivergenceGuard (Diverged detection). Each part owns its state and sees the
// daemon only through the small host interface it declares (LinkPort,
// WakeHost, HealthHost, MaintenanceHost, DivergenceHost).
//
// Threading: everything here runs on the loop thread except the workers,
// which report back through Completions (woken with a uv_async). The machine
// decides; this class only carries out its actions and feeds it events.
// Only this folder calls uv_ (the loop adapter of conventions.md).
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "blockio/device.h"
#include "cloned/apply/apply.h"
#include "cloned/daemon/clock.h"
#include "cloned/daemon/control.h"
#include "cloned/daemon/divergence.h"
#include "cloned/daemon/handshake_slots.h"
#include "cloned/daemon/health_link.h"
#include "cloned/daemon/link_port.h"
#include "cloned/daemon/maintenance.h"
#include "cloned/daemon/notify.h"
#include "cloned/daemon/sleep_policy.h"
#include "cloned/daemon/stage_worker.h"
#include "cloned/daemon/status.h"
#include "cloned/daemon/wake.h"
#include "cloned/daemon/workers.h"
#include "cloned/store/store.h"
#include "config/config.h"
#include "proto/resync.h"
#include "proto/wake_messages.h"

namespace cloned {

struct Conn;
struct LiveStatus;

// The link's counters, for the live status (clonectl status) and systemd.
struct LinkStats {
  uint64_t sessions = 0;
  uint64_t refused = 0;           // failed handshakes, refusals, protocol errors
  uint64_t bytes_received = 0;    // whole frames of authenticated sessions
  uint64_t records_received = 0;
  uint64_t original_log_end = 0;  // from the original's hello and pings
  std::string peer;               // of the current session, "" when none
  uint64_t session_since_unix_ms = 0;
};

class Daemon final : private LinkPort,
                     private WakeHost,
                     private MaintenanceHost,
                     private HealthHost,
                     private DivergenceHost {
 public:
  // `keys` (guarded memory, config::guard_keys) outlive the daemon: it keeps
  // a reference, never a copy.
  Daemon(const config::CloneConfig& config, const config::DerivedKeys& keys,
         std::unique_ptr<blockio::BlockDevice> device, std::unique_ptr<store::Store> store,
         const apply::ReplicaState& loaded);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Listens and runs until SIGTERM/SIGINT has been handled (the epoch being
  // received is finished and the position committed) or a fatal error.
  // Returns 0 after a clean stop, 1 otherwise.
  int run();

 private:
  // link.cpp: the listener, the handshake, reading, deadlines;
  // link_session.cpp: a connection's messages
  base::Status listen();
  static void on_connection(uv_stream_t* server, int status);
  void accept_one();
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  // An authenticated connection's bytes: its frames to the machine, their
  // writes to the disk workers in batches, urgent completions taken between
  // them (link.cpp).
  void feed_frames(Conn* c, const uv_buf_t* buf, size_t nread);
  void on_handshake_bytes(Conn* c);
  void on_authenticated(Conn* c);
  void on_frame(Conn* c, proto::Frame frame);
  void on_hello(Conn* c, const proto::Hello& hello);
  void on_record_frame(Conn* c, proto::MsgType type, proto::Frame& frame);
  void on_session_frame(Conn* c, proto::MsgType type, proto::Frame& frame);
  void update_reading();
  void check_deadlines(uint64_t now_ms);
  size_t pending_handshakes() const;
  void make_room_for_handshake(const Conn* newcomer);
  void refuse_busy(Conn* c, const std::string& why);
  void send_handshake_bytes(Conn* c, base::Bytes bytes);
  // Authenticated connections whose hello has not been answered yet.
  size_t authenticated_waiting() const;
  // LinkPort (link_session.cpp): for the parts, and the daemon's own use.
  void send_plain(Conn* c, const base::Bytes& plain) override;
  void send_error(Conn* c, proto::ErrorCode code, const std::string& message) override;
  void close_conn(Conn* c, const std::string& why) override;

  // daemon.cpp: the loop, the machine's actions, stopping
  void start_parts();
  void apply_actions(apply::Actions& actions);
  void send_session_actions(Conn* c, apply::Actions& actions);
  void stage_actions(apply::Actions& actions);  // daemon_stage.cpp
  void on_stage_completion(Completion& c, apply::Actions& actions);
  void start_stage();
  void log_stage_retry(unsigned tries_before);
  void drain_completions();
  void handle_completion(Completion& c);
  static constexpr int kDrainRounds = 4;  // takes of the completions in one drain, at most
  void flush_disk(uint64_t gate);  // the machine's flush: answered by an early flush if one covers it
  void ask_early_flush();    // for the barrier the machine will flush next, once
  void on_tick();
  void on_signal(int signum);
  void finish_if_done();
  void stop_loop();
  void record_event(const std::string& level, const std::string& kind, const std::string& message) override;
  // daemon_status.cpp: systemd's status line, the control socket
  void publish_status() override;
  std::string status_line() const;
  LiveStatus live_status() const;
  void add_control_commands();  // the control socket's command table
  void answer_decisions();      // those the store now holds (after each commit)

  // The parts' hosts (daemon_parts.cpp): what each part may see and do.
  SleepInputs sleep_inputs(uint64_t now_ms) const override;
  bool may_sleep() const override;
  bool stopping() const override { return stopping_; }
  bool connections_gone() const override { return conns_.empty(); }
  bool ready_to_sleep() override;
  bool session_ready() const override;
  void send_to_session(const base::Bytes& plain) override;
  void close_session(const std::string& why) override;
  void stop_listening() override;
  bool listen_again() override;
  void checkpoint_store() override;
  void after_resume() override;
  void apply(apply::Actions& actions) override { apply_actions(actions); }
  void keep_frame(apply::RecordId id, proto::Frame frame) override;
  apply::StageRoom stage_room() override;
  std::vector<Conn*> connections() const override { return conns_; }
  bool loop_ending() const override { return stopped_cleanly_ || fatal_; }

  // Construction order matters: the parts hold references to the machine,
  // the device and the workers declared before them.
  config::CloneConfig config_;
  const config::DerivedKeys& keys_;  // in guarded memory (config::GuardedKeys), owned by main
  std::unique_ptr<blockio::BlockDevice> device_;
  std::unique_ptr<store::Store> store_;
  apply::Machine machine_;
  Completions completions_;
  std::unique_ptr<DiskWorkers> disk_workers_;
  std::unique_ptr<StoreWorker> store_worker_;
  std::unique_ptr<StageWorker> stage_worker_;
  HealthLink health_;
  Maintenance maintenance_;
  DivergenceGuard divergence_;

  uv_loop_t loop_{};
  uv_tcp_t listener_{};
  uv_async_t wakeup_{};
  uv_timer_t tick_{};
  uv_signal_t sigterm_{};
  uv_signal_t sigint_{};
  bool handles_open_ = false;
  std::unique_ptr<ControlServer> control_;
  // `clonectl decide` is answered once the store holds the decision: the
  // request, the commit snapshot that holds it (Machine::state_snapshot).
  struct DecisionReply {
    uint64_t request = 0;
    uint64_t snapshot = 0;
    std::string text;
  };
  std::vector<DecisionReply> decision_replies_;

  std::vector<Conn*> conns_;          // open connections (owned; freed in close callbacks)
  Conn* session_ = nullptr;           // the connection whose session is open or pending
  std::unordered_map<apply::RecordId, proto::Frame> frames_;  // accepted writes, not yet submitted
  // The early flush (DiskWorkers::flush_when_drained) of the barrier the
  // machine flushes next: asked for once per barrier; `done` once it ran
  // for that barrier, until the machine's flush of it takes the result,
  // which it may only if nothing was written since the ask (the workers
  // may have begun the flush just before a later write reached them). A
  // failed one is kept for the next flush whatever it is for: a failed
  // fdatasync need not fail again when repeated.
  struct EarlyFlush {
    uint64_t asked_gate = 0;  // the machine's gate of the barrier flush it stands for
    bool written_since_ask = false;
    bool done = false;
    base::Status failure;
  } early_flush_;
  LinkStats stats_;
  // Notices about peers dropped before they authenticated: at most 5 per
  // 10 s, then counted (issue 14, finding 3: a flood must not push a real
  // disk error out of journald's rate limit).
  LogRateLimit stranger_log_{5, 10'000};
  HelloRateLimit hello_limit_{kHelloBurst, kHellosPerSecond, kHelloHostsMax};
  Notifier notifier_;
  uint64_t next_conn_id_ = 1;

  bool stopping_ = false;
  uint64_t stop_deadline_ms_ = 0;
  bool stopped_cleanly_ = false;
  bool fatal_ = false;
  uint64_t last_status_ms_ = 0;
  proto::CloneState last_logged_state_ = proto::CloneState::fresh;
  bool listener_closed_ = false;  // the listener's close callback ran (it may be set up again)
  bool relisten_failing_ = false;  // listen_again failed: said once, tried each tick until it works
  uint64_t last_sleep_fingerprint_ms_ = 0;  // ready_to_sleep's last try of a fingerprint
  std::unique_ptr<Waker> waker_;  // from run(); null before
};

}  // namespace cloned
