// SPDX-License-Identifier: MIT
// Internal: a minimal streaming JSON writer (commas and escaping), enough for
// the health formatter. Structure errors are programmer errors (asserted).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hwhealth {

class JsonWriter {
 public:
  void begin_object();
  void end_object();
  void begin_array();
  void end_array();
  JsonWriter& key(std::string_view name);  // inside an object, before each value
  void string(std::string_view value);
  void number(int64_t value);
  void number(uint64_t value);
  void boolean(bool value);
  void null();

  // Shorthands for one member.
  void field(std::string_view name, std::string_view value) { key(name).string(value); }
  void field(std::string_view name, const char* value) { key(name).string(value); }
  void field(std::string_view name, uint64_t value) { key(name).number(value); }
  void field(std::string_view name, int64_t value) { key(name).number(value); }
  void field(std::string_view name, bool value) { key(name).boolean(value); }

  const std::string& text() const { return out_; }

 private:
  void before_value();
  std::string out_;
  std::vector<bool> first_in_level_;  // per open object/array: nothing written in it yet
  bool after_key_ = false;
};

struct Finding;
struct Change;
// One finding as a JSON object (severity, code, subject, sentence, event,
// figures), shared by the snapshot and report formats (format_json.cpp).
void write_finding(JsonWriter& w, const Finding& f);
// One Change as an object (format_changes_json and the original's report JSON).
void write_change(JsonWriter& w, const Change& c);

}  // namespace hwhealth
