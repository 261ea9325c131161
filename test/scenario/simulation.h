// SPDX-License-Identifier: MIT
// The seeded simulation's world (simulation_test.cpp): the original, the
// authenticated link over a network that corrupts and duplicates frames, the
// clone's disk, store and stage file, the faults injected, and the
// invariants checked after every step (simulation_world.cpp). The log's
// sessions and the seed's run are in simulation_test.cpp, the resync's in
// simulation_resync.cpp.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <vector>

#include "cloned/stage/medium.h"
#include "proto/frame.h"
#include "proto/handshake.h"
#include "test/scenario/sim.h"
#include "test/scenario/sim_stage.h"

namespace simulation {

using namespace sim;

struct Faults {
  uint64_t steps = 0, corrupted = 0, duplicated = 0, disconnects = 0, crashes = 0, power_cuts = 0;
  uint64_t strangers = 0, cut_while_marked = 0;
  // Resyncs to generation 2 (issue 18): how they went and where the power went.
  uint64_t resyncs = 0, staged = 0, in_place = 0, resync_sessions = 0, resumed_past_zero = 0;
  uint64_t cut_before_staging = 0, cut_staging = 0, cut_applying = 0, cut_committed = 0, cut_in_place = 0;
  uint64_t finished_alone = 0, cut_while_finishing = 0, busy = 0;
  uint64_t epoch_held = 0;  // steps with the next epoch's writes held behind a barrier flush
  sim::LagTally lag;        // the workers' early flushes and late completions
};

// One authenticated link: real keys from a real handshake.
struct Link {
  std::unique_ptr<proto::FrameSealer> sealer;
  std::unique_ptr<proto::FrameReader> reader;
};

inline Link connect(const proto::Key& auth, const proto::PairId& pair) {
  proto::ClientHandshake client(auth, pair);
  proto::ServerHandshake server(auth, pair);
  base::Bytes reply;
  REQUIRE(server.on_client_hello(client.client_hello(), reply).is_ok());
  base::Result<base::Bytes> finish = client.on_server_hello(reply);
  REQUIRE(finish.is_ok());
  REQUIRE(server.on_client_finish(*finish).is_ok());
  return Link{std::make_unique<proto::FrameSealer>(client.keys().send),
              std::make_unique<proto::FrameReader>(server.keys().recv)};
}

enum class SessionEnd { done, disconnected, crashed, power_cut };

// Where the original is: its log of generation 1, a resync to generation 2,
// or the log after it.
enum class Phase { log, resync, log_after_resync };

struct World {
  uint64_t seed;
  std::mt19937_64 rng;
  Original original;
  proto::PairId pair{9};
  proto::Key auth{};
  blockio::FaultyDevice disk;
  apply::ReplicaState stored;
  apply::SendBarrierAck saw{0, 0};
  apply::Limits limits;
  Faults& faults;
  uint64_t now = 1000;
  uint64_t last_ack_epoch = 0;  // the newest barrier ack any clone process sent

  // The resync of this seed, when it has one: after epoch resync_epoch the
  // original's disk changed behind its log, so it resyncs the clone to
  // generation 2 (`second`: that generation's images), then the log goes on.
  uint64_t resync_epoch = 0;  // 0: no resync
  uint64_t resync_seq = 0;    // the barrier that closes it: the resync's target
  Original second;
  Phase phase = Phase::log;
  std::vector<uint8_t> old_image;    // G: the clone's disk when the resync began
  uint64_t old_checked_flushes = 0;  // the disk's flush count when last compared with G
  bool episode_staged = false, episode_in_place = false;
  std::shared_ptr<stage::MemoryFile> stage_file = std::make_shared<stage::MemoryFile>();

  // Records the original sends in one step when it sends: 1, or on some
  // seeds a burst, so that it runs ahead of the clone's disk and the clone
  // holds the next epoch's writes behind a barrier flush.
  unsigned burst = 1;

  World(uint64_t s, Faults& f, bool with_resync, bool bursts = true);
  bool chance(unsigned per_mille) { return rng() % 1000 < per_mille; }
  const Original& of_generation(uint64_t g) const { return g == 2 ? second : original; }
  const std::vector<uint8_t>& resync_source() const { return second.at_epoch.at(resync_epoch); }
  // The last record the original's log holds now: generation 1's ends at
  // the resync's target (what follows is generation 2's, after the resync).
  uint64_t log_end() const {
    return phase != Phase::log_after_resync && resync_epoch != 0 ? resync_seq : original.log.size();
  }
  proto::Hello hello() const;
  StageFile memory_stage_file() const;

  // Sends `plain` over the link: sealed, maybe corrupted, maybe duplicated
  // (a copy fails authentication). `on_frame` gets each frame the clone
  // opens; false from it ends the session. False when the connection ended.
  bool deliver(Link& link, base::ByteSpan plain, bool faults_on,
               const std::function<bool(const proto::Frame&)>& on_frame);

  void check_bounds(const Clone& c);
  bool crash_consistent_after(const Original& o, uint64_t e, const std::vector<uint8_t>& base,
                              const std::vector<uint8_t>& disk_bytes) const;
  void check_after_power_cut();
  void check_consistent_disk(const Clone& c);
  std::array<uint64_t, 5> consistent_checked_{};  // what check_consistent_disk looked at last
  std::unique_ptr<base::AlignedBuffer> consistent_view_;
  std::vector<uint8_t> consistent_held_;
  void check_marks(Clone& c);
  void check_staging(const Clone& c);
  void stranger(Clone& c);
};

// The process is gone: killed (the disk keeps what it was given, the stage
// file what was written to it) or the power went (checked at once).
void process_lost(World& w, StageWorker& worker, SessionEnd end);
// A session's steps: the start (the newest ack noted, maybe a fault: false,
// with how the session ended; time passes) and the end (one pending
// operation completes, then the invariants; true if one did).
bool begin_step(World& w, Clone& c, bool faults_on, SessionEnd& end);
bool end_step(World& w, Clone& c);
// The original's hello, and the clone's answer (deferred while it is busy).
void open_session(World& w, Clone& c, const proto::Hello& hello);
// A start before any session (Daemon::start_stage): an "applying" store
// finishes the copy with no original. False when the power went meanwhile.
bool start_process(World& w, Clone& c, StageWorker& worker, bool faults_on);
// A maintenance session of the original that resyncs the clone to
// generation 2; done once the clone has answered the end.
SessionEnd run_resync_session(World& w, Clone& c, StageWorker& worker, bool faults_on);
// After a power cut during the resync: the disk is G, or the store says
// "applying", or generation 2 is whole (or the resync went in place).
void check_after_resync_cut(World& w);

}  // namespace simulation
