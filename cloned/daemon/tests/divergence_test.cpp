// SPDX-License-Identifier: MIT
// The DivergenceGuard over a memory disk, the real machine and a fake host
// that completes the machine's commits at once.
#include <doctest/doctest.h>

#include <cstring>

#include "base/aligned_buffer.h"
#include "blockio/memory_device.h"
#include "cloned/daemon/divergence.h"
#include "test/support/temp_dir.h"

namespace {

constexpr uint64_t kDisk = 4ull << 20;

struct FakeHost final : cloned::DivergenceHost {
  apply::Machine* machine = nullptr;
  std::vector<std::string> event_kinds;
  void apply(apply::Actions& a) override {
    for (size_t i = 0; i < a.commits.size(); ++i) {
      apply::Actions more;
      machine->on_commit_done(base::Status::ok(), more);
      apply(more);
    }
  }
  void record_event(const std::string&, const std::string& kind, const std::string&) override {
    event_kinds.push_back(kind);
  }
};

struct Rig {
  explicit Rig(bool enabled) : guard(enabled, host, device, key, machine, *store_worker) { host.machine = &machine; }
  test_support::TempDir dir{"divergence_test"};
  blockio::MemoryDevice device{kDisk, 512};
  apply::Machine machine{device.geometry(), apply::ReplicaState{}, apply::Limits{}};
  cloned::Completions done;
  std::unique_ptr<store::Store> store = open_store();
  std::unique_ptr<cloned::StoreWorker> store_worker = std::make_unique<cloned::StoreWorker>(*store, done);
  FakeHost host;
  const digest::DigestKey key{3};
  cloned::DivergenceGuard guard;

  std::unique_ptr<store::Store> open_store() {
    REQUIRE(dir.ok());
    auto opened = store::Store::open(dir.path(), store::OpenMode::read_write, proto::PairId{}, "memory");
    REQUIRE_MESSAGE(opened.is_ok(), opened.status().message());
    return std::move(opened).value();
  }
  void scribble(uint64_t offset) {  // a write behind the daemon's back
    base::AlignedBuffer b(4096);
    std::memset(b.data(), 0x5a, 4096);
    REQUIRE(device.write(offset, b.span()).is_ok());
  }
};

}  // namespace

TEST_CASE("the first check records a baseline; a change behind the daemon's back makes the clone Diverged") {
  Rig r(true);
  CHECK(r.guard.check("at startup"));
  CHECK(r.machine.fingerprint_valid());
  CHECK(r.guard.check("again"));  // unchanged
  r.scribble(0);
  CHECK_FALSE(r.guard.check("before this session's first write"));
  CHECK(r.machine.replica().state == proto::CloneState::diverged);
  REQUIRE(r.host.event_kinds.size() == 1);
  CHECK(r.host.event_kinds[0] == "diverged");
  CHECK_FALSE(r.guard.check("later"));  // stays Diverged, not compared again
}

TEST_CASE("a session invalidates the fingerprint; once the disk is quiet a new baseline is taken") {
  Rig r(true);
  REQUIRE(r.guard.check("at startup"));
  r.guard.invalidate();
  CHECK_FALSE(r.machine.fingerprint_valid());
  r.guard.refresh_if_quiet(/*stopping=*/true);
  CHECK_FALSE(r.machine.fingerprint_valid());  // not while stopping: save_final() does it
  r.scribble(kDisk - 4096);                    // written by "the session": ours
  r.guard.refresh_if_quiet(false);
  CHECK(r.machine.fingerprint_valid());
  CHECK(r.guard.check("at the next start"));  // the new baseline includes our write
  CHECK(r.host.event_kinds.empty());
}

TEST_CASE("with detection off nothing is recorded or decided") {
  Rig r(false);
  CHECK(r.guard.check("at startup"));
  CHECK_FALSE(r.machine.fingerprint_valid());
  r.scribble(0);
  CHECK(r.guard.check("before this session's first write"));
  CHECK(r.machine.replica().state != proto::CloneState::diverged);
}
