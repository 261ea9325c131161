// SPDX-License-Identifier: MIT
#include "wol/power_packet.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace wol {

namespace {
constexpr size_t kFrameBytesMax = 65536;
}

PacketWakePower::PacketWakePower(std::string interface, MacAddress mac, std::chrono::milliseconds sleep_limit)
    : interface_(std::move(interface)), mac_(mac), sleep_limit_(sleep_limit),
      cancel_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

base::Status PacketWakePower::can_sleep() {
  if (!cancel_fd_.valid()) return base::Status::from_errno("cannot create an eventfd for the power test double");
  if (::if_nametoindex(interface_.c_str()) == 0)
    return base::Status::error(ENODEV, "the power test double watches " + interface_ + ", which does not exist.");
  return base::Status::ok();
}

base::Status PacketWakePower::open_receiver() {
  const unsigned ifindex = ::if_nametoindex(interface_.c_str());
  if (ifindex == 0) return base::Status::error(ENODEV, "no interface " + interface_ + " to watch for magic packets.");
  Fd sock(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL)));
  if (!sock.valid()) return base::Status::from_errno("cannot open an AF_PACKET socket (needs CAP_NET_RAW)");
  sockaddr_ll at{};
  at.sll_family = AF_PACKET;
  at.sll_protocol = htons(ETH_P_ALL);
  at.sll_ifindex = static_cast<int>(ifindex);
  if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&at), sizeof at) != 0)
    return base::Status::from_errno("cannot bind an AF_PACKET socket to " + interface_);
  socket_ = std::move(sock);
  return base::Status::ok();
}

void PacketWakePower::cancel() {
  const uint64_t one = 1;
  ssize_t n = ::write(cancel_fd_.get(), &one, sizeof one);
  (void)n;  // a full counter already wakes the sleeper
}

std::string PacketWakePower::last_wake_reason() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_wake_reason_;
}

base::Status PacketWakePower::sleep() {
  BASE_TRY(can_sleep());
  if (!socket_.valid()) BASE_TRY(open_receiver());
  base::Status s = wait_for_packet();
  socket_.reset();  // the next sleep opens a fresh one: no stale frames
  return s;
}

base::Status PacketWakePower::wait_for_packet() {
  const auto deadline = std::chrono::steady_clock::now() + sleep_limit_;
  static thread_local uint8_t frame[kFrameBytesMax];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return base::Status::error(ETIMEDOUT, "no magic packet for " + format_mac(mac_) + " within the test double's limit.");
    pollfd fds[2] = {{socket_.get(), POLLIN, 0}, {cancel_fd_.get(), POLLIN, 0}};
    const int rc = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (rc < 0 && errno != EINTR) return base::Status::from_errno("poll on the AF_PACKET socket failed");
    if (rc <= 0) continue;
    if (fds[1].revents != 0) {
      uint64_t v = 0;
      ssize_t n = ::read(cancel_fd_.get(), &v, sizeof v);
      (void)n;
      return base::Status::error(ECANCELED, "the simulated sleep was cancelled.");
    }
    // Drain what is queued; one matching frame ends the sleep.
    for (int i = 0; i < 256; ++i) {
      const ssize_t n = ::recv(socket_.get(), frame, sizeof frame, 0);
      if (n < 0) break;
      std::optional<MagicMatch> m = find_magic_packet(base::ByteSpan(frame, static_cast<size_t>(n)));
      if (m && m->target == mac_) {
        std::lock_guard<std::mutex> lock(mutex_);
        last_wake_reason_ = "a magic packet for " + format_mac(mac_) + " arrived on " + interface_;
        return base::Status::ok();
      }
    }
  }
}

}  // namespace wol
