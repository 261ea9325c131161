// SPDX-License-Identifier: MIT
#include "origin/health_inbox.h"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>

namespace {

struct Dir {
  std::string path;
  Dir() {
    char name[] = "/tmp/health_inbox_test.XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path = name;
  }
  ~Dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

}  // namespace

TEST_CASE("the original keeps each health report once, across reopening, and cuts a torn append") {
  Dir d;
  const base::Bytes a = {1, 2, 3}, b = {4, 5};
  {
    auto inbox = origin::HealthInbox::open(d.path);
    REQUIRE(inbox.is_ok());
    CHECK((*inbox)->receive(10, a).value() == true);
    CHECK((*inbox)->receive(10, a).value() == false);  // a resend
    CHECK((*inbox)->receive(11, b).value() == true);
  }
  const std::string file = d.path + "/health-reports.log";
  const auto good_size = std::filesystem::file_size(file);
  {
    // A crash in the middle of an append leaves a partial entry.
    FILE* f = std::fopen(file.c_str(), "ab");
    REQUIRE(f != nullptr);
    std::fwrite("HRP1partial", 1, 11, f);
    std::fclose(f);
  }
  auto inbox = origin::HealthInbox::open(d.path);
  REQUIRE(inbox.is_ok());
  REQUIRE((*inbox)->entries().size() == 2);
  CHECK((*inbox)->entries()[0].id == 10);
  CHECK((*inbox)->entries()[0].report == a);
  CHECK((*inbox)->entries()[1].report == b);
  CHECK(std::filesystem::file_size(file) == good_size);
  CHECK((*inbox)->receive(11, b).value() == false);
  CHECK((*inbox)->receive(12, a).value() == true);
}
