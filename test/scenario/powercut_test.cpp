// SPDX-License-Identifier: MIT
// Power cuts at seeded points (design.md invariants 4-6), level 2 of
// docs/TESTING.md: the real apply state machine over the fault-injecting
// device, with disk operations completing in a seeded random order, store
// commits that lag, and the original resending from the clone's position.
//
// After every cut: the disk equals the source at an epoch boundary at or after
// the last durable ack. After the final restart: identical, and no gap.
// A failure prints the command that replays its seed; seeds from the
// environment: test/scenario/seeds.h (the fixed window is 1-60).
#include <doctest/doctest.h>

#include "test/scenario/seeds.h"
#include "test/scenario/sim.h"

namespace {

using namespace sim;

// Runs one session until the log is applied or `cut_after_steps` steps pass.
// Returns true if the whole log is durable.
bool run_session(Clone& c, const Original& o, const proto::PairId& pair, uint64_t cut_after_steps, uint64_t& now) {
  apply::Actions a;
  c.machine.start_session(hello_from(o, pair, c.original_saw), a);
  REQUIRE(a.hello_reply);
  c.handle(a);
  uint64_t next = a.hello_reply->applied_seq + 1;
  for (uint64_t steps = 0; steps < cut_after_steps; ++steps) {
    if (c.failed) return false;
    apply::Actions t;
    now += 7;
    c.machine.on_tick(now, t);
    c.handle(t);
    // Send a few records while the machine accepts them, then let the disk work.
    for (int k = 0; k < 3 && next <= o.log.size() && c.machine.can_accept(); ++k, ++next) {
      apply::Actions r;
      apply::RecordId id = 0;
      const Rec& rec = o.log[next - 1];
      const std::string_view mark =
          rec.h.type == proto::MsgType::barrier
              ? std::string_view(reinterpret_cast<const char*>(rec.payload.data()), rec.payload.size())
              : std::string_view();
      c.machine.on_record(rec.h, id, r, mark);
      if (id != 0) c.id_to_index[id] = next - 1;
      c.handle(r);
    }
    bool worked = c.step(o);
    if (!worked && next > o.log.size()) return c.machine.durable().seq == o.log.size();
  }
  return false;
}

struct Tallies {
  uint64_t cuts = 0, at_boundary_cuts = 0, marked_cuts = 0;
};

constexpr const char* kMainCase = "after a power cut at any point*";

// One seed: a 40-epoch log applied through up to three power cuts.
void run_seed(uint64_t seed, Tallies& t, bool worker_lag = true) {
  CAPTURE(seed);
  INFO(replay_command("scenario_test", kMainCase, seed));
  ReplayOnCrash on_crash(replay_command("scenario_test", kMainCase, seed));
  std::mt19937_64 rng(seed);
  const Original o(seed, 40);
  proto::PairId pair{7};
  auto inner = std::make_unique<blockio::MemoryDevice>(kDiskBytes, kBlock);
  blockio::FaultyDevice disk(std::move(inner), seed);
  apply::ReplicaState stored;
  stored.pair_id = pair;
  apply::SendBarrierAck original_saw{0, 0};
  apply::Limits limits;
  limits.reserve_ahead_records = 1 + rng() % 64;  // small: the reservation is exercised
  limits.io_depth_max = 1 + static_cast<uint32_t>(rng() % 8);
  uint64_t now = 1000;
  bool done = false;
  for (int attempt = 0; attempt < 4 && !done; ++attempt) {
    Clone c(disk, rng, stored, original_saw, limits);
    c.worker_lag = worker_lag;
    const bool last = attempt == 3;
    const uint64_t cut_at = last ? 1'000'000 : 5 + rng() % 150;
    done = run_session(c, o, pair, cut_at, now);
    if (done) {
      // Let the final commit through, as a clean run would.
      apply::Actions a;
      c.machine.on_tick(now + 10'000, a);
      c.handle(a);
      while (c.step(o)) {
      }
      break;
    }
    REQUIRE_FALSE(last);
    // Power cut: unflushed writes are lost, the process and its memory too.
    disk.power_cut(blockio::PowerCutMode::drop_unflushed);
    disk.revive();
    ++t.cuts;
    const std::vector<uint8_t> after = disk_image(disk);
    bool at_boundary = false;
    for (const auto& [epoch, image] : o.at_epoch) {
      if (epoch >= c.acked_epoch && image == after) at_boundary = true;
    }
    // Either the disk is at an epoch boundary at or after the last durable
    // ack, or the cut came while the clone was replaying after an earlier
    // cut, and the store says so (invariant 8).
    const bool marked = stored.state == proto::CloneState::inconsistent;
    (at_boundary ? t.at_boundary_cuts : t.marked_cuts)++;
    CHECK_MESSAGE((at_boundary || marked), "seed " << seed << ": after the cut the disk is at no epoch boundary >= "
                                                   << c.acked_epoch << " and the clone is not marked inconsistent");
    CHECK(stored.committed_epoch <= c.machine.durable().epoch);
  }
  REQUIRE(done);
  CHECK(disk_image(disk) == o.image);
  CHECK(stored.committed_seq == o.log.size());
  CHECK(stored.state == proto::CloneState::consistent);
}

}  // namespace

TEST_CASE("after a power cut at any point the disk is at an epoch boundary at or after the last durable ack") {
  const SeedWindow window = seed_window(1, 60);
  Tallies t;
  for (uint64_t seed = window.first; seed < window.first + window.count; ++seed) run_seed(seed, t);
  MESSAGE("power cuts: " << window.count << " seeds from " << window.first << "; " << t.cuts
                         << " cuts injected; disk at an epoch boundary after " << t.at_boundary_cuts
                         << ", cut while marked inconsistent (replaying) " << t.marked_cuts);
  if (window.fixed) CHECK(t.cuts > window.count);  // the fixed window cuts more than once a seed
}

// A seed that once failed, run by name in every CI run (issue 12): a barrier
// acknowledged one record past the committed reservation, then a power cut.
TEST_CASE("power-cut seed 972: an ack one record past the durable reservation, then a power cut (regression)") {
  Tallies t;
  run_seed(972, t, false);  // as it was found: before the early flush and late completions were modelled
  CHECK(t.cuts > 0);
}
