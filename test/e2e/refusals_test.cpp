// SPDX-License-Identifier: MIT
// Level 3, black box: refusals between the real cloned and clone-origin
// (issue 14, findings 2 and 7). What only the clone may say (its authenticated
// errors) says the specific code; what anyone at its address can say (a
// handshake refusal) does not stop the original unless it repeats.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>

#include "config/config.h"
#include "origin/testing.h"
#include "test/support/fault_proxy.h"
#include "test/support/harness.h"

namespace t = origin::testing;

namespace {

constexpr uint64_t kDiskBytes = 64ull << 20;

proto::RecordHeader extent(proto::MsgType type, uint64_t length_bytes) {
  proto::RecordHeader h;
  h.type = type;
  h.length_bytes = length_bytes;
  return h;
}

// A running clone, and an original's config that points at `proxy_port`
// (0: at the clone itself) with the default reconnect policy.
struct Rig {
  harness::TempDir dir;
  harness::Pair pair;
  config::DerivedKeys keys;
  origin::SessionConfig session;
  std::unique_ptr<harness::Process> cloned;

  explicit Rig(uint16_t proxy_port = 0) {
    REQUIRE(harness::make_zero_file(dir / "clone.img", kDiskBytes));
    REQUIRE(harness::make_zero_file(dir / "source.img", kDiskBytes));
    std::map<std::string, std::string> origin_overrides;
    if (proxy_port != 0) origin_overrides["clone.address"] = "\"127.0.0.1:" + std::to_string(proxy_port) + "\"";
    pair = harness::make_pair(dir.path(), dir / "clone.img", {}, origin_overrides);
    REQUIRE(!pair.clone_config.empty());
    base::Result<config::OriginConfig> cfg = config::load_origin_config(pair.origin_config);
    REQUIRE(cfg.is_ok());
    base::Result<config::PairSecret> secret = config::load_secret(cfg->secret_file);
    REQUIRE(secret.is_ok());
    keys = config::derive_keys(*secret);
    session = origin::make_session_config(*cfg, keys);
    session.port = pair.port;
    cloned = std::make_unique<harness::Process>(
        std::vector<std::string>{harness::binary("CLONED_BIN"), "--config", pair.clone_config}, dir / "cloned.log");
    REQUIRE(harness::wait_for_listener(pair.port, 10000));
  }
  ~Rig() {
    cloned->signal(SIGTERM);
    CHECK(cloned->wait(30000) == 0);
  }
  std::string log() const { return harness::read_file(dir / "cloned.log"); }

  // clone-origin workload of `bytes`; returns its exit code, output and time.
  int workload(const std::string& bytes, std::string& out, uint64_t& elapsed_ms) {
    const auto started = std::chrono::steady_clock::now();
    const int code =
        harness::run({harness::binary("ORIGIN_BIN"), "--config", pair.origin_config, "workload", "--source",
                      dir / "source.img", "--seed", "5", "--bytes", bytes, "--compare", dir / "clone.img"},
                     out, 120000);
    elapsed_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
    return code;
  }

  // Opens a raw session and expects the clone's error `code` for a record of
  // `type` whose length field says `length_bytes` (the encoder would refuse
  // to make one over the limits: its length is written over a good one's).
  void expect_refused(proto::MsgType type, uint64_t length_bytes, proto::ErrorCode code) {
    proto::Hello hello;
    auto s = t::open_raw_session(session, 1, 1'000'000, &hello);
    REQUIRE_MESSAGE(s.is_ok(), s.status().message());
    const base::Bytes payload(type == proto::MsgType::write ? 512 : 0, 0);
    proto::RecordHeader h = extent(type, 512);
    h.seq = hello.applied_seq + 1;
    h.epoch = hello.applied_epoch + 1;
    base::Bytes plain;
    proto::encode_record(h, payload, plain);
    if (type == proto::MsgType::write)
      base::store_le32(plain.data() + 4, static_cast<uint32_t>(length_bytes));  // write: u32 length_bytes at 4
    else
      base::store_le64(plain.data() + 32, length_bytes);  // trim and zero: u64 length_bytes at 32
    REQUIRE((*s)->send_frame(plain).is_ok());
    base::Result<proto::ErrorMsg> e = (*s)->expect_error();
    REQUIRE_MESSAGE(e.is_ok(), e.status().message());
    MESSAGE(std::string(proto::error_code_name(e->code)) << ": " << e->message);
    CHECK(e->code == code);
  }
};

}  // namespace

