// SPDX-License-Identifier: MIT
// The sysfs readers over fake trees in a temporary directory.
#include <doctest/doctest.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>

#include "hwhealth/source.h"
#include "hwhealth/sysfs.h"
#include "hwhealth/tests/test_support.h"

using hwhealth_test::contains;
using hwhealth_test::TempDir;

namespace {

// hwmonH is numbered in probe order: `numbers` says which the coretemp,
// acpitz and nvme chips got (another boot may number them otherwise).
struct HwmonNumbers {
  std::string cpu = "hwmon0", acpi = "hwmon2", nvme = "hwmon10", ac = "hwmon3";
};
void write_hwmon_tree(const TempDir& root, const HwmonNumbers& n = {}) {
  const std::string cpu = "class/hwmon/" + n.cpu + "/", acpi = "class/hwmon/" + n.acpi + "/",
                    nvme = "class/hwmon/" + n.nvme + "/";
  root.mkdir("devices/platform/coretemp.0");
  root.mkdir("devices/pci0000:00/0000:00:1d.0/0000:3c:00.0/nvme/nvme0");
  root.write(cpu + "name", "coretemp\n");
  root.link(cpu + "device", "../../../devices/platform/coretemp.0");
  root.write(cpu + "temp1_label", "Package id 0\n");
  root.write(cpu + "temp1_input", "45000\n");
  root.write(cpu + "temp1_max", "80000\n");
  root.write(cpu + "temp1_crit", "100000\n");
  root.write(cpu + "temp1_crit_alarm", "0\n");
  root.write(cpu + "temp2_label", "Core 0\n");
  root.write(cpu + "temp2_input", "101000\n");
  root.write(cpu + "temp2_crit", "100000\n");
  root.write(cpu + "temp2_crit_alarm", "1\n");
  root.write(nvme + "name", "nvme\n");
  root.link(nvme + "device", "../../../devices/pci0000:00/0000:00:1d.0/0000:3c:00.0/nvme/nvme0");
  root.write(nvme + "temp1_label", "Composite\n");
  root.write(nvme + "temp1_input", "38850\n");
  root.write(nvme + "temp1_alarm", "1\n");
  root.write(acpi + "name", "acpitz\n");  // a thermal zone's chip: no device link
  root.write(acpi + "temp1_input", "27800\n");
  root.mkdir(acpi + "temp3_input");  // unreadable (as a sleeping drivetemp): skipped
  root.write(acpi + "temp4_input", "not a number\n");
  root.write("class/hwmon/" + n.ac + "/name", "ac\n");  // a chip without temperatures
}

void write_edac_tree(const TempDir& root) {
  root.write("devices/system/edac/mc/mc0/ce_count", "3\n");
  root.write("devices/system/edac/mc/mc0/ue_count", "0\n");
  root.write("devices/system/edac/mc/mc0/mc_name", "Skylake Socket#0 IMC#0\n");
  root.write("devices/system/edac/mc/mc1/ce_count", "0\n");
  root.write("devices/system/edac/mc/mc1/ue_count", "1\n");
  root.write("devices/system/edac/mc/power/control", "auto\n");  // not a controller
}

void write_power_supply_tree(const TempDir& root) {
  const std::string bat0 = "class/power_supply/BAT0/";
  root.write(bat0 + "type", "Battery\n");
  root.write(bat0 + "present", "1\n");
  root.write(bat0 + "status", "Discharging\n");
  root.write(bat0 + "capacity", "87\n");
  root.write(bat0 + "energy_full", "45000000\n");
  root.write(bat0 + "energy_full_design", "50000000\n");
  root.write(bat0 + "cycle_count", "312\n");
  root.write(bat0 + "model_name", "5B10W13930\n");
  const std::string bat1 = "class/power_supply/BAT1/";
  root.write(bat1 + "type", "Battery\n");
  root.write(bat1 + "status", "Not charging\n");
  root.write(bat1 + "health", "Dead\n");
  root.write(bat1 + "charge_full", "1900000\n");
  root.write(bat1 + "charge_full_design", "4000000\n");
  root.write(bat1 + "cycle_count", "0\n");
  root.write("class/power_supply/AC/type", "Mains\n");
  root.write("class/power_supply/AC/online", "1\n");
  root.write("class/power_supply/hid-mouse-battery/type", "Battery\n");
  root.write("class/power_supply/hid-mouse-battery/scope", "Device\n");
  root.write("class/power_supply/BAT2/type", "Battery\n");
  root.write("class/power_supply/BAT2/present", "0\n");
}

// /sys/dev/block/MAJ:MIN links and /sys/block/NAME dirs for one disk of each kind.
void write_block_tree(const TempDir& root) {
  const std::string sda = "devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0";
  root.mkdir(sda + "/block/sda/sda1");
  root.write(sda + "/block/sda/sda1/partition", "1\n");
  root.mkdir("bus/scsi");
  root.link(sda + "/subsystem", "../../../../../../../bus/scsi");
  root.link(sda + "/block/sda/device", "../../../0:0:0:0");
  root.write(sda + "/ioerr_cnt", "0x1a\n");
  root.write(sda + "/iodone_cnt", "0x1f40\n");
  root.write(sda + "/iorequest_cnt", "0x1f41\n");
  root.write(sda + "/state", "running\n");
  root.link("dev/block/8:0", "../../" + sda + "/block/sda");
  root.link("dev/block/8:1", "../../" + sda + "/block/sda/sda1");
  root.link("block/sda", "../" + sda + "/block/sda");

  const std::string nvme = "devices/pci0000:00/0000:00:1d.0/0000:3c:00.0/nvme/nvme0";
  root.mkdir(nvme + "/nvme0n1");
  root.mkdir("class/nvme");
  root.link(nvme + "/subsystem", "../../../../../../class/nvme");
  root.link(nvme + "/nvme0n1/device", "..");
  root.link("dev/block/259:0", "../../" + nvme + "/nvme0n1");
  root.link("block/nvme0n1", "../" + nvme + "/nvme0n1");

  root.mkdir("devices/virtual/block/loop3/loop");
  root.link("dev/block/7:3", "../../devices/virtual/block/loop3");
  root.link("block/loop3", "../devices/virtual/block/loop3");

  const std::string mmc = "devices/platform/mmc0/mmc0:0001";
  root.mkdir(mmc + "/block/mmcblk0");
  root.mkdir("bus/mmc");
  root.link(mmc + "/subsystem", "../../../../bus/mmc");
  root.link(mmc + "/block/mmcblk0/device", "../..");
  root.link("dev/block/179:0", "../../" + mmc + "/block/mmcblk0");
}

}  // namespace

