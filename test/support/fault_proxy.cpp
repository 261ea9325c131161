// SPDX-License-Identifier: MIT
#include "test/support/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <random>
#include <vector>

namespace harness {

namespace {

constexpr uint64_t kHandshakeBytes = 256;  // flips only after the handshake: see the header

int listen_loopback(uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) return -1;
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

int connect_loopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Reads the original's ClientHello (88 bytes), answers a ServerHello refusal
// (docs/PROTOCOL.md 4.1: "CLS1", version 1, the status, zeros: 104 bytes) and
// closes. Nothing of it needs the pairing secret.
void forge_refusal(int client, uint16_t status) {
  char hello[88];
  size_t have = 0;
  pollfd p{client, POLLIN, 0};
  while (have < sizeof hello && ::poll(&p, 1, 2000) > 0) {
    const ssize_t n = ::read(client, hello + have, sizeof hello - have);
    if (n <= 0) break;
    have += static_cast<size_t>(n);
  }
  unsigned char reply[104] = {'C', 'L', 'S', '1', 1, 0, static_cast<unsigned char>(status & 0xff),
                              static_cast<unsigned char>(status >> 8)};
  (void)::send(client, reply, sizeof reply, MSG_NOSIGNAL);
  ::shutdown(client, SHUT_WR);
  ::close(client);
}

enum class Fault { none, cut, flip, stall };

// One proxied connection: fds[0] is the original's side, fds[1] the clone's.
struct Pair {
  int fds[2] = {-1, -1};
  Fault fault = Fault::none;
  int fault_direction = 0;       // 0: original -> clone, 1: clone -> original
  uint64_t fault_at_bytes = 0;   // in that direction
  uint64_t moved[2] = {0, 0};
  std::chrono::steady_clock::time_point stalled_until{};
  bool done = false;
  ~Pair() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
};

}  // namespace

FaultProxy::FaultProxy(uint16_t target_port, uint64_t seed, const FaultQuota& quota, uint16_t listen_port)
    : target_port_(target_port), seed_(seed), quota_(quota), port_(listen_port) {
  listen_fd_ = listen_loopback(port_);
  thread_ = std::thread([this] { run(); });
}

FaultProxy::~FaultProxy() {
  stop_ = true;
  thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void FaultProxy::run() {
  std::mt19937_64 rng(seed_);
  std::vector<std::unique_ptr<Pair>> pairs;
  std::vector<char> buf(256 * 1024);
  while (!stop_) {
    std::vector<pollfd> pfds{{listen_fd_, POLLIN, 0}};
    const auto now = std::chrono::steady_clock::now();
    for (auto& p : pairs)
      for (int side = 0; side < 2; ++side) pfds.push_back({p->fds[side], static_cast<short>(now >= p->stalled_until ? POLLIN : 0), 0});
    if (::poll(pfds.data(), pfds.size(), 20) < 0) continue;
    if (pfds[0].revents & POLLIN) {
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0 && counts_.forged < quota_.forged_refusals) {
        ++counts_.forged;
        forge_refusal(client, quota_.forged_status);
        continue;
      }
      int server = client >= 0 ? connect_loopback(target_port_) : -1;
      if (client >= 0 && server >= 0) {
        auto p = std::make_unique<Pair>();
        p->fds[0] = client;
        p->fds[1] = server;
        ++counts_.connections;
        const bool want_cut = counts_.cuts < quota_.cuts, want_flip = counts_.flips < quota_.flips;
        if (want_cut || want_flip) {
          const uint64_t r = rng() % 10;
          p->fault = r == 0 ? Fault::stall : (want_flip && (!want_cut || r % 2)) ? Fault::flip : Fault::cut;
          // Most faults hit the original's stream. A damaged byte in the clone's
          // stream (acks) may hit a length prefix, which the original only
          // notices at its idle timeout: rarer, so the run stays short.
          p->fault_direction = rng() % 10 == 0 ? 1 : 0;
          // The clone sends only acks (37 bytes an epoch): its faults come early.
          p->fault_at_bytes = p->fault_direction == 0
                                  ? quota_.offset_min_bytes + rng() % (quota_.offset_max_bytes - quota_.offset_min_bytes)
                                  : kHandshakeBytes + rng() % 512;
        }
        pairs.push_back(std::move(p));
      } else {
        if (client >= 0) ::close(client);
      }
    }
    size_t i = 1;
    for (auto& p : pairs) {
      // A connection accepted in this pass has no pollfd yet: next pass.
      if (i >= pfds.size()) break;
      for (int side = 0; side < 2; ++side, ++i) {
        if (p->done || !(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = ::read(p->fds[side], buf.data(), buf.size());
        if (n <= 0) {
          p->done = true;
          continue;
        }
        uint64_t before = p->moved[side];
        p->moved[side] += static_cast<uint64_t>(n);
        counts_.bytes += static_cast<uint64_t>(n);
        const bool hit = p->fault != Fault::none && side == p->fault_direction && p->moved[side] > p->fault_at_bytes;
        if (hit && p->fault == Fault::cut) {
          ++counts_.cuts;
          p->done = true;  // both sides closed below, mid-stream
          continue;
        }
        if (hit && p->fault == Fault::flip && p->fault_at_bytes >= kHandshakeBytes) {
          buf[p->fault_at_bytes - before < static_cast<uint64_t>(n) ? p->fault_at_bytes - before : 0] ^= 0x20;
          ++counts_.flips;
          p->fault = Fault::none;
        }
        if (hit && p->fault == Fault::stall) {
          ++counts_.stalls;
          p->stalled_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(100 + rng() % 400);
          // A stall does not end the connection: it gets a cut further on.
          p->fault = Fault::cut;
          p->fault_direction = 0;
          p->fault_at_bytes = p->moved[0] + quota_.offset_min_bytes;
        }
        const char* out = buf.data();
        size_t left = static_cast<size_t>(n);
        while (left > 0) {  // blocking write: the peers read promptly
          ssize_t w = ::send(p->fds[1 - side], out, left, MSG_NOSIGNAL);
          if (w <= 0) {
            p->done = true;
            break;
          }
          out += w;
          left -= static_cast<size_t>(w);
        }
      }
    }
    std::erase_if(pairs, [](const std::unique_ptr<Pair>& p) { return p->done; });
  }
}

}  // namespace harness
