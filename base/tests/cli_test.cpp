// SPDX-License-Identifier: MIT
// The command-line parser: options, commands, operands, help and usage errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "base/cli.h"

namespace cli = base::cli;

namespace {

// A program shaped like clone-origin: a global option, commands with options.
const cli::Program& tool() {
  static const cli::Program program = {
      .name = "tool",
      .about = "A tool for the tests.\n",
      .global_options = {{"--config", "FILE", true}, {"--log-level", "LEVEL"}},
      .commands =
          {
              {"copy", {{"--source", "IMAGE", true}, {"--extent", "SIZE"}, {"--repair", ""}}, "", "copy IMAGE\n"},
              {"decide", {}, "keep|discard", "record a decision\n"},
          },
      .notes = "SIZE takes K, M, G suffixes.\n",
  };
  return program;
}

// A program shaped like cloned: no command word.
const cli::Program& daemon() {
  static const cli::Program program = {
      .name = "daemon",
      .commands = {{"", {{"--config", "FILE", true}, {"--log-level", "LEVEL"}}, "", "run in the foreground\n"}},
  };
  return program;
}

// Parses `words` as the arguments after the program's name.
cli::Parsed parse(const cli::Program& program, const std::vector<const char*>& words) {
  std::vector<const char*> argv(words.size() + 1, program.name.data());
  std::copy(words.begin(), words.end(), argv.begin() + 1);
  return cli::parse(program, static_cast<int>(argv.size()), argv.data());
}

}  // namespace

TEST_CASE("global and command options are read in either order, with a space or an equals sign") {
  const cli::Parsed p =
      parse(tool(), {"--config", "c.toml", "copy", "--source=a.img", "--repair", "--log-level", "debug"});
  REQUIRE(p.outcome == cli::Outcome::run);
  REQUIRE(p.args.command != nullptr);
  CHECK(p.args.command->name == "copy");
  CHECK(p.args.get("--config") == "c.toml");
  CHECK(p.args.get("--source") == "a.img");
  CHECK(p.args.get("--log-level") == "debug");
  CHECK(p.args.has("--repair"));
  CHECK_FALSE(p.args.has("--extent"));
  CHECK(p.args.get("--extent", "64K") == "64K");
  // A value is taken as given, even one that looks like an option.
  CHECK(parse(tool(), {"copy", "--source", "-odd-", "--config", "c"}).args.get("--source") == "-odd-");
}

TEST_CASE("each usage error says what is wrong") {
  struct Case {
    std::vector<const char*> words;
    const char* error;
  };
  const std::vector<Case> cases = {
      {{"--config", "c", "copy", "--bogus"}, "unknown option '--bogus'"},
      {{"--config", "c", "copy", "--source"}, "--source needs a value (IMAGE)"},
      {{"--config", "c", "copy", "--source", "a", "--repair=yes"}, "--repair takes no value"},
      {{"--config", "c", "copy", "--source", "a", "--source", "b"}, "--source given twice"},
      {{"--config", "c", "copy"}, "copy needs --source IMAGE"},
      {{"copy", "--source", "a"}, "--config FILE is required"},
      {{"--config", "c", "paste"}, "unknown command 'paste'"},
      {{"--config", "c"}, "a command is needed"},
      {{"--config", "c", "copy", "--source", "a", "extra"}, "unexpected argument 'extra'"},
      {{"--config", "c", "decide"}, "decide needs keep|discard"},
      {{"--config", "c", "decide", "keep", "again"}, "unexpected argument 'again'"},
      {{"--source", "a", "copy"}, "unknown option '--source'"},  // a command's option before the command
      {{"-x", "--config", "c", "copy"}, "unknown option '-x'"},
  };
  for (const Case& c : cases) {
    const cli::Parsed p = parse(tool(), c.words);
    CAPTURE(c.error);
    CHECK(p.outcome == cli::Outcome::usage_error);
    CHECK(p.error == c.error);
  }
}

TEST_CASE("an operand is kept; a program without command words takes its options directly") {
  const cli::Parsed decided = parse(tool(), {"decide", "--config", "c", "keep"});
  REQUIRE(decided.outcome == cli::Outcome::run);
  CHECK(decided.args.operand == "keep");
  const cli::Parsed ran = parse(daemon(), {"--config", "d.toml"});
  REQUIRE(ran.outcome == cli::Outcome::run);
  CHECK(ran.args.get("--config") == "d.toml");
  CHECK(parse(daemon(), {}).error == "--config FILE is required");
  CHECK(parse(daemon(), {"run"}).error == "unexpected argument 'run'");
}

TEST_CASE("--help, -h and the word help ask for the command's help or the program's") {
  const cli::Parsed for_copy = parse(tool(), {"copy", "--help"});
  CHECK(for_copy.outcome == cli::Outcome::help);
  REQUIRE(for_copy.args.command != nullptr);
  CHECK(for_copy.args.command->name == "copy");
  for (const std::vector<const char*>& words :
       {std::vector<const char*>{"--help"}, {"-h", "copy"}, {"help"}, {"--config", "c", "--help"}}) {
    const cli::Parsed p = parse(tool(), words);
    CHECK(p.outcome == cli::Outcome::help);
    CHECK(p.args.command == nullptr);
  }
  CHECK(parse(daemon(), {"-h"}).outcome == cli::Outcome::help);
}

TEST_CASE("usage text: one synopsis style, wrapped at 80 columns, the program's help lists every command") {
  const cli::Command& copy = tool().commands[0];
  CHECK(cli::synopsis(tool(), copy) ==
        "usage: tool --config FILE [--log-level LEVEL] copy --source IMAGE\n"
        "            [--extent SIZE] [--repair]\n");
  CHECK(cli::help_text(tool(), &copy) == cli::synopsis(tool(), copy) + "  copy IMAGE\n");
  const std::string all = cli::help_text(tool(), nullptr);
  CHECK(all.starts_with("usage: tool --config FILE [--log-level LEVEL] COMMAND [OPTIONS]\nA tool for the tests.\n"));
  CHECK(all.find("\ncommands:\n  copy --source IMAGE [--extent SIZE] [--repair]\n      copy IMAGE\n") !=
        std::string::npos);
  CHECK(all.find("  decide keep|discard\n      record a decision\n") != std::string::npos);
  CHECK(all.ends_with("\nSIZE takes K, M, G suffixes.\n\nRun 'tool COMMAND --help' for one command.\n"));
  CHECK(cli::help_text(daemon(), nullptr) ==
        "usage: daemon --config FILE [--log-level LEVEL]\n  run in the foreground\n");
  for (const std::string& text : {all, cli::help_text(tool(), &copy)}) {
    size_t start = 0;
    while (start < text.size()) {
      const size_t end = text.find('\n', start);
      CHECK(end - start <= 80);
      start = end + 1;
    }
  }
}
