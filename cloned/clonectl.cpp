// SPDX-License-Identifier: MIT
// clonectl: pairing and questions about the clone.
//
//   clonectl pair --clone-dir DIR --origin-dir DIR --target PATH [--listen HOST:PORT]
//   clonectl status --config FILE [--json]
//   clonectl events --config FILE [--json] [--limit N]
//   clonectl decide --config FILE discard-clone-changes|keep-diverged
//   clonectl health --config FILE [--json]     (clonectl_health.cpp)
//
// status asks the running daemon over its control socket (runtime_dir/control.sock)
// and reads the state store read-only; when the daemon is not running it says
// so and answers from the store alone.
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/bytes.h"
#include "base/cli.h"
#include "base/units.h"
#include "cloned/apply/decision.h"
#include "cloned/daemon/control.h"
#include "cloned/daemon/control_client.h"
#include "cloned/daemon/status.h"
#include "cloned/store/store.h"
#include "config/config.h"

int clonectl_health(const base::cli::Args& args);  // clonectl_health.cpp

namespace {

// How long decide waits for a daemon that is starting (holds the state lock
// but does not listen yet): 75 rounds of 200 ms.
constexpr int kDecideWaitRounds = 75;

// The command line (base/cli.h). Each command reads the clone's configuration, except pair, which writes it.
const base::cli::Option kConfig = {"--config", "FILE", true};
const base::cli::Program kProgram = {
    .name = "clonectl",
    .about = "Pairs a clone with its original and answers questions about the clone.\n",
    .commands =
        {
            {"pair",
             {{"--clone-dir", "DIR", true},
              {"--origin-dir", "DIR", true},
              {"--target", "PATH", true},
              {"--listen", "HOST:PORT"}},
             "",
             "write a new pairing: the clone's cloned.toml in --clone-dir and the\n"
             "original's origin.toml in --origin-dir, with a new shared secret; PATH is\n"
             "the clone's disk, whose identity is recorded\n"},
            {"status",
             {kConfig, {"--json", ""}},
             "",
             "the clone's state, the daemon and the link, the lag, resync and verify\n"
             "progress, waking; asks the running daemon, and answers from the state\n"
             "store alone when it is stopped\n"},
            {"events",
             {kConfig, {"--json", ""}, {"--limit", "N"}},
             "",
             "the most recent events in the state store (N from 1 to 10000, default 50)\n"},
            {"decide",
             {kConfig},
             "discard-clone-changes|keep-diverged",
             "the owner's decision for a Diverged clone: take the original's data again\n"
             "(a resync follows) or keep the clone's changes\n"},
            {"health",
             {kConfig, {"--json", ""}},
             "",
             "the latest hardware health assessment and how many reports wait for the\n"
             "original; from the state store, whether or not the daemon runs\n"},
        },
};

using Json = nlohmann::ordered_json;  // members keep the order they are added in

// Compact JSON. Reasons and messages may hold any bytes: invalid UTF-8 becomes U+FFFD, never an exception.
std::string dump(const Json& value) { return value.dump(-1, ' ', false, Json::error_handler_t::replace); }

// A bad option value, in the parser's style; returns 2.
int usage_error(const base::cli::Args& o, const std::string& why) {
  return base::cli::usage_error(kProgram, o.command, why);
}

int cmd_pair(const base::cli::Args& o) {
  config::PairRequest r;
  r.clone_dir = o.get("--clone-dir");
  r.origin_dir = o.get("--origin-dir");
  r.target_path = o.get("--target");
  if (o.has("--listen")) r.listen = o.get("--listen");
  if (base::Status s = config::write_pair(r); !s.is_ok()) {
    std::fprintf(stderr, "clonectl: %s\n", s.message().c_str());
    return 1;
  }
  std::printf("paired: the clone's configuration is %s/cloned.toml, the original's %s/origin.toml\n",
              r.clone_dir.c_str(), r.origin_dir.c_str());
  std::printf("keep the two pair.secret files private: they let a machine act as either side.\n");
  return 0;
}

std::string clock_time(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  time_t t = static_cast<time_t>(unix_ms / 1000);
  struct tm tm_local;
  localtime_r(&t, &tm_local);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm_local);
  return buf;
}

struct Report {
  apply::ReplicaState stored;
  bool running = false;
  cloned::LiveStatus live;
  uint64_t out_of_sync = 0;  // ranges a verify found different, not yet repaired
  std::vector<store::OutOfSyncRange> out_of_sync_first;
  uint64_t disk_bytes = 0;       // the target's size, from the config
  uint64_t stage_max_bytes = 0;  // [resync] stage_max_bytes
};

