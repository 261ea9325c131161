// SPDX-License-Identifier: MIT
#include "base/promise.h"

#include <cstdlib>
#include <cstring>

#include "base/log.h"

namespace base {

void broken_promise(const char* file, int line, const char* condition, const std::string& what) {
  const char* slash = std::strrchr(file, '/');
  LOG_ERROR(
      "broken promise at %s:%d (%s): %s; stopping now rather than acknowledge what the clone cannot back "
      "(the next start resumes from the durable state; please report this)",
      slash ? slash + 1 : file, line, condition, what.c_str());
  std::abort();
}

}  // namespace base
