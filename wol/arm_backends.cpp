// SPDX-License-Identifier: MIT
// The two ways to reach a NIC's WoL settings: ethtool genetlink and the
// legacy SIOCETHTOOL ioctl. Both return errno-coded Status values; the
// policy (what counts as unsupported, what to tell the user) is in arm.cpp.
#include <linux/ethtool.h>
#include <linux/ethtool_netlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>

#include "wol/arm.h"
#include "wol/ethtool_msg.h"
#include "wol/fd.h"

namespace wol {
namespace {

constexpr int kReceiveTimeoutS = 2;  // the kernel answers at once; this only bounds a bug
constexpr int kReceiveRoundsMax = 8;

struct NlSockFree {
  void operator()(nl_sock* sock) const { nl_socket_free(sock); }
};
struct NlCbFree {
  void operator()(nl_cb* cb) const { nl_cb_put(cb); }
};

// What one request/reply exchange saw. The kernel's errno comes from the
// error callback exactly; libnl's own codes only say "something failed".
struct Exchange {
  WakeModes* modes = nullptr;  // where a GET reply goes; nullptr for SET
  bool acked = false;
  bool replied = false;
  int kernel_errno = 0;
};

int on_valid(nl_msg* msg, void* arg) {
  auto* exchange = static_cast<Exchange*>(arg);
  if (exchange->modes != nullptr && detail::parse_wol_reply(nlmsg_hdr(msg), *exchange->modes))
    exchange->replied = true;
  return NL_OK;
}

int on_ack(nl_msg*, void* arg) {
  static_cast<Exchange*>(arg)->acked = true;
  return NL_STOP;
}

int on_error(sockaddr_nl*, nlmsgerr* error, void* arg) {
  static_cast<Exchange*>(arg)->kernel_errno = -error->error;
  return NL_STOP;
}

class NetlinkBackend final : public WolBackend {
 public:
  NetlinkBackend(std::unique_ptr<nl_sock, NlSockFree> sock, int family_id)
      : sock_(std::move(sock)), family_id_(family_id) {}
  const char* name() const override { return "ethtool netlink"; }

  base::Status get(const std::string& interface, WakeModes& out) override {
    Exchange exchange;
    exchange.modes = &out;
    BASE_TRY(run(detail::build_wol_get(family_id_, interface), exchange, "read the WoL modes of " + interface));
    if (!exchange.replied)
      return base::Status::error(EBADMSG, "the kernel's WoL reply for " + interface + " could not be parsed");
    return base::Status::ok();
  }

  base::Status set_magic(const std::string& interface, bool enable) override {
    Exchange exchange;
    return run(detail::build_wol_set(family_id_, interface, enable), exchange,
               std::string(enable ? "enable" : "disable") + " magic-packet wake on " + interface);
  }

 private:
  // Sends `msg` and reads until the kernel's ack or error.
  base::Status run(detail::NlMsgPtr msg, Exchange& exchange, const std::string& what) {
    if (!msg) return base::Status::error(EINVAL, "cannot build the request to " + what + " (bad interface name?)");
    std::unique_ptr<nl_cb, NlCbFree> cb(nl_cb_alloc(NL_CB_DEFAULT));
    if (!cb) return base::Status::error(ENOMEM, "cannot " + what + ": out of memory");
    nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_valid, &exchange);
    nl_cb_set(cb.get(), NL_CB_ACK, NL_CB_CUSTOM, on_ack, &exchange);
    nl_cb_err(cb.get(), NL_CB_CUSTOM, on_error, &exchange);
    if (const int sent = nl_send_auto(sock_.get(), msg.get()); sent < 0)
      return base::Status::error(EIO, "cannot " + what + ": " + nl_geterror(sent));
    for (int round = 0; round < kReceiveRoundsMax && !exchange.acked && exchange.kernel_errno == 0; ++round) {
      const int got = nl_recvmsgs(sock_.get(), cb.get());
      if (exchange.kernel_errno != 0) break;
      if (got < 0) return base::Status::error(got == -NLE_AGAIN ? ETIMEDOUT : EIO,
                                              "cannot " + what + ": " + nl_geterror(got));
    }
    if (exchange.kernel_errno != 0) return base::Status::from_errno(exchange.kernel_errno, "cannot " + what);
    if (!exchange.acked) return base::Status::error(ETIMEDOUT, "cannot " + what + ": the kernel did not answer");
    return base::Status::ok();
  }

  std::unique_ptr<nl_sock, NlSockFree> sock_;
  int family_id_;
};

// SIOCETHTOOL on any datagram socket; `wol.cmd` says which.
base::Status wol_ioctl(const std::string& interface, ethtool_wolinfo& wol, const std::string& what) {
  if (interface.empty() || interface.size() >= IFNAMSIZ)
    return base::Status::error(ENODEV, "\"" + interface + "\" is not a valid interface name");
  Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return base::Status::from_errno("cannot open a socket to " + what);
  ifreq request{};
  std::memcpy(request.ifr_name, interface.c_str(), interface.size());
  request.ifr_data = reinterpret_cast<char*>(&wol);
  if (::ioctl(sock.get(), SIOCETHTOOL, &request) != 0) return base::Status::from_errno("cannot " + what);
  return base::Status::ok();
}

class IoctlBackend final : public WolBackend {
 public:
  const char* name() const override { return "SIOCETHTOOL ioctl"; }

  base::Status get(const std::string& interface, WakeModes& out) override {
    ethtool_wolinfo wol{};
    wol.cmd = ETHTOOL_GWOL;
    BASE_TRY(wol_ioctl(interface, wol, "read the WoL modes of " + interface));
    out.supported = wol.supported;
    out.enabled = wol.wolopts;
    return base::Status::ok();
  }

  // Read-modify-write: the other modes and the SecureOn password stay.
  base::Status set_magic(const std::string& interface, bool enable) override {
    ethtool_wolinfo wol{};
    wol.cmd = ETHTOOL_GWOL;
    BASE_TRY(wol_ioctl(interface, wol, "read the WoL modes of " + interface));
    wol.cmd = ETHTOOL_SWOL;
    wol.wolopts = enable ? (wol.wolopts | WAKE_MAGIC) : (wol.wolopts & ~static_cast<uint32_t>(WAKE_MAGIC));
    return wol_ioctl(interface, wol,
                     std::string(enable ? "enable" : "disable") + " magic-packet wake on " + interface);
  }
};

}  // namespace

base::Result<std::unique_ptr<WolBackend>> open_netlink_backend() {
  std::unique_ptr<nl_sock, NlSockFree> sock(nl_socket_alloc());
  if (!sock) return base::Status::error(ENOMEM, "cannot allocate a netlink socket");
  if (const int rc = genl_connect(sock.get()); rc < 0)
    return base::Status::error(EIO, std::string("cannot open a generic netlink socket: ") + nl_geterror(rc));
  const timeval timeout{kReceiveTimeoutS, 0};
  if (::setsockopt(nl_socket_get_fd(sock.get()), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0)
    return base::Status::from_errno("cannot set a receive timeout on the netlink socket");
  const int family_id = genl_ctrl_resolve(sock.get(), ETHTOOL_GENL_NAME);
  if (family_id < 0)
    return base::Status::error(ENOENT, std::string("the kernel has no ethtool netlink family (") +
                                           nl_geterror(family_id) + ")");
  return std::unique_ptr<WolBackend>(new NetlinkBackend(std::move(sock), family_id));
}

std::unique_ptr<WolBackend> make_ioctl_backend() { return std::make_unique<IoctlBackend>(); }

}  // namespace wol
