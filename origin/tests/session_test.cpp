// SPDX-License-Identifier: MIT
// Unit tests: the client (session + replicator) against a fake clone thread,
// for protocol handling only. The end-to-end tests against the real daemon
// live in test/.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "origin/image.h"
#include "origin/log.h"
#include "origin/maintenance_link.h"
#include "origin/replicator.h"
#include "origin/testing.h"
#include "origin/workload.h"
#include "origin/tests/fake_clone.h"
#include "origin/tests/test_util.h"

namespace {

constexpr uint64_t kDiskBytes = 16ull << 20;
const proto::PairId kPair = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};

proto::Key auth_key() {
  proto::Key k{};
  k.fill(0x5a);
  return k;
}

origin::SessionConfig session_config(uint16_t port) {
  origin::SessionConfig c;
  c.host = "127.0.0.1";
  c.port = port;
  c.pair_id = kPair;
  c.auth_key = auth_key();
  c.disk_size_bytes = kDiskBytes;
  c.logical_block_bytes = 512;
  c.connect_timeout_ms = 2000;
  c.idle_timeout_ms = 5000;
  c.keepalive_interval_ms = 1000;
  return c;
}

origin::ReconnectPolicy fast_policy(uint32_t attempts_max) {
  return origin::ReconnectPolicy{10, 50, attempts_max};
}

// Generates a workload into `image_path` and the log; returns the last seq.
uint64_t produce(origin::RetainedLog& log, const std::string& image_path, uint64_t total_bytes) {
  origin::WorkloadOptions o;
  o.seed = 11;
  o.total_bytes = total_bytes;
  o.write_max_bytes = 256 * 1024;
  o.epoch_records_max = 6;
  o.trim_percent = 10;
  origin::WorkloadGenerator gen(o, kDiskBytes, 512, origin_test::test_digest_key(), log.end_seq() + 1, 1);
  auto image = origin::SourceImage::open(image_path, kDiskBytes);
  REQUIRE(image.is_ok());
  origin::Record r;
  uint64_t last = 0;
  while (gen.next(r)) {
    REQUIRE((*image)->apply(r).is_ok());
    last = r.header.seq;
    if (!log.append(std::make_shared<const origin::Record>(std::move(r)))) break;
  }
  return last;
}

}  // namespace

TEST_CASE("the client replicates a workload, resumes after a dropped connection and says goodbye") {
  origin_test::TempDir dir;
  origin_test::make_zero_image(dir / "source.img", kDiskBytes);
  origin_test::FakeClone::Script script;
  script.drop_after_records = 40;
  origin_test::FakeClone clone(auth_key(), kPair, kDiskBytes, script);
  origin::RetainedLog log(2u << 20, 1);  // small: the log must be trimmed as the clone commits
  origin::Replicator replicator(session_config(clone.port()), fast_policy(5), log);
  REQUIRE(replicator.start().is_ok());
  const uint64_t last = produce(log, dir / "source.img", 12u << 20);
  REQUIRE(replicator.wait_durable(last).is_ok());
  REQUIRE(replicator.wait_committed(last).is_ok());
  replicator.stop();
  clone.stop();
  CHECK(clone.failure() == "");
  CHECK(clone.sessions() == 2);
  CHECK(clone.goodbye_received());
  CHECK(clone.pong_received());
  CHECK(clone.applied_seq() == last);
  const std::vector<uint64_t> firsts = clone.first_seq_per_session();
  REQUIRE(firsts.size() == 2);
  CHECK(firsts[0] == 1);
  CHECK(firsts[1] <= 40);  // resumed at the clone's applied position + 1
  const origin::ReplicatorCounters c = replicator.counters();
  CHECK(c.acked_seq == last);
  CHECK(c.committed_seq == last);
  CHECK(c.reconnects == 1);
  CHECK(c.records_sent > last);  // the records after the last ack were sent twice
  CHECK(log.held_bytes() == 0);  // everything committed, everything trimmed
  CHECK(origin_test::read_file(dir / "source.img") == clone.disk());
}

