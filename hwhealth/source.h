// SPDX-License-Identifier: MIT
// Where a health reading comes from, and whether it could be read at all.
//
// Every source of a Snapshot (SMART of the target, temperatures, memory ECC,
// battery, the disk's error counters) is reported as a Source, also when it
// is absent: "no ECC on this laptop" or "no permission to ask the disk" is
// information, and an absent source is never counted as healthy.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace hwhealth {

// Stable source names: they appear in reports to the original and in JSON.
inline constexpr std::string_view kSourceSmart = "smart";
inline constexpr std::string_view kSourceTemperatures = "temperatures";
inline constexpr std::string_view kSourceMemoryEcc = "memory_ecc";
inline constexpr std::string_view kSourceBattery = "battery";
inline constexpr std::string_view kSourceDiskErrors = "disk_errors";

enum class Availability {
  available,      // read this poll
  unsupported,    // the machine or device has no such thing (a loop device, no ECC, no battery)
  no_permission,  // it exists but we may not ask (a missing capability, a device cgroup)
  failed,         // it should work but the read failed (EIO, a malformed answer)
};

// "available", "unsupported", "no_permission", "failed" (stable, for JSON).
const char* availability_name(Availability availability);

struct Source {
  std::string name;  // one of the kSource* names
  Availability availability = Availability::unsupported;
  std::string reason;  // a sentence when not available; empty when available

  bool supported() const { return availability == Availability::available; }
  bool operator==(const Source&) const = default;
};

// Readers in this module return these codes for the two distinct refusals,
// keeping the original errno's text in the message:
//   EOPNOTSUPP — the device or machine does not offer this (loop device, no EDAC);
//   EPERM/EACCES — a capability or device permission is missing.
// Any other error code means the read failed.
Availability classify(const base::Status& status);
bool is_unsupported(const base::Status& status);
bool is_no_permission(const base::Status& status);

// The Status for a SMART ioctl that failed with errno `err`. `what` names
// the command and device ("SMART RETURN STATUS on /dev/sda (SG_IO"), closed
// by this function with the errno text. EPERM/EACCES become EPERM "no
// permission to read SMART: ... needs <capability>"; EINVAL, ENOTTY,
// EOPNOTSUPP and ENOSYS (what drivers answer for an ioctl they do not have)
// become EOPNOTSUPP "SMART is unsupported: ... <unsupported_why>"; others
// keep their errno.
base::Status smart_ioctl_failure(int err, const std::string& what, const std::string& capability,
                                 const std::string& unsupported_why);

Source available_source(std::string_view name);
// The source named `name` in `sources`, or nullptr.
const Source* find_source(const std::vector<Source>& sources, std::string_view name);
// The Source for a failed read, classified by the status's code.
Source source_from_status(std::string_view name, const base::Status& status);

}  // namespace hwhealth
