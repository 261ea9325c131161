// SPDX-License-Identifier: MIT
// The daemon's composition: the event loop (libuv), the link to the original,
// the apply state machine, the disk workers and the store worker.
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
#include "cloned/daemon/control.h"
#include "cloned/daemon/health_monitor.h"
#include "cloned/daemon/notify.h"
#include "cloned/daemon/sleep_policy.h"
#include "cloned/daemon/status.h"
#include "proto/wake_messages.h"
#include "cloned/daemon/workers.h"
#include "proto/resync.h"
#include "cloned/store/store.h"
#include "config/config.h"

namespace wol {
struct LinkEvent;
}

namespace cloned {

struct Conn;
struct LiveStatus;
struct WakeRuntime;

// Counters for status and tests.
struct LinkStats {
  uint64_t sessions = 0;
  uint64_t refused = 0;           // failed handshakes, refusals, protocol errors
  uint64_t bytes_received = 0;    // whole frames of authenticated sessions
  uint64_t records_received = 0;
  uint64_t original_log_end = 0;  // from the original's hello and pings
  std::string peer;               // of the current session, "" when none
  uint64_t session_since_unix_ms = 0;
};

class Daemon {
 public:
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
  friend struct Conn;
  // link.cpp
  base::Status listen();
  static void on_connection(uv_stream_t* server, int status);
  void accept_one();
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  void on_handshake_bytes(Conn* c);
  void on_authenticated(Conn* c);
  void on_frame(Conn* c, proto::Frame frame);
  void on_session_frame(Conn* c, proto::MsgType type, proto::Frame& frame);
  void send_plain(Conn* c, const base::Bytes& plain);
  void send_error(Conn* c, proto::ErrorCode code, const std::string& message);
  void close_conn(Conn* c, const std::string& why);
  void update_reading();
  void check_deadlines(uint64_t now_ms);
  size_t pending_handshakes() const;

  // maintenance.cpp: resync, verify and their progress
  void on_maintenance_frame(Conn* c, proto::MsgType type, proto::Frame& frame);
  void on_digest_done(Completion& completion);
  void send_resync_actions(Conn* c, apply::Actions& actions);
  void note_progress(const proto::Progress& progress);
  std::string progress_text() const;

  // divergence.cpp
  bool check_divergence(const char* when);
  void before_session_writes();
  void refresh_fingerprint_if_quiet();
  void save_final_fingerprint();
  // health_link.cpp
  void start_health();
  void on_health_hello(Conn* c, const proto::Hello& hello);
  void on_health_frame(Conn* c, proto::MsgType type, proto::Frame& frame);
  void on_health_ack(Conn* c, proto::Frame& frame);
  void health_peer_ready(Conn* c);
  void pump_health();
  void send_health(Conn* c);
  void health_io_error(const Completion& c);

  // daemon.cpp
  void apply_actions(apply::Actions& actions);
  void drain_completions();
  void on_tick();
  void on_signal(int signum);
  void publish_status();
  std::string status_line() const;
  LiveStatus live_status() const;
  void add_control_commands();  // the control socket's command table
  void record_event(const std::string& level, const std::string& kind, const std::string& message);
  void finish_if_done();
  void stop_loop();

  // wake.cpp (docs/WAKE.md)
  void wake_start();
  void wake_setup_power();
  void wake_setup_logind();
  void wake_logind_reschedule();
  void wake_arm(const char* when);
  proto::WakeInfo wake_info() const;
  void wake_announce();
  void wake_on_link_event(const wol::LinkEvent& e);
  void wake_on_sleep_request();
  SleepInputs wake_inputs(uint64_t now) const;
  void wake_tick(uint64_t now);
  void wake_on_checkpoint(const base::Status& s);
  void wake_enter_sleep();
  void wake_on_resumed(const base::Status& result);
  void wake_relisten();
  void wake_close_handles();
  void wake_fill_status(LiveStatus& s) const;

  config::CloneConfig config_;
  config::DerivedKeys keys_;
  std::unique_ptr<blockio::BlockDevice> device_;
  std::unique_ptr<store::Store> store_;
  apply::Machine machine_;
  Completions completions_;
  std::unique_ptr<DiskWorkers> disk_workers_;
  std::unique_ptr<StoreWorker> store_worker_;
  std::unique_ptr<HealthMonitor> health_;  // null when it could not start

  uv_loop_t loop_{};
  uv_tcp_t listener_{};
  uv_async_t wakeup_{};
  uv_timer_t tick_{};
  uv_signal_t sigterm_{};
  uv_signal_t sigint_{};
  bool handles_open_ = false;
  std::unique_ptr<ControlServer> control_;

  std::vector<Conn*> conns_;          // open connections (owned; freed in close callbacks)
  Conn* session_ = nullptr;           // the connection whose session is open or pending
  std::unordered_map<apply::RecordId, proto::Frame> frames_;  // accepted writes, not yet submitted
  LinkStats stats_;
  Notifier notifier_;
  uint64_t next_conn_id_ = 1;
  uint64_t session_serial_ = 0;       // counts sessions: digest replies go to the one that asked
  uint32_t digests_outstanding_ = 0;  // of the current session
  uint64_t last_fingerprint_us_ = 0, last_fingerprint_bytes_ = 0;
  struct MaintenanceProgress {
    bool active = false;
    proto::ProgressKind kind = proto::ProgressKind::resync;
    uint64_t done_bytes = 0, total_bytes = 0;
    uint64_t first_ms = 0, first_done = 0;  // for the rate
    uint64_t updated_ms = 0, last_log_ms = 0;
    double rate_bytes_per_s = 0;
  } progress_;

  bool stopping_ = false;
  uint64_t stop_deadline_ms_ = 0;
  bool stopped_cleanly_ = false;
  bool fatal_ = false;
  uint64_t last_status_ms_ = 0;
  proto::CloneState last_logged_state_ = proto::CloneState::fresh;
  std::unique_ptr<WakeRuntime> wake_;
};

// Milliseconds on the monotonic clock.
uint64_t now_ms();

}  // namespace cloned
