// SPDX-License-Identifier: MIT
// Which seeds a seeded test runs (docs/TESTING.md, "Seeds"), from the
// environment:
//   CLONED_SEED=N                         seed N alone (a replay)
//   CLONED_SEED_FIRST=N CLONED_SEED_COUNT=K
//                                         K seeds from N (a sweep; CI's window
//                                         derived from the commit, see
//                                         test/scenario/explore.sh)
// and otherwise the test's own fixed window. Only the fixed window judges the
// tallies ("did it inject every kind of fault?"): a replay or a sweep judges
// each seed by its invariants alone.
#pragma once

#include <doctest/doctest.h>

#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace sim {

struct SeedWindow {
  uint64_t first = 0;
  uint64_t count = 0;
  bool fixed = true;  // the test's own window, not one from the environment
};

// The value of environment variable `name` as a number, or `fallback` when
// unset; a value that is not a whole number fails the test with its name.
inline uint64_t seed_env(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr) return fallback;
  char* end = nullptr;
  const uint64_t value = std::strtoull(text, &end, 10);
  if (*text == '\0' || *end != '\0' || *text == '-')
    FAIL(std::string(name) << "=" << std::string(text)
                           << " is not a whole number: set it to a seed (CLONED_SEED, CLONED_SEED_FIRST) or a count "
                              "(CLONED_SEED_COUNT)");
  return value;
}

inline SeedWindow seed_window(uint64_t fixed_first, uint64_t fixed_count) {
  if (std::getenv("CLONED_SEED") != nullptr) return {seed_env("CLONED_SEED", 0), 1, false};
  if (std::getenv("CLONED_SEED_FIRST") == nullptr && std::getenv("CLONED_SEED_COUNT") == nullptr)
    return {fixed_first, fixed_count, true};
  return {seed_env("CLONED_SEED_FIRST", fixed_first), seed_env("CLONED_SEED_COUNT", fixed_count), false};
}

// The one command that replays `seed` of the test case named `test_case` in
// build/test/`binary`. Printed with every failed check (doctest's INFO) and,
// by ReplayOnCrash, when the seed aborts (an assert or a broken promise).
inline std::string replay_command(const char* binary, const char* test_case, uint64_t seed) {
  return "replay: CLONED_SEED=" + std::to_string(seed) + " build/test/" + binary + " -tc='" + test_case + "'";
}

// While one is alive, an abort (SIGABRT) first writes its replay command to
// stderr, then goes on to the handler that was there before (doctest's, which
// reports the crash). doctest prints INFO only for failed checks, not crashes.
class ReplayOnCrash {
 public:
  explicit ReplayOnCrash(std::string command) : command_(std::move(command) + "\n") {
    current() = command_.c_str();
    struct sigaction ours = {};
    ours.sa_handler = &on_abort;
    sigemptyset(&ours.sa_mask);
    sigaction(SIGABRT, &ours, &previous());
  }
  ~ReplayOnCrash() {
    sigaction(SIGABRT, &previous(), nullptr);
    current() = nullptr;
  }
  ReplayOnCrash(const ReplayOnCrash&) = delete;
  ReplayOnCrash& operator=(const ReplayOnCrash&) = delete;

 private:
  static const char*& current() {
    static const char* command = nullptr;
    return command;
  }
  static struct sigaction& previous() {
    static struct sigaction action = {};
    return action;
  }
  static void on_abort(int signal) {
    if (const char* c = current()) {
      ssize_t ignored = ::write(STDERR_FILENO, c, std::strlen(c));
      (void)ignored;
    }
    sigaction(SIGABRT, &previous(), nullptr);
    std::raise(signal);
  }
  std::string command_;
};

}  // namespace sim