TEST_CASE("hwmon: every readable temperature channel, in chip order, with labels, limits and alarms") {
  TempDir root;
  REQUIRE(root.ok());
  write_hwmon_tree(root);
  auto sensors = hwhealth::read_temperatures(root.path());
  REQUIRE_MESSAGE(sensors.is_ok(), sensors.status().message());
  REQUIRE(sensors->size() == 4);
  const hwhealth::TemperatureSensor& package = (*sensors)[0];
  CHECK(package.subject() == "coretemp.0/temp1 (coretemp Package id 0)");
  CHECK(package.input_millicelsius == 45000);
  CHECK(package.max_millicelsius == 80000);
  CHECK(package.crit_millicelsius == 100000);
  CHECK_FALSE(package.crit_alarm);
  CHECK((*sensors)[1].label == "Core 0");
  CHECK((*sensors)[1].crit_alarm);
  CHECK_FALSE((*sensors)[1].max_millicelsius.has_value());
  CHECK((*sensors)[2].subject() == "acpitz/temp1 (acpitz)");  // hwmon2 before hwmon10
  CHECK((*sensors)[3].subject() == "nvme0/temp1 (nvme Composite)");
  CHECK((*sensors)[3].max_alarm);  // tempN_alarm counts as the max alarm
}

// A finding's subject names the sensor in the store: hwmonH renumbered at the
// next boot must not read as one sensor cleared and another new.
TEST_CASE("hwmon: a sensor keeps its subject when the next boot numbers the chips otherwise") {
  std::vector<std::string> subjects[2];
  const HwmonNumbers boots[2] = {{}, {"hwmon3", "hwmon0", "hwmon1", "hwmon2"}};
  for (int boot = 0; boot < 2; ++boot) {
    TempDir root;
    REQUIRE(root.ok());
    write_hwmon_tree(root, boots[boot]);
    auto sensors = hwhealth::read_temperatures(root.path());
    REQUIRE_MESSAGE(sensors.is_ok(), sensors.status().message());
    for (const hwhealth::TemperatureSensor& s : *sensors) subjects[boot].push_back(s.subject());
    std::sort(subjects[boot].begin(), subjects[boot].end());
  }
  CHECK(subjects[0] == subjects[1]);
  CHECK(subjects[0].size() == 4);
}

