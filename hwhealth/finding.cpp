// SPDX-License-Identifier: MIT
#include "hwhealth/finding.h"

namespace hwhealth {

const char* severity_name(Severity severity) {
  switch (severity) {
    case Severity::info: return "info";
    case Severity::warning: return "warning";
    case Severity::critical: return "critical";
  }
  return "info";
}

std::string figure(const Finding& finding, std::string_view key) {
  for (const Figure& f : finding.figures) {
    if (f.key == key) return f.value;
  }
  return "";
}

}  // namespace hwhealth
