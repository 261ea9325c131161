// SPDX-License-Identifier: MIT
// One judgment about the clone's hardware, in smartd's spirit: what is
// wrong, how bad, in a sentence for a person, with the numbers behind it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hwhealth {

enum class Severity { info, warning, critical };
const char* severity_name(Severity severity);  // "info", "warning", "critical"

struct Figure {
  std::string key;    // "current", "threshold", "raw", "before", "after", ...
  std::string value;  // as text; numbers in decimal
  bool operator==(const Figure&) const = default;
};

struct Finding {
  Severity severity = Severity::info;
  // Short and stable, for programs and for the original's reports:
  // "ata.prefail_now", "nvme.critical_warning.spare", "temp.over_crit".
  std::string code;
  // What it is about, stable across polls: "/dev/sda", "attribute 5
  // Reallocated_Sector_Ct", "hwmon3/temp1 (coretemp Package id 0)", "mc0", "BAT0".
  std::string subject;
  std::string sentence;  // what happened and what to do
  std::vector<Figure> figures;
  // An event happened between the previous poll and this one (a counter
  // rose); it is not a lasting state, so diff() never reports it cleared.
  bool event = false;

  // code + "@" + subject: two findings with one identity are the same finding.
  std::string identity() const { return code + "@" + subject; }
  bool operator==(const Finding&) const = default;
};

// The value of a figure, or "" when the finding has no such figure.
std::string figure(const Finding& finding, std::string_view key);

}  // namespace hwhealth
