// SPDX-License-Identifier: MIT
// The original's side of waking the clone (docs/WAKE.md).
//
// The clone tells its wake info (MAC, interface, broadcast address, armed or
// not) after every hello and before it sleeps; the original remembers the
// latest in state_dir/clone-wake.info so that it can wake a clone that is
// asleep when this side starts. [wake] keys of origin.toml override what was
// learned. When the clone does not answer (connection refused or timed out,
// or it said it goes to sleep), the replicator sends a magic packet before
// each reconnect attempt, and its backoff spaces the packets out.
//
// Threading: the functions are thread-compatible; the hooks attach_wake
// installs run on the replicator's connection thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/status.h"
#include "proto/wake_messages.h"
#include "config/config.h"
#include "wol/magic.h"

namespace origin {

class Replicator;

std::string clone_wake_path(const std::string& state_dir);
// Writes the file atomically (creating state_dir if needed).
base::Status save_clone_wake_info(const std::string& state_dir, const proto::WakeInfo& info);
// ENOENT when nothing was learned yet.
base::Result<proto::WakeInfo> load_clone_wake_info(const std::string& state_dir);

// Where a magic packet goes: --mac / [wake] mac / learned, and so on for the
// interface (this side's NIC: only from the command line or [wake]) and the
// broadcast address. `mac_override` and `interface_override` may be "".
// The error says what is missing and how to supply it.
base::Result<wol::SendOptions> wake_target(const config::OriginConfig& config, const std::string& interface_override,
                                           const std::string& mac_override);

// Sends one magic packet (UDP, and raw when an interface is known). Ok when
// at least one copy went out; `summary` says what was sent where.
base::Status send_wake(const wol::SendOptions& options, std::string& summary);

// True for the failures that look like a sleeping clone: refused, timed
// out, unreachable, or "the clone goes to sleep".
bool looks_asleep(const base::Status& session_failure);

// clone-origin sleep: one session that asks the clone to sleep, and waits
// (at most timeout_ms) for its going_to_sleep. An error when the clone is not
// armed (it then stays awake and says why) or does not go to sleep in time.
base::Status request_clone_sleep(const config::OriginConfig& config, const config::DerivedKeys& keys,
                                 uint32_t timeout_ms, std::string& summary);

// With [wake] auto, what to do when a session with the clone fails: send a
// magic packet if the failure looks like a sleeping clone (logged either
// way). Empty without [wake] auto. For ReconnectPolicy::on_silence and the
// replicator's silence handler.
std::function<void(const base::Status&)> silence_waker(const config::OriginConfig& config);

// Makes `replicator` remember the clone's wake info and, with [wake] auto,
// send a magic packet when the clone looks asleep. Call before start().
void attach_wake(Replicator& replicator, const config::OriginConfig& config);

}  // namespace origin
