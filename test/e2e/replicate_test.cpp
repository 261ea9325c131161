// SPDX-License-Identifier: MIT
// Level 3, black box: the real cloned, clonectl and clone-origin binaries over
// loopback TCP, with a file or a loop device as the clone's disk.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "test/support/harness.h"
#include "test/support/requires.h"

using harness::Process;
using harness::TempDir;

namespace {

constexpr uint64_t kDiskBytes = 256ull << 20;

std::vector<std::string> workload_args(const harness::Pair& p, const TempDir& d, const std::string& bytes,
                                       uint64_t seed, const std::string& compare) {
  std::vector<std::string> a = {harness::binary("ORIGIN_BIN"),
                                "--config",
                                p.origin_config,
                                "workload",
                                "--source",
                                d / "source.img",
                                "--seed",
                                std::to_string(seed),
                                "--bytes",
                                bytes,
                                "--write-min",
                                "512",
                                "--write-max",
                                "1M",
                                "--epoch-max",
                                "64",
                                "--trim-percent",
                                "10"};
  if (!compare.empty()) {
    a.push_back("--compare");
    a.push_back(compare);
  }
  return a;
}

std::string status_of(const harness::Pair& p) {
  std::string out;
  harness::run({harness::binary("CLONECTL_BIN"), "status", "--config", p.clone_config}, out);
  return out;
}

// Replicates a 256 MiB workload to `target` and checks the result.
void replicate_to(const TempDir& d, const std::string& target, const std::string& target_image) {
  REQUIRE(harness::make_zero_file(d / "source.img", kDiskBytes));
  harness::Pair p = harness::make_pair(d.path(), target);
  REQUIRE_MESSAGE(!p.clone_config.empty(), "clonectl pair failed");
  Process cloned({harness::binary("CLONED_BIN"), "--config", p.clone_config}, d / "cloned.log");
  REQUIRE_MESSAGE(harness::wait_for_listener(p.port, 10000), harness::read_file(d / "cloned.log"));

  std::string out;
  int code = harness::run(workload_args(p, d, "256M", 42, target_image), out, 600000);
  CHECK_MESSAGE(code == 0, out);
  CHECK(out.find("identical") != std::string::npos);
  uint64_t diff = 0;
  CHECK_MESSAGE(harness::files_equal(d / "source.img", target_image, &diff), "first difference at " << diff);

  std::string status = status_of(p);
  CHECK_MESSAGE(status.find("a bootable copy") != std::string::npos, status);
  CHECK_MESSAGE(status.find("lag:        0 records") != std::string::npos, status);

  cloned.signal(SIGTERM);
  CHECK(cloned.wait(30000) == 0);
  std::string log = harness::read_file(d / "cloned.log");
  CHECK_MESSAGE(log.find("stopped cleanly") != std::string::npos, log);
  status = status_of(p);
  CHECK_MESSAGE(status.find("not running") != std::string::npos, status);
  CHECK(status.find("a bootable copy") != std::string::npos);
  std::string out_json;
  CHECK(harness::run({harness::binary("CLONECTL_BIN"), "status", "--config", p.clone_config, "--json"}, out_json) == 0);
  CHECK_MESSAGE(out_json.find("\"bootable\":true") != std::string::npos, out_json);
  CHECK(out_json.find("\"daemon\":\"stopped\"") != std::string::npos);
  std::string events;
  CHECK(harness::run({harness::binary("CLONECTL_BIN"), "events", "--config", p.clone_config}, events) == 0);
  CHECK_MESSAGE(events.find("stopped cleanly at record") != std::string::npos, events);
  CHECK(events.find("now consistent") != std::string::npos);
}

}  // namespace

TEST_CASE("a seeded 256 MiB workload replicates byte-identical to a file over loopback") {
  TempDir d;
  REQUIRE(harness::make_zero_file(d / "clone.img", kDiskBytes));
  replicate_to(d, d / "clone.img", d / "clone.img");
}

TEST_CASE("a seeded 256 MiB workload replicates byte-identical to a loop device" *
          doctest::test_suite("requires loop devices")) {
  test_support::require({test_support::loop_devices()});
  TempDir d;
  REQUIRE(harness::make_zero_file(d / "clone.img", kDiskBytes));
  harness::LoopDevice loop(d / "clone.img");
  REQUIRE_MESSAGE(loop.attached(), loop.why());
  replicate_to(d, loop.device(), loop.device());
}