// "bootable: generation 1 (staging 2: 37%, 1.2 GiB of 8 GiB on the stick)"
std::string staging_line(const Report& r) {
  const apply::ReplicaState& s = r.stored;
  const uint64_t percent = r.disk_bytes == 0 ? 0 : s.resync.cursor_bytes * 100 / r.disk_bytes;
  // A staged repair of ranges a verify found: the disk is not a faithful copy meanwhile.
  return std::string(r.out_of_sync > 0 ? "" : "bootable: ") + "generation " + std::to_string(s.generation) +
         " (staging " + std::to_string(s.resync.generation) + ": " + std::to_string(percent) + "%, " +
         base::format_bytes(s.stage.durable_bytes) + " of " + base::format_bytes(r.stage_max_bytes) + " on the stick)";
}

// Who may answer on the control socket: root, or the owner of the state directory.
std::vector<uid_t> daemon_uids(const config::CloneConfig& cfg) {
  std::vector<uid_t> uids = {0};
  struct stat st {};
  if (::stat(cfg.state_dir.c_str(), &st) == 0 && st.st_uid != 0) uids.push_back(st.st_uid);
  return uids;
}

// Asks the daemon for its live status. Not running (no socket, nobody
// listening) is not an error: `running` stays false. Anything else is.
base::Status ask_daemon(const config::CloneConfig& cfg, Report& r) {
  const std::string path = cfg.runtime_dir + "/" + cloned::kControlSocketName;
  base::Result<std::string> answer = cloned::control_request(path, "status", daemon_uids(cfg));
  if (!answer) {
    const int code = answer.status().code();
    if (code == ENOENT || code == ECONNREFUSED) return base::Status::ok();
    return answer.status();
  }
  base::Result<cloned::LiveStatus> live = cloned::decode_live_status(*answer);
  if (!live) return live.status();
  r.live = *live;
  r.running = true;
  return base::Status::ok();
}

// `clonectl status --json`: one object. Its keys, nesting and value types are an interface (the e2e tests and
// scripts read them); only the layout (compact, one line) is the library's.
// The newest mark the clone holds: the daemon's word when it runs (it knows
// what is durable past the last commit), else the store's.
std::pair<std::string, uint64_t> last_mark(const Report& r) {
  if (r.running) return {r.live.last_mark, r.live.last_mark_seq};
  const apply::LogMark* m = apply::reached_mark(r.stored, r.stored.committed_seq);
  return m ? std::pair<std::string, uint64_t>{m->name, m->seq} : std::pair<std::string, uint64_t>{"", 0};
}

void print_json(const Report& r) {
  const apply::ReplicaState& s = r.stored;
  const auto [mark, mark_seq] = last_mark(r);
  // Ranges a verify found out of sync make it no faithful copy until repaired.
  const bool bootable =
      (s.state == proto::CloneState::consistent || s.state == proto::CloneState::fresh) && r.out_of_sync == 0;
  const uint64_t applied = r.running ? r.live.applied_seq : s.committed_seq;
  const uint64_t log_end = r.running ? r.live.original_log_end : 0;
  const Json wake = {
      {"interface", r.live.wake_interface},
      {"mac", r.live.wake_mac},
      {"arm", r.running ? r.live.wake_arm : ""},
      {"reason", r.live.wake_reason},
      {"phase", r.running ? r.live.wake_phase : ""},
      {"sleeps", r.live.wake_sleep_count},
      {"last_sleep_unix_ms", r.live.wake_last_sleep_unix_ms},
      {"last_wake_unix_ms", r.live.wake_last_wake_unix_ms},
  };
  const Json j = {
      {"state", proto::clone_state_name(s.state)},
      {"state_reason", s.state_reason},
      {"bootable", bootable},
      {"generation", s.generation},
      {"applied_seq", applied},
      {"committed_seq", s.committed_seq},
      {"committed_epoch", s.committed_epoch},
      {"unclean_until_seq", r.running ? r.live.unclean_until_seq : 0},
      {"daemon", r.running ? "running" : "stopped"},
      {"link", r.running ? r.live.link : "down"},
      {"peer", r.running ? r.live.peer : ""},
      {"original_log_end", log_end},
      {"last_mark", mark},
      {"last_mark_seq", mark_seq},
      {"lag_records", log_end > applied ? log_end - applied : 0},
      {"resync_generation", s.resync.generation},
      {"resync_cursor_bytes", s.resync.cursor_bytes},
      {"stage_phase", apply::stage_phase_name(s.stage.phase)},
      {"stage_bytes", s.stage.durable_bytes},
      {"stage_disk_bytes", s.stage.staged_disk_bytes},
      {"stage_max_bytes", r.stage_max_bytes},
      {"progress", r.running ? r.live.progress : ""},
      {"out_of_sync_ranges", r.out_of_sync},
      {"decision", s.decision},
      {"wake", wake},
      {"bytes_received", r.running ? r.live.bytes_received : 0},
      {"disk", s.disk_identity},
      {"disk_failed", r.running && r.live.disk_failed},
  };
  std::printf("%s\n", dump(j).c_str());
}

