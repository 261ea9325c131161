// SPDX-License-Identifier: MIT
// What the daemon tells: systemd's one-line status, and the control socket's
// commands (the live status, the owner's decision for a Diverged clone).
// Loop thread only.
#include <unistd.h>

#include "base/log.h"
#include "base/units.h"
#include "cloned/apply/decision.h"
#include "cloned/daemon/daemon.h"
#include "cloned/daemon/status.h"

namespace cloned {

// One line for systemctl status: the state, the position, the lag, the link.
std::string Daemon::status_line() const {
  const apply::Position p = machine_.durable();
  const uint64_t log_end = std::max(stats_.original_log_end, machine_.received_seq());
  std::string line = std::string(proto::clone_state_name(machine_.replica().state)) + " at record " +
                     std::to_string(p.seq) + ", " + std::to_string(log_end > p.seq ? log_end - p.seq : 0) +
                     " behind; " + (machine_.in_session() ? "connected to " + stats_.peer : "waiting for the original");
  if (maintenance_.progress().active()) line += "; " + maintenance_.progress().line();
  if (const apply::LogMark* m = machine_.last_mark()) line += "; mark " + m->name;
  if (machine_.disk_failed()) line = "DISK FAILED; " + line;
  return line;
}

void Daemon::publish_status() {
  last_status_ms_ = now_ms();
  notifier_.status(status_line());
}

// The commands clonectl can send on the control socket (control.h): one entry each.
void Daemon::add_control_commands() {
  control_->add_command("status", "the live status as a TOML document", [this](const std::string& args, uint64_t) {
    if (!args.empty()) return ControlReply::error("status takes no arguments");
    return ControlReply{true, encode_live_status(live_status())};
  });
  control_->add_command(
      "decide", "decide discard-clone-changes|keep-diverged WHO: the decision for a Diverged clone",
      [this](const std::string& args, uint64_t request) {
        const size_t space = args.find(' ');
        apply::Decision d;
        if (!apply::parse_decision(args.substr(0, space), d))
          return ControlReply::error("decide takes discard-clone-changes or keep-diverged");
        const std::string who = space == std::string::npos ? "?" : args.substr(space + 1);
        apply::Actions actions;
        base::Status s = machine_.apply_decision(d, who, base::unix_ms(), actions);
        if (!s.is_ok()) return ControlReply::error(s.message());
        apply_actions(actions);
        const std::string& recorded = machine_.replica().decision;
        LOG_NOTICE("decision taken: %s", recorded.c_str());
        record_event("notice", "decision", recorded);
        publish_status();
        // Answered once a commit holds it (answer_decisions), so that
        // "recorded" survives a power cut.
        decision_replies_.push_back({request, machine_.state_snapshot(), "recorded: " + recorded + "\n"});
        return ControlReply::later(
            "the decision is taken but the state store did not hold it within " +
            std::to_string(kControlLaterMs / 1000) +
            " s (see the journal: journalctl -u cloned); the daemon keeps trying to record it. Check "
            "with clonectl status before deciding again.");
      });
}

void Daemon::answer_decisions() {
  std::erase_if(decision_replies_, [this](const DecisionReply& r) {
    if (r.snapshot > machine_.committed_snapshot()) return false;
    control_->answer_later(r.request, ControlReply{true, r.text});
    return true;
  });
}

LiveStatus Daemon::live_status() const {
  const apply::ReplicaState& r = machine_.replica();
  LiveStatus s;
  s.pid = getpid();
  s.updated_unix_ms = base::unix_ms();
  s.state = proto::clone_state_name(r.state);
  s.state_reason = r.state_reason;
  s.disk_failed = machine_.disk_failed();
  s.generation = r.generation;
  s.applied_seq = machine_.durable().seq;
  s.applied_epoch = machine_.durable().epoch;
  s.committed_seq = machine_.committed().seq;
  s.unclean_until_seq = machine_.unclean_until_seq();
  if (const apply::LogMark* m = machine_.last_mark()) {
    s.last_mark = m->name;
    s.last_mark_seq = m->seq;
  }
  // The original's log reaches at least as far as what it has sent.
  s.original_log_end = std::max(stats_.original_log_end, machine_.received_seq());
  s.link = stopped_cleanly_ ? "stopped" : machine_.in_session() ? "connected" : "waiting";
  s.peer = stats_.peer;
  s.session_since_unix_ms = static_cast<int64_t>(stats_.session_since_unix_ms);
  s.sessions = stats_.sessions;
  s.refused = stats_.refused;
  s.bytes_received = stats_.bytes_received;
  s.records_received = stats_.records_received;
  s.held_bytes = machine_.held_bytes();
  s.disk = device_->describe();
  // Empty while the listener is closed: asleep, or a listen after waking
  // waiting for its address (found in review: the configured one was shown).
  if (uv_is_closing(reinterpret_cast<const uv_handle_t*>(&listener_)) == 0)
    s.listen = config_.listen_host + ":" + std::to_string(config_.listen_port);
  if (maintenance_.progress().fresh(now_ms())) s.progress = maintenance_.progress().line();
  if (waker_) waker_->fill_status(s);
  return s;
}

}  // namespace cloned
