// SPDX-License-Identifier: MIT
// Maintenance over fakes: its LinkPort and host record what it does, the
// machine, the disk workers and the store worker are real over memory.
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "blockio/memory_device.h"
#include "cloned/daemon/conn.h"
#include "cloned/daemon/maintenance.h"
#include "proto/resync.h"
#include "test/support/temp_dir.h"

namespace {

constexpr uint64_t kDisk = 1 << 20;

struct FakeLink final : cloned::LinkPort, cloned::MaintenanceHost {
  std::vector<proto::MsgType> sent;
  std::vector<proto::ErrorCode> errors;
  std::vector<std::string> closed;
  void send_plain(cloned::Conn*, const base::Bytes& plain) override {
    base::Result<proto::MsgType> t = proto::peek_type(plain);
    REQUIRE(t.is_ok());
    sent.push_back(*t);
  }
  void send_error(cloned::Conn*, proto::ErrorCode code, const std::string&) override { errors.push_back(code); }
  void close_conn(cloned::Conn*, const std::string& why) override { closed.push_back(why); }
  void record_event(const std::string&, const std::string&, const std::string&) override {}
  void apply(apply::Actions&) override {}
  apply::StageRoom stage_room() override { return {}; }
  void keep_frame(apply::RecordId, proto::Frame) override {}
};

proto::Frame frame_of(const base::Bytes& plain) {
  proto::Frame f;
  f.storage = base::AlignedBuffer(proto::kFramePlainOffset + plain.size());
  f.plain_bytes = plain.size();
  std::memcpy(f.plain_data(), plain.data(), plain.size());
  return f;
}

proto::Frame digest_request(uint64_t id, uint64_t offset, uint32_t count) {
  base::Bytes out;
  proto::encode_digest_request({id, offset, 65536, count}, out);
  return frame_of(out);
}

cloned::Completion next_digest(cloned::Completions& done) {
  for (int i = 0; i < 2000; ++i) {
    for (cloned::Completion& c : done.take_all())
      if (c.kind == cloned::Completion::Kind::digest) return std::move(c);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  FAIL("no digest completion within 2 s");
  return {};
}

// Everything a Maintenance needs, over memory.
struct Rig {
  test_support::TempDir dir{"maintenance_test"};
  blockio::MemoryDevice device{kDisk, 512};
  apply::Machine machine{device.geometry(), apply::ReplicaState{}, apply::Limits{}};
  cloned::Completions done;
  const digest::DigestKey key{1};
  cloned::DiskWorkers disk{device, key, 1, done};
  std::unique_ptr<store::Store> store = open_store();
  std::unique_ptr<cloned::StoreWorker> store_worker = std::make_unique<cloned::StoreWorker>(*store, done);
  FakeLink link;
  cloned::Maintenance maintenance{link, link, machine, device.geometry(), disk, *store_worker};
  cloned::Conn conn;

  // A maintenance session the machine has answered (nothing is taken before).
  bool in_session = open_machine_session();

  bool open_machine_session() {
    proto::Hello h;
    h.role = proto::Role::original;
    h.pair_id = machine.replica().pair_id;
    h.flags = proto::kHelloMaintenance;
    h.disk_size_bytes = kDisk;
    h.logical_block_bytes = 512;
    h.generation = machine.replica().generation;
    h.log_start_seq = 1;
    apply::Actions a;
    machine.start_session(h, a);
    if (!a.commits.empty()) {
      apply::Actions b;
      machine.on_commit_done(base::Status::ok(), b);
    }
    REQUIRE(machine.in_session());
    return true;
  }

  std::unique_ptr<store::Store> open_store() {
    REQUIRE(dir.ok());
    auto opened = store::Store::open(dir.path(), store::OpenMode::read_write, proto::PairId{}, "memory");
    REQUIRE_MESSAGE(opened.is_ok(), opened.status().message());
    return std::move(opened).value();
  }
};

}  // namespace

// Found in review: while the machine held a hello back (the disk busy), a
// digest request was read and answered before the clone's hello.
TEST_CASE("nothing before the clone's hello: a digest request then is a protocol error and nothing is read") {
  Rig r;
  apply::Actions a;
  r.machine.end_session(a);
  REQUIRE_FALSE(r.machine.in_session());
  r.maintenance.session_started();
  proto::Frame f = digest_request(1, 0, 1);
  r.maintenance.on_frame(&r.conn, proto::MsgType::digest_request, f);
  REQUIRE(r.link.errors.size() == 1);
  CHECK(r.link.errors[0] == proto::ErrorCode::protocol);
  REQUIRE(r.link.closed.size() == 1);
  CHECK(r.link.closed[0].find("before the clone answered the hello") != std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(r.done.take_all().empty());
}

TEST_CASE("a digest request outside the disk is refused as out of range and nothing is read") {
  Rig r;
  r.maintenance.session_started();
  proto::Frame f = digest_request(1, kDisk - 65536, 2);  // the second extent starts at the disk's end
  r.maintenance.on_frame(&r.conn, proto::MsgType::digest_request, f);
  REQUIRE(r.link.errors.size() == 1);
  CHECK(r.link.errors[0] == proto::ErrorCode::out_of_range);
  CHECK(r.link.closed.size() == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(r.done.take_all().empty());
}

TEST_CASE("out-of-sync ranges reach the store; one outside the disk is a protocol error") {
  Rig r;
  r.maintenance.session_started();
  for (uint64_t offset : {uint64_t{0}, uint64_t{8192}, kDisk - 4096}) {
    base::Bytes out;
    proto::encode_out_of_sync(offset, 4096, out);
    proto::Frame f = frame_of(out);
    r.maintenance.on_frame(&r.conn, proto::MsgType::out_of_sync, f);
  }
  CHECK(r.link.errors.empty());
  base::Bytes out;
  proto::encode_out_of_sync(kDisk - 4096, 8192, out);  // past the disk's end
  proto::Frame f = frame_of(out);
  r.maintenance.on_frame(&r.conn, proto::MsgType::out_of_sync, f);
  REQUIRE(r.link.errors.size() == 1);
  CHECK(r.link.errors[0] == proto::ErrorCode::protocol);
  CHECK(r.link.closed.size() == 1);
  r.store_worker.reset();  // its jobs done
  CHECK(r.store->out_of_sync_count().value() == 3);
}

TEST_CASE("a digest reply goes to the session that asked, not to the next one") {
  Rig r;
  r.maintenance.session_started();
  proto::Frame f = digest_request(1, 0, 2);
  r.maintenance.on_frame(&r.conn, proto::MsgType::digest_request, f);
  cloned::Completion old = next_digest(r.done);
  r.maintenance.session_started();  // the asking session is gone
  r.maintenance.on_digest_done(&r.conn, old);
  CHECK(r.link.sent.empty());
  proto::Frame g = digest_request(2, 65536, 1);
  r.maintenance.on_frame(&r.conn, proto::MsgType::digest_request, g);
  cloned::Completion now = next_digest(r.done);
  r.maintenance.on_digest_done(&r.conn, now);
  REQUIRE(r.link.sent.size() == 1);
  CHECK(r.link.sent[0] == proto::MsgType::digest_reply);
  CHECK(r.link.errors.empty());
}

TEST_CASE("a session's end drops its digest scans still queued, and the next session's run") {
  Rig r;
  r.maintenance.session_started();
  r.maintenance.session_ended();
  // A request of the ended session's serial, as one still queued would be.
  proto::Frame f = digest_request(1, 0, 2);
  r.maintenance.on_frame(&r.conn, proto::MsgType::digest_request, f);
  cloned::Completion old = next_digest(r.done);
  CHECK(old.status.code() == ECANCELED);
  CHECK(old.digests.empty());
  r.maintenance.on_digest_done(nullptr, old);
  r.maintenance.session_started();
  proto::Frame g = digest_request(2, 65536, 1);
  r.maintenance.on_frame(&r.conn, proto::MsgType::digest_request, g);
  cloned::Completion now = next_digest(r.done);
  REQUIRE(now.status.is_ok());
  r.maintenance.on_digest_done(&r.conn, now);
  REQUIRE(r.link.sent.size() == 1);
  CHECK(r.link.sent[0] == proto::MsgType::digest_reply);
  CHECK(r.link.errors.empty());
}

TEST_CASE("more digest requests outstanding than the bound is a protocol error") {
  Rig r;
  r.maintenance.session_started();
  for (uint64_t i = 0; i < 16; ++i) {
    proto::Frame f = digest_request(i, 0, 1);
    r.maintenance.on_frame(&r.conn, proto::MsgType::digest_request, f);
  }
  CHECK(r.link.errors.empty());
  proto::Frame f = digest_request(16, 0, 1);
  r.maintenance.on_frame(&r.conn, proto::MsgType::digest_request, f);
  REQUIRE(r.link.errors.size() == 1);
  CHECK(r.link.errors[0] == proto::ErrorCode::protocol);
  CHECK(r.link.closed.size() == 1);
}

TEST_CASE("a message only the clone sends is refused as a protocol error") {
  Rig r;
  base::Bytes out;
  proto::encode_resync_mark_ack(7, out);
  proto::Frame f = frame_of(out);
  r.maintenance.on_frame(&r.conn, proto::MsgType::resync_mark_ack, f);
  REQUIRE(r.link.errors.size() == 1);
  CHECK(r.link.errors[0] == proto::ErrorCode::protocol);
  CHECK(r.link.closed.size() == 1);
  CHECK(r.link.sent.empty());
}

TEST_CASE("the original's progress reports become the status line, and the end stops it") {
  Rig r;
  base::Bytes out;
  proto::encode_progress({proto::ProgressKind::verify, 10, 100}, out);
  proto::Frame f = frame_of(out);
  r.maintenance.on_frame(&r.conn, proto::MsgType::progress, f);
  CHECK(r.maintenance.progress().active());
  CHECK(r.maintenance.progress().line().rfind("verify 10.0%", 0) == 0);
  out.clear();
  proto::encode_progress({proto::ProgressKind::verify, 100, 100}, out);
  proto::Frame g = frame_of(out);
  r.maintenance.on_frame(&r.conn, proto::MsgType::progress, g);
  CHECK_FALSE(r.maintenance.progress().active());
  CHECK(r.link.errors.empty());
}
