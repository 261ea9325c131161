// SPDX-License-Identifier: MIT
// Internal: reading small sysfs files and listing sysfs directories.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hwhealth::sysfs_files {

inline constexpr size_t kAttributeBytesMax = 4096;  // a sysfs attribute is at most a page
inline constexpr size_t kDirectoryEntriesMax = 4096;

// Reads a whole attribute file, trimmed of surrounding whitespace and NULs.
// Returns 0 or the errno of the failure (ENOENT when absent).
int read_attribute(const std::string& path, std::string& out);
// The trimmed text, or "" when it cannot be read.
std::string attribute_or_empty(const std::string& path);
// A decimal (or, with base 16, "0x"-prefixed hex) integer attribute; nullopt
// when absent, unreadable or not a number.
std::optional<int64_t> read_integer(const std::string& path, int base = 10);
std::optional<int64_t> parse_integer(std::string_view text, int base = 10);

bool exists(const std::string& path);
// Names in `dir` that start with `prefix` followed by a decimal number, sorted
// by that number ("hwmon2" before "hwmon10"); at most kDirectoryEntriesMax.
std::vector<std::string> numbered_entries(const std::string& dir, const std::string& prefix);
// All names in `dir`, sorted; at most kDirectoryEntriesMax.
std::vector<std::string> entries(const std::string& dir);
// The last component of the canonical target of `path`; "" if it does not resolve.
std::string resolved_name(const std::string& path);

}  // namespace hwhealth::sysfs_files