TEST_CASE("hwmon: two chips of one name without a device are told apart") {
  TempDir root;
  REQUIRE(root.ok());
  root.write("class/hwmon/hwmon0/name", "acpitz\n");
  root.write("class/hwmon/hwmon0/temp1_input", "27800\n");
  root.write("class/hwmon/hwmon1/name", "acpitz\n");
  root.write("class/hwmon/hwmon1/temp1_input", "29800\n");
  auto sensors = hwhealth::read_temperatures(root.path());
  REQUIRE_MESSAGE(sensors.is_ok(), sensors.status().message());
  REQUIRE(sensors->size() == 2);
  CHECK((*sensors)[0].subject() == "acpitz/temp1 (acpitz)");
  CHECK((*sensors)[1].subject() == "acpitz#2/temp1 (acpitz)");
}

TEST_CASE("hwmon: no sensor at all is unsupported, with the reason") {
  TempDir root;
  REQUIRE(root.ok());
  auto none = hwhealth::read_temperatures(root.path());
  REQUIRE_FALSE(none.is_ok());
  CHECK(hwhealth::is_unsupported(none.status()));
  CHECK(contains(none.status().message(), "no readable temperature sensor"));
  root.write("class/hwmon/hwmon0/name", "ac\n");
  CHECK(hwhealth::is_unsupported(hwhealth::read_temperatures(root.path()).status()));
}

TEST_CASE("EDAC: each memory controller's corrected and uncorrected counts; none is n/a") {
  TempDir root;
  REQUIRE(root.ok());
  auto none = hwhealth::read_memory_ecc(root.path());
  REQUIRE_FALSE(none.is_ok());
  CHECK(hwhealth::is_unsupported(none.status()));
  CHECK(contains(none.status().message(), "n/a: no EDAC memory controller"));

  write_edac_tree(root);
  auto controllers = hwhealth::read_memory_ecc(root.path());
  REQUIRE_MESSAGE(controllers.is_ok(), controllers.status().message());
  REQUIRE(controllers->size() == 2);
  CHECK((*controllers)[0] == hwhealth::MemoryController{"mc0", "Skylake Socket#0 IMC#0", 3, 0});
  CHECK((*controllers)[1] == hwhealth::MemoryController{"mc1", "", 0, 1});
}

TEST_CASE("power_supply: laptop batteries with energy or charge figures; mains, peripherals and empty bays left out") {
  TempDir root;
  REQUIRE(root.ok());
  write_power_supply_tree(root);
  auto batteries = hwhealth::read_batteries(root.path());
  REQUIRE_MESSAGE(batteries.is_ok(), batteries.status().message());
  REQUIRE(batteries->size() == 2);
  const hwhealth::Battery& bat0 = (*batteries)[0];
  CHECK(bat0.name == "BAT0");
  CHECK(bat0.status == "Discharging");
  CHECK(bat0.capacity_percent == 87);
  CHECK(bat0.unit == "uWh");
  CHECK(bat0.full == 45000000u);
  CHECK(bat0.full_of_design_percent() == 90u);
  CHECK(bat0.cycle_count == 312u);
  CHECK(bat0.model == "5B10W13930");
  const hwhealth::Battery& bat1 = (*batteries)[1];
  CHECK(bat1.health == "Dead");
  CHECK(bat1.unit == "uAh");
  CHECK(bat1.full_of_design_percent() == 48u);  // 1.9 of 4.0 Ah, rounded
  CHECK_FALSE(bat1.cycle_count.has_value());    // 0 means "not counted"
  CHECK_FALSE(bat1.capacity_percent.has_value());
}

