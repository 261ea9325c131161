// SPDX-License-Identifier: MIT
#include "base/cli.h"

#include <cstdio>

namespace base::cli {
namespace {

constexpr size_t kColumnsMax = 80;

const Option* find_option(const std::vector<Option>& options, std::string_view name) {
  for (const Option& o : options)
    if (o.name == name) return &o;
  return nullptr;
}

const Command* unnamed_command(const Program& program) {
  for (const Command& c : program.commands)
    if (c.name.empty()) return &c;
  return nullptr;
}

const Command* find_command(const Program& program, std::string_view name) {
  for (const Command& c : program.commands)
    if (!c.name.empty() && c.name == name) return &c;
  return nullptr;
}

std::string option_word(const Option& o) {
  std::string word(o.name);
  if (!o.value.empty()) word += " " + std::string(o.value);
  return o.required ? word : "[" + word + "]";
}

void add_option_words(const std::vector<Option>& options, std::vector<std::string>& words) {
  for (const Option& o : options) words.push_back(option_word(o));
}

// The words after the program's name and its global options.
std::vector<std::string> command_words(const Command& command) {
  std::vector<std::string> words;
  if (!command.name.empty()) words.emplace_back(command.name);
  add_option_words(command.options, words);
  if (!command.operand.empty()) words.emplace_back(command.operand);
  return words;
}

// Joins words after `prefix`; a word that would pass the last column starts a
// new line indented by `indent`.
std::string wrap(const std::string& prefix, const std::vector<std::string>& words, size_t indent) {
  std::string out = prefix;
  size_t column = prefix.size();
  bool first = true;
  for (const std::string& w : words) {
    if (!first && column + 1 + w.size() > kColumnsMax) {
      out += "\n" + std::string(indent, ' ');
      column = indent;
    } else if (!first) {
      out += ' ';
      ++column;
    }
    out += w;
    column += w.size();
    first = false;
  }
  return out + "\n";
}

std::string indented(std::string_view text, size_t indent) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    out += std::string(indent, ' ') + std::string(text.substr(start, end - start)) + "\n";
    start = end + 1;
  }
  return out;
}

std::string usage_line(const Program& program, const Command* command) {
  std::vector<std::string> words = {std::string(program.name)};
  add_option_words(program.global_options, words);
  if (command == nullptr) {
    words.emplace_back("COMMAND");
    words.emplace_back("[OPTIONS]");
  } else {
    for (std::string& w : command_words(*command)) words.push_back(std::move(w));
  }
  const std::string prefix = "usage: ";
  return wrap(prefix, words, prefix.size() + program.name.size() + 1);
}

std::string help_pointer(const Program& program, const Command* command) {
  std::string line = "Run '" + std::string(program.name);
  if (command != nullptr && !command->name.empty()) line += " " + std::string(command->name);
  return line + " --help' for more.\n";
}

Parsed fail(Parsed p, std::string why) {
  p.outcome = Outcome::usage_error;
  p.error = std::move(why);
  return p;
}

// Takes the option at argv[i] (and its value, moving i past it); "" when
// well formed, else what is wrong.
std::string take_option(const Program& program, int argc, const char* const* argv, int& i, Args& a) {
  const std::string_view arg = argv[i];
  const size_t eq = arg.rfind("--", 0) == 0 ? arg.find('=') : std::string_view::npos;
  const std::string_view name = arg.substr(0, eq);
  const Option* o = a.command != nullptr ? find_option(a.command->options, name) : nullptr;
  if (o == nullptr) o = find_option(program.global_options, name);
  if (o == nullptr) return "unknown option '" + std::string(name) + "'";
  std::string value;
  if (o->value.empty()) {
    if (eq != std::string_view::npos) return std::string(name) + " takes no value";
  } else if (eq != std::string_view::npos) {
    value = std::string(arg.substr(eq + 1));
  } else if (i + 1 < argc) {
    value = argv[++i];
  } else {
    return std::string(name) + " needs a value (" + std::string(o->value) + ")";
  }
  if (!a.values.emplace(std::string(name), value).second) return std::string(name) + " given twice";
  return "";
}

// What is missing once every argument is read; "" when nothing.
std::string missing(const Program& program, const Args& a) {
  for (const Option& o : program.global_options)
    if (o.required && !a.has(o.name)) return option_word(o) + " is required";
  const Command& c = *a.command;
  for (const Option& o : c.options) {
    if (!o.required || a.has(o.name)) continue;
    return c.name.empty() ? option_word(o) + " is required" : std::string(c.name) + " needs " + option_word(o);
  }
  if (!c.operand.empty() && a.operand.empty())
    return (c.name.empty() ? std::string(program.name) : std::string(c.name)) + " needs " + std::string(c.operand);
  return "";
}

}  // namespace

std::string Args::get(std::string_view name, std::string_view fallback) const {
  auto it = values.find(std::string(name));
  return it == values.end() ? std::string(fallback) : it->second;
}

Parsed parse(const Program& program, int argc, const char* const* argv) {
  Parsed p;
  Args& a = p.args;
  a.command = unnamed_command(program);
  const bool takes_command_word = a.command == nullptr;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h" || (arg == "help" && takes_command_word && a.command == nullptr)) {
      p.outcome = Outcome::help;
      return p;
    }
    if (arg.size() > 1 && arg[0] == '-') {
      if (std::string why = take_option(program, argc, argv, i, a); !why.empty()) return fail(std::move(p), why);
    } else if (takes_command_word && a.command == nullptr) {
      a.command = find_command(program, arg);
      if (a.command == nullptr) return fail(std::move(p), "unknown command '" + std::string(arg) + "'");
    } else if (!a.command->operand.empty() && a.operand.empty()) {
      a.operand = std::string(arg);
    } else {
      return fail(std::move(p), "unexpected argument '" + std::string(arg) + "'");
    }
  }
  if (a.command == nullptr) return fail(std::move(p), "a command is needed");
  if (std::string why = missing(program, a); !why.empty()) return fail(std::move(p), why);
  return p;
}

std::string synopsis(const Program& program, const Command& command) { return usage_line(program, &command); }

std::string help_text(const Program& program, const Command* command) {
  if (command == nullptr) command = unnamed_command(program);
  if (command != nullptr) return usage_line(program, command) + indented(command->about, 2);
  std::string out = usage_line(program, nullptr) + std::string(program.about) + "\ncommands:\n";
  for (const Command& c : program.commands) {
    const std::vector<std::string> words = command_words(c);
    out += wrap("  ", words, 2 + c.name.size() + 1) + indented(c.about, 6);
  }
  if (!program.notes.empty()) out += "\n" + std::string(program.notes);
  return out + "\nRun '" + std::string(program.name) + " COMMAND --help' for one command.\n";
}

int usage_error(const Program& program, const Command* command, std::string_view why) {
  const std::string text = std::string(program.name) + ": " + std::string(why) + "\n" + usage_line(program, command) +
                           help_pointer(program, command);
  std::fputs(text.c_str(), stderr);
  return 2;
}

int parse_or_exit_code(const Program& program, int argc, const char* const* argv, Args& out) {
  Parsed p = parse(program, argc, argv);
  if (p.outcome == Outcome::help) {
    std::fputs(help_text(program, p.args.command).c_str(), stdout);
    return 0;
  }
  if (p.outcome == Outcome::usage_error) return usage_error(program, p.args.command, p.error);
  out = std::move(p.args);
  return -1;
}

}  // namespace base::cli
