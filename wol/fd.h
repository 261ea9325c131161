// SPDX-License-Identifier: MIT
#pragma once

#include "base/unique_fd.h"

namespace wol {
using Fd = base::UniqueFd;
}  // namespace wol
