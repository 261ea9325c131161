// SPDX-License-Identifier: MIT
// Level 3, black box: the command lines of cloned, clonectl and clone-origin
// (base/cli.h). Help goes to stdout with exit 0; a usage error goes to stderr:
// what is wrong, the command's usage, a pointer to its --help, exit 2, before
// any configuration is read.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "test/support/harness.h"

namespace {

struct Outcome {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs the binary named by `env_name` with `args`, stdout and stderr apart.
Outcome run(const char* env_name, const std::vector<std::string>& args) {
  harness::TempDir dir;
  const std::string err_path = dir / "stderr";
  std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>'" + err_path + "'",
                                   harness::binary(env_name)};
  argv.insert(argv.end(), args.begin(), args.end());
  Outcome o;
  o.code = harness::run(argv, o.out, 10000);
  o.err = harness::read_file(err_path);
  return o;
}

// A usage error in the one style: exit 2, nothing on stdout, and on stderr
// "PROGRAM: WHY", a usage line, and "Run 'POINTER --help' for more.".
void check_usage_error(const Outcome& o, const std::string& program, const std::string& why,
                       const std::string& pointer) {
  CAPTURE(o.err);
  CHECK(o.code == 2);
  CHECK(o.out.empty());
  CHECK(o.err.starts_with(program + ": " + why + "\nusage: " + program));
  CHECK(o.err.ends_with("\nRun '" + pointer + " --help' for more.\n"));
}

}  // namespace

TEST_CASE("--help prints the program's usage, COMMAND --help that command's, on stdout with exit 0") {
  struct Case {
    const char* binary;
    std::vector<std::string> args;
    std::string starts;
  };
  const std::vector<Case> cases = {
      {"CLONED_BIN", {"--help"}, "usage: cloned --config FILE [--log-level"},
      {"CLONECTL_BIN", {"--help"}, "usage: clonectl COMMAND [OPTIONS]\n"},
      {"CLONECTL_BIN", {"help"}, "usage: clonectl COMMAND [OPTIONS]\n"},
      {"CLONECTL_BIN", {"status", "--help"}, "usage: clonectl status --config FILE [--json]\n  "},
      {"CLONECTL_BIN", {"decide", "-h"}, "usage: clonectl decide --config FILE discard-clone-changes|keep-diverged\n"},
      {"ORIGIN_BIN", {"--help"}, "usage: clone-origin --config FILE [--log-level LEVEL] COMMAND [OPTIONS]\n"},
      {"ORIGIN_BIN",
       {"--config", "/nonexistent", "health", "--help"},
       "usage: clone-origin --config FILE [--log-level LEVEL] health [--json]\n"
       "                    [--collect-ms MS]\n  print"},
  };
  for (const Case& c : cases) {
    const Outcome o = run(c.binary, c.args);
    CAPTURE(c.starts);
    CHECK(o.code == 0);
    CHECK(o.err.empty());
    CHECK(o.out.starts_with(c.starts));
  }
  const Outcome all = run("ORIGIN_BIN", {"--help"});
  for (const char* command : {"workload", "capture", "replay", "resync", "verify", "health", "wake", "sleep"})
    CHECK(all.out.find(std::string("\n  ") + command + " ") != std::string::npos);
}

TEST_CASE("cloned: unknown options, missing values and bad levels are usage errors") {
  check_usage_error(run("CLONED_BIN", {"--bogus"}), "cloned", "unknown option '--bogus'", "cloned");
  check_usage_error(run("CLONED_BIN", {"--config"}), "cloned", "--config needs a value (FILE)", "cloned");
  check_usage_error(run("CLONED_BIN", {}), "cloned", "--config FILE is required", "cloned");
  check_usage_error(run("CLONED_BIN", {"--config", "/nonexistent", "--log-level", "loud"}), "cloned",
                    "--log-level takes error, warning, notice, info or debug", "cloned");
  check_usage_error(run("CLONED_BIN", {"--config", "/nonexistent", "extra"}), "cloned", "unexpected argument 'extra'",
                    "cloned");
}

