// SPDX-License-Identifier: MIT
// The progress of a resync or verify as the original reports it: the rate,
// the ETA, when a line is logged, and when a run stops counting.
#include <doctest/doctest.h>

#include "cloned/daemon/progress.h"

namespace {

proto::Progress at(proto::ProgressKind kind, uint64_t done, uint64_t total) { return {kind, done, total}; }

}  // namespace

TEST_CASE("the rate counts from the first report and gives the ETA") {
  cloned::MaintenanceProgress p;
  CHECK_FALSE(p.note(at(proto::ProgressKind::resync, 0, 4 << 20), 1000));
  CHECK_FALSE(p.note(at(proto::ProgressKind::resync, 1 << 20, 4 << 20), 2000));
  CHECK(p.active());
  CHECK(p.line() == "resync 25.0% (1 MiB of 4 MiB), 1 MiB/s, ETA 3 s");
}

TEST_CASE("a line is worth logging every interval and at the end, and the end stops the run") {
  cloned::MaintenanceProgress p;
  CHECK_FALSE(p.note(at(proto::ProgressKind::verify, 0, 100), 0));
  CHECK_FALSE(p.note(at(proto::ProgressKind::verify, 10, 100), cloned::MaintenanceProgress::kLogIntervalMs - 1));
  CHECK(p.note(at(proto::ProgressKind::verify, 20, 100), cloned::MaintenanceProgress::kLogIntervalMs));
  CHECK(p.note(at(proto::ProgressKind::verify, 100, 100), cloned::MaintenanceProgress::kLogIntervalMs + 1));
  CHECK_FALSE(p.active());
  CHECK(p.text().find("100.0%") == 0);
  CHECK(p.text().find("done") != std::string::npos);
}

TEST_CASE("a run is fresh for a minute after its last report, and only for its own kind") {
  cloned::MaintenanceProgress p;
  p.note(at(proto::ProgressKind::resync, 5, 100), 1000);
  CHECK(p.fresh(proto::ProgressKind::resync, 1000 + cloned::MaintenanceProgress::kFreshMs - 1));
  CHECK_FALSE(p.fresh(proto::ProgressKind::resync, 1000 + cloned::MaintenanceProgress::kFreshMs));
  CHECK_FALSE(p.fresh(proto::ProgressKind::verify, 1001));
  p.finish();
  CHECK_FALSE(p.fresh(proto::ProgressKind::resync, 1001));
}

TEST_CASE("another kind, or fewer bytes done, starts a new run") {
  cloned::MaintenanceProgress p;
  p.note(at(proto::ProgressKind::resync, 50, 100), 0);
  p.note(at(proto::ProgressKind::resync, 10, 100), 1000);  // restarted: no negative rate
  CHECK(p.text().find("ETA unknown") != std::string::npos);
  p.note(at(proto::ProgressKind::verify, 10, 100), 2000);
  CHECK(p.kind() == proto::ProgressKind::verify);
  CHECK(p.line().rfind("verify ", 0) == 0);
}
