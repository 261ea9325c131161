// SPDX-License-Identifier: MIT
// Memory ECC (EDAC, Documentation/admin-guide/ras.rst) and batteries
// (Documentation/ABI/testing/sysfs-class-power).
#include <cerrno>

#include "hwhealth/sysfs.h"
#include "hwhealth/sysfs_files.h"

namespace hwhealth {
namespace {

constexpr long double kBatteryPercentBelievableMax = 1000.0L;

using sysfs_files::attribute_or_empty;
using sysfs_files::read_integer;

std::optional<uint64_t> read_unsigned(const std::string& path) {
  const std::optional<int64_t> value = read_integer(path);
  if (!value || *value < 0) return std::nullopt;
  return static_cast<uint64_t>(*value);
}

// energy_* (uWh) when the driver reports energy, else charge_* (uAh).
void read_battery_capacity(const std::string& dir, Battery& battery) {
  for (const char* kind : {"energy", "charge"}) {
    std::optional<uint64_t> full = read_unsigned(dir + "/" + kind + "_full");
    std::optional<uint64_t> design = read_unsigned(dir + "/" + kind + "_full_design");
    if (!full && !design) continue;
    battery.full = full;
    battery.full_design = design;
    battery.unit = std::string(kind) == "energy" ? "uWh" : "uAh";
    return;
  }
}

Battery read_battery(const std::string& dir, const std::string& name) {
  Battery battery;
  battery.name = name;
  battery.status = attribute_or_empty(dir + "/status");
  battery.health = attribute_or_empty(dir + "/health");
  battery.model = attribute_or_empty(dir + "/model_name");
  battery.capacity_percent = read_integer(dir + "/capacity");
  read_battery_capacity(dir, battery);
  const std::optional<uint64_t> cycles = read_unsigned(dir + "/cycle_count");
  if (cycles && *cycles > 0) battery.cycle_count = cycles;  // 0 means "not counted" on most laptops
  return battery;
}

}  // namespace

std::optional<unsigned> Battery::full_of_design_percent() const {
  if (!full || !full_design || *full_design == 0) return std::nullopt;
  const long double percent = static_cast<long double>(*full) * 100.0L / static_cast<long double>(*full_design);
  // No battery holds ten times its design: a driver's garbage is not a figure
  // (and past UINT_MAX the conversion would be undefined).
  if (percent > kBatteryPercentBelievableMax) return std::nullopt;
  return static_cast<unsigned>(percent + 0.5L);
}

base::Result<std::vector<MemoryController>> read_memory_ecc(const std::string& sysfs_root) {
  const std::string dir = sysfs_root + "/devices/system/edac/mc";
  std::vector<MemoryController> controllers;
  for (const std::string& name : sysfs_files::numbered_entries(dir, "mc")) {
    if (controllers.size() == kMemoryControllersMax) break;
    const std::string mc = dir + "/" + name;
    std::string ce_text;
    const int err = sysfs_files::read_attribute(mc + "/ce_count", ce_text);
    if (err == EACCES || err == EPERM) return base::Status::error(EACCES, "no permission to read " + mc + "/ce_count");
    const std::optional<int64_t> ce = sysfs_files::parse_integer(ce_text);
    const std::optional<uint64_t> ue = read_unsigned(mc + "/ue_count");
    if (!ce || *ce < 0 || !ue) continue;
    controllers.push_back(MemoryController{name, attribute_or_empty(mc + "/mc_name"), static_cast<uint64_t>(*ce), *ue});
  }
  if (!controllers.empty()) return controllers;
  return base::Status::error(EOPNOTSUPP, "n/a: no EDAC memory controller under " + dir +
                                             " (the machine has no ECC memory, as most laptops, or no EDAC driver)");
}

base::Result<std::vector<Battery>> read_batteries(const std::string& sysfs_root) {
  const std::string dir = sysfs_root + "/class/power_supply";
  std::vector<Battery> batteries;
  for (const std::string& name : sysfs_files::entries(dir)) {
    if (batteries.size() == kBatteriesMax) break;
    const std::string supply = dir + "/" + name;
    if (attribute_or_empty(supply + "/type") != "Battery") continue;
    // scope "Device" is the battery of a peripheral (a mouse), not the laptop's.
    if (attribute_or_empty(supply + "/scope") == "Device") continue;
    if (read_integer(supply + "/present").value_or(1) == 0) continue;
    batteries.push_back(read_battery(supply, name));
  }
  if (!batteries.empty()) return batteries;
  return base::Status::error(EOPNOTSUPP, "n/a: no battery under " + dir + " (removed, or not a laptop)");
}

}  // namespace hwhealth
