// SPDX-License-Identifier: MIT
// Get Log Page through NVME_IOCTL_ADMIN_CMD. The only ioctl here is that one.
#include <linux/nvme_ioctl.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "hwhealth/nvme.h"
#include "hwhealth/source.h"

namespace hwhealth {
namespace {

constexpr uint8_t kAdminGetLogPage = 0x02;
constexpr uint32_t kAdminTimeoutMs = 10000;
// NVMe status code field (bits 7:0 of the status returned by the ioctl).
constexpr int kStatusInvalidOpcode = 0x01;
constexpr int kStatusInvalidField = 0x02;

base::Status ioctl_failure(int err, const std::string& device_name) {
  return smart_ioctl_failure(err, "Get Log Page 02h on " + device_name + " (NVME_IOCTL_ADMIN_CMD", "CAP_SYS_ADMIN",
                             "the device is not an NVMe drive");
}

base::Status nvme_status_failure(int nvme_status, const std::string& device_name) {
  char code[16];
  std::snprintf(code, sizeof code, "0x%04x", static_cast<unsigned>(nvme_status));
  const int status_code = nvme_status & 0xff;
  const int status_type = (nvme_status >> 8) & 0x7;
  const std::string what = "the controller of " + device_name + " answered Get Log Page 02h with NVMe status " + code;
  if (status_type == 0 && (status_code == kStatusInvalidOpcode || status_code == kStatusInvalidField))
    return base::Status::error(EOPNOTSUPP, "SMART is unsupported: " + what + " (it does not offer the health log)");
  return base::Status::error(EIO, what);
}

}  // namespace

base::Result<NvmeHealth> read_nvme_smart(int fd, const std::string& device_name) {
  base::Bytes page(kNvmeSmartLogBytes, 0);
  nvme_admin_cmd command;
  std::memset(&command, 0, sizeof command);
  command.opcode = kAdminGetLogPage;
  command.nsid = kNvmeNamespaceAll;
  command.addr = reinterpret_cast<uintptr_t>(page.data());
  command.data_len = static_cast<uint32_t>(page.size());
  command.cdw10 = kNvmeSmartLogCdw10;
  command.timeout_ms = kAdminTimeoutMs;
  // 0 = done, > 0 = an NVMe status from the controller, < 0 = errno.
  const int result = ::ioctl(fd, NVME_IOCTL_ADMIN_CMD, &command);
  if (result < 0) return ioctl_failure(errno, device_name);
  if (result > 0) return nvme_status_failure(result, device_name);
  base::Result<NvmeHealth> health = parse_nvme_smart_log(page);
  if (!health) return health.status().with_context("SMART of " + device_name);
  return health;
}

}  // namespace hwhealth