TEST_CASE("kill -9 of cloned at random moments loses nothing and leaves no gap") {
  TempDir d;
  REQUIRE(harness::make_zero_file(d / "source.img", kDiskBytes));
  REQUIRE(harness::make_zero_file(d / "clone.img", kDiskBytes));
  harness::Pair p = harness::make_pair(d.path(), d / "clone.img");
  REQUIRE(!p.clone_config.empty());
  const std::vector<std::string> daemon = {harness::binary("CLONED_BIN"), "--config", p.clone_config};
  auto clone = std::make_unique<Process>(daemon, d / "cloned.log");
  REQUIRE(harness::wait_for_listener(p.port, 10000));
  Process origin(workload_args(p, d, "192M", 7, d / "clone.img"), d / "origin.log");

  std::mt19937 rng(2026);
  int kills = 0;
  for (int i = 0; i < 6 && origin.running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 600));
    clone->signal(SIGKILL);
    CHECK(clone->wait(10000) == 128 + SIGKILL);
    ++kills;
    clone = std::make_unique<Process>(daemon, d / "cloned.log");
    REQUIRE(harness::wait_for_listener(p.port, 10000));
  }
  MESSAGE("cloned killed " << kills << " times");
  int code = origin.wait(600000);
  std::string origin_log = harness::read_file(d / "origin.log");
  CHECK_MESSAGE(code == 0, origin_log);
  CHECK(origin_log.find("identical") != std::string::npos);
  CHECK(kills >= 1);
  std::string log = harness::read_file(d / "cloned.log");
  CHECK_MESSAGE(log.find("sequence_gap") == std::string::npos, log);
  CHECK(log.find("arrived where record") == std::string::npos);
  uint64_t diff = 0;
  CHECK_MESSAGE(harness::files_equal(d / "source.img", d / "clone.img", &diff), "first difference at " << diff);
  clone->signal(SIGTERM);
  CHECK(clone->wait(30000) == 0);
}

