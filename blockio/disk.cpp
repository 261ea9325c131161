// SPDX-License-Identifier: MIT
// open_disk and create_image_file; identity and in-use checks are in
// identity.cpp and in_use.cpp, the device itself in file_device.cpp.
#include "blockio/disk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "blockio/file_device.h"
#include "blockio/unique_fd.h"

namespace blockio {
namespace {

constexpr uint64_t kImageBlockBytes = 512;

base::Status check_existing_image(const std::string& path, const struct stat& st, uint64_t size_bytes) {
  if (!S_ISREG(st.st_mode)) {
    return base::Status::error(EEXIST, "cannot create the image file " + path +
                                           ": something that is not a regular file is already there");
  }
  if (static_cast<uint64_t>(st.st_size) == size_bytes) return base::Status::ok();
  return base::Status::error(EEXIST, "the image file " + path + " already exists with " +
                                         std::to_string(st.st_size) + " bytes, not " + std::to_string(size_bytes) +
                                         "; delete it or choose another path");
}

base::Status create_new_image(const std::string& path, uint64_t size_bytes) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return base::Status::from_errno(errno, "cannot create the image file " + path);
  // ftruncate leaves a sparse file that reads as zeroes; fsync keeps its size.
  if (::ftruncate(fd.get(), static_cast<off_t>(size_bytes)) != 0 || ::fsync(fd.get()) != 0) {
    base::Status status = base::Status::from_errno(errno, "cannot size the image file " + path + " to " +
                                                              std::to_string(size_bytes) + " bytes");
    ::unlink(path.c_str());
    return status;
  }
  return base::Status::ok();
}

}  // namespace

base::Result<std::unique_ptr<BlockDevice>> open_disk(const std::string& path, const OpenOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return base::Status::error(err, "cannot open the target " + path + ": " + std::strerror(err) +
                                        "; check [target] path in the configuration");
  }
  BASE_TRY(check_not_in_use(path));
  if (S_ISBLK(st.st_mode)) return open_block_device(path, options);
  return open_regular_file(path, options);  // check_not_in_use refused everything else
}

base::Status create_image_file(const std::string& path, uint64_t size_bytes) {
  if (size_bytes == 0 || size_bytes % kImageBlockBytes != 0) {
    return base::Status::error(EINVAL, "cannot create the image file " + path + " with " +
                                           std::to_string(size_bytes) +
                                           " bytes: the size must be a positive multiple of 512");
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return check_existing_image(path, st, size_bytes);
  if (errno != ENOENT) return base::Status::from_errno(errno, "cannot create the image file " + path);
  return create_new_image(path, size_bytes);
}

}  // namespace blockio