TEST_CASE("power_supply: a full charge no battery could hold is no figure, whatever the driver says") {
  hwhealth::Battery b;
  b.full_design = 1;
  b.full = 10;  // 1,000 %: a driver's odd figure, still shown
  CHECK(b.full_of_design_percent() == 1000u);
  b.full = 11;
  CHECK_FALSE(b.full_of_design_percent().has_value());
  b.full = uint64_t{9'223'372'036'854'775'807};  // past UINT_MAX as a percent
  CHECK_FALSE(b.full_of_design_percent().has_value());
  b.full_design = 0;
  CHECK_FALSE(b.full_of_design_percent().has_value());
}

TEST_CASE("power_supply: a machine without a battery reports n/a") {
  TempDir root;
  REQUIRE(root.ok());
  root.write("class/power_supply/AC/type", "Mains\n");
  auto none = hwhealth::read_batteries(root.path());
  REQUIRE_FALSE(none.is_ok());
  CHECK(hwhealth::is_unsupported(none.status()));
  CHECK(contains(none.status().message(), "no battery"));
}

TEST_CASE("disk error counters: ioerr_cnt and friends are read as hex; disks without them are n/a") {
  TempDir root;
  REQUIRE(root.ok());
  write_block_tree(root);
  auto counters = hwhealth::read_disk_errors(root.path(), "sda");
  REQUIRE_MESSAGE(counters.is_ok(), counters.status().message());
  CHECK(counters->disk == "sda");
  CHECK(counters->io_errors == 26);
  CHECK(counters->io_done == 8000);
  CHECK(counters->io_requests == 8001);
  CHECK(counters->state == "running");
  counters->own_error_completions = 6;
  CHECK(counters->foreign_io_errors() == 20);
  counters->own_error_completions = 40;  // the disk was re-probed and its count reset
  CHECK(counters->foreign_io_errors() == 0);

  auto nvme = hwhealth::read_disk_errors(root.path(), "nvme0n1");
  REQUIRE_FALSE(nvme.is_ok());
  CHECK(hwhealth::is_unsupported(nvme.status()));
  CHECK(contains(nvme.status().message(), "NVMe disks count media errors in SMART"));
  CHECK(hwhealth::is_unsupported(hwhealth::read_disk_errors(root.path(), "loop3").status()));
  root.write("block/sda/device/ioerr_cnt", "garbage\n");
  CHECK(hwhealth::is_unsupported(hwhealth::read_disk_errors(root.path(), "sda").status()));
}

TEST_CASE("describe_disk tells SATA, NVMe, virtual and other disks apart by their sysfs device") {
  TempDir root;
  REQUIRE(root.ok());
  write_block_tree(root);
  const hwhealth::DiskInfo sda = hwhealth::describe_disk(root.path(), makedev(8, 0));
  CHECK(sda.name == "sda");
  CHECK(sda.kind == hwhealth::DiskKind::ata);
  CHECK(sda.subsystem == "scsi");
  const hwhealth::DiskInfo partition = hwhealth::describe_disk(root.path(), makedev(8, 1));
  CHECK(partition.name == "sda");  // a partition stands for its disk
  CHECK(partition.kind == hwhealth::DiskKind::ata);
  const hwhealth::DiskInfo nvme = hwhealth::describe_disk(root.path(), makedev(259, 0));
  CHECK(nvme.name == "nvme0n1");
  CHECK(nvme.kind == hwhealth::DiskKind::nvme);
  CHECK(nvme.subsystem == "nvme");
  CHECK(hwhealth::describe_disk(root.path(), makedev(7, 3)).kind == hwhealth::DiskKind::virtual_disk);
  const hwhealth::DiskInfo mmc = hwhealth::describe_disk(root.path(), makedev(179, 0));
  CHECK(mmc.kind == hwhealth::DiskKind::other);
  CHECK(mmc.subsystem == "mmc");
  const hwhealth::DiskInfo unknown = hwhealth::describe_disk(root.path(), makedev(1, 1));
  CHECK(unknown.kind == hwhealth::DiskKind::unknown);
  CHECK(unknown.name.empty());
}
