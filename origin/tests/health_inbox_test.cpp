// SPDX-License-Identifier: MIT
#include "origin/health_inbox.h"
#include "test/support/temp_dir.h"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace {

struct Dir : test_support::TempDir {
  Dir() : test_support::TempDir("health_inbox_test") { REQUIRE(ok()); }
};

}  // namespace

TEST_CASE("the original keeps each health report once, across reopening, and cuts a torn append") {
  Dir d;
  const base::Bytes a = {1, 2, 3}, b = {4, 5};
  {
    auto inbox = origin::HealthInbox::open(d.path());
    REQUIRE(inbox.is_ok());
    CHECK((*inbox)->receive(10, a).value() == true);
    CHECK((*inbox)->receive(10, a).value() == false);  // a resend
    CHECK((*inbox)->receive(11, b).value() == true);
  }
  const std::string file = d.path() + "/health-reports.log";
  const auto good_size = std::filesystem::file_size(file);
  {
    // A crash in the middle of an append leaves a partial entry.
    FILE* f = std::fopen(file.c_str(), "ab");
    REQUIRE(f != nullptr);
    std::fwrite("HRP1partial", 1, 11, f);
    std::fclose(f);
  }
  auto inbox = origin::HealthInbox::open(d.path());
  REQUIRE(inbox.is_ok());
  REQUIRE((*inbox)->entries().size() == 2);
  CHECK((*inbox)->entries()[0].id == 10);
  CHECK((*inbox)->entries()[0].report == a);
  CHECK((*inbox)->entries()[1].report == b);
  CHECK(std::filesystem::file_size(file) == good_size);
  CHECK((*inbox)->receive(11, b).value() == false);
  CHECK((*inbox)->receive(12, a).value() == true);
}

// Found in review: a damaged entry in the middle cut the file there, and with
// it every later report, which the clone had been told were kept.
TEST_CASE("a damaged entry in the middle costs that entry only; the ones after it stay") {
  Dir d;
  const std::string file = d.path() + "/health-reports.log";
  const base::Bytes a = {1, 2, 3, 4, 5, 6, 7, 8}, b = {9, 10, 11, 12, 13, 14, 15, 16}, c = {17, 18};
  uintmax_t first_end = 0, second_end = 0;
  {
    auto inbox = origin::HealthInbox::open(d.path());
    REQUIRE(inbox.is_ok());
    REQUIRE((*inbox)->receive(1, a).value());
    first_end = std::filesystem::file_size(file);
    REQUIRE((*inbox)->receive(2, b).value());
    second_end = std::filesystem::file_size(file);
    REQUIRE((*inbox)->receive(3, c).value());
  }
  const uintmax_t size = std::filesystem::file_size(file);
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(second_end - 6));  // inside entry 2's report
    f.put('\xff');
    REQUIRE(f.good());
  }
  REQUIRE(second_end - 6 > first_end);
  auto inbox = origin::HealthInbox::open(d.path());
  REQUIRE(inbox.is_ok());
  REQUIRE((*inbox)->entries().size() == 2);
  CHECK((*inbox)->entries()[0].id == 1);
  CHECK((*inbox)->entries()[1].id == 3);
  CHECK((*inbox)->entries()[1].report == c);
  CHECK(std::filesystem::file_size(file) == size);  // nothing cut
  CHECK((*inbox)->receive(4, a).value() == true);   // appends go on after it
  auto again = origin::HealthInbox::open(d.path());
  REQUIRE(again.is_ok());
  CHECK((*again)->entries().size() == 3);
}

TEST_CASE("a report of a known id with other bytes is kept: a clone with a new state store numbers from 1 again") {
  Dir d;
  auto inbox = origin::HealthInbox::open(d.path());
  REQUIRE(inbox.is_ok());
  const base::Bytes old_store = {1, 1}, new_store = {2, 2};
  CHECK((*inbox)->receive(1, old_store).value() == true);
  CHECK((*inbox)->receive(1, new_store).value() == true);
  CHECK((*inbox)->receive(1, new_store).value() == false);  // its resend
  CHECK((*inbox)->receive(1, old_store).value() == false);
  auto again = origin::HealthInbox::open(d.path());
  REQUIRE(again.is_ok());
  REQUIRE((*again)->entries().size() == 2);
  CHECK((*again)->entries()[1].report == new_store);
}

TEST_CASE("two holders of the inbox see each other's reports and never keep one twice") {
  Dir d;
  auto a = origin::HealthInbox::open(d.path());
  auto b = origin::HealthInbox::open(d.path());
  REQUIRE(a.is_ok());
  REQUIRE(b.is_ok());
  const base::Bytes r1 = {1}, r2 = {2}, r3 = {3};
  CHECK((*a)->receive(1, r1).value() == true);
  CHECK((*b)->receive(1, r1).value() == false);  // b reads what a appended
  CHECK((*b)->receive(2, r2).value() == true);
  CHECK((*a)->receive(3, r3).value() == true);
  REQUIRE((*a)->entries().size() == 3);
  CHECK((*a)->entries()[1].id == 2);
}

TEST_CASE("concurrent appends from two processes all land whole") {
  Dir d;
  constexpr int kEach = 150;
  pid_t children[2];
  for (int c = 0; c < 2; ++c) {
    children[c] = ::fork();
    REQUIRE(children[c] >= 0);
    if (children[c] == 0) {
      auto inbox = origin::HealthInbox::open(d.path());
      int failures = inbox.is_ok() ? 0 : 1;
      for (int i = 0; i < kEach && failures == 0; ++i) {
        const base::Bytes report(100 + static_cast<size_t>(i), static_cast<uint8_t>(c));
        if (!(*inbox)->receive(static_cast<uint64_t>(c * 1000 + i + 1), report).is_ok()) ++failures;
      }
      ::_exit(failures == 0 ? 0 : 1);
    }
  }
  for (pid_t child : children) {
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  }
  auto inbox = origin::HealthInbox::open(d.path());
  REQUIRE(inbox.is_ok());
  CHECK((*inbox)->entries().size() == 2 * kEach);
}

TEST_CASE("a full inbox is compacted to its newest half; a holder of the old file follows the rename") {
  Dir d;
  const std::string file = d.path() + "/health-reports.log";
  auto stale = origin::HealthInbox::open(d.path(), 8);
  auto inbox = origin::HealthInbox::open(d.path(), 8);
  REQUIRE(stale.is_ok());
  REQUIRE(inbox.is_ok());
  REQUIRE((*stale)->receive(100, base::Bytes{100}).value());
  for (uint64_t id = 1; id <= 8; ++id) REQUIRE((*inbox)->receive(id, base::Bytes{static_cast<uint8_t>(id)}).is_ok());
  // 9 entries > 8: the newest 4 are kept (ids 5..8).
  REQUIRE((*inbox)->entries().size() == 4);
  CHECK((*inbox)->entries().front().id == 5);
  CHECK((*inbox)->entries().back().id == 8);
  CHECK_FALSE(std::filesystem::exists(file + ".tmp"));
  // The other holder appends to the new file, not to the one renamed away.
  CHECK((*stale)->receive(8, base::Bytes{8}).value() == false);
  CHECK((*stale)->receive(9, base::Bytes{9}).value() == true);
  auto reopened = origin::HealthInbox::open(d.path(), 8);
  REQUIRE(reopened.is_ok());
  std::vector<uint64_t> ids;
  for (const auto& e : (*reopened)->entries()) ids.push_back(e.id);
  CHECK(ids == std::vector<uint64_t>{5, 6, 7, 8, 9});
}
