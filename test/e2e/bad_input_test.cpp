// SPDX-License-Identifier: MIT
// Level 3, black box: bad input against the real cloned (invariants 2, 3, 9).
// Each kind gets a clear refusal, nothing of it reaches the disk, and the
// daemon then serves a good session.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "base/aligned_buffer.h"
#include "config/config.h"
#include "origin/testing.h"
#include "test/support/harness.h"
#include "test/support/sanitizer.h"

namespace t = origin::testing;

namespace {

constexpr uint64_t kDiskBytes = 64ull << 20;
constexpr uint64_t kBadOffset = 8ull << 20;  // bad records aim here; it must stay zero

struct Rig {
  harness::TempDir dir;
  harness::Pair pair;
  config::OriginConfig origin;
  config::DerivedKeys keys;
  origin::SessionConfig session;
  std::unique_ptr<harness::Process> cloned;

  Rig() {
    REQUIRE(harness::make_zero_file(dir / "clone.img", kDiskBytes));
    pair = harness::make_pair(dir.path(), dir / "clone.img",
                              {{"link.handshake_timeout_ms", "500"}, {"link.max_pending_handshakes", "4"}});
    REQUIRE(!pair.clone_config.empty());
    base::Result<config::OriginConfig> cfg = config::load_origin_config(pair.origin_config);
    REQUIRE(cfg.is_ok());
    origin = *cfg;
    base::Result<config::PairSecret> secret = config::load_secret(origin.secret_file);
    REQUIRE(secret.is_ok());
    keys = config::derive_keys(*secret);
    session = origin::make_session_config(origin, keys);
    cloned = std::make_unique<harness::Process>(
        std::vector<std::string>{harness::binary("CLONED_BIN"), "--config", pair.clone_config}, dir / "cloned.log");
    REQUIRE(harness::wait_for_listener(pair.port, 10000));
  }
  std::string log() const { return harness::read_file(dir / "cloned.log"); }

  std::unique_ptr<t::RawSession> open(proto::Hello* clone_hello) {
    auto s = t::open_raw_session(session, 1, 1'000'000, clone_hello);
    REQUIRE_MESSAGE(s.is_ok(), s.status().message());
    return std::move(*s);
  }

  // A good session: one write of `fill` at offset 0 and a barrier, acked.
  void good_session(uint8_t fill) {
    proto::Hello h;
    auto s = open(&h);
    base::Bytes payload(4096, fill);
    REQUIRE(s->send_record(t::write_header(h.applied_seq + 1, h.applied_epoch + 1, 0, payload, keys.digest_key), payload).is_ok());
    proto::RecordHeader b;
    b.type = proto::MsgType::barrier;
    b.seq = h.applied_seq + 2;
    b.epoch = h.applied_epoch + 1;
    REQUIRE(s->send_record(b).is_ok());
    base::Bytes plain;
    REQUIRE_MESSAGE(s->receive_until(proto::MsgType::barrier_ack, plain).is_ok(), log());
    uint64_t epoch = 0, seq = 0;
    REQUIRE(proto::decode_barrier_ack(plain, epoch, seq).is_ok());
    CHECK(seq == h.applied_seq + 2);
    std::string image = harness::read_file(dir / "clone.img");
    CHECK(static_cast<uint8_t>(image[0]) == fill);
  }

  // Sends a bad record in a fresh session and expects `code`.
  void bad_record(const proto::RecordHeader& h, const base::Bytes& payload, proto::ErrorCode code) {
    proto::Hello hello;
    auto s = open(&hello);
    REQUIRE(s->send_record(h, payload).is_ok());
    base::Result<proto::ErrorMsg> e = s->expect_error();
    REQUIRE_MESSAGE(e.is_ok(), e.status().message());
    CHECK(e->code == code);
    CHECK(!e->message.empty());
    MESSAGE(std::string(proto::error_code_name(e->code)) << ": " << e->message);
    CHECK(t::wait_closed(s->fd()));
  }

  bool bad_region_untouched() {
    std::string image = harness::read_file(dir / "clone.img");
    for (uint64_t i = kBadOffset; i < kBadOffset + (1 << 20); ++i)
      if (image[i] != 0) return false;
    return true;
  }
};

base::Bytes pattern(size_t n) { return base::Bytes(n, 0xAB); }

// Strangers on the LAN (issue 14, findings 1 and 3): 300 connections from
// another address (127.0.0.2) held open whatever the clone does: every other
// one trickles a byte every 250 ms, the rest send nothing, and one the clone
// closes is reopened within 250 ms (about 1,200 connections a second once the
// clone ends the stalled ones).
class StrangerFlood {
 public:
  explicit StrangerFlood(uint16_t port) : port_(port), thread_([this] { run(); }) {}
  ~StrangerFlood() {
    stop_ = true;
    thread_.join();
  }
  StrangerFlood(const StrangerFlood&) = delete;
  StrangerFlood& operator=(const StrangerFlood&) = delete;
  uint64_t opened() const { return opened_; }

