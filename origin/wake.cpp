// SPDX-License-Identifier: MIT
#include "origin/wake.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <map>
#include <sstream>
#include <sys/eventfd.h>

#include "base/file_io.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "base/units.h"
#include "origin/log.h"
#include "origin/net.h"
#include "origin/position.h"
#include "origin/replicator.h"
#include "origin/session.h"

namespace origin {

namespace {

// One "key=value" a line; values hold no newline (they are names and sentences).
std::string one_line(const std::string& s) {
  std::string out;
  for (char ch : s) out.push_back(ch == '\n' || ch == '\r' ? ' ' : ch);
  return out;
}

}  // namespace

std::string clone_wake_path(const std::string& state_dir) { return state_dir + "/clone-wake.info"; }

base::Status save_clone_wake_info(const std::string& state_dir, const proto::WakeInfo& m) {
  BASE_TRY(base::make_dirs(state_dir, 0700));
  wol::MacAddress mac;
  mac.bytes = m.mac;
  std::string text = "# What the clone told in its last wake_info; written by clone-origin.\n";
  text += "mac=" + wol::format_mac(mac) + "\n";
  text += "interface=" + one_line(m.interface) + "\n";
  text += "broadcast=" + one_line(m.broadcast) + "\n";
  text += std::string("arm=") + proto::wake_arm_name(m.arm) + "\n";
  text += "flags=" + std::to_string(m.flags) + "\n";
  text += "idle_sleep_s=" + std::to_string(m.idle_sleep_s) + "\n";
  text += "reason=" + one_line(m.reason) + "\n";
  text += "updated_unix_ms=" + std::to_string(base::unix_ms()) + "\n";
  const std::string path = clone_wake_path(state_dir);
  const std::string tmp = path + ".tmp";
  base::UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return base::Status::from_errno("cannot write " + tmp);
  const bool ok = ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
  fd.reset();
  if (!ok) return base::Status::error(EIO, "short write to " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return base::Status::from_errno("cannot rename " + tmp);
  return base::Status::ok();
}

base::Result<proto::WakeInfo> load_clone_wake_info(const std::string& state_dir) {
  const std::string path = clone_wake_path(state_dir);
  std::ifstream in(path);
  if (!in) return base::Status::error(ENOENT, "nothing learned about waking the clone yet (no " + path + ")");
  std::map<std::string, std::string> kv;
  std::string line;
  for (int i = 0; i < 64 && std::getline(in, line); ++i) {
    const size_t eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  base::Result<wol::MacAddress> mac = wol::parse_mac(kv["mac"]);
  if (!mac) return base::Status::error(EINVAL, path + " is damaged: " + mac.status().message());
  proto::WakeInfo m;
  m.mac = mac->bytes;
  m.interface = kv["interface"];
  m.broadcast = kv["broadcast"];
  m.reason = kv["reason"];
  for (uint8_t a = 0; a <= static_cast<uint8_t>(proto::WakeArm::not_configured); ++a)
    if (kv["arm"] == proto::wake_arm_name(static_cast<proto::WakeArm>(a))) m.arm = static_cast<proto::WakeArm>(a);
  return m;
}

base::Result<wol::SendOptions> wake_target(const config::OriginConfig& c, const std::string& interface_override,
                                           const std::string& mac_override) {
  base::Result<proto::WakeInfo> learned = load_clone_wake_info(c.state_dir);
  wol::SendOptions o;
  const std::string mac_text = !mac_override.empty() ? mac_override : c.wake_mac;
  if (!mac_text.empty()) {
    base::Result<wol::MacAddress> mac = wol::parse_mac(mac_text);
    if (!mac) return mac.status();
    o.target = *mac;
  } else if (learned) {
    o.target.bytes = learned->mac;
  } else {
    return base::Status::error(ENOENT, "the clone's MAC address is unknown: give --mac, set [wake] mac in " +
                                           c.config_path + ", or let the clone tell it (" + learned.status().message() + ").");
  }
  if (o.target.is_zero() || o.target.is_multicast())
    return base::Status::error(EINVAL, "the clone's MAC address " + wol::format_mac(o.target) +
                                           " cannot be woken (zero or multicast); check [wake] mac.");
  o.interface = !interface_override.empty() ? interface_override : c.wake_interface;
  o.subnet_broadcast = !c.wake_broadcast.empty() ? c.wake_broadcast : learned ? learned->broadcast : "";
  o.udp_port = c.wake_udp_port;
  if (!c.wake_password.empty()) {
    base::Result<wol::Password> pw = wol::parse_password(c.wake_password);
    if (!pw) return pw.status();
    o.password = *pw;
  }
  return o;
}

base::Status send_wake(const wol::SendOptions& o, std::string& summary) {
  const wol::SendReport r = wol::send_magic(o);
  summary = "magic packet for " + wol::format_mac(o.target) + ": " + std::to_string(r.udp_datagram_count) +
            " UDP datagram(s) to port " + std::to_string(o.udp_port) + " (255.255.255.255" +
            (o.subnet_broadcast.empty() ? "" : ", " + o.subnet_broadcast) + ")" +
            (r.raw_sent ? ", one raw frame on " + o.interface : "");
  for (const std::string& note : r.notes) summary += "; " + note;
  if (!r.any_sent()) return base::Status::error(EIO, "no magic packet went out: " + summary);
  return base::Status::ok();
}

bool looks_asleep(const base::Status& s) {
  switch (s.code()) {
    case ECONNREFUSED:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
      return true;
    default:
      return s.message().find("goes to sleep") != std::string::npos;
  }
}

namespace {

// Listens to the one session of clone-origin sleep.
class SleepRequestListener final : public SessionListener {
 public:
  SleepRequestListener(std::string state_dir, uint64_t deadline_ms)
      : state_dir_(std::move(state_dir)), deadline_ms_(deadline_ms) {}
  void on_established(const proto::Hello&) override {}
  void on_barrier_ack(uint64_t, uint64_t) override {}
  void on_committed(uint64_t) override {}
  void on_receipt_ack(uint64_t) override {}
  void on_records_queued(uint64_t) override {}
  void on_bytes_sent(uint64_t) override {}
  bool stop_requested() const override { return unarmed_ || net::now_ms() >= deadline_ms_; }
  void on_wake_info(const proto::WakeInfo& info) override {
    (void)save_clone_wake_info(state_dir_, info);
    if (!info.armed()) {
      unarmed_ = true;
      why_ = std::string(proto::wake_arm_name(info.arm)) + ": " + info.reason;
    }
  }
  bool unarmed() const { return unarmed_; }
  const std::string& why() const { return why_; }

 private:
  std::string state_dir_;
  uint64_t deadline_ms_;
  bool unarmed_ = false;
  std::string why_;
};

}  // namespace

base::Status request_clone_sleep(const config::OriginConfig& c, const config::DerivedKeys& keys, uint32_t timeout_ms,
                                 std::string& summary) {
  base::Result<OriginPosition> pos = load_position(c.state_dir);
  if (!pos) return pos.status();
  RetainedLog log(c.retention_bytes_max, pos->next_seq);
  SessionConfig sc = make_session_config(c, keys);
  // The clone refuses a hello of another generation (found in review: after
  // any resync this asked at generation 1 and was told to resync).
  sc.generation = pos->generation;
  sc.request_sleep = true;
  SleepRequestListener listener(c.state_dir, net::now_ms() + timeout_ms);
  Session session(sc, log, listener, -1);
  const SessionOutcome o = session.run();
  if (!o.status.is_ok() && o.status.message().find("goes to sleep") != std::string::npos) {
    summary = o.status.message();
    return base::Status::ok();
  }
  if (listener.unarmed())
    return base::Status::error(EOPNOTSUPP, "the clone stays awake: it cannot be woken by a magic packet (" +
                                               listener.why() + ").");
  if (!o.status.is_ok()) return o.status;
  return base::Status::error(ETIMEDOUT, "the clone did not go to sleep within " + std::to_string(timeout_ms / 1000) +
                                            " s: it sleeps only when no epoch, resync or verify is under way and every "
                                            "acknowledged write is committed.");
}

void attach_wake(Replicator& replicator, const config::OriginConfig& c) {
  const std::string state_dir = c.state_dir;
  replicator.set_wake_info_handler([state_dir](const proto::WakeInfo& info) {
    if (base::Status s = save_clone_wake_info(state_dir, info); !s.is_ok())
      LOG_WARN("could not remember how to wake the clone: %s", s.message().c_str());
    // Not configured is a choice (the clone then never sleeps); anything else
    // is a clone that wanted to sleep and cannot be woken: worth a warning.
    if (info.arm == proto::WakeArm::not_configured)
      LOG_INFO("the clone has no Wake-on-LAN configured; it never sleeps (%s)", info.reason.c_str());
    else if (!info.armed())
      LOG_WARN("the clone cannot be woken by a magic packet (%s: %s); it stays awake instead of sleeping",
               proto::wake_arm_name(info.arm), info.reason.c_str());
  });
  if (auto waker = silence_waker(c)) replicator.set_silence_handler(std::move(waker));
}

std::function<void(const base::Status&)> silence_waker(const config::OriginConfig& c) {
  if (!c.wake_auto) return {};
  return [c](const base::Status& why) {
    if (!looks_asleep(why)) return;
    base::Result<wol::SendOptions> target = wake_target(c, "", "");
    if (!target) {
      LOG_INFO("the clone does not answer, and cannot be woken: %s", target.status().message().c_str());
      return;
    }
    std::string summary;
    base::Status s = send_wake(*target, summary);
    if (s.is_ok()) LOG_NOTICE("the clone does not answer; sent a %s", summary.c_str());
    else LOG_WARN("the clone does not answer, and waking it failed: %s", s.message().c_str());
  };
}

}  // namespace origin
