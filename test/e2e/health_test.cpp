// SPDX-License-Identifier: MIT
// Level 3, black box: hardware health reports from the real cloned to the
// real clone-origin over loopback. The clone's disk is a loop device (or a
// file without root); the I/O errors are injected by cloned's [testing]
// error range (blockio::ErrorRangeDevice), because this kernel has no
// device-mapper (no /dev/mapper/control, no dm module to load) and no
// fail_make_request fault injection.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "test/support/harness.h"

using harness::Process;
using harness::TempDir;

namespace {

constexpr uint64_t kDiskBytes = 64ull << 20;
constexpr int kPollIntervalS = 30;


// The report ids in `clone-origin health --json` output, in its order.
std::vector<uint64_t> report_ids(const std::string& json) {
  std::vector<uint64_t> ids;
  static const std::regex id_re("\\{\"id\":([0-9]+),\"received_unix_ms\"");
  for (auto it = std::sregex_iterator(json.begin(), json.end(), id_re); it != std::sregex_iterator(); ++it)
    ids.push_back(std::stoull((*it)[1].str()));
  return ids;
}

// Reports kept by the original holding an I/O error finding.
size_t io_error_reports(const std::string& json) {
  size_t n = 0;
  for (size_t at = json.find("{\"id\":"); at != std::string::npos;) {
    const size_t next = json.find("{\"id\":", at + 1);
    const std::string report = json.substr(at, next == std::string::npos ? std::string::npos : next - at);
    if (report.find("\"disk.io_error\"") != std::string::npos) ++n;
    at = next;
  }
  return n;
}

std::string origin_health(const harness::Pair& p, int collect_ms) {
  std::vector<std::string> args = {harness::binary("ORIGIN_BIN"), "--config", p.origin_config, "health", "--json"};
  if (collect_ms > 0) {
    args.push_back("--collect-ms");
    args.push_back(std::to_string(collect_ms));
  }
  std::string out;
  harness::run(args, out, 60000);
  return out;
}

std::string clonectl_health(const harness::Pair& p, bool json) {
  std::vector<std::string> args = {harness::binary("CLONECTL_BIN"), "health", "--config", p.clone_config};
  if (json) args.push_back("--json");
  std::string out;
  harness::run(args, out);
  return out;
}

// When the clone's latest assessment was taken (0: none yet).
int64_t assessed_unix_ms(const harness::Pair& p) {
  static const std::regex re("\"taken_unix_ms\":([0-9]+)");
  const std::string out = clonectl_health(p, true);
  std::smatch m;
  return std::regex_search(out, m, re) ? std::stoll(m[1].str()) : 0;
}

uint64_t reports_waiting(const harness::Pair& p) {
  static const std::regex re("\"reports_waiting\":([0-9]+)");
  const std::string out = clonectl_health(p, true);
  std::smatch m;
  return std::regex_search(out, m, re) ? std::stoull(m[1].str()) : UINT64_MAX;
}

struct Setup {
  TempDir dir;
  std::unique_ptr<harness::LoopDevice> loop;
  std::string target;
  harness::Pair pair;

  Setup() {
    REQUIRE(harness::make_zero_file(dir / "source.img", kDiskBytes));
    REQUIRE(harness::make_zero_file(dir / "clone.img", kDiskBytes));
    target = dir / "clone.img";
    loop = std::make_unique<harness::LoopDevice>(dir / "clone.img");
    if (loop->attached()) target = loop->device();
    else MESSAGE("the clone's disk is a file: " << loop->why());
    // Writes to the upper half of the disk fail with EIO.
    pair = harness::make_pair(dir.path(), target,
                              {{"health.interval_s", std::to_string(kPollIntervalS)},
                               {"testing.io_error_offset_bytes", std::to_string(kDiskBytes / 2)},
                               {"testing.io_error_length_bytes", std::to_string(kDiskBytes / 2)}},
                              {{"origin.reconnect_attempts_max", "2"}, {"origin.reconnect_max_ms", "200"}});
    REQUIRE_MESSAGE(!pair.clone_config.empty(), "clonectl pair failed");
  }

  std::unique_ptr<Process> start_clone() {
    auto p = std::make_unique<Process>(std::vector<std::string>{harness::binary("CLONED_BIN"), "--config",
                                                                pair.clone_config},
                                       dir / "cloned.log");
    REQUIRE_MESSAGE(harness::wait_for_listener(pair.port, 10000), harness::read_file(dir / "cloned.log"));
    return p;
  }

