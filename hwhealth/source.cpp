// SPDX-License-Identifier: MIT
#include "hwhealth/source.h"

#include <cerrno>
#include <cstring>

namespace hwhealth {

const char* availability_name(Availability availability) {
  switch (availability) {
    case Availability::available: return "available";
    case Availability::unsupported: return "unsupported";
    case Availability::no_permission: return "no_permission";
    case Availability::failed: return "failed";
  }
  return "failed";
}

bool is_unsupported(const base::Status& status) {
  return !status.is_ok() && status.code() == EOPNOTSUPP;
}

bool is_no_permission(const base::Status& status) {
  return !status.is_ok() && (status.code() == EPERM || status.code() == EACCES);
}

Availability classify(const base::Status& status) {
  if (status.is_ok()) return Availability::available;
  if (is_unsupported(status)) return Availability::unsupported;
  if (is_no_permission(status)) return Availability::no_permission;
  return Availability::failed;
}

base::Status smart_ioctl_failure(int err, const std::string& what, const std::string& capability,
                                 const std::string& unsupported_why) {
  const std::string described = what + ": " + std::strerror(err) + ")";
  if (err == EPERM || err == EACCES) {
    return base::Status::error(EPERM, "no permission to read SMART: " + described + " needs " + capability +
                                          "; run cloned as root with " + capability +
                                          " in its capability bounding set");
  }
  if (err == EINVAL || err == ENOTTY || err == EOPNOTSUPP || err == ENOSYS)
    return base::Status::error(EOPNOTSUPP, "SMART is unsupported: " + described + " was refused; " + unsupported_why);
  return base::Status::from_errno(err, "cannot send " + what + ")");
}

const Source* find_source(const std::vector<Source>& sources, std::string_view name) {
  for (const Source& candidate : sources) {
    if (candidate.name == name) return &candidate;
  }
  return nullptr;
}

Source available_source(std::string_view name) {
  return Source{std::string(name), Availability::available, ""};
}

Source source_from_status(std::string_view name, const base::Status& status) {
  return Source{std::string(name), classify(status), status.message()};
}

}  // namespace hwhealth
