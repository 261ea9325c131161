// SPDX-License-Identifier: MIT
// Rules on the rest of the machine: temperatures, memory ECC, batteries.
#include <cstdio>
#include <string>

#include "hwhealth/assess.h"

namespace hwhealth {
namespace {

// Batteries that hold less than this share of their design capacity are worn.
constexpr unsigned kBatteryWornPercentMax = 50;

std::string number(uint64_t value) { return std::to_string(value); }

// 48500 -> "48.5"
std::string celsius(int64_t millicelsius) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", static_cast<double>(millicelsius) / 1000.0);
  return text;
}

std::vector<Figure> temperature_figures(const TemperatureSensor& s) {
  std::vector<Figure> figures = {{"input_millicelsius", std::to_string(s.input_millicelsius)}};
  if (s.max_millicelsius) figures.push_back({"max_millicelsius", std::to_string(*s.max_millicelsius)});
  if (s.crit_millicelsius) figures.push_back({"crit_millicelsius", std::to_string(*s.crit_millicelsius)});
  if (s.max_alarm) figures.push_back({"max_alarm", "1"});
  if (s.crit_alarm) figures.push_back({"crit_alarm", "1"});
  return figures;
}

// A limit of 0 or below is a driver that fills the file with nothing useful.
bool over(const TemperatureSensor& s, const std::optional<int64_t>& limit) {
  return limit && *limit > 0 && s.input_millicelsius >= *limit;
}

bool healthy_battery_word(const std::string& health) {
  return health.empty() || health == "Good" || health == "Unknown";
}

}  // namespace

void assess_temperatures(const std::vector<TemperatureSensor>& sensors, std::vector<Finding>& out) {
  for (const TemperatureSensor& s : sensors) {
    const std::string reading = s.subject() + " reads " + celsius(s.input_millicelsius) + " °C";
    if (over(s, s.crit_millicelsius) || s.crit_alarm) {
      const std::string limit = s.crit_millicelsius ? ", at or over its critical " + celsius(*s.crit_millicelsius) + " °C" : "";
      out.push_back(Finding{Severity::critical, "temp.over_crit", s.subject(),
                            reading + limit + (s.crit_alarm ? " (critical alarm)" : "") +
                                ": the machine may shut down or be damaged; check its fan and vents",
                            temperature_figures(s), false});
    } else if (over(s, s.max_millicelsius) || s.max_alarm) {
      const std::string limit = s.max_millicelsius ? ", at or over its maximum " + celsius(*s.max_millicelsius) + " °C" : "";
      out.push_back(Finding{Severity::warning, "temp.over_max", s.subject(),
                            reading + limit + (s.max_alarm ? " (alarm)" : "") +
                                ": it runs too hot; check its fan and vents",
                            temperature_figures(s), false});
    }
  }
}

void assess_memory_ecc(const std::vector<MemoryController>& controllers, std::vector<Finding>& out) {
  for (const MemoryController& mc : controllers) {
    const std::vector<Figure> figures = {{"ce_count", number(mc.corrected_count)},
                                         {"ue_count", number(mc.uncorrected_count)}};
    if (mc.uncorrected_count > 0) {
      out.push_back(Finding{Severity::critical, "memory_ecc.uncorrected", mc.name,
                            "Memory controller " + mc.name + " counted " + number(mc.uncorrected_count) +
                                " uncorrected memory errors: data in RAM was corrupted; test the memory and "
                                "replace the failing module",
                            figures, false});
    }
    if (mc.corrected_count > 0) {
      out.push_back(Finding{Severity::info, "memory_ecc.corrected", mc.name,
                            "Memory controller " + mc.name + " corrected " + number(mc.corrected_count) +
                                " memory errors since boot; a rising count points at a failing module",
                            figures, false});
    }
  }
}

void assess_batteries(const std::vector<Battery>& batteries, std::vector<Finding>& out) {
  for (const Battery& b : batteries) {
    if (!healthy_battery_word(b.health)) {
      out.push_back(Finding{Severity::warning, "battery.health", b.name,
                            "Battery " + b.name + " reports its health as \"" + b.health +
                                "\": the clone may not last on battery; check or replace it",
                            {{"health", b.health}}, false});
    }
    const std::optional<unsigned> percent = b.full_of_design_percent();
    if (percent && *percent < kBatteryWornPercentMax) {
      out.push_back(Finding{Severity::warning, "battery.worn", b.name,
                            "Battery " + b.name + " holds " + number(*percent) +
                                "% of its design capacity: it is worn; replace it when the clone must run "
                                "unplugged",
                            {{"full", number(*b.full)}, {"full_design", number(*b.full_design)},
                             {"unit", b.unit}, {"percent_of_design", number(*percent)}},
                            false});
    }
  }
}

}  // namespace hwhealth
