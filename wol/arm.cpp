// SPDX-License-Identifier: MIT
// The arming policy: read, change only the magic bit, read back, and say in
// a sentence what it means, including the device's power/wakeup.
#include "wol/arm.h"

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/log.h"

namespace wol {
namespace {

std::string trimmed(std::string text) {
  const auto not_space = [](char c) { return c != ' ' && c != '\n' && c != '\t' && c != '\0'; };
  while (!text.empty() && !not_space(text.back())) text.pop_back();
  size_t start = 0;
  while (start < text.size() && !not_space(text[start])) ++start;
  return text.substr(start);
}

// A failed get or set, as a state and a sentence.
ArmStatus failed(ArmStatus status, const std::string& interface, const base::Status& error) {
  switch (error.code()) {
    case EOPNOTSUPP:
      status.state = ArmState::unsupported;
      status.reason = interface + " cannot wake the machine: its driver has no Wake-on-LAN support "
                                  "(veth, lo and virtio NICs have none).";
      break;
    case EPERM:
    case EACCES:
      status.state = ArmState::no_permission;
      status.reason = "Wake-on-LAN on " + interface +
                      " needs CAP_NET_ADMIN to read or change; run cloned as root or give it that capability (" +
                      error.message() + ").";
      break;
    case ENODEV:
      status.state = ArmState::error;
      status.reason = "there is no network interface named " + interface + "; check [link] interface.";
      break;
    default:
      status.state = ArmState::error;
      status.reason = error.message() + ".";
  }
  return status;
}

// Appends what power/wakeup means for an armed NIC.
void add_wakeup_note(ArmStatus& status, const std::string& interface, const std::string& sysfs_root) {
  if (status.state != ArmState::armed) return;
  if (status.power_wakeup == "enabled") {
    status.reason += " Its device may wake the machine (power/wakeup is enabled).";
  } else if (status.power_wakeup == "disabled") {
    status.reason += " But its device's power/wakeup is disabled, so the machine may not wake: write "
                     "enabled to " + sysfs_root + "/class/net/" + interface + "/device/power/wakeup.";
  } else {
    status.reason += " Its device has no power/wakeup file, so the kernel cannot say whether it may "
                     "wake the machine; the firmware's Wake-on-LAN setting decides.";
  }
}

// The state that the enabled modes show, with its sentence.
void describe_modes_found(ArmStatus& status, const std::string& interface) {
  const bool on = (status.enabled_modes & kWakeMagic) != 0;
  status.state = on ? ArmState::armed : ArmState::disarmed;
  status.reason = interface + (on ? " wakes on a magic packet" : " does not wake on a magic packet") +
                  " (enabled: " + describe_wake_modes(status.enabled_modes) + ").";
}

ArmStatus begin(WolBackend& backend, const std::string& interface, const std::string& sysfs_root) {
  ArmStatus status;
  status.method = backend.name();
  status.power_wakeup = read_power_wakeup(sysfs_root, interface);
  return status;
}

// Reads the modes; false (and `status` filled in) when that fails or the NIC
// cannot do magic wake at all.
bool read_modes(WolBackend& backend, const std::string& interface, ArmStatus& status) {
  WakeModes modes;
  if (base::Status got = backend.get(interface, modes); !got) {
    status = failed(status, interface, got);
    return false;
  }
  status.supported_modes = modes.supported;
  status.enabled_modes = modes.enabled;
  if ((modes.supported & kWakeMagic) == 0) {
    status.state = ArmState::unsupported;
    status.reason = interface + " cannot wake on a magic packet (its driver supports: " +
                    describe_wake_modes(modes.supported) + ").";
    return false;
  }
  return true;
}

}  // namespace

const char* to_string(ArmState state) {
  switch (state) {
    case ArmState::armed: return "armed";
    case ArmState::disarmed: return "disarmed";
    case ArmState::unsupported: return "unsupported";
    case ArmState::no_permission: return "no_permission";
    case ArmState::error: return "error";
  }
  return "error";
}

std::string describe_wake_modes(uint32_t modes) {
  static const char* const kNames[kWakeModeCount] = {"phy", "ucast", "mcast", "bcast",
                                                     "arp", "magic", "magicsecure", "filter"};
  std::string text;
  for (int bit = 0; bit < kWakeModeCount; ++bit) {
    if ((modes & (1u << bit)) == 0) continue;
    if (!text.empty()) text += ", ";
    text += kNames[bit];
  }
  if ((modes >> kWakeModeCount) != 0) text += text.empty() ? "unknown bits" : ", unknown bits";
  return text.empty() ? "none" : text;
}

std::string read_power_wakeup(const std::string& sysfs_root, const std::string& interface) {
  std::ifstream file(sysfs_root + "/class/net/" + interface + "/device/power/wakeup");
  if (!file) return "";
  std::stringstream content;
  content << file.rdbuf();
  return trimmed(content.str());
}

std::string read_nic_driver(const std::string& sysfs_root, const std::string& interface) {
  std::error_code error;
  const std::filesystem::path driver =
      std::filesystem::read_symlink(sysfs_root + "/class/net/" + interface + "/device/driver", error);
  return error ? "" : driver.filename().string();
}

ArmStatus query_with(WolBackend& backend, const std::string& interface, const std::string& sysfs_root) {
  ArmStatus status = begin(backend, interface, sysfs_root);
  if (!read_modes(backend, interface, status)) return status;
  describe_modes_found(status, interface);
  add_wakeup_note(status, interface, sysfs_root);
  return status;
}

ArmStatus arm_with(WolBackend& backend, const std::string& interface, bool enable,
                   const std::string& sysfs_root) {
  ArmStatus status = begin(backend, interface, sysfs_root);
  if (!read_modes(backend, interface, status)) return status;
  const bool on = (status.enabled_modes & kWakeMagic) != 0;
  if (on != enable) {
    if (base::Status set = backend.set_magic(interface, enable); !set) return failed(status, interface, set);
    if (!read_modes(backend, interface, status)) return status;
    // Many drivers (e1000e, igb, r8169) set the device's power/wakeup with
    // its WoL: the value read before the change is stale (found in review).
    status.power_wakeup = read_power_wakeup(sysfs_root, interface);
    if (((status.enabled_modes & kWakeMagic) != 0) != enable) {
      status.state = ArmState::error;
      status.reason = "the driver of " + interface + " accepted the change but magic-packet wake is still " +
                      (enable ? "off" : "on") + " (enabled: " + describe_wake_modes(status.enabled_modes) + ").";
      return status;
    }
  }
  describe_modes_found(status, interface);
  add_wakeup_note(status, interface, sysfs_root);
  return status;
}

namespace {

// The flow over the backend the options ask for. With `automatic`, a kernel
// without the ethtool family (or a socket that cannot open) means the ioctl.
template <class Flow>
ArmStatus with_backend(const std::string& interface, const ArmOptions& options, Flow flow) {
  if (options.method != ArmOptions::Method::ioctl) {
    auto netlink = open_netlink_backend();
    if (netlink) return flow(**netlink);
    if (options.method == ArmOptions::Method::netlink) {
      ArmStatus status;
      status.method = "ethtool netlink";
      status.power_wakeup = read_power_wakeup(options.sysfs_root, interface);
      return failed(status, interface, netlink.status());
    }
    LOG_DEBUG("wol: %s; using the SIOCETHTOOL ioctl", netlink.status().message().c_str());
  }
  auto ioctl = make_ioctl_backend();
  return flow(*ioctl);
}

}  // namespace

ArmStatus arm_magic_wake(const std::string& interface, const ArmOptions& options) {
  return with_backend(interface, options,
                      [&](WolBackend& backend) { return arm_with(backend, interface, true, options.sysfs_root); });
}

ArmStatus disarm_magic_wake(const std::string& interface, const ArmOptions& options) {
  return with_backend(interface, options,
                      [&](WolBackend& backend) { return arm_with(backend, interface, false, options.sysfs_root); });
}

ArmStatus query_magic_wake(const std::string& interface, const ArmOptions& options) {
  return with_backend(interface, options,
                      [&](WolBackend& backend) { return query_with(backend, interface, options.sysfs_root); });
}

}  // namespace wol
