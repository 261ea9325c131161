// SPDX-License-Identifier: MIT
#include "hwhealth/json_writer.h"

#include <cassert>
#include <cstdio>

namespace hwhealth {
namespace {

// The length of the valid UTF-8 sequence at the start of `text`, 0 if invalid.
size_t utf8_sequence_bytes(std::string_view text) {
  const auto lead = static_cast<unsigned char>(text[0]);
  const size_t length = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3
                        : lead >= 0xf0 && lead <= 0xf4                                   ? 4
                                                                                         : 0;
  if (length == 0 || text.size() < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    const auto next = static_cast<unsigned char>(text[i]);
    if (next < 0x80 || next > 0xbf) return 0;
  }
  return length;
}

}  // namespace

void JsonWriter::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_in_level_.empty()) {
    if (!first_in_level_.back()) out_ += ',';
    first_in_level_.back() = false;
  }
}

void JsonWriter::begin_object() {
  before_value();
  out_ += '{';
  first_in_level_.push_back(true);
}

void JsonWriter::end_object() {
  assert(!first_in_level_.empty() && !after_key_);
  first_in_level_.pop_back();
  out_ += '}';
}

void JsonWriter::begin_array() {
  before_value();
  out_ += '[';
  first_in_level_.push_back(true);
}

void JsonWriter::end_array() {
  assert(!first_in_level_.empty() && !after_key_);
  first_in_level_.pop_back();
  out_ += ']';
}

JsonWriter& JsonWriter::key(std::string_view name) {
  assert(!after_key_);
  string(name);
  out_ += ':';
  after_key_ = true;
  return *this;
}

void JsonWriter::string(std::string_view value) {
  before_value();
  out_ += '"';
  for (size_t i = 0; i < value.size();) {
    const char c = value[i];
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out_ += '\\';
      out_ += c;
    } else if (byte < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", byte);
      out_ += escaped;
    } else if (byte >= 0x80) {
      // Labels come from drivers and files: pass valid UTF-8, replace the rest.
      const size_t length = utf8_sequence_bytes(value.substr(i));
      if (length == 0) out_ += "\\ufffd";
      else out_.append(value.substr(i, length));
      i += length == 0 ? 1 : length;
      continue;
    } else {
      out_ += c;
    }
    ++i;
  }
  out_ += '"';
}

void JsonWriter::number(int64_t value) {
  before_value();
  out_ += std::to_string(value);
}

void JsonWriter::number(uint64_t value) {
  before_value();
  out_ += std::to_string(value);
}

void JsonWriter::boolean(bool value) {
  before_value();
  out_ += value ? "true" : "false";
}

void JsonWriter::null() {
  before_value();
  out_ += "null";
}

}  // namespace hwhealth