namespace {

// Zeroed 64 MiB source and clone files in `d`, paired with these overrides.
harness::Pair small_pair(const TempDir& d, const std::map<std::string, std::string>& clone_overrides,
                         const std::map<std::string, std::string>& origin_overrides) {
  constexpr uint64_t kSmall = 64ull << 20;
  REQUIRE(harness::make_zero_file(d / "source.img", kSmall));
  REQUIRE(harness::make_zero_file(d / "clone.img", kSmall));
  harness::Pair p = harness::make_pair(d.path(), d / "clone.img", clone_overrides, origin_overrides);
  REQUIRE(!p.clone_config.empty());
  return p;
}

// The number after "key": in clonectl status --json, or -1.
int64_t json_number(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return -1;
  return std::strtoll(json.c_str() + at + key.size() + 3, nullptr, 10);
}

std::string status_json(const harness::Pair& p) {
  std::string out;
  harness::run({harness::binary("CLONECTL_BIN"), "status", "--config", p.clone_config, "--json"}, out);
  return out;
}

// Waits until the clone's applied position runs well past its committed one
// (a slow store) while `origin` still sends.
void wait_trailing(const harness::Pair& p, const TempDir& d, Process& origin) {
  bool trailing = false;
  for (int i = 0; i < 1000 && !trailing && origin.running(); ++i) {
    const std::string j = status_json(p);
    trailing = json_number(j, "applied_seq") > json_number(j, "committed_seq") + 16;
    if (!trailing) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE_MESSAGE(trailing, harness::read_file(d / "origin.log"));
}

}  // namespace

TEST_CASE("after kill -9 the status says the disk may hold records past the committed one, until the original says") {
  TempDir d;
  // A slow state store (as on a slow stick): the committed position trails.
  // The original waits 8 s before it reconnects: time to read the status.
  harness::Pair p = small_pair(d, {{"apply.store_commit_delay_ms", "400"}},
                               {{"origin.reconnect_initial_ms", "8000"}, {"origin.reconnect_max_ms", "8000"}});
  const std::vector<std::string> daemon = {harness::binary("CLONED_BIN"), "--config", p.clone_config};
  auto clone = std::make_unique<Process>(daemon, d / "cloned.log");
  REQUIRE(harness::wait_for_listener(p.port, 10000));
  auto json = [&] { return status_json(p); };
  // Far more than the trailing point needs, so that the original is still
  // sending at the kill even where the daemon is fast or the original slow.
  Process origin(workload_args(p, d, "320M", 11, d / "clone.img"), d / "origin.log");
  wait_trailing(p, d, origin);
  clone->signal(SIGKILL);
  CHECK(clone->wait(10000) == 128 + SIGKILL);
  REQUIRE_MESSAGE(origin.running(), "the workload ended before the kill: " << harness::read_file(d / "origin.log"));
  clone = std::make_unique<Process>(daemon, d / "cloned.log");
  REQUIRE(harness::wait_for_listener(p.port, 10000));
  std::string j = json();
  REQUIRE_MESSAGE(j.find("\"link\":\"waiting\"") != std::string::npos, j);  // before the original's session
  const int64_t applied = json_number(j, "applied_seq");
  const int64_t unclean = json_number(j, "unclean_until_seq");
  CHECK_MESSAGE(unclean > applied, j);
  std::string status = status_of(p);
  CHECK_MESSAGE(status.find("unclean:    records up to " + std::to_string(unclean) +
                            " may be on the disk after an unclean stop") != std::string::npos,
                status);

  // The original's next session settles it, and the run ends identical.
  CHECK_MESSAGE(origin.wait(300000) == 0, harness::read_file(d / "origin.log"));
  CHECK(harness::read_file(d / "origin.log").find("identical") != std::string::npos);
  j = json();
  CHECK_MESSAGE(json_number(j, "unclean_until_seq") == 0, j);
  status = status_of(p);
  CHECK_MESSAGE(status.find("unclean:") == std::string::npos, status);
  clone->signal(SIGTERM);
  CHECK(clone->wait(30000) == 0);
}

TEST_CASE("a workload ends once the clone has committed its last record: a kill -9 right after loses nothing") {
  TempDir d;
  // A slow state store (a slow stick): a record is durable a while before it is committed.
  harness::Pair p = small_pair(d, {{"apply.store_commit_delay_ms", "1500"}}, {});
  const std::vector<std::string> daemon = {harness::binary("CLONED_BIN"), "--config", p.clone_config};
  auto clone = std::make_unique<Process>(daemon, d / "cloned.log");
  REQUIRE(harness::wait_for_listener(p.port, 10000));
  std::string out;
  REQUIRE_MESSAGE(harness::run(workload_args(p, d, "4M", 12, ""), out, 120000) == 0, out);
  // The original has dropped what it sent; the clone is killed at once.
  clone->signal(SIGKILL);
  CHECK(clone->wait(10000) == 128 + SIGKILL);
  clone = std::make_unique<Process>(daemon, d / "cloned.log");
  REQUIRE(harness::wait_for_listener(p.port, 10000));
  // The next run starts after the last: the clone holds everything before it.
  CHECK_MESSAGE(harness::run(workload_args(p, d, "4M", 13, d / "clone.img"), out, 120000) == 0, out);
  CHECK_MESSAGE(out.find("identical") != std::string::npos, out);
  clone->signal(SIGTERM);
  CHECK(clone->wait(30000) == 0);
}

TEST_CASE("a flush that fails once fails its barrier, though the flush after it would succeed") {
  // Linux reports a lost writeback to one fdatasync only: retrying the flush
  // would succeed and acknowledge what may not be on the disk. The fourth
  // flush of the target fails (testing.flush_error_at: the first is the one
  // before the Diverged baseline at startup, then one per barrier); the
  // early flush the disk workers start as an epoch's last write completes
  // must not hide it.
  TempDir d;
  harness::Pair p = small_pair(d, {{"testing.flush_error_at", "4"}},
                               {{"origin.reconnect_attempts_max", "2"}, {"origin.reconnect_max_ms", "200"}});
  Process cloned({harness::binary("CLONED_BIN"), "--config", p.clone_config, "--log-level", "debug"}, d / "cloned.log");
  REQUIRE(harness::wait_for_listener(p.port, 10000));
  // 32 records of 4 KiB and a barrier per epoch: barriers at seq 33, 66, 99, ...
  std::string out;
  const int code = harness::run(
      {harness::binary("ORIGIN_BIN"), "--config", p.origin_config, "workload", "--source", d / "source.img", "--seed",
       "3", "--bytes", "4M", "--write-min", "4K", "--write-max", "4K", "--epoch-records", "32"},
      out, 120000);
  CHECK(code != 0);
  CHECK_MESSAGE(out.find("disk_io") != std::string::npos, out);
  const std::string log = harness::read_file(d / "cloned.log");
  CHECK_MESSAGE(log.find("flush 4 failed: Input/output error (injected)") != std::string::npos, log);
  MESSAGE(std::string(log.find("the early flush failed") != std::string::npos ? "the early flush" : "the loop's flush")
          << " met the error");
  std::string j;
  harness::run({harness::binary("CLONECTL_BIN"), "status", "--config", p.clone_config, "--json"}, j);
  CHECK_MESSAGE(json_number(j, "applied_seq") == 66, j);  // the barrier of the failed flush is not acknowledged
  cloned.signal(SIGTERM);
  CHECK(cloned.wait(30000) >= 0);
}

TEST_CASE("a captured commit-log spool replays byte-identical, and replaying it again changes nothing") {
  TempDir d;
  harness::Pair p = small_pair(d, {}, {});
  std::string out;
  int code = harness::run({harness::binary("ORIGIN_BIN"), "--config", p.origin_config, "capture", "--source",
                           d / "source.img", "--spool", d / "log.spool", "--seed", "3", "--bytes", "48M", "--write-min",
                           "4K", "--write-max", "256K", "--trim-percent", "5"},
                          out);
  REQUIRE_MESSAGE(code == 0, out);
  CHECK_FALSE(harness::files_equal(d / "source.img", d / "clone.img"));  // nothing shipped yet
  Process cloned({harness::binary("CLONED_BIN"), "--config", p.clone_config}, d / "cloned.log");
  REQUIRE(harness::wait_for_listener(p.port, 10000));
  code = harness::run(
      {harness::binary("ORIGIN_BIN"), "--config", p.origin_config, "replay", "--spool", d / "log.spool"}, out);
  CHECK_MESSAGE(code == 0, out);
  uint64_t diff = 0;
  CHECK_MESSAGE(harness::files_equal(d / "source.img", d / "clone.img", &diff), "first difference at " << diff);
  code = harness::run(
      {harness::binary("ORIGIN_BIN"), "--config", p.origin_config, "replay", "--spool", d / "log.spool"}, out);
  CHECK_MESSAGE(code == 0, out);
  CHECK(harness::files_equal(d / "source.img", d / "clone.img"));
  cloned.signal(SIGTERM);
  CHECK(cloned.wait(30000) == 0);
}

TEST_CASE("after a run that died mid-way, workload, capture and replay --spool refuse and say so; a resync clears it") {
  TempDir d;
  harness::Pair p = small_pair(d, {}, {});
  std::string out;
  auto origin = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {harness::binary("ORIGIN_BIN"), "--config", p.origin_config});
    return harness::run(args, out, 120000);
  };
  REQUIRE_MESSAGE(origin({"capture", "--source", d / "source.img", "--spool", d / "log.spool", "--seed", "4", "--bytes",
                          "4M"}) == 0,
                  out);
  Process cloned({harness::binary("CLONED_BIN"), "--config", p.clone_config}, d / "cloned.log");
  REQUIRE(harness::wait_for_listener(p.port, 10000));
  // What a run killed between writing the image and the clone's ack leaves.
  const std::string position_file = d / "origin/state/origin.position";
  std::string position = harness::read_file(position_file);
  REQUIRE(position.find("clean=1") != std::string::npos);
  position.replace(position.find("clean=1"), 7, "clean=0");
  REQUIRE(harness::write_file(position_file, position));
  REQUIRE(harness::make_zero_file(d / "zero.img", 64ull << 20));
  const std::vector<std::vector<std::string>> refused = {
      {"workload", "--source", d / "source.img", "--seed", "5", "--bytes", "1M"},
      {"capture", "--source", d / "source.img", "--spool", d / "other.spool", "--seed", "5", "--bytes", "1M"},
      {"replay", "--spool", d / "log.spool"}};
  for (const auto& args : refused) {
    CAPTURE(args[0]);
    CHECK(origin(args) == 1);
    CHECK_MESSAGE(
        out.find("an earlier run stopped before the clone acknowledged all of its records") != std::string::npos, out);
    CHECK_MESSAGE(out.find("clone-origin resync --source IMAGE") != std::string::npos, out);
  }
  CHECK(harness::files_equal(d / "clone.img", d / "zero.img"));  // nothing sent: the capture shipped nothing either
  CHECK_FALSE(std::filesystem::exists(d / "other.spool"));
  // A resync brings the clone to the image and the position back to clean.
  REQUIRE_MESSAGE(origin({"resync", "--source", d / "source.img"}) == 0, out);
  CHECK(harness::files_equal(d / "source.img", d / "clone.img"));
  CHECK_MESSAGE(origin({"workload", "--source", d / "source.img", "--seed", "6", "--bytes", "2M", "--compare",
                        d / "clone.img"}) == 0,
                out);
  CHECK_MESSAGE(out.find("identical") != std::string::npos, out);
  cloned.signal(SIGTERM);
  CHECK(cloned.wait(30000) == 0);
}