// The first line: what the clone is now.
void print_state_line(const Report& r) {
  const apply::ReplicaState& s = r.stored;
  switch (s.state) {
    case proto::CloneState::consistent:
      if (s.stage.phase == apply::StagePhase::staging) std::printf("clone:      %s\n", staging_line(r).c_str());
      std::printf("clone:      %s (consistent) at record %llu, epoch %llu\n",
                  r.out_of_sync > 0 ? "NOT a faithful copy until the ranges below are repaired" : "a bootable copy",
                  static_cast<unsigned long long>(r.running ? r.live.applied_seq : s.committed_seq),
                  static_cast<unsigned long long>(r.running ? r.live.applied_epoch : s.committed_epoch));
      break;
    case proto::CloneState::fresh:
      std::printf(
          "clone:      fresh: paired, nothing replicated yet (the disk is taken as identical to the original's)\n");
      break;
    case proto::CloneState::inconsistent:
      std::printf("clone:      NOT a bootable copy (inconsistent): %s\n", s.state_reason.c_str());
      break;
    case proto::CloneState::diverged:
      std::printf("clone:      DIVERGED: its disk was changed outside cloned: %s\n", s.state_reason.c_str());
      std::printf(
          "            it takes no writes until a decision: clonectl decide --config FILE "
          "discard-clone-changes | keep-diverged\n");
      break;
  }
}

void print_human(const Report& r) {
  const apply::ReplicaState& s = r.stored;
  print_state_line(r);
  // Invariant 5: after an unclean stop the disk is the original's at an
  // epoch's end at or past the applied record, perhaps with part of the next
  // epoch (as a power cut leaves the original's own disk); only the original
  // knows which epoch.
  if (r.running && r.live.unclean_until_seq > r.live.applied_seq &&
      (s.state == proto::CloneState::consistent || s.state == proto::CloneState::fresh))
    std::printf(
        "unclean:    records up to %llu may be on the disk after an unclean stop, in epoch "
        "order; the original's next log session settles which\n",
        static_cast<unsigned long long>(r.live.unclean_until_seq));
  if (!s.decision.empty()) std::printf("decision:   %s\n", s.decision.c_str());
  if (const auto [mark, mark_seq] = last_mark(r); !mark.empty())
    std::printf("mark:       %s (record %llu): the clone holds everything the original wrote before it\n", mark.c_str(),
                static_cast<unsigned long long>(mark_seq));
  if (s.stage.phase == apply::StagePhase::applying)
    std::printf("stage:      applying generation %llu (finishes without the original)\n",
                static_cast<unsigned long long>(s.resync.generation));
  else if (s.resync.active())
    std::printf("resync:     generation %llu in progress, %s of the disk durable (resumes there)\n",
                static_cast<unsigned long long>(s.resync.generation),
                base::format_bytes(s.resync.cursor_bytes).c_str());
  if (r.running && !r.live.progress.empty()) std::printf("progress:   %s\n", r.live.progress.c_str());
  if (r.out_of_sync > 0) {
    std::printf("verify:     %llu range(s) out of sync, not yet repaired (clone-origin verify --repair):\n",
                static_cast<unsigned long long>(r.out_of_sync));
    for (const store::OutOfSyncRange& o : r.out_of_sync_first)
      std::printf("            offset %llu, %llu bytes\n", static_cast<unsigned long long>(o.offset_bytes),
                  static_cast<unsigned long long>(o.length_bytes));
  }
  std::printf("generation: %llu; committed in the state store: record %llu\n",
              static_cast<unsigned long long>(s.generation), static_cast<unsigned long long>(s.committed_seq));
  if (!r.running) {
    std::printf("daemon:     not running (start it: systemctl start cloned, or cloned --config FILE)\n");
  } else {
    const cloned::LiveStatus& l = r.live;
    if (!l.listen.empty())
      std::printf("daemon:     running (pid %lld), listening on %s\n", static_cast<long long>(l.pid), l.listen.c_str());
    else
      std::printf("daemon:     running (pid %lld), not listening (asleep, or waiting for its address after waking)\n",
                  static_cast<long long>(l.pid));
    if (l.link == "connected") {
      std::printf("link:       connected to the original at %s since %s\n", l.peer.c_str(),
                  clock_time(l.session_since_unix_ms).c_str());
    } else {
      std::printf("link:       waiting for the original\n");
    }
    const uint64_t lag = l.original_log_end > l.applied_seq ? l.original_log_end - l.applied_seq : 0;
    std::printf("lag:        %llu records behind the original's log as last heard (ends at %llu)\n",
                static_cast<unsigned long long>(lag), static_cast<unsigned long long>(l.original_log_end));
    std::printf("received:   %s in %llu records over %llu sessions; %llu refused\n",
                base::format_bytes(l.bytes_received).c_str(), static_cast<unsigned long long>(l.records_received),
                static_cast<unsigned long long>(l.sessions), static_cast<unsigned long long>(l.refused));
    std::printf("wake:       %s\n", cloned::wake_status_line(l).c_str());
    if (l.disk_failed) std::printf("DISK FAILED: the daemon takes no writes; see clonectl events and the journal\n");
  }
  std::printf("disk:       %s\n", s.disk_identity.c_str());
}

