// SPDX-License-Identifier: MIT
#pragma once

#include "base/unique_fd.h"

namespace blockio {
using UniqueFd = base::UniqueFd;
}  // namespace blockio