  // A workload over the whole disk: a write soon lands in the failing half;
  // the session then fails and the original gives up after two tries.
  void run_failing_workload() {
    std::string out;
    const int code = harness::run({harness::binary("ORIGIN_BIN"), "--config", pair.origin_config, "workload",
                                   "--source", dir / "source.img", "--seed", "5", "--bytes", "32M"},
                                  out, 120000);
    CHECK(code != 0);
    CHECK_MESSAGE(out.find("disk_io") != std::string::npos, out);
  }
};

}  // namespace

TEST_CASE("an I/O error on the clone's disk reaches the original within one poll interval") {
  Setup s;
  auto clone = s.start_clone();
  const auto t0 = std::chrono::steady_clock::now();
  s.run_failing_workload();
  std::string json;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(kPollIntervalS)) {
    json = origin_health(s.pair, 2000);
    if (io_error_reports(json) > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  const auto elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("the I/O error report reached the original " << elapsed_ms << " ms after the workload started");
  REQUIRE_MESSAGE(io_error_reports(json) > 0, json << "\n" << harness::read_file(s.dir / "cloned.log"));
  CHECK(elapsed_ms < kPollIntervalS * 1000);
  CHECK(json.find("\"severity\":\"critical\",\"code\":\"disk.io_error\"") != std::string::npos);
  CHECK(json.find("\"key\":\"errno\"") == std::string::npos);  // figures are an object of key: value
  CHECK(json.find("\"errno\":\"5\"") != std::string::npos);
  CHECK(json.find("\"offset_bytes\":\"") != std::string::npos);

  // clonectl: the same finding, and SMART unsupported with its reason, never healthy.
  const std::string text = clonectl_health(s.pair, false);
  CHECK_MESSAGE(text.find("CRITICAL") != std::string::npos, text);
  CHECK(text.find("disk.io_error") != std::string::npos);
  CHECK(text.find("smart         UNSUPPORTED: ") != std::string::npos);
  const std::string cj = clonectl_health(s.pair, true);
  CHECK(cj.find("{\"name\":\"smart\",\"availability\":\"unsupported\",\"reason\":\"") != std::string::npos);
  CHECK(cj.find("\"verdict\":\"critical\"") != std::string::npos);

  clone->signal(SIGTERM);
  CHECK(clone->wait(30000) >= 0);
}

TEST_CASE("a disk that fails while a staged generation is copied onto it reaches the original as an I/O error") {
  // The error range fails reads too, and a resync reads the whole disk for
  // its digests: the staged resync is cut while "applying" (slow commits hold
  // it there), and the range is set for the start that finishes the copy.
  TempDir dir;
  REQUIRE(harness::make_zero_file(dir / "source.img", kDiskBytes));
  REQUIRE(harness::make_zero_file(dir / "clone.img", kDiskBytes));
  const std::map<std::string, std::string> clone_over = {{"health.interval_s", std::to_string(kPollIntervalS)},
                                                         {"apply.store_commit_delay_ms", "1000"}};
  harness::Pair pair = harness::make_pair(dir.path(), dir / "clone.img", clone_over,
                                          {{"origin.reconnect_attempts_max", "2"}, {"origin.reconnect_max_ms", "200"}});
  REQUIRE_MESSAGE(!pair.clone_config.empty(), "clonectl pair failed");
  const auto start_clone = [&] {
    auto p = std::make_unique<Process>(
        std::vector<std::string>{harness::binary("CLONED_BIN"), "--config", pair.clone_config}, dir / "cloned.log");
    REQUIRE_MESSAGE(harness::wait_for_listener(pair.port, 10000), harness::read_file(dir / "cloned.log"));
    return p;
  };
  const std::vector<std::string> resync = {harness::binary("ORIGIN_BIN"), "--config", pair.origin_config, "resync",
                                           "--source", dir / "source.img"};
  auto clone = start_clone();
  std::string out;
  REQUIRE_MESSAGE(harness::run(resync, out, 120000) == 0, out);  // generation 2: both disks zero
  // Generation 3 changes 1 MiB at three quarters of the disk.
  const uint64_t at = kDiskBytes * 3 / 4;
  {
    std::fstream f(dir / "source.img", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(at));
    const std::string changed(1 << 20, 'x');
    f.write(changed.data(), static_cast<std::streamsize>(changed.size()));
    REQUIRE(f.good());
  }
  Process running(resync, dir / "origin.log");
  bool applying = false;
  for (int t = 0; t < 3000 && running.running() && !applying; ++t) {
    std::string json;
    harness::run({harness::binary("CLONECTL_BIN"), "status", "--config", pair.clone_config, "--json"}, json);
    applying = json.find("\"stage_phase\":\"applying\"") != std::string::npos;
    if (!applying) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE_MESSAGE(applying, harness::read_file(dir / "origin.log"));
  clone->signal(SIGKILL);
  running.signal(SIGKILL);
  clone->wait(10000);
  running.wait(10000);
  harness::set_config_keys(pair.clone_config, {{"testing.io_error_offset_bytes", std::to_string(at)},
                                               {"testing.io_error_length_bytes", std::to_string(1 << 20)}});
  const auto t0 = std::chrono::steady_clock::now();
  clone = start_clone();  // finishes the copy from the stage: its write at `at` fails
  std::string json;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(kPollIntervalS)) {
    json = origin_health(pair, 2000);
    if (io_error_reports(json) > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  REQUIRE_MESSAGE(io_error_reports(json) > 0, json << "\n" << harness::read_file(dir / "cloned.log"));
  CHECK_MESSAGE(json.find("\"offset_bytes\":\"" + std::to_string(at) + "\"") != std::string::npos, json);
  std::string events;
  harness::run({harness::binary("CLONECTL_BIN"), "events", "--config", pair.clone_config}, events);
  CHECK_MESSAGE(events.find("finishing the apply of a staged generation") != std::string::npos, events);
  clone->signal(SIGTERM);
  clone->wait(30000);
}

TEST_CASE("with the link down a report waits in the store, survives a restart, and is delivered exactly once") {
  Setup s;
  auto clone = s.start_clone();
  s.run_failing_workload();  // the session ends at the error: the link is down
  // The I/O error is assessed at once; its report waits for the original.
  std::string cj;
  for (int i = 0; i < 50; ++i) {
    cj = clonectl_health(s.pair, true);
    if (cj.find("disk.io_error") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE_MESSAGE(cj.find("disk.io_error") != std::string::npos, cj);
  CHECK(io_error_reports(origin_health(s.pair, 0)) == 0);  // not delivered yet
  const uint64_t waiting = reports_waiting(s.pair);
  CHECK(waiting >= 1);

  clone->signal(SIGTERM);
  REQUIRE(clone->wait(30000) >= 0);
  CHECK(reports_waiting(s.pair) == waiting);  // in the store, the daemon down

  clone = s.start_clone();
  const std::string first = origin_health(s.pair, 3000);
  const std::vector<uint64_t> ids = report_ids(first);
  MESSAGE("the original keeps reports " << ids.size() << "; " << waiting << " waited across the restart");
  CHECK_MESSAGE(io_error_reports(first) >= 1, first);
  CHECK(std::set<uint64_t>(ids.begin(), ids.end()).size() == ids.size());  // each id once

  // The clone drops them once acked; collecting again brings nothing twice.
  uint64_t left = UINT64_MAX;
  for (int i = 0; i < 50 && left != 0; ++i) {
    left = reports_waiting(s.pair);
    if (left != 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(left == 0);
  const std::string second = origin_health(s.pair, 2000);
  CHECK(report_ids(second) == ids);
  CHECK(io_error_reports(second) == io_error_reports(first));
  CHECK(harness::count_of(second, "\"disk.io_error\"") == harness::count_of(first, "\"disk.io_error\""));

  clone->signal(SIGTERM);
  CHECK(clone->wait(30000) >= 0);
}

TEST_CASE("a restarted clone does not report again what the original was told before") {
  Setup s;
  auto clone = s.start_clone();
  const std::string smart_news = "\"kind\":\"source_changed\",\"severity\":\"info\",\"key\":\"smart\"";
  std::string first;
  for (int i = 0; i < 10 && harness::count_of(first, smart_news) == 0; ++i) first = origin_health(s.pair, 2000);
  REQUIRE_MESSAGE(harness::count_of(first, smart_news) == 1, first);  // "SMART is unsupported": news once
  const std::vector<uint64_t> ids = report_ids(first);
  CHECK(harness::count_of(first, "\"kind\":\"summary\"") == 1);
  const int64_t assessed = assessed_unix_ms(s.pair);
  REQUIRE(assessed > 0);

  clone->signal(SIGTERM);
  REQUIRE(clone->wait(30000) >= 0);
  clone = s.start_clone();
  int64_t again = assessed;
  for (int i = 0; i < 100 && again == assessed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    again = assessed_unix_ms(s.pair);
  }
  REQUIRE_MESSAGE(again > assessed, "the restarted clone did not poll");  // its first poll is stored
  const std::string second = origin_health(s.pair, 2000);
  MESSAGE("reports before the restart " << ids.size() << ", after it " << report_ids(second).size());
  CHECK(report_ids(second) == ids);  // no new report: nothing changed, the summary is a day away
  CHECK(harness::count_of(second, smart_news) == 1);
  CHECK(harness::read_file(s.dir / "cloned.log").find("the first poll compares with poll 1") != std::string::npos);

  clone->signal(SIGTERM);
  CHECK(clone->wait(30000) >= 0);
}
