// SPDX-License-Identifier: MIT
// One command-line parser for cloned, clonectl and clone-origin, so that the
// three read their arguments and word their usage the same way.
//
// A program is a table: options valid anywhere on the line (clone-origin's
// --config), and commands, each with its options and at most one operand. A
// program without command words (cloned) has one command with an empty name.
// Options are "--name value" or "--name=value"; a flag takes no value. Values
// are taken as given (a value may start with "-"); the program checks them and
// reports a bad one through usage_error, so every usage error looks alike:
//
//   clonectl: unknown option '--jsn'
//   usage: clonectl status --config FILE [--json]
//   Run 'clonectl status --help' for more.
//
// and exits 2. "--help" or "-h" (or the word "help" where a command is
// expected) asks for help: the command's usage when a command was named before
// it, else the program's. parse() prints nothing; the caller decides.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace base::cli {

struct Option {
  std::string_view name;   // "--config"
  std::string_view value;  // how the usage shows its value ("FILE"); empty: a flag without a value
  bool required = false;
};

struct Command {
  std::string_view name;  // "status"; empty: the program takes no command word
  std::vector<Option> options;
  std::string_view operand;  // one required word after the options, as the usage shows it; empty: none
  std::string_view about;    // what it does: lines ending in '\n', shown indented under its synopsis
};

struct Program {
  std::string_view name;   // "clonectl"
  std::string_view about;  // one or two lines under the program's usage line
  std::vector<Option> global_options;
  std::vector<Command> commands;
  std::string_view notes;  // after the commands in the program's help (value formats, defaults)
};

// What a command line asked for.
struct Args {
  const Command* command = nullptr;           // set when outcome is run; may be set with help and error too
  std::map<std::string, std::string> values;  // option name -> value ("" for a flag), globals included
  std::string operand;

  bool has(std::string_view name) const { return values.count(std::string(name)) != 0; }
  std::string get(std::string_view name, std::string_view fallback = "") const;
};

enum class Outcome { run, help, usage_error };

struct Parsed {
  Outcome outcome = Outcome::run;
  Args args;
  std::string error;  // with usage_error: what is wrong, a sentence without the program's name
};

// Reads argv[1..argc). Pure: prints nothing.
Parsed parse(const Program& program, int argc, const char* const* argv);

// One command's usage: "usage: clonectl status --config FILE [--json]\n", wrapped at 80 columns.
std::string synopsis(const Program& program, const Command& command);
// The help text: for one command (its usage line and about), or with no
// command for the whole program (every command, then the notes).
std::string help_text(const Program& program, const Command* command);

// Prints `why` and the short usage to stderr, in the one style; returns 2, the exit code.
int usage_error(const Program& program, const Command* command, std::string_view why);

// parse(), then: help printed to stdout (returns 0), or a usage error printed
// (returns 2), or -1 with `out` filled for the program to run.
int parse_or_exit_code(const Program& program, int argc, const char* const* argv, Args& out);

}  // namespace base::cli
