// SPDX-License-Identifier: MIT
// Level 3, black box: the Diverged state with the real cloned, clonectl and
// clone-origin (issue 3, part 6). The clone's disk image is changed behind the
// daemon's back the way a person would: mounted read-write (ext4 through the
// kernel's loop mount, NTFS with ntfs-3g) and a file touched, or its partition
// table edited with sfdisk. The daemon must then refuse every write until a
// decision. Needs root (mount, losetup); mkfs.ext4, mkfs.ntfs, ntfs-3g and
// sfdisk come from scripts/setup.sh.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <thread>

#include "test/support/harness.h"
#include "test/support/requires.h"

using harness::Process;
using harness::TempDir;

namespace {

constexpr uint64_t kDisk = 128ull << 20;
// The doctest suite of the cases that mount the clone's image (meson test
// e2e-diverged-mounts); the rest run anywhere (e2e-diverged).
constexpr const char* kNeedsMounts = "requires root and disk tools";

int sh(const std::string& command, std::string& out) {
  return harness::run({"/bin/sh", "-c", command + " 2>&1"}, out, 120000);
}

struct Clone {
  const TempDir& d;
  harness::Pair pair;
  std::unique_ptr<Process> cloned;

  Clone(const TempDir& dir, const std::map<std::string, std::string>& clone_over = {}) : d(dir) {
    pair = harness::make_pair(d.path(), d / "clone.img", clone_over);
    REQUIRE(!pair.clone_config.empty());
  }
  void start() {
    cloned = std::make_unique<Process>(
        std::vector<std::string>{harness::binary("CLONED_BIN"), "--config", pair.clone_config}, d / "cloned.log");
    REQUIRE_MESSAGE(harness::wait_for_listener(pair.port, 10000), harness::read_file(d / "cloned.log"));
  }
  void stop() {
    cloned->signal(SIGTERM);
    CHECK(cloned->wait(30000) == 0);
    cloned.reset();
  }
  std::string ctl(const std::vector<std::string>& args, int* code = nullptr) {
    std::vector<std::string> a = {harness::binary("CLONECTL_BIN")};
    a.insert(a.end(), args.begin(), args.end());
    a.insert(a.begin() + 2, {"--config", pair.clone_config});
    std::string out;
    const int c = harness::run(a, out);
    if (code) *code = c;
    return out;
  }
  int origin(const std::vector<std::string>& args, std::string& out) {
    std::vector<std::string> a = {harness::binary("ORIGIN_BIN"), "--config", pair.origin_config};
    a.insert(a.end(), args.begin(), args.end());
    return harness::run(a, out, 300000);
  }
};

// A partition table written behind the daemon's back (one MBR entry).
void write_partition_entry(const std::string& image) {
  std::fstream img(image, std::ios::in | std::ios::out | std::ios::binary);
  const unsigned char entry[16] = {0, 0, 0, 0, 0x83, 0, 0, 0, 0x00, 0x08, 0, 0, 0x00, 0x10, 0, 0};
  img.seekp(446);
  img.write(reinterpret_cast<const char*>(entry), sizeof entry);
  img.seekp(510);
  img.write("\x55\xaa", 2);
  REQUIRE(img.good());
}

// Mounts `image` read-write (through a loop device), touches a file, unmounts.
void touch_a_file(const TempDir& d, const std::string& mount_command) {
  std::string out;
  REQUIRE(sh("mkdir -p " + d / "mnt", out) == 0);
  REQUIRE_MESSAGE(sh(mount_command + " " + d / "mnt", out) == 0, out);
  const int touched = sh("echo hello > " + d / "mnt/changed-on-the-clone && sync", out);
  std::string ignored;
  sh("umount " + d / "mnt", ignored);
  REQUIRE_MESSAGE(touched == 0, out);
}

// The Diverged story: the daemon stopped cleanly (a valid fingerprint), the
// disk changed, the daemon started: Diverged, writes refused, nothing written.
void expect_diverged(Clone& c, const std::string& what) {
  c.start();
  std::string status;
  for (int i = 0; i < 50; ++i) {  // the start's check runs right after the listener opens
    status = c.ctl({"status"});
    if (status.find("DIVERGED") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK_MESSAGE(status.find("DIVERGED") != std::string::npos, status);
  CHECK_MESSAGE(status.find(what) != std::string::npos, status);
  // Invariant 8: the health assessment says so too (its poll follows the state).
  std::string health;
  for (int i = 0; i < 100; ++i) {
    health = c.ctl({"health"});
    if (health.find("The clone is DIVERGED") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK_MESSAGE(health.find("The clone is DIVERGED") != std::string::npos, health);
  std::string out;
  REQUIRE(harness::make_zero_file(c.d / "other.img", kDisk));
  const std::string before = c.d / "clone.before";
  REQUIRE(sh("cp " + c.d / "clone.img" + " " + before, out) == 0);
  const int code = c.origin({"workload", "--source", c.d / "other.img", "--seed", "1", "--bytes", "4M"}, out);
  CHECK(code == 1);
  CHECK_MESSAGE(out.find("clonectl decide") != std::string::npos, out);
  CHECK(harness::files_equal(c.d / "clone.img", before));
  // A resync that does not say it discards the clone's changes is refused too.
  std::string r;
  CHECK(c.origin({"resync", "--source", c.d / "source.img"}, r) == 1);
  CHECK(harness::files_equal(c.d / "clone.img", before));
}

}  // namespace

TEST_CASE("ext4 mounted read-write behind the daemon's back: Diverged, no writes until a decision, then a resync" *
          doctest::test_suite(kNeedsMounts)) {
  test_support::require({test_support::loop_devices(), test_support::program("mkfs.ext4", "e2fsprogs")});
  TempDir d;
  std::string out;
  REQUIRE(harness::make_zero_file(d / "clone.img", kDisk));
  REQUIRE_MESSAGE(sh("mkfs.ext4 -q -F " + d / "clone.img", out) == 0, out);
  REQUIRE(sh("cp " + d / "clone.img" + " " + d / "source.img", out) == 0);
  Clone c(d);
  c.start();
  c.stop();  // the clean stop records the fingerprint
  touch_a_file(d, "mount -o loop " + d / "clone.img");
  expect_diverged(c, "ext4");
  // The running daemon takes the decision over its control socket.
  int code = 0;
  out = c.ctl({"decide", "keep-diverged"}, &code);
  CHECK_MESSAGE(code == 0, out);
  CHECK(out.find("recorded: keep-diverged") != std::string::npos);
  std::string status = c.ctl({"status"});
  CHECK(status.find("DIVERGED") != std::string::npos);
  CHECK(status.find("decision:   keep-diverged") != std::string::npos);
  // Kept: the same changes do not alarm again after a restart, and nothing is written.
  c.stop();
  c.start();
  CHECK(c.origin({"workload", "--source", d / "source.img", "--seed", "1", "--bytes", "4M"}, out) == 1);
  out = c.ctl({"decide", "discard-clone-changes"}, &code);
  CHECK_MESSAGE(code == 0, out);
  // Now the log is refused until a resync, and the resync is taken.
  CHECK(c.origin({"workload", "--source", d / "source.img", "--seed", "1", "--bytes", "4M"}, out) == 1);
  CHECK_MESSAGE(out.find("resync") != std::string::npos, out);
  CHECK_MESSAGE(c.origin({"resync", "--source", d / "source.img"}, out) == 0, out);
  CHECK(harness::files_equal(d / "source.img", d / "clone.img"));
  CHECK_MESSAGE(
      c.origin({"workload", "--source", d / "source.img", "--seed", "2", "--bytes", "8M", "--compare", d / "clone.img"},
               out) == 0,
      out);
  status = c.ctl({"status"});
  CHECK_MESSAGE(status.find("a bootable copy") != std::string::npos, status);
  std::string events = c.ctl({"events"});
  CHECK(events.find("diverged") != std::string::npos);
  CHECK(events.find("decision") != std::string::npos);
  // Invariant 8: the original's health reports said Diverged, then
  // inconsistent until the resync, and that each ended. The resync ended
  // within a minute of the decision, inside the gap between state polls:
  // a restart's first poll reports it at once (else the gap's end would).
  c.stop();
  c.start();
  CHECK(c.origin({"health", "--collect-ms", "3000"}, out) == 0);
  for (const char* said : {"The clone is DIVERGED", "The clone is inconsistent", "Cleared (cloned.diverged",
                           "Cleared (cloned.inconsistent"})
    CHECK_MESSAGE(out.find(said) != std::string::npos, said << " in:\n" << out);
  c.stop();
}

TEST_CASE("NTFS mounted read-write with ntfs-3g behind the daemon's back: Diverged" *
          doctest::test_suite(kNeedsMounts)) {
  test_support::require({test_support::root(), test_support::program("mkfs.ntfs", "ntfs-3g"),
                         test_support::program("ntfs-3g", "ntfs-3g"),
                         test_support::device("/dev/fuse", "for ntfs-3g")});
  TempDir d;
  std::string out;
  REQUIRE(harness::make_zero_file(d / "clone.img", kDisk));
  REQUIRE_MESSAGE(sh("mkfs.ntfs -F -Q -q " + d / "clone.img", out) == 0, out);
  REQUIRE(sh("cp " + d / "clone.img" + " " + d / "source.img", out) == 0);
  Clone c(d);
  c.start();
  c.stop();
  touch_a_file(d, "ntfs-3g " + d / "clone.img");
  expect_diverged(c, "NTFS");
  c.stop();
  // With the daemon stopped, clonectl records the decision in the store itself.
  int code = 0;
  out = c.ctl({"decide", "discard-clone-changes"}, &code);
  CHECK_MESSAGE(code == 0, out);
  CHECK(out.find("waits for a resync") != std::string::npos);
  c.start();
  CHECK_MESSAGE(c.origin({"resync", "--source", d / "source.img"}, out) == 0, out);
  CHECK(harness::files_equal(d / "source.img", d / "clone.img"));
  c.stop();
}

TEST_CASE("a partition table edited behind the daemon's back: Diverged; a discarding resync is taken where allowed" *
          doctest::test_suite(kNeedsMounts)) {
  test_support::require({test_support::root(), test_support::program("sfdisk", "fdisk")});
  TempDir d;
  std::string out;
  REQUIRE(harness::make_zero_file(d / "clone.img", kDisk));
  REQUIRE_MESSAGE(sh("printf 'label: gpt\\n,64M,L\\n,,L\\n' | sfdisk -q " + d / "clone.img", out) == 0, out);
  REQUIRE(sh("cp " + d / "clone.img" + " " + d / "source.img", out) == 0);
  Clone c(d, {{"resync.allow_remote_discard", "true"}});
  c.start();
  c.stop();
  REQUIRE_MESSAGE(sh("sfdisk -q --part-type " + d / "clone.img" + " 2 S", out) == 0, out);  // Linux swap
  expect_diverged(c, "partition");
  // This clone's configuration lets the original discard its changes.
  CHECK_MESSAGE(c.origin({"resync", "--source", d / "source.img", "--discard-clone-changes"}, out) == 0, out);
  CHECK(harness::files_equal(d / "source.img", d / "clone.img"));
  CHECK(c.ctl({"status"}).find("a bootable copy") != std::string::npos);
  c.stop();
}

TEST_CASE("an untouched disk is not Diverged across stops, starts and sessions") {
  TempDir d;
  std::string out;
  REQUIRE(harness::make_zero_file(d / "clone.img", kDisk));
  REQUIRE(harness::make_zero_file(d / "source.img", kDisk));
  Clone c(d);
  for (int i = 0; i < 3; ++i) {
    c.start();
    CHECK_MESSAGE(c.origin({"workload", "--source", d / "source.img", "--seed", std::to_string(i + 1), "--bytes", "4M",
                            "--compare", d / "clone.img"},
                           out) == 0,
                  out);
    c.stop();
  }
  c.start();
  const std::string status = c.ctl({"status"});
  CHECK_MESSAGE(status.find("a bootable copy") != std::string::npos, status);
  c.stop();
  const std::string log = harness::read_file(d / "cloned.log");
  CHECK(log.find("DIVERGED") == std::string::npos);
  CHECK(log.find("fingerprint of the disk checked at startup: 0 difference(s)") != std::string::npos);
}

// clonectl decide with no daemon answering writes the store itself. A daemon
// that is starting has loaded the state, or is about to, and would write it
// back without the decision: it holds the state lock from before it loads, so
// decide waits for it to listen and gives it the decision. Here the test
// holds that lock first, as a slow start would, and lets it go after a while.
TEST_CASE("clonectl decide while cloned starts: the decision goes to the daemon once it listens") {
  TempDir d;
  REQUIRE(harness::make_zero_file(d / "clone.img", kDisk));
  Clone c(d);
  c.start();
  c.stop();  // a valid fingerprint
  write_partition_entry(d / "clone.img");
  const std::string lock_path = d / "clone/state/cloned.lock";
  int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(lock >= 0);
  REQUIRE(::flock(lock, LOCK_EX) == 0);
  auto cloned = std::make_unique<Process>(
      std::vector<std::string>{harness::binary("CLONED_BIN"), "--config", c.pair.clone_config}, d / "cloned.log");
  Process decide({harness::binary("CLONECTL_BIN"), "decide", "--config", c.pair.clone_config, "keep-diverged"},
                 d / "decide.log");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK_MESSAGE(decide.running(), harness::read_file(d / "decide.log"));  // it waits: the state is the daemon's
  ::close(lock);  // the daemon goes on: it loads, finds the disk Diverged, listens
  CHECK(decide.wait(30000) == 0);
  CHECK_MESSAGE(harness::read_file(d / "decide.log").find("recorded: keep-diverged") != std::string::npos,
                harness::read_file(d / "decide.log"));
  REQUIRE(harness::wait_for_listener(c.pair.port, 10000));
  c.cloned = std::move(cloned);
  std::string status = c.ctl({"status"});
  CHECK_MESSAGE(status.find("DIVERGED") != std::string::npos, status);
  CHECK_MESSAGE(status.find("decision:   keep-diverged") != std::string::npos, status);
  c.stop();
  c.start();  // kept across a restart: it was the daemon's to write
  status = c.ctl({"status"});
  CHECK_MESSAGE(status.find("decision:   keep-diverged") != std::string::npos, status);
  c.stop();
}

// "recorded" is said once the store holds the decision: a daemon killed the
// moment clonectl returns has it at its next start. Every commit takes 1.5 s
// here, as on a slow stick; answered before its commit (as it was until
// 2026-12-07), the decision was lost and the clone asked for it again.
TEST_CASE("clonectl decide says recorded once the store holds it: a kill -9 right after keeps the decision") {
  TempDir d;
  REQUIRE(harness::make_zero_file(d / "clone.img", kDisk));
  Clone c(d, {{"apply.store_commit_delay_ms", "1500"}});
  c.start();
  c.stop();  // a valid fingerprint
  write_partition_entry(d / "clone.img");
  c.start();
  std::string status;
  for (int i = 0; i < 100 && status.find("DIVERGED") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    status = c.ctl({"status"});
  }
  REQUIRE_MESSAGE(status.find("DIVERGED") != std::string::npos, status);
  const auto asked = std::chrono::steady_clock::now();
  int code = 0;
  const std::string out = c.ctl({"decide", "keep-diverged"}, &code);
  const auto waited = std::chrono::steady_clock::now() - asked;
  c.cloned->signal(SIGKILL);
  CHECK(c.cloned->wait(10000) == 128 + SIGKILL);
  c.cloned.reset();
  CHECK_MESSAGE(code == 0, out);
  CHECK_MESSAGE(out.find("recorded: keep-diverged") != std::string::npos, out);
  CHECK(waited >= std::chrono::milliseconds(1500));  // the answer waited for a commit
  c.start();
  status = c.ctl({"status"});
  CHECK_MESSAGE(status.find("DIVERGED") != std::string::npos, status);
  CHECK_MESSAGE(status.find("decision:   keep-diverged") != std::string::npos, status);
  // While it stops (its final commit takes 1.5 s) a decision is refused, not
  // lost: nothing would commit it after the final commit.
  c.cloned->signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::string stopping = c.ctl({"decide", "discard-clone-changes"}, &code);
  CHECK(code == 1);
  CHECK_MESSAGE(stopping.find("cloned is stopping; decide again once it has stopped") != std::string::npos, stopping);
  CHECK(c.cloned->wait(30000) == 0);
  c.cloned.reset();
  status = c.ctl({"status"});
  CHECK_MESSAGE(status.find("decision:   keep-diverged") != std::string::npos, status);  // unchanged
}