// The producer signals the session only after it announced a read of the log
// (Replicator::on_append): an append to a session asleep in poll must wake it,
// not wait for the poll's timeout (1 s here, the keepalive set longer).
TEST_CASE("a record appended while the session sleeps is sent at once, not at the poll's timeout") {
  origin_test::FakeClone clone(auth_key(), kPair, kDiskBytes, {});
  origin::RetainedLog log(1u << 20, 1);
  origin::SessionConfig config = session_config(clone.port());
  config.keepalive_interval_ms = 5000;
  config.idle_timeout_ms = 20000;
  origin::Replicator replicator(config, fast_policy(5), log);
  REQUIRE(replicator.start().is_ok());
  REQUIRE(replicator.wait_established().is_ok());
  const base::Bytes data(4096, 0x3c);
  uint64_t seq = 1;
  uint64_t slowest_ms = 0;
  for (uint64_t epoch = 1; epoch <= 8; ++epoch) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // the session goes back to poll
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(log.append(std::make_shared<const origin::Record>(
        origin::make_write(seq++, epoch, (epoch - 1) * 4096, data, origin_test::test_digest_key()))));
    REQUIRE(log.append(std::make_shared<const origin::Record>(origin::make_barrier(seq, epoch))));
    REQUIRE(replicator.wait_durable(seq).is_ok());
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    // Nothing more is due from the clone after its committed position, so the
    // next round's append is the only thing that can wake the session.
    REQUIRE(replicator.wait_committed(seq).is_ok());
    ++seq;
    slowest_ms = std::max<uint64_t>(slowest_ms, static_cast<uint64_t>(ms.count()));
  }
  replicator.stop();
  clone.stop();
  CHECK(clone.failure() == "");
  // A lost wake-up costs the rest of a 1,000 ms poll; a round trip through the
  // fake clone is a few ms, under a sanitizer tens.
  CHECK_MESSAGE(slowest_ms < 500, "slowest epoch " << slowest_ms << " ms");
}

TEST_CASE("a final refusal from the authenticated clone stops the client at once with the clone's sentence") {
  // After the handshake the clone's error travels in an authenticated frame:
  // its word, so final for these codes even once (docs/PROTOCOL.md, 6.4).
  for (proto::ErrorCode code : {proto::ErrorCode::disk_mismatch, proto::ErrorCode::pair_mismatch,
                                proto::ErrorCode::protocol, proto::ErrorCode::resync_needed}) {
    CAPTURE(proto::error_code_name(code));
    origin_test::FakeClone::Script script;
    script.refuse = proto::ErrorMsg{code, "the disks differ in size."};
    origin_test::FakeClone clone(auth_key(), kPair, kDiskBytes, script);
    origin::RetainedLog log(1u << 20, 1);
    origin::Replicator replicator(session_config(clone.port()), fast_policy(5), log);
    REQUIRE(replicator.start().is_ok());
    REQUIRE(log.append(std::make_shared<const origin::Record>(origin::make_barrier(1, 1))));
    base::Status s = replicator.wait_durable(1);
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.message().find("the disks differ in size.") != std::string::npos);
    CHECK(s.message().find(proto::error_code_name(code)) != std::string::npos);
    CHECK(replicator.counters().reconnects == 0);
    CHECK(clone.sessions() == 1);
    CHECK(log.closed());  // a blocked producer wakes
  }
}

TEST_CASE("a forged refusal before the handshake authenticated is retried, and the session then completes") {
  for (proto::HelloStatus forged : {proto::HelloStatus::unknown_pair, proto::HelloStatus::version}) {
    CAPTURE(proto::hello_status_name(static_cast<uint16_t>(forged)));
    origin_test::FakeClone::Script script;
    script.forged_refusals = origin::kUnauthenticatedRefusalsMax - 1;
    script.forged_status = forged;
    origin_test::FakeClone clone(auth_key(), kPair, kDiskBytes, script);
    origin::RetainedLog log(1u << 20, 1);
    origin::Replicator replicator(session_config(clone.port()), fast_policy(50), log);
    REQUIRE(replicator.start().is_ok());
    REQUIRE(log.append(std::make_shared<const origin::Record>(origin::make_barrier(1, 1))));
    base::Status s = replicator.wait_durable(1);
    CHECK_MESSAGE(s.is_ok(), s.message());
    CHECK(clone.forged() == origin::kUnauthenticatedRefusalsMax - 1);
    CHECK(clone.sessions() == 1);
    CHECK(replicator.counters().reconnects == origin::kUnauthenticatedRefusalsMax - 1);
  }
}