int cmd_status(const base::cli::Args& o) {
  base::Result<config::CloneConfig> cfg = config::load_clone_config(o.get("--config"));
  if (!cfg) {
    std::fprintf(stderr, "clonectl: %s\n", cfg.status().message().c_str());
    return 1;
  }
  base::Result<std::unique_ptr<store::Store>> st = store::Store::open(cfg->state_dir, store::OpenMode::read_only);
  if (!st) {
    std::fprintf(stderr, "clonectl: %s\n", st.status().message().c_str());
    return 1;
  }
  base::Result<apply::ReplicaState> loaded = (*st)->load();
  if (!loaded) {
    std::fprintf(stderr, "clonectl: %s\n", loaded.status().message().c_str());
    return 1;
  }
  Report r;
  r.stored = *loaded;
  r.disk_bytes = cfg->target_identity.size_bytes;
  r.stage_max_bytes = cfg->stage_max_bytes;
  if (base::Result<uint64_t> n = (*st)->out_of_sync_count()) r.out_of_sync = *n;
  if (auto first = (*st)->out_of_sync(10)) r.out_of_sync_first = *first;
  if (base::Status asked = ask_daemon(*cfg, r); !asked.is_ok()) {
    std::fprintf(stderr, "clonectl: %s\n", asked.message().c_str());
    return 1;
  }
  if (r.running) {
    // The live view is newer than the store: it may have changed state since.
    r.stored.committed_seq = r.live.committed_seq;
    for (proto::CloneState each : {proto::CloneState::fresh, proto::CloneState::consistent,
                                   proto::CloneState::inconsistent, proto::CloneState::diverged}) {
      if (r.live.state == proto::clone_state_name(each)) {
        r.stored.state = each;
        r.stored.state_reason = r.live.state_reason;
      }
    }
  }
  if (o.has("--json"))
    print_json(r);
  else
    print_human(r);
  return 0;
}

int cmd_events(const base::cli::Args& o) {
  size_t limit = 50;
  if (o.has("--limit")) {
    const std::string text = o.get("--limit");
    char* end = nullptr;
    unsigned long v = std::strtoul(text.c_str(), &end, 10);
    if (*end != '\0' || v == 0 || v > store::kMaxEvents)
      return usage_error(o, "--limit takes a number from 1 to 10000");
    limit = v;
  }
  base::Result<config::CloneConfig> cfg = config::load_clone_config(o.get("--config"));
  if (!cfg) {
    std::fprintf(stderr, "clonectl: %s\n", cfg.status().message().c_str());
    return 1;
  }
  base::Result<std::unique_ptr<store::Store>> st = store::Store::open(cfg->state_dir, store::OpenMode::read_only);
  base::Result<std::vector<store::Event>> events =
      st ? (*st)->recent_events(limit) : base::Result<std::vector<store::Event>>(st.status());
  if (!events) {
    std::fprintf(stderr, "clonectl: %s\n", events.status().message().c_str());
    return 1;
  }
  if (o.has("--json")) {
    Json all = Json::array();
    for (const store::Event& e : *events)
      all.push_back(
          Json{{"id", e.id}, {"unix_ms", e.unix_ms}, {"level", e.level}, {"kind", e.kind}, {"message", e.message}});
    std::printf("%s\n", dump(all).c_str());
    return 0;
  }
  for (const store::Event& e : *events)
    std::printf("%s  %-7s %-8s %s\n", clock_time(e.unix_ms).c_str(), e.level.c_str(), e.kind.c_str(),
                e.message.c_str());
  return 0;
}

