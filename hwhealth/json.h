// SPDX-License-Identifier: MIT
// The JSON forms of health data as nlohmann-json values, for the formatters
// here and for callers that embed a report in a larger document (the
// original's `health --json`). Objects keep their members in insertion order,
// the order docs/HEALTH.md shows.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace hwhealth {

using Json = nlohmann::ordered_json;

struct Finding;
struct Change;
struct Report;

// One finding: severity, code, subject, sentence, event, figures.
Json finding_json(const Finding& f);
// One Change: kind, severity, key, sentence and what the kind carries.
Json change_json(const Change& c);
// One Report (report_format.cpp).
Json report_json(const Report& r);

// Compact text, no trailing newline. Strings come from drivers and files:
// invalid UTF-8 becomes U+FFFD instead of an exception.
inline std::string dump_json(const Json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace hwhealth
