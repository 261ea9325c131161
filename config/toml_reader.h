// SPDX-License-Identifier: MIT
// Strict reading of one parsed TOML document (internal to config/).
//
// A loader asks a TomlDoc for its sections and each section for its keys,
// with types and ranges. Every key asked for is remembered, so finish() can
// name any table or key that nobody asked for (a typo must not be silently
// ignored and leave a default in force). Problems are collected with their
// line; finish() reports the first one in file order, as "FILE:LINE: ...",
// except that unknown keys come first: a misspelt key also makes the real
// one look missing, and the misspelling is what the user must see.
//
// Nothing here throws: toml++ only throws while parsing, which the caller
// does (config.cpp).
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace config::detail {

enum class Need { optional, required };

class TomlDoc;

// One [table] of the document, possibly absent. Each getter leaves `out`
// untouched when the key is absent (so it keeps its default) or wrong.
class TomlSection {
 public:
  // Returns true when the key is present and well typed; `out` is then set.
  bool string(std::string_view key, std::string& out, Need need = Need::optional);
  bool u32(std::string_view key, uint32_t& out, uint32_t min, uint32_t max,
           Need need = Need::optional);
  // An integer or a size string ("32M", "1G"; base::parse_size_bytes).
  bool size(std::string_view key, uint64_t& out, uint64_t min, uint64_t max,
            Need need = Need::optional);
  bool boolean(std::string_view key, bool& out, Need need = Need::optional);

  // Records a problem with a key's value: "FILE:LINE: key 'a.b' <tail>".
  void fail(std::string_view key, const std::string& tail);

 private:
  friend class TomlDoc;
  TomlSection(TomlDoc& doc, std::string name, const toml::table* table, bool broken)
      : doc_(doc), name_(std::move(name)), table_(table), broken_(broken) {}
  // The node of `key` after remembering the key as known; nullptr if absent
  // (and a "missing" problem when required).
  const toml::node* lookup(std::string_view key, Need need);
  std::string dotted(std::string_view key) const;
  uint32_t line_of(std::string_view key) const;
  void fail_type(std::string_view key, const toml::node& node, const char* wanted);

  TomlDoc& doc_;
  std::string name_;
  const toml::table* table_;  // nullptr when the table is absent or not a table
  bool broken_;               // present but not a table: already reported
};

class TomlDoc {
 public:
  TomlDoc(std::string file, const toml::table& root) : file_(std::move(file)), root_(root) {}

  TomlSection section(std::string_view name);
  // Reports unknown tables and keys, then the first problem in file order.
  base::Status finish();

  void fail(uint32_t line, std::string message);
  const std::string& file() const { return file_; }

 private:
  friend class TomlSection;
  struct Problem {
    bool unknown;  // an unknown key or table: reported first, as it often explains the rest
    uint32_t line;
    std::string message;
  };
  void fail_unknown(uint32_t line, std::string message);
  void check_unknown_keys(std::string_view name, const toml::table& table);

  std::string file_;
  const toml::table& root_;
  // Table name -> the keys asked for in it, in the order asked.
  std::map<std::string, std::vector<std::string>, std::less<>> known_;
  std::vector<Problem> problems_;
};

// "an integer", "a string", ... for messages.
const char* describe_type(const toml::node& node);

}  // namespace config::detail
