// SPDX-License-Identifier: MIT
// The DivergenceGuard over a memory disk, the real machine and a fake host
// that completes the machine's commits at once.
#include <doctest/doctest.h>

#include <cstring>

#include "base/aligned_buffer.h"
#include "blockio/faulty_device.h"
#include "blockio/memory_device.h"
#include "cloned/daemon/divergence.h"
#include "test/support/temp_dir.h"

namespace {

using Check = cloned::DivergenceGuard::Check;
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
  // A memory disk with a write cache: what is not flushed is lost in a power cut.
  blockio::FaultyDevice device{std::make_unique<blockio::MemoryDevice>(kDisk, 512), 1};
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
  CHECK(r.guard.check("at startup") == Check::go_on);
  CHECK(r.machine.fingerprint_valid());
  CHECK(r.guard.check("again") == Check::go_on);  // unchanged
  r.scribble(0);
  CHECK(r.guard.check("before this session's first write") == Check::diverged);
  CHECK(r.machine.replica().state == proto::CloneState::diverged);
  REQUIRE(r.host.event_kinds.size() == 1);
  CHECK(r.host.event_kinds[0] == "diverged");
  CHECK(r.guard.check("later") == Check::diverged);  // stays Diverged, not compared again
}

TEST_CASE("a session invalidates the fingerprint; once the disk is quiet a new baseline is taken") {
  Rig r(true);
  REQUIRE(r.guard.check("at startup") == Check::go_on);
  r.guard.invalidate();
  CHECK_FALSE(r.machine.fingerprint_valid());
  r.guard.refresh_if_quiet(/*stopping=*/true);
  CHECK_FALSE(r.machine.fingerprint_valid());  // not while stopping: save_final() does it
  r.scribble(kDisk - 4096);                    // written by "the session": ours
  r.guard.refresh_if_quiet(false);
  CHECK(r.machine.fingerprint_valid());
  CHECK(r.guard.check("at the next start") == Check::go_on);  // the new baseline includes our write
  CHECK(r.host.event_kinds.empty());
}

TEST_CASE("with detection off nothing is recorded or decided") {
  Rig r(false);
  CHECK(r.guard.check("at startup") == Check::go_on);
  CHECK_FALSE(r.machine.fingerprint_valid());
  r.scribble(0);
  CHECK(r.guard.check("before this session's first write") == Check::go_on);
  CHECK(r.machine.replica().state != proto::CloneState::diverged);
}

// A fingerprint of an earlier run (detection on) must not outlive writes made
// while detection was off: turned on again, it would find our own writes.
TEST_CASE("with detection off a session still invalidates the fingerprint an earlier run recorded") {
  Rig r(false);
  apply::Actions a;
  r.machine.set_fingerprint(base::Bytes{1, 2, 3}, a);  // as the store kept it
  r.host.apply(a);
  REQUIRE(r.machine.fingerprint_valid());
  r.guard.invalidate();
  CHECK_FALSE(r.machine.fingerprint_valid());
}

// Writes the disk completed but holds in its cache are not in a baseline
// until flushed: a power cut that lost them was read as a change outside
// cloned (a false Diverged) when the baseline was taken before the flush.
TEST_CASE("a baseline is taken after a flush: a power cut then finds the disk as recorded") {
  Rig r(true);
  REQUIRE(r.guard.check("at startup") == Check::go_on);
  r.guard.invalidate();
  r.scribble(0);  // the session's last write, completed, not flushed
  r.guard.refresh_if_quiet(false);
  REQUIRE(r.machine.fingerprint_valid());
  r.device.power_cut(blockio::PowerCutMode::drop_unflushed);
  r.device.revive();
  CHECK(r.guard.check("at the next start") == Check::go_on);
  CHECK(r.host.event_kinds.empty());
}

// A disk that cannot be read when a session opens: the fingerprint stays to
// be compared, and the session is refused (link_session.cpp), rather than let
// writes make it stale over a change nobody compared.
TEST_CASE("a disk that cannot be read keeps its fingerprint and is not taken as unchanged") {
  Rig r(true);
  REQUIRE(r.guard.check("at startup") == Check::go_on);
  r.device.power_cut(blockio::PowerCutMode::drop_unflushed);  // every read fails now
  CHECK(r.guard.check("before this session's first write") == Check::unreadable);
  CHECK(r.machine.fingerprint_valid());
  CHECK(r.machine.replica().state != proto::CloneState::diverged);
  r.device.revive();
  r.scribble(0);  // changed meanwhile: still found
  CHECK(r.guard.check("when it can be read again") == Check::diverged);
}
