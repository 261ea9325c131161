// SPDX-License-Identifier: MIT
// What the daemon's parts (the health link, maintenance sessions) may do to
// a connection. The Daemon implements it: it owns every Conn, and a Conn
// stays valid until its close callback, after the call that closed it
// returns. Loop thread only.
#pragma once

#include <string>

#include "base/bytes.h"
#include "proto/messages.h"

namespace cloned {

struct Conn;

class LinkPort {
 public:
  // Seals and queues a message; a peer that does not read is closed.
  virtual void send_plain(Conn* c, const base::Bytes& plain) = 0;
  // Sends an error message, counts a refusal and records an event; the
  // caller closes the connection.
  virtual void send_error(Conn* c, proto::ErrorCode code, const std::string& message) = 0;
  // Ends the connection (and its session, if it is the session's).
  virtual void close_conn(Conn* c, const std::string& why) = 0;
  virtual void record_event(const std::string& level, const std::string& kind, const std::string& message) = 0;

 protected:
  ~LinkPort() = default;
};

}  // namespace cloned