TEST_CASE("the same refusal before authentication, five times in a row, is final and says what was heard") {
  origin_test::FakeClone::Script script;
  script.forged_refusals = 1000;
  origin_test::FakeClone clone(auth_key(), kPair, kDiskBytes, script);
  origin::RetainedLog log(1u << 20, 1);
  origin::Replicator replicator(session_config(clone.port()), fast_policy(50), log);
  REQUIRE(replicator.start().is_ok());
  base::Status s = replicator.wait_durable(1);
  REQUIRE_FALSE(s.is_ok());
  MESSAGE(s.message());
  CHECK(s.message().find("answered 'unknown_pair' before authenticating 5 times in a row") != std::string::npos);
  CHECK(s.message().find("paired with another original") != std::string::npos);
  CHECK(clone.forged() == origin::kUnauthenticatedRefusalsMax);
  CHECK(replicator.counters().reconnects == origin::kUnauthenticatedRefusalsMax - 1);
  // A streak is of one answer: another answer, or a busy clone, starts it anew.
  origin::RefusalStreak streak;
  for (int i = 0; i < 4; ++i) CHECK_FALSE(streak.final_after("unknown_pair"));
  CHECK_FALSE(streak.final_after("version"));
  CHECK_FALSE(streak.final_after(""));
  for (int i = 0; i < 4; ++i) CHECK_FALSE(streak.final_after("version"));
  CHECK(streak.final_after("version"));
}

TEST_CASE("a busy clone is retried with backoff until the attempts run out") {
  origin_test::FakeClone::Script script;
  script.refuse = proto::ErrorMsg{proto::ErrorCode::busy, "another original is connected."};
  origin_test::FakeClone clone(auth_key(), kPair, kDiskBytes, script);
  origin::RetainedLog log(1u << 20, 1);
  origin::Replicator replicator(session_config(clone.port()), fast_policy(3), log);
  REQUIRE(replicator.start().is_ok());
  base::Status s = replicator.wait_durable(1);
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.message().find("gave up after 3 failed attempts") != std::string::npos);
  CHECK(s.message().find("another original is connected.") != std::string::npos);
  CHECK(clone.sessions() == 3);
  CHECK(replicator.counters().reconnects == 2);
}

// CI, stop 25: a clone's answer that followed its hello in the same read
// went to the hello's handler and was taken for a broken protocol.
TEST_CASE("a maintenance link hands on what arrives in the same read as the clone's hello") {
  origin_test::FakeClone::Script script;
  base::Bytes state, done;
  proto::encode_resync_state({2, kDiskBytes, kDiskBytes, true}, state);
  proto::encode_resync_done({2, 10, 3}, done);
  script.after_hello = {state, done};
  origin_test::FakeClone clone(auth_key(), kPair, kDiskBytes, script);
  origin::MaintenanceLink link;
  proto::Hello clone_hello;
  REQUIRE(link.open(session_config(clone.port()), clone_hello).is_ok());
  CHECK(clone_hello.generation == 1);
  base::Bytes got;  // in order, each to the wait that asks for it
  REQUIRE(link.wait_for(proto::MsgType::resync_state, got).is_ok());
  proto::ResyncState st;
  REQUIRE(proto::decode_resync_state(got, st).is_ok());
  CHECK(st.cursor_bytes == kDiskBytes);
  REQUIRE(link.wait_for(proto::MsgType::resync_done, got).is_ok());
  proto::ResyncDone d;
  REQUIRE(proto::decode_resync_done(got, d).is_ok());
  CHECK(d.generation == 2);
  CHECK(d.seq == 10);
  link.close();
}