TEST_CASE(
    "a resync after kill -9 of both sides mid-workload is staged: the disk keeps its crash state until the copy") {
  TempDir d;
  harness::Pair p = small_pair(d, {{"apply.store_commit_delay_ms", "400"}}, {});
  const std::vector<std::string> daemon = {harness::binary("CLONED_BIN"), "--config", p.clone_config};
  auto clone = std::make_unique<Process>(daemon, d / "cloned.log");
  REQUIRE(harness::wait_for_listener(p.port, 10000));
  auto json = [&] { return status_json(p); };
  std::string out;
  // A first resync makes the fresh clone a consistent copy (in place: nothing to keep yet).
  REQUIRE_MESSAGE(
      harness::run({harness::binary("ORIGIN_BIN"), "--config", p.origin_config, "resync", "--source", d / "source.img"},
                   out, 300000) == 0,
      out);
  Process origin(workload_args(p, d, "320M", 12, ""), d / "origin.log");
  wait_trailing(p, d, origin);
  clone->signal(SIGKILL);  // the power goes on both
  origin.signal(SIGKILL);
  CHECK(clone->wait(10000) == 128 + SIGKILL);
  origin.wait(10000);
  clone = std::make_unique<Process>(daemon, d / "cloned.log");
  REQUIRE(harness::wait_for_listener(p.port, 10000));
  std::string j = json();
  REQUIRE_MESSAGE(json_number(j, "unclean_until_seq") > json_number(j, "applied_seq"), j);
  REQUIRE_MESSAGE(j.find("\"state\":\"consistent\"") != std::string::npos, j);
  MESSAGE("restarted at record " << json_number(j, "applied_seq") << ", records up to "
                                 << json_number(j, "unclean_until_seq") << " may be on the disk");
  // The original's image ran ahead of the clone: only a resync brings them together.
  REQUIRE_MESSAGE(
      harness::run({harness::binary("ORIGIN_BIN"), "--config", p.origin_config, "resync", "--source", d / "source.img"},
                   out, 300000) == 0,
      out);
  uint64_t diff = 0;
  CHECK_MESSAGE(harness::files_equal(d / "source.img", d / "clone.img", &diff), "first difference at " << diff);
  std::string events;
  harness::run({harness::binary("CLONECTL_BIN"), "events", "--config", p.clone_config, "--limit", "100"}, events);
  CHECK_MESSAGE(events.find("staging generation 3") != std::string::npos, events);
  CHECK_MESSAGE(events.find("generation 3 applied and committed") != std::string::npos, events);
  j = json();
  CHECK_MESSAGE(json_number(j, "unclean_until_seq") == 0, j);
  clone->signal(SIGTERM);
  CHECK(clone->wait(30000) == 0);
}