TEST_CASE("a record over the limits is refused as too_large, not as protocol (issue 14, finding 7)") {
  Rig r;
  r.expect_refused(proto::MsgType::zero, 1ull << 40, proto::ErrorCode::too_large);  // 1 TiB
  r.expect_refused(proto::MsgType::trim, (1ull << 30) + 512, proto::ErrorCode::too_large);
  r.expect_refused(proto::MsgType::zero, 0, proto::ErrorCode::protocol);           // malformed, not too large
  r.expect_refused(proto::MsgType::write, 2u << 20, proto::ErrorCode::too_large);  // 2 MiB
  CHECK(harness::read_file(r.dir / "clone.img") == std::string(kDiskBytes, '\0'));
}

TEST_CASE("a second session of the paired original takes over the first, which is told busy (issue 14, finding 7)") {
  Rig r;
  proto::Hello first_hello, second_hello;
  auto first = t::open_raw_session(r.session, 1, 1'000'000, &first_hello);
  REQUIRE_MESSAGE(first.is_ok(), first.status().message());
  auto second = t::open_raw_session(r.session, 1, 1'000'000, &second_hello);
  REQUIRE_MESSAGE(second.is_ok(), second.status().message());
  base::Result<proto::ErrorMsg> e = (*first)->expect_error();
  REQUIRE_MESSAGE(e.is_ok(), e.status().message());
  MESSAGE("the first session heard: " << std::string(proto::error_code_name(e->code)) << ": " << e->message);
  CHECK(e->code == proto::ErrorCode::busy);
  CHECK(t::wait_closed((*first)->fd()));
  // The newer session is the one that takes records.
  proto::RecordHeader barrier = extent(proto::MsgType::barrier, 0);
  barrier.seq = second_hello.applied_seq + 1;
  barrier.epoch = second_hello.applied_epoch + 1;
  REQUIRE((*second)->send_record(barrier).is_ok());
  base::Bytes plain;
  CHECK((*second)->receive_until(proto::MsgType::barrier_ack, plain).is_ok());
}

TEST_CASE("a forged refusal at the clone's address is retried; the same one five times in a row is final (finding 2)") {
  const uint16_t proxy_port = harness::free_port();
  Rig r(proxy_port);
  harness::FaultQuota quota;
  quota.cuts = quota.flips = 0;
  quota.forged_refusals = 1;
  {
    harness::FaultProxy proxy(r.pair.port, 1, quota, proxy_port);
    REQUIRE(proxy.port() == proxy_port);
    std::string out;
    uint64_t ms = 0;
    const int code = r.workload("4M", out, ms);
    MESSAGE("one forged refusal, then the clone: exit " << code << " after " << ms << " ms");
    CHECK_MESSAGE(code == 0, out);
    CHECK(out.find("identical") != std::string::npos);
    CHECK(proxy.counts().forged.load() == 1);
    CHECK_MESSAGE(out.find("answered 'unknown_pair' before authenticating (1 of 5 in a row)") != std::string::npos,
                  out);
  }
  quota.forged_refusals = 1000;
  harness::FaultProxy proxy(r.pair.port, 1, quota, proxy_port);
  std::string out;
  uint64_t ms = 0;
  const int code = r.workload("4M", out, ms);
  MESSAGE("a forger answering every time: exit " << code << " after " << ms << " ms, " << proxy.counts().forged.load()
                                                 << " refusals heard");
  CHECK(code != 0);
  CHECK(proxy.counts().forged.load() == 5);
  CHECK_MESSAGE(out.find("answered 'unknown_pair' before authenticating 5 times in a row") != std::string::npos, out);
  CHECK(ms < 10000);
}
