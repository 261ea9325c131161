// SPDX-License-Identifier: MIT
#include "config/toml_reader.h"

#include <algorithm>
#include <cerrno>

#include "base/units.h"

namespace config::detail {
namespace {

// A value quoted for a message; long values are cut so one bad line cannot
// flood the log.
std::string quoted(std::string_view text) {
  constexpr size_t kShownBytesMax = 80;
  if (text.size() <= kShownBytesMax) return "\"" + std::string(text) + "\"";
  return "\"" + std::string(text.substr(0, kShownBytesMax)) + "...\"";
}

// "33554432 (32 MiB)"; small values stay plain.
std::string size_text(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes);
  return std::to_string(bytes) + " (" + base::format_bytes(bytes) + ")";
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace

const char* describe_type(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

// --- TomlSection ---

std::string TomlSection::dotted(std::string_view key) const {
  return name_ + "." + std::string(key);
}

uint32_t TomlSection::line_of(std::string_view key) const {
  if (table_ != nullptr) {
    if (const toml::node* node = table_->get(key)) return node->source().begin.line;
    return table_->source().begin.line;
  }
  return 1;
}

void TomlSection::fail(std::string_view key, const std::string& tail) {
  doc_.fail(line_of(key), "key '" + dotted(key) + "' " + tail);
}

void TomlSection::fail_type(std::string_view key, const toml::node& node, const char* wanted) {
  fail(key, std::string("must be ") + wanted + ", not " + describe_type(node));
}

const toml::node* TomlSection::lookup(std::string_view key, Need need) {
  doc_.known_[name_].emplace_back(key);
  const toml::node* node = table_ != nullptr ? table_->get(key) : nullptr;
  if (node == nullptr && need == Need::required && !broken_) {
    if (table_ != nullptr) {
      fail(key, "is required and missing from [" + name_ + "]");
    } else {
      fail(key, "is required, and there is no [" + name_ + "] table");
    }
  }
  return node;
}

bool TomlSection::string(std::string_view key, std::string& out, Need need) {
  const toml::node* node = lookup(key, need);
  if (node == nullptr) return false;
  const auto* value = node->as_string();
  if (value == nullptr) {
    fail_type(key, *node, "a string");
    return false;
  }
  out = value->get();
  return true;
}

bool TomlSection::u32(std::string_view key, uint32_t& out, uint32_t min, uint32_t max,
                      Need need) {
  const toml::node* node = lookup(key, need);
  if (node == nullptr) return false;
  const auto* value = node->as_integer();
  if (value == nullptr) {
    fail_type(key, *node, "an integer");
    return false;
  }
  const int64_t v = value->get();
  if (v < static_cast<int64_t>(min) || v > static_cast<int64_t>(max)) {
    fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                  ", not " + std::to_string(v));
    return false;
  }
  out = static_cast<uint32_t>(v);
  return true;
}

bool TomlSection::size(std::string_view key, uint64_t& out, uint64_t min, uint64_t max,
                       Need need) {
  const toml::node* node = lookup(key, need);
  if (node == nullptr) return false;
  uint64_t bytes = 0;
  if (const auto* integer = node->as_integer()) {
    if (integer->get() < 0) {
      fail(key, "must be a size in bytes, not " + std::to_string(integer->get()));
      return false;
    }
    bytes = static_cast<uint64_t>(integer->get());
  } else if (const auto* text = node->as_string()) {
    std::optional<uint64_t> parsed = base::parse_size_bytes(text->get());
    if (!parsed) {
      fail(key, "must be a size such as 33554432 or \"32M\", not " + quoted(text->get()));
      return false;
    }
    bytes = *parsed;
  } else {
    fail_type(key, *node, "a size (an integer, or a string such as \"32M\")");
    return false;
  }
  if (bytes < min || bytes > max) {
    fail(key, "must be between " + size_text(min) + " and " + size_text(max) + " bytes, not " +
                  size_text(bytes));
    return false;
  }
  out = bytes;
  return true;
}

bool TomlSection::boolean(std::string_view key, bool& out, Need need) {
  const toml::node* node = lookup(key, need);
  if (node == nullptr) return false;
  const auto* value = node->as_boolean();
  if (value == nullptr) {
    fail_type(key, *node, "true or false");
    return false;
  }
  out = value->get();
  return true;
}

// --- TomlDoc ---

void TomlDoc::fail(uint32_t line, std::string message) {
  problems_.push_back(Problem{false, line == 0 ? 1 : line, std::move(message)});
}

void TomlDoc::fail_unknown(uint32_t line, std::string message) {
  problems_.push_back(Problem{true, line == 0 ? 1 : line, std::move(message)});
}

TomlSection TomlDoc::section(std::string_view name) {
  known_.try_emplace(std::string(name));
  const toml::node* node = root_.get(name);
  if (node == nullptr) return TomlSection(*this, std::string(name), nullptr, false);
  if (const toml::table* table = node->as_table()) {
    return TomlSection(*this, std::string(name), table, false);
  }
  fail(node->source().begin.line, "'" + std::string(name) + "' must be a table ([" +
                                      std::string(name) + "]), not " + describe_type(*node));
  return TomlSection(*this, std::string(name), nullptr, true);
}

void TomlDoc::check_unknown_keys(std::string_view name, const toml::table& table) {
  const std::vector<std::string>& keys = known_.find(name)->second;
  for (auto&& [key, node] : table) {
    if (std::find(keys.begin(), keys.end(), key.str()) != keys.end()) continue;
    fail_unknown(key.source().begin.line, "unknown key '" + std::string(name) + "." +
                                      std::string(key.str()) + "'; the keys of [" +
                                      std::string(name) + "] are " + join(keys));
  }
}

base::Status TomlDoc::finish() {
  std::vector<std::string> tables;
  for (const auto& entry : known_) tables.push_back(entry.first);
  for (auto&& [key, node] : root_) {
    auto known = known_.find(key.str());
    if (known == known_.end()) {
      fail_unknown(key.source().begin.line, "unknown " +
                                        std::string(node.is_table() ? "table [" : "key '") +
                                        std::string(key.str()) +
                                        (node.is_table() ? "]" : "'") + "; the tables are " +
                                        join(tables));
    } else if (const toml::table* table = node.as_table()) {
      check_unknown_keys(key.str(), *table);
    }
  }
  if (problems_.empty()) return base::Status::ok();
  std::stable_sort(problems_.begin(), problems_.end(),
                   [](const Problem& a, const Problem& b) {
                     if (a.unknown != b.unknown) return a.unknown;
                     return a.line < b.line;
                   });
  std::string message = file_ + ":" + std::to_string(problems_.front().line) + ": " +
                        problems_.front().message;
  if (problems_.size() > 1) {
    message += " (and " + std::to_string(problems_.size() - 1) + " more problem" +
               (problems_.size() > 2 ? "s" : "") + " in this file)";
  }
  return base::Status::error(EINVAL, message);
}

}  // namespace config::detail
