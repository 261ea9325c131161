// SPDX-License-Identifier: MIT
// The two senders of magic packets and the interface MAC lookup. Each call
// opens its own socket and closes it before returning.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "wol/fd.h"
#include "wol/magic.h"

namespace wol {
namespace {

base::Status check_interface_name(const std::string& interface) {
  if (interface.empty() || interface.size() >= IFNAMSIZ)
    return base::Status::error(EINVAL, "\"" + interface + "\" is not a valid interface name");
  return base::Status::ok();
}

// Opens the UDP socket: broadcast allowed, bound to the interface if named.
base::Result<Fd> open_udp(const SendOptions& options) {
  Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return base::Status::from_errno("cannot open a UDP socket for the magic packet");
  const int on = 1;
  if (::setsockopt(sock.get(), SOL_SOCKET, SO_BROADCAST, &on, sizeof on) != 0)
    return base::Status::from_errno("cannot allow broadcast on the UDP socket");
  if (!options.interface.empty()) {
    BASE_TRY(check_interface_name(options.interface));
    if (::setsockopt(sock.get(), SOL_SOCKET, SO_BINDTODEVICE, options.interface.c_str(),
                     static_cast<socklen_t>(options.interface.size())) != 0)
      return base::Status::from_errno("cannot bind the UDP socket to " + options.interface);
  }
  return sock;
}

// Sends to every broadcast destination; counts what went out and keeps one
// sentence per failure.
base::Status send_udp_counted(const SendOptions& options, int& sent_count) {
  sent_count = 0;
  auto sock = open_udp(options);
  if (!sock) return sock.status();
  std::vector<std::string> destinations = {"255.255.255.255"};
  if (!options.subnet_broadcast.empty()) destinations.push_back(options.subnet_broadcast);
  const base::Bytes payload = build_magic_payload(options.target, options.password);
  std::string failures;
  int first_errno = 0;
  for (const std::string& destination : destinations) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(options.udp_port);
    int err = 0;
    if (::inet_pton(AF_INET, destination.c_str(), &to.sin_addr) != 1) {
      err = EINVAL;
    } else if (::sendto(sock->get(), payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to),
                        sizeof to) != static_cast<ssize_t>(payload.size())) {
      err = errno != 0 ? errno : EIO;
    }
    if (err == 0) {
      ++sent_count;
      continue;
    }
    if (first_errno == 0) first_errno = err;
    failures += (failures.empty() ? "" : "; ") + destination + ": " + std::strerror(err);
  }
  if (first_errno == 0) return base::Status::ok();
  return base::Status::error(first_errno, "cannot send the magic packet by UDP to " + failures +
                                              (options.interface.empty() ? "" : " (via " + options.interface + ")"));
}

}  // namespace

base::Result<MacAddress> interface_mac(const std::string& interface) {
  BASE_TRY(check_interface_name(interface));
  Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return base::Status::from_errno("cannot open a socket to ask for the MAC of " + interface);
  ifreq request{};
  std::memcpy(request.ifr_name, interface.c_str(), interface.size());
  if (::ioctl(sock.get(), SIOCGIFHWADDR, &request) != 0)
    return base::Status::from_errno("cannot read the MAC address of " + interface);
  if (request.ifr_hwaddr.sa_family != ARPHRD_ETHER)
    return base::Status::error(EAFNOSUPPORT, interface + " is not an Ethernet interface; it has no MAC to wake");
  MacAddress mac;
  std::memcpy(mac.bytes.data(), request.ifr_hwaddr.sa_data, kMacBytes);
  return mac;
}

base::Status send_udp(const SendOptions& options) {
  int sent_count = 0;
  return send_udp_counted(options, sent_count);
}

base::Status send_raw(const SendOptions& options) {
  BASE_TRY(check_interface_name(options.interface));
  // Protocol 0: this socket only sends, so it never queues received frames.
  Fd sock(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  if (!sock.valid()) {
    if (errno == EPERM || errno == EACCES) return base::Status::error(EPERM, "raw send skipped: needs CAP_NET_RAW");
    return base::Status::from_errno("cannot open a raw packet socket for the magic packet");
  }
  const unsigned ifindex = ::if_nametoindex(options.interface.c_str());
  if (ifindex == 0) return base::Status::from_errno("cannot find interface " + options.interface);
  auto src = interface_mac(options.interface);
  if (!src) return src.status();
  MacAddress dst = options.target;
  if (options.raw_to_broadcast) dst.bytes.fill(0xFF);
  const base::Bytes frame = build_magic_frame(dst, *src, options.target, options.password);

  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(kEtherTypeWol);
  to.sll_ifindex = static_cast<int>(ifindex);
  to.sll_halen = kMacBytes;
  std::memcpy(to.sll_addr, dst.bytes.data(), kMacBytes);
  if (::sendto(sock.get(), frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) !=
      static_cast<ssize_t>(frame.size()))
    return base::Status::from_errno("cannot send the raw magic frame on " + options.interface);
  return base::Status::ok();
}

SendReport send_magic(const SendOptions& options) {
  SendReport report;
  if (base::Status udp = send_udp_counted(options, report.udp_datagram_count); !udp)
    report.notes.push_back(udp.message());
  if (options.interface.empty()) {
    report.notes.push_back("raw send skipped: no interface named");
    return report;
  }
  base::Status raw = send_raw(options);
  report.raw_sent = raw.is_ok();
  if (!raw) report.notes.push_back(raw.message());
  return report;
}

}  // namespace wol
