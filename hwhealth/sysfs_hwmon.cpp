// SPDX-License-Identifier: MIT
// Temperatures from hwmon (Documentation/hwmon/sysfs-interface.rst): values in
// millidegrees Celsius, alarms as 0/1.
#include <algorithm>
#include <cerrno>
#include <map>

#include "hwhealth/sysfs.h"
#include "hwhealth/sysfs_files.h"

namespace hwhealth {
namespace {

using sysfs_files::attribute_or_empty;
using sysfs_files::read_integer;

constexpr std::string_view kInputSuffix = "_input";

// The N of every "tempN_input" in `dir`, ascending.
std::vector<unsigned> temperature_indexes(const std::string& dir) {
  std::vector<unsigned> indexes;
  for (const std::string& name : sysfs_files::entries(dir)) {
    std::string_view view(name);
    if (!view.starts_with("temp") || !view.ends_with(kInputSuffix)) continue;
    view.remove_prefix(4);
    view.remove_suffix(kInputSuffix.size());
    const std::optional<int64_t> index = sysfs_files::parse_integer(view);
    if (index && *index >= 0 && *index < 1000) indexes.push_back(static_cast<unsigned>(*index));
  }
  std::sort(indexes.begin(), indexes.end());
  return indexes;
}

bool alarm_set(const std::string& path) { return read_integer(path).value_or(0) != 0; }

// One channel; ENODATA/EIO/EAGAIN (a sensor that is not ready, a sleeping
// drive under drivetemp) or EACCES come back as the errno.
int read_sensor(const std::string& dir, const std::string& device, const std::string& chip, unsigned index,
                TemperatureSensor& sensor) {
  const std::string stem = dir + "/temp" + std::to_string(index);
  std::string input;
  const int err = sysfs_files::read_attribute(stem + "_input", input);
  if (err != 0) return err;
  const std::optional<int64_t> millicelsius = sysfs_files::parse_integer(input);
  if (!millicelsius) return EPROTO;
  sensor = TemperatureSensor{};
  sensor.device = device;
  sensor.index = index;
  sensor.chip = chip;
  sensor.label = attribute_or_empty(stem + "_label");
  sensor.input_millicelsius = *millicelsius;
  sensor.max_millicelsius = read_integer(stem + "_max");
  sensor.crit_millicelsius = read_integer(stem + "_crit");
  sensor.max_alarm = alarm_set(stem + "_max_alarm") || alarm_set(stem + "_alarm");
  sensor.crit_alarm = alarm_set(stem + "_crit_alarm");
  return 0;
}

}  // namespace

std::string TemperatureSensor::subject() const {
  std::string name = chip.empty() ? "unnamed" : chip;
  if (!label.empty()) name += " " + label;
  return device + "/temp" + std::to_string(index) + " (" + name + ")";
}

base::Result<std::vector<TemperatureSensor>> read_temperatures(const std::string& sysfs_root) {
  const std::string class_dir = sysfs_root + "/class/hwmon";
  std::vector<TemperatureSensor> sensors;
  size_t denied_count = 0;
  std::map<std::string, unsigned> seen;  // device name -> chips so named so far
  for (const std::string& hwmon : sysfs_files::numbered_entries(class_dir, "hwmon")) {
    const std::string dir = class_dir + "/" + hwmon;
    const std::string chip = attribute_or_empty(dir + "/name");
    std::string device = sysfs_files::resolved_name(dir + "/device");
    if (device.empty()) device = chip.empty() ? hwmon : chip;
    if (const unsigned n = ++seen[device]; n > 1) device += "#" + std::to_string(n);
    for (unsigned index : temperature_indexes(dir)) {
      if (sensors.size() == kTemperatureSensorsMax) return sensors;
      TemperatureSensor sensor;
      const int err = read_sensor(dir, device, chip, index, sensor);
      if (err == EACCES || err == EPERM) ++denied_count;
      if (err == 0) sensors.push_back(std::move(sensor));
    }
  }
  if (!sensors.empty()) return sensors;
  if (denied_count > 0) {
    return base::Status::error(EACCES, "no permission to read the temperature sensors under " + class_dir);
  }
  return base::Status::error(EOPNOTSUPP, "no readable temperature sensor under " + class_dir +
                                             " (no hwmon driver loaded, or none reports a temperature)");
}

}  // namespace hwhealth
