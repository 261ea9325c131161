// SPDX-License-Identifier: MIT
// The daemon's power test double: "sleeps" without suspending anything.
//
// sleep() blocks until a magic packet for `mac` arrives on `interface`,
// watched with an AF_PACKET socket (every frame, so both the UDP datagram and
// the raw 0x0842 frame count), or until `sleep_limit` passes (ETIMEDOUT), or
// until cancel() (ECANCELED). The daemon stops its service around it (closes
// its listener), so to the original the clone looks asleep, and only a real
// magic packet on the wire brings it back: the whole wake story runs in two
// network namespaces without touching the machine's power state.
//
// Configured with [wake] power = "test-double" (docs/WAKE.md: a testing
// backend). Needs CAP_NET_RAW. The socket belongs to the network namespace of
// the thread that calls open_receiver() (or sleep(), if not opened before).
//
// Threading: open_receiver() and sleep() on one thread at a time; cancel()
// from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>

#include "wol/fd.h"
#include "wol/magic.h"
#include "wol/power.h"

namespace wol {

class PacketWakePower final : public PowerController {
 public:
  PacketWakePower(std::string interface, MacAddress mac,
                  std::chrono::milliseconds sleep_limit = std::chrono::hours(1));
  const char* name() const override { return "test-double"; }
  base::Status can_sleep() override;
  base::Status sleep() override;
  bool returns_after_resume() const override { return true; }

  // Opens the receiving socket now, so that no packet sent after this call
  // is missed by the next sleep(). Frames queued before a sleep() count.
  base::Status open_receiver();
  void cancel();
  // "magic packet from 10.213.0.1 ..." style: what ended the last sleep.
  std::string last_wake_reason() const;

 private:
  base::Status wait_for_packet();

  const std::string interface_;
  const MacAddress mac_;
  const std::chrono::milliseconds sleep_limit_;
  Fd socket_;
  Fd cancel_fd_;  // eventfd
  mutable std::mutex mutex_;
  std::string last_wake_reason_;
};

}  // namespace wol
