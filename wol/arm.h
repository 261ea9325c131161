// SPDX-License-Identifier: MIT
// Arming a NIC to wake the machine on a magic packet.
//
// The kernel keeps a NIC's Wake-on-LAN modes; we read and change only the
// magic-packet bit, through the ethtool generic-netlink family (libnl-genl),
// or through the SIOCETHTOOL ioctl when the kernel has no such family. The
// arming is not persistent: drivers forget it on reboot and some on link
// down/up, so the daemon re-arms before every sleep.
//
// Whether the armed NIC can actually wake the machine also depends on the
// device's power/wakeup attribute in sysfs (read here), on the firmware's
// WoL setting and often on AC power (not visible from here; docs/WAKE.md).
//
// Threading: every call is synchronous and opens its own sockets; call from
// any one thread at a time per backend object. The calls act in the network
// namespace of the calling thread. Changing modes needs CAP_NET_ADMIN.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"

namespace wol {

// The ethtool WAKE_* mode bits (linux/ethtool.h); checked against it in arm.cpp.
constexpr uint32_t kWakePhy = 1u << 0;
constexpr uint32_t kWakeUnicast = 1u << 1;
constexpr uint32_t kWakeMulticast = 1u << 2;
constexpr uint32_t kWakeBroadcast = 1u << 3;
constexpr uint32_t kWakeArp = 1u << 4;
constexpr uint32_t kWakeMagic = 1u << 5;
constexpr uint32_t kWakeMagicSecure = 1u << 6;
constexpr uint32_t kWakeFilter = 1u << 7;
constexpr int kWakeModeCount = 8;

// "magic, phy"; "none" for 0. Names follow ethtool's string set.
std::string describe_wake_modes(uint32_t modes);

struct WakeModes {
  uint32_t supported = 0;
  uint32_t enabled = 0;
};

// The NIC boundary: how modes are read and the magic bit is changed. Status
// codes are errno values: EOPNOTSUPP (driver without WoL), EPERM (no
// CAP_NET_ADMIN), ENODEV (no such interface), EINVAL (driver refused).
class WolBackend {
 public:
  virtual ~WolBackend() = default;
  virtual const char* name() const = 0;
  virtual base::Status get(const std::string& interface, WakeModes& out) = 0;
  // Sets or clears WAKE_MAGIC only; every other enabled mode stays as it is.
  virtual base::Status set_magic(const std::string& interface, bool enable) = 0;
};

// The ethtool genetlink backend. Fails with ENOENT when the kernel has no
// "ethtool" family (before 5.6), the cue to use the ioctl backend instead.
base::Result<std::unique_ptr<WolBackend>> open_netlink_backend();
// The SIOCETHTOOL ETHTOOL_GWOL/SWOL backend (read-modify-write).
std::unique_ptr<WolBackend> make_ioctl_backend();

enum class ArmState {
  armed,          // magic-packet wake is on
  disarmed,       // supported, and off (after a disarm, or as found by a query)
  unsupported,    // the NIC or its driver cannot wake on a magic packet (veth, lo, virtio)
  no_permission,  // reading or changing needs CAP_NET_ADMIN
  error,          // anything else: no such interface, the driver refused...
};
const char* to_string(ArmState state);

struct ArmStatus {
  ArmState state = ArmState::error;
  std::string reason;         // one or two sentences for a user, including power/wakeup
  uint32_t supported_modes = 0;  // WAKE_* bits; 0 when they could not be read
  uint32_t enabled_modes = 0;
  std::string power_wakeup;   // "enabled", "disabled", or "" when the file is absent
  std::string method;         // the backend's name: "ethtool netlink" or "SIOCETHTOOL ioctl"
};

struct ArmOptions {
  enum class Method { automatic, netlink, ioctl };
  Method method = Method::automatic;  // automatic: netlink, ioctl when the family is missing
  std::string sysfs_root = "/sys";     // injectable for tests
};

// Turns magic-packet wake on (and leaves the other modes alone).
ArmStatus arm_magic_wake(const std::string& interface, const ArmOptions& options = {});
// Turns it off.
ArmStatus disarm_magic_wake(const std::string& interface, const ArmOptions& options = {});
// Reads without changing anything: armed, disarmed, unsupported...
ArmStatus query_magic_wake(const std::string& interface, const ArmOptions& options = {});

// The same flows over a given backend (tests pass a fake NIC): `enable`
// true arms, false disarms; query_with only reads.
ArmStatus arm_with(WolBackend& backend, const std::string& interface, bool enable,
                   const std::string& sysfs_root);
ArmStatus query_with(WolBackend& backend, const std::string& interface, const std::string& sysfs_root);

// <sysfs_root>/class/net/<interface>/device/power/wakeup, trimmed: usually
// "enabled" or "disabled"; "" when absent (virtual NICs have no device).
// Note: sysfs shows the network namespace of whoever mounted it.
std::string read_power_wakeup(const std::string& sysfs_root, const std::string& interface);

// The name of the driver bound to the interface's device: the last part of
// the link <sysfs_root>/class/net/<interface>/device/driver ("e1000e",
// "virtio_net"); "" when there is none (veth, lo) or no such interface.
std::string read_nic_driver(const std::string& sysfs_root, const std::string& interface);

}  // namespace wol
