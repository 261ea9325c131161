// SPDX-License-Identifier: MIT
#include "blockio/mountinfo.h"

#include <sys/sysmacros.h>

#include <algorithm>
#include <charconv>

namespace blockio {
namespace {

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t pos = 0;
  while (pos < line.size()) {
    const size_t end = std::min(line.find(' ', pos), line.size());
    if (end > pos) fields.push_back(line.substr(pos, end - pos));
    pos = end + 1;
  }
  return fields;
}

// The kernel writes space, tab, newline and backslash in paths as \ooo octal.
std::string unescape(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool octal = text[i] == '\\' && i + 4 <= text.size() &&
                       text.substr(i + 1, 3).find_first_not_of("01234567") == std::string_view::npos;
    if (octal) {
      out.push_back(static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 + (text[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

bool parse_device(std::string_view text, dev_t& device) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned major_number = 0, minor_number = 0;
  const auto a = std::from_chars(text.data(), text.data() + colon, major_number);
  const auto b = std::from_chars(text.data() + colon + 1, text.data() + text.size(), minor_number);
  if (a.ec != std::errc() || b.ec != std::errc() || b.ptr != text.data() + text.size()) return false;
  device = makedev(major_number, minor_number);
  return true;
}

bool parse_line(std::string_view line, MountEntry& entry) {
  const std::vector<std::string_view> fields = split_fields(line);
  // id parent MAJ:MIN root mount-point options [optional...] - fstype source super-options
  size_t separator = 6;
  while (separator < fields.size() && fields[separator] != "-") ++separator;
  if (separator + 2 >= fields.size()) return false;
  if (!parse_device(fields[2], entry.device)) return false;
  entry.mount_point = unescape(fields[4]);
  entry.source = unescape(fields[separator + 2]);
  return true;
}

}  // namespace

std::vector<MountEntry> parse_mountinfo(std::string_view text) {
  std::vector<MountEntry> entries;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    MountEntry entry;
    if (parse_line(text.substr(pos, end - pos), entry)) entries.push_back(std::move(entry));
    pos = end + 1;
  }
  return entries;
}

}  // namespace blockio