 private:
  int open_one() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in from{}, to{};
    from.sin_family = to.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.2", &from.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    to.sin_port = htons(port_);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
        (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS)) {
      ::close(fd);
      return -1;
    }
    ++opened_;
    return fd;
  }
  void run() {
    std::vector<int> fds(300, -1);
    while (!stop_) {
      for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i] < 0) {
          fds[i] = open_one();
          continue;
        }
        char buf[256];
        const ssize_t n = ::recv(fds[i], buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)) {
          ::close(fds[i]);
          fds[i] = -1;
        } else if (i % 2 == 1) {
          (void)::send(fds[i], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
  const uint16_t port_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> opened_{0};
  std::thread thread_;  // last: it starts once the rest is built
};

// One stranger's handshake from 127.0.0.2 that knows the pair's id (it
// travels in clear) but not the secret: sends a ClientHello and reads the
// answer. 1: a ServerHello (the clone did its X25519 work), 0: refused busy,
// -1: anything else.
int stranger_hello(uint16_t port, const proto::PairId& pair_id) {
  base::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in from{}, to{};
  from.sin_family = to.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.2", &from.sin_addr);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  to.sin_port = htons(port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      ::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0)
    return -1;
  proto::Key wrong{};
  proto::ClientHandshake client(wrong, pair_id);
  if (!t::send_raw(fd.get(), client.client_hello()).is_ok()) return -1;
  timeval tv{2, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  base::Bytes answer(proto::kServerHelloBytes);
  size_t have = 0;
  while (have < answer.size()) {
    const ssize_t n = ::recv(fd.get(), answer.data() + have, answer.size() - have, 0);
    if (n <= 0) return -1;
    have += static_cast<size_t>(n);
  }
  base::Result<base::Bytes> finish = client.on_server_hello(answer);
  // Answered, the server's proof fails with the wrong key: still a ServerHello.
  return !finish.is_ok() && finish.status().code() == EBUSY ? 0 : 1;
}


}  // namespace

TEST_CASE("bad input is refused with a clear error, nothing is written, and the daemon keeps serving") {
  Rig r;
  r.good_session(1);
  uint8_t fill = 2;
  auto next_good = [&] { r.good_session(fill++); };

  {
    // Garbage before the handshake: no reply, the connection is dropped.
    auto fd = t::connect("127.0.0.1", r.pair.port);
    REQUIRE(fd.is_ok());
    base::Bytes garbage(200, 'G');
    (void)t::send_raw(fd->get(), garbage);
    CHECK(t::wait_closed(fd->get()));
    next_good();
  }
  {
    // A peer that connects and sends nothing is dropped at the handshake timeout.
    auto fd = t::connect("127.0.0.1", r.pair.port);
    REQUIRE(fd.is_ok());
    CHECK(t::wait_closed(fd->get(), 3000));
    next_good();
  }
  {
    // A wrong secret: the original notices the clone's proof fails...
    proto::Key wrong = r.keys.auth_key;
    wrong[0] ^= 1;
    auto fd = t::connect("127.0.0.1", r.pair.port);
    REQUIRE(fd.is_ok());
    auto hs = t::handshake(fd->get(), wrong, r.origin.pair_id);
    REQUIRE_FALSE(hs.is_ok());
    MESSAGE("wrong secret, original side: " << hs.status().message());
    // ...and the clone refuses a finish made without the secret.
    auto fd2 = t::connect("127.0.0.1", r.pair.port);
    REQUIRE(fd2.is_ok());
    proto::ClientHandshake client(wrong, r.origin.pair_id);
    REQUIRE(t::send_raw(fd2->get(), client.client_hello()).is_ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    base::Bytes forged_finish(proto::kClientFinishBytes, 0x5A);
    (void)t::send_raw(fd2->get(), forged_finish);
    CHECK(t::wait_closed(fd2->get()));
    next_good();
  }
  {
    // A replayed handshake: the exact bytes of an earlier successful one.
    auto fd = t::connect("127.0.0.1", r.pair.port);
    REQUIRE(fd.is_ok());
    auto hs = t::handshake(fd->get(), r.keys.auth_key, r.origin.pair_id);
    REQUIRE(hs.is_ok());
    auto fd2 = t::connect("127.0.0.1", r.pair.port);
    REQUIRE(fd2.is_ok());
    (void)t::send_raw(fd2->get(), hs->client_bytes);
    CHECK(t::wait_closed(fd2->get()));
    next_good();
  }
  {
    // A flipped byte in a frame fails authentication.
    proto::Hello h;
    auto s = r.open(&h);
    base::Bytes payload = pattern(4096);
    base::Bytes plain;
    proto::encode_record(t::write_header(h.applied_seq + 1, h.applied_epoch + 1, kBadOffset, payload, r.keys.digest_key),
                         payload, plain);
    base::Bytes wire = s->seal(plain);
    t::flip_byte(wire, wire.size() / 2);
    REQUIRE(s->send_raw(wire).is_ok());
    auto e = s->expect_error();
    REQUIRE(e.is_ok());
    CHECK(e->code == proto::ErrorCode::corrupted);
    MESSAGE("flipped byte: " << e->message);
    next_good();
  }
  {
    // An oversize frame length is refused before anything is allocated.
    proto::Hello h;
    auto s = r.open(&h);
    REQUIRE(s->send_raw(t::frame_length_prefix(proto::kMaxFramePlainBytes + proto::kAeadTagBytes + 1)).is_ok());
    auto e = s->expect_error();
    REQUIRE(e.is_ok());
    CHECK(e->code == proto::ErrorCode::too_large);
    MESSAGE("oversize frame: " << e->message);
    next_good();
  }
  proto::Hello h;
  {
    auto probe = r.open(&h);  // learn the position the next records must take
  }
  const uint64_t seq = h.applied_seq + 1, epoch = h.applied_epoch + 1;
  const base::Bytes payload = pattern(4096);
  {
    proto::RecordHeader past = t::write_header(seq, epoch, kDiskBytes - 512, payload, r.keys.digest_key);
    r.bad_record(past, payload, proto::ErrorCode::out_of_range);
    next_good();
  }
  {
    // The good sessions move the position on: ask again each time.
    auto probe = r.open(&h);
  }
  {
    proto::RecordHeader mis = t::write_header(h.applied_seq + 1, h.applied_epoch + 1, kBadOffset + 100, payload, r.keys.digest_key);
    r.bad_record(mis, payload, proto::ErrorCode::misaligned);
    next_good();
  }
  {
    auto probe = r.open(&h);
  }
  {
    // A record whose payload does not match its digest, with its epoch's
    // barrier right behind it: the barrier must not make it durable.
    proto::Hello before;
    auto s = r.open(&before);
    proto::RecordHeader hd =
        t::write_header(before.applied_seq + 1, before.applied_epoch + 1, kBadOffset, payload, r.keys.digest_key);
    base::Bytes spoiled = payload;
    spoiled[100] ^= 0xFF;
    proto::RecordHeader b;
    b.type = proto::MsgType::barrier;
    b.seq = before.applied_seq + 2;
    b.epoch = before.applied_epoch + 1;
    REQUIRE(s->send_record(hd, spoiled).is_ok());
    REQUIRE(s->send_record(b).is_ok());
    base::Result<proto::ErrorMsg> e = s->expect_error();
    REQUIRE_MESSAGE(e.is_ok(), e.status().message());
    CHECK(e->code == proto::ErrorCode::digest_mismatch);
    MESSAGE("digest_mismatch: " << e->message);
    CHECK(t::wait_closed(s->fd()));
    proto::Hello after;
    auto probe = r.open(&after);
    CHECK(after.applied_seq == before.applied_seq);  // neither the record nor its barrier
    probe.reset();
    next_good();
  }
  {
    auto probe = r.open(&h);
  }
  {
    proto::RecordHeader gap = t::write_header(h.applied_seq + 2, h.applied_epoch + 1, kBadOffset, payload, r.keys.digest_key);
    r.bad_record(gap, payload, proto::ErrorCode::sequence_gap);
    next_good();
  }

  CHECK(r.bad_region_untouched());
  const std::string log = r.log();
  CHECK(log.find("authentication failed") != std::string::npos);
  r.cloned->signal(SIGTERM);
  CHECK(r.cloned->wait(30000) == 0);
}

TEST_CASE("a flood of connections costs the daemon a small fixed amount of memory") {
  Rig r;
  auto rss_kib = [&] {
    std::string status = harness::read_file("/proc/" + std::to_string(r.cloned->pid()) + "/status");
    size_t p = status.find("VmRSS:");
    return p == std::string::npos ? 0L : std::strtol(status.c_str() + p + 6, nullptr, 10);
  };
  r.good_session(1);
  const long before = rss_kib();
  for (int round = 0; round < 5; ++round) {
    std::vector<base::UniqueFd> fds;
    for (int i = 0; i < 40; ++i) {
      auto fd = t::connect("127.0.0.1", r.pair.port);
      if (fd.is_ok()) {
        base::Bytes half(50, 'x');  // part of a ClientHello, then silence
        (void)t::send_raw(fd->get(), half);
        fds.push_back(std::move(*fd));
      }
    }
    for (auto& fd : fds) CHECK(t::wait_closed(fd.get(), 3000));
  }
  const long after = rss_kib();
  // Under AddressSanitizer (the daemon is built with the same flags as this
  // test, so the compiler says so: test/support/sanitizer.h) every allocation
  // carries redzones and freed memory sits in a quarantine, so RSS says little
  // about the daemon's own bound: there only gross growth fails. The 2 MiB
  // bound is the normal suite's.
  const bool asan = test_support::kAddressSanitizer;
  const long bound_kib = asan ? 16384 : 2048;
  MESSAGE("cloned RSS before " << before << " KiB, after 200 stalled connections " << after << " KiB (bound "
                               << bound_kib << " KiB" << std::string(asan ? ", under ASan" : "") << ")");
  CHECK(after - before < bound_kib);
  r.good_session(2);
  CHECK(r.log().find("its handshake slot went to a newer connection") != std::string::npos);
}

TEST_CASE("300 idle or trickling strangers neither lock the original out nor flood the log (issue 14)") {
  Rig r;
  uint64_t slowest_ms = 0;
  uint64_t strangers = 0;
  {
    StrangerFlood flood(r.pair.port);
    std::this_thread::sleep_for(std::chrono::seconds(2));  // the slots are taken, and taken again
    for (int attempt = 0; attempt < 5; ++attempt) {
      CAPTURE(attempt);
      const auto started = std::chrono::steady_clock::now();
      proto::Hello h;
      auto s = t::open_raw_session(r.session, 1, 1'000'000, &h);
      const auto ms = static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
      REQUIRE_MESSAGE(s.is_ok(), s.status().message());
      slowest_ms = std::max(slowest_ms, ms);
      CHECK(ms < 2000);
    }
    strangers = flood.opened();
  }
  // The notices held back are told once their 10 s window is over.
  std::string log = r.log();
  for (int i = 0; i < 150 && log.find("(notices held back)") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log = r.log();
  }
  const size_t notices = harness::count_of(log, "during the handshake");
  MESSAGE("5 handshakes of the original while strangers opened " << strangers << " connections: slowest " << slowest_ms
                                                                 << " ms; " << notices << " notices in the log");
  CHECK(strangers > 300);
  // About 5 s of flood: at most 5 notices per 10 s, and what was held back is counted.
  CHECK(notices <= 15);
  CHECK_MESSAGE(log.find("more connections were dropped during the handshake in the last 10 s (notices held back)") !=
                    std::string::npos,
                log);
  r.good_session(3);
}

// A stranger that knows the pair's id can make the clone answer ClientHellos
// (two X25519 operations each on its loop) as fast as it connects: at most 32
// at once from one address, then 4 a second (hellos for another pair do not
// count). The original, from another address, is not held up.
TEST_CASE("a flood of ClientHellos from one address is answered busy past its burst; the original still gets in") {
  Rig r;
  // Hellos for another pair get their own refusal and spend no tokens.
  proto::PairId other_pair = r.origin.pair_id;
  other_pair[0] ^= 1;
  int refused_busy = 0;
  for (int i = 0; i < 40; ++i) refused_busy += stranger_hello(r.pair.port, other_pair) == 0 ? 1 : 0;
  CHECK(refused_busy == 0);
  int answered = 0, busy = 0, other = 0;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 120; ++i) {
    const int got = stranger_hello(r.pair.port, r.origin.pair_id);
    (got == 1 ? answered : got == 0 ? busy : other) += 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  MESSAGE("120 hellos from 127.0.0.2 in " << seconds << " s: " << answered << " answered, " << busy << " busy, "
                                          << other << " other");
  CHECK(answered >= 32);
  CHECK(answered <= 32 + 1 + static_cast<int>(4 * seconds));
  CHECK(other == 0);
  // The original's address has all of its tokens.
  const auto before = std::chrono::steady_clock::now();
  r.good_session(7);
  CHECK(std::chrono::steady_clock::now() - before < std::chrono::seconds(2));
}