// The decision for a Diverged clone, recorded in the state store and its
// event log: by the running daemon, or directly in the store when it is stopped.
// With no daemon to ask (the caller holds the state lock): the decision
// goes to the store, where the next start finds it.
int record_decision(const config::CloneConfig& cfg, apply::Decision d, const std::string& who) {
  base::Result<std::unique_ptr<store::Store>> st =
      store::Store::open(cfg.state_dir, store::OpenMode::read_write, cfg.pair_id);
  if (!st) {
    std::fprintf(stderr, "clonectl: %s\n", st.status().message().c_str());
    return 1;
  }
  base::Result<apply::ReplicaState> s = (*st)->load();
  if (!s) {
    std::fprintf(stderr, "clonectl: %s\n", s.status().message().c_str());
    return 1;
  }
  if (base::Status r = apply::apply_decision(*s, d, who, base::unix_ms()); !r.is_ok()) {
    std::fprintf(stderr, "clonectl: %s\n", r.message().c_str());
    return 1;
  }
  base::Status w = (*st)->append_event("notice", "decision", s->decision);
  if (w.is_ok()) w = (*st)->save(*s);
  if (!w.is_ok()) {
    std::fprintf(stderr, "clonectl: %s\n", w.message().c_str());
    return 1;
  }
  std::printf("recorded: %s\n", s->decision.c_str());
  if (d == apply::Decision::discard_clone_changes)
    std::printf("the clone now waits for a resync from the original (clone-origin resync --source IMAGE).\n");
  else
    std::printf(
        "the clone keeps its changes and takes no writes; decide discard-clone-changes to take the original's "
        "again.\n");
  return 0;
}

int cmd_decide(const base::cli::Args& o) {
  apply::Decision d;
  if (!apply::parse_decision(o.operand, d))
    return usage_error(o, "decide takes discard-clone-changes or keep-diverged");
  base::Result<config::CloneConfig> cfg = config::load_clone_config(o.get("--config"));
  if (!cfg) {
    std::fprintf(stderr, "clonectl: %s\n", cfg.status().message().c_str());
    return 1;
  }
  const char* user = std::getenv("SUDO_USER");
  if (user == nullptr) {
    const passwd* pw = ::getpwuid(::getuid());
    user = pw != nullptr ? pw->pw_name : "?";
  }
  const std::string who = std::string(user) + " (uid " + std::to_string(::getuid()) + ")";
  // A running daemon takes the decision itself (it owns the state); a
  // stopped one finds it in the store at its next start. The daemon answers
  // once its store holds the decision (kControlLaterMs at most).
  const auto ask = [&] {
    return cloned::control_request(cfg->runtime_dir + "/" + cloned::kControlSocketName,
                                   std::string("decide ") + apply::decision_name(d) + " " + who, daemon_uids(*cfg),
                                   static_cast<int>(cloned::kControlLaterMs + 2000));
  };
  base::Result<std::string> answer = ask();
  for (int round = 0;; ++round) {
    if (answer) {
      std::printf("%s", answer->c_str());
      return 0;
    }
    if (answer.status().code() != ENOENT && answer.status().code() != ECONNREFUSED) {
      std::fprintf(stderr, "clonectl: %s\n", answer.status().message().c_str());
      return 1;
    }
    // No daemon answers. One that is starting holds the state lock from
    // before it loads the state: written now, the decision would be
    // overwritten by what it loaded. It is asked again once it listens.
    base::Result<store::StateLock> lock = store::StateLock::take(cfg->state_dir, std::chrono::milliseconds(0));
    if (lock) return record_decision(*cfg, d, who);  // the lock held while it writes
    if (lock.status().code() != EWOULDBLOCK || round == kDecideWaitRounds) {
      std::fprintf(stderr, "clonectl: %s, and it does not answer; try again once it runs\n",
                   lock.status().message().c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    answer = ask();
  }
}

}  // namespace

int main(int argc, char** argv) {
  base::cli::Args args;
  if (int code = base::cli::parse_or_exit_code(kProgram, argc, argv, args); code >= 0) return code;
  const std::string_view cmd = args.command->name;
  try {
    if (cmd == "pair") return cmd_pair(args);
    if (cmd == "status") return cmd_status(args);
    if (cmd == "events") return cmd_events(args);
    if (cmd == "decide") return cmd_decide(args);
    assert(cmd == "health");
    return clonectl_health(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clonectl: unexpected error: %s\n", e.what());
    return 1;
  }
}