TEST_CASE("nobody listening: the client gives up after its attempts with a sentence") {
  uint16_t port = 0;
  {
    origin_test::FakeClone probe(auth_key(), kPair, kDiskBytes, {});
    port = probe.port();
  }  // closed again: connecting is refused now
  origin::RetainedLog log(1u << 20, 1);
  origin::Replicator replicator(session_config(port), fast_policy(2), log);
  REQUIRE(replicator.start().is_ok());
  base::Status s = replicator.wait_durable(1);
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.message().find("cannot connect") != std::string::npos);
}

TEST_CASE("a clone that needs a record the original no longer holds: resync needed, told to the clone") {
  origin_test::FakeClone::Script script;
  script.applied_seq = 10;
  script.applied_epoch = 2;
  origin_test::FakeClone clone(auth_key(), kPair, kDiskBytes, script);
  origin::RetainedLog log(1u << 20, 50);  // holds records from 50 on
  REQUIRE(log.append(std::make_shared<const origin::Record>(origin::make_barrier(50, 9))));
  origin::Replicator replicator(session_config(clone.port()), fast_policy(5), log);
  REQUIRE(replicator.start().is_ok());
  base::Status s = replicator.wait_durable(50);
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.message().find("resync needed") != std::string::npos);
  clone.stop();
  REQUIRE(clone.error_received().has_value());
  CHECK(clone.error_received()->code == proto::ErrorCode::resync_needed);
}

// The original forgets its records up to the committed record a clone's
// hello names; one past what it has applied would drop records it needs.
TEST_CASE("a clone whose hello says it committed more than it applied is refused; the log keeps its records") {
  origin_test::FakeClone::Script script;
  script.applied_seq = 10;
  script.applied_epoch = 2;
  script.committed_seq = 40;
  origin_test::FakeClone clone(auth_key(), kPair, kDiskBytes, script);
  origin::RetainedLog log(1u << 20, 1);
  for (uint64_t seq = 1; seq <= 50; ++seq)
    REQUIRE(log.append(std::make_shared<const origin::Record>(origin::make_barrier(seq, seq))));
  origin::Replicator replicator(session_config(clone.port()), fast_policy(2), log);
  REQUIRE(replicator.start().is_ok());
  base::Status s = replicator.wait_durable(50);
  REQUIRE_FALSE(s.is_ok());
  CHECK_MESSAGE(s.message().find("its store holds record 40 but it has applied only 10") != std::string::npos,
                s.message());
  CHECK(log.start_seq() == 1);
  clone.stop();
  REQUIRE(clone.error_received().has_value());
  CHECK(clone.error_received()->code == proto::ErrorCode::protocol);
}

TEST_CASE("test hooks: a raw session sends chosen records and reads the answers") {
  origin_test::FakeClone clone(auth_key(), kPair, kDiskBytes, {});
  proto::Hello hello;
  auto raw = origin::testing::open_raw_session(session_config(clone.port()), 1, 1, &hello);
  REQUIRE(raw.is_ok());
  CHECK(hello.role == proto::Role::clone);
  base::Bytes payload(4096, 0x11);
  REQUIRE((*raw)->send_record(origin::testing::write_header(1, 1, 8192, payload, origin_test::test_digest_key()),
                              payload).is_ok());
  proto::RecordHeader barrier;
  barrier.type = proto::MsgType::barrier;
  barrier.seq = 2;
  barrier.epoch = 1;
  REQUIRE((*raw)->send_record(barrier).is_ok());
  base::Bytes plain;
  REQUIRE((*raw)->receive_until(proto::MsgType::barrier_ack, plain).is_ok());
  uint64_t epoch = 0, seq = 0;
  REQUIRE(proto::decode_barrier_ack(plain, epoch, seq).is_ok());
  CHECK(seq == 2);
  raw->reset();  // the fake serves one connection at a time
  // A replayed handshake: the exact bytes of an earlier one fail against a fresh server nonce.
  auto fd = origin::testing::connect("127.0.0.1", clone.port());
  REQUIRE(fd.is_ok());
  auto hs = origin::testing::handshake(fd->get(), auth_key(), kPair);
  REQUIRE(hs.is_ok());
  CHECK(hs->client_bytes.size() == proto::kClientHelloBytes + proto::kClientFinishBytes);
  CHECK(origin::testing::frame_length_prefix(0x01020304) == base::Bytes{4, 3, 2, 1});
}