TEST_CASE("clonectl: each command's usage errors point to that command's --help") {
  check_usage_error(run("CLONECTL_BIN", {}), "clonectl", "a command is needed", "clonectl");
  check_usage_error(run("CLONECTL_BIN", {"frob"}), "clonectl", "unknown command 'frob'", "clonectl");
  check_usage_error(run("CLONECTL_BIN", {"status", "--config", "/nonexistent", "--jsn"}), "clonectl",
                    "unknown option '--jsn'", "clonectl status");
  check_usage_error(run("CLONECTL_BIN", {"status"}), "clonectl", "status needs --config FILE", "clonectl status");
  check_usage_error(run("CLONECTL_BIN", {"events", "--config", "/nonexistent", "--limit"}), "clonectl",
                    "--limit needs a value (N)", "clonectl events");
  check_usage_error(run("CLONECTL_BIN", {"events", "--config", "/nonexistent", "--limit", "0"}), "clonectl",
                    "--limit takes a number from 1 to 10000", "clonectl events");
  check_usage_error(run("CLONECTL_BIN", {"decide", "--config", "/nonexistent", "maybe"}), "clonectl",
                    "decide takes discard-clone-changes or keep-diverged", "clonectl decide");
  check_usage_error(run("CLONECTL_BIN", {"health", "--config", "/nonexistent", "--json", "--json"}), "clonectl",
                    "--json given twice", "clonectl health");
  check_usage_error(run("CLONECTL_BIN", {"pair", "--clone-dir", "a", "--origin-dir", "b"}), "clonectl",
                    "pair needs --target PATH", "clonectl pair");
  // A configuration that cannot be read is not a usage error: exit 1, a sentence.
  const Outcome missing = run("CLONECTL_BIN", {"status", "--config", "/nonexistent/cloned.toml"});
  CHECK(missing.code == 1);
  CHECK(missing.err.starts_with("clonectl: "));
  CHECK(missing.err.find("usage:") == std::string::npos);
}

TEST_CASE("clone-origin: global options anywhere, usage errors per command, bad values before the configuration") {
  check_usage_error(run("ORIGIN_BIN", {"--config", "/nonexistent"}), "clone-origin", "a command is needed",
                    "clone-origin");
  check_usage_error(run("ORIGIN_BIN", {"--config", "/nonexistent", "frob"}), "clone-origin", "unknown command 'frob'",
                    "clone-origin");
  check_usage_error(run("ORIGIN_BIN", {"replay", "--spool", "s"}), "clone-origin", "--config FILE is required",
                    "clone-origin replay");
  check_usage_error(run("ORIGIN_BIN", {"resync", "--config", "/nonexistent"}), "clone-origin",
                    "resync needs --source IMAGE", "clone-origin resync");
  check_usage_error(run("ORIGIN_BIN", {"--config", "/nonexistent", "verify", "--source", "a", "--bogus"}),
                    "clone-origin", "unknown option '--bogus'", "clone-origin verify");
  check_usage_error(run("ORIGIN_BIN", {"--config", "/nonexistent", "wake", "--mac"}), "clone-origin",
                    "--mac needs a value (MAC)", "clone-origin wake");
  check_usage_error(
      run("ORIGIN_BIN", {"--config", "/nonexistent", "workload", "--source", "a", "--seed", "x", "--bytes", "1M"}),
      "clone-origin", "--seed takes a whole number, not 'x'", "clone-origin workload");
  check_usage_error(run("ORIGIN_BIN", {"--config=/nonexistent", "--log-level=loud", "health"}), "clone-origin",
                    "--log-level takes error, warning, notice, info or debug", "clone-origin health");
  const Outcome missing = run("ORIGIN_BIN", {"health", "--config", "/nonexistent/origin.toml"});
  CHECK(missing.code == 1);
  CHECK(missing.err.starts_with("clone-origin: "));
}
