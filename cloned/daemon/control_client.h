// SPDX-License-Identifier: MIT
// The client side of the control socket (see control.h), for clonectl and
// the tests. Plain blocking sockets with a deadline; no libuv.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/status.h"

namespace cloned {

inline constexpr size_t kControlAnswerBytesMax = 256 * 1024;

// Sends `request` (one line, without the newline) to the daemon listening on
// `socket_path` and returns its answer. The server's credentials must be one
// of `server_uids` (root or the daemon's user), else nothing is sent: a stray
// process cannot pose as the daemon. Errors, by code:
//   ENOENT, ECONNREFUSED  nobody listens: the daemon is not running;
//   EACCES                the socket's mode keeps this user out;
//   EPERM                 the listener is not an allowed uid;
//   EREMOTEIO             the daemon answered "error: ..." (the message is its sentence);
//   ETIMEDOUT, EPROTO     no whole answer in time, or too long.
base::Result<std::string> control_request(const std::string& socket_path, const std::string& request,
                                          const std::vector<uid_t>& server_uids, int timeout_ms = 5000);

}  // namespace cloned
