// SPDX-License-Identifier: MIT
// Resync under power cuts (issue 3, "a resync interrupted ... power cut
// through the fault-injecting device"), level 2: the real apply machine over
// the fault-injecting device, disk operations completing in a seeded order,
// and the original's side simulated: it sends the extents that differ from
// the clone's cursor on, with a mark every few extents.
//
// After every cut, every byte below the clone's durable cursor already holds
// the source's data (so the resumed resync may skip it), and the resumed
// resync starts exactly there. After the last session: identical, consistent,
// at the new generation. A failure prints the command that replays its seed;
// seeds from the environment: test/scenario/seeds.h (the fixed window is 1-40).
#include <doctest/doctest.h>

#include <cstring>

#include "test/scenario/seeds.h"
#include "test/scenario/sim.h"

namespace {

using namespace sim;

constexpr uint32_t kExtent = 4096;
constexpr uint64_t kExtents = kDiskBytes / kExtent;
constexpr uint64_t kMarkEvery = 4;  // extents

struct Outcome {
  bool done = false;
  uint64_t resumed_at = 0;       // the cursor the clone answered the begin with
  uint64_t extents_compared = 0; // from the cursor to the end, or to the cut
};

// One session of the resync; cut after `cut_after` operations (or never).
Outcome resync_session(blockio::FaultyDevice& disk, std::mt19937_64& rng, apply::ReplicaState& stored,
                       const std::vector<uint8_t>& source, uint64_t cut_after) {
  Outcome out;
  apply::Machine m(disk.geometry(), stored, apply::Limits{});
  std::map<apply::RecordId, proto::RecordHeader> extents;  // accepted, by id
  std::vector<std::pair<apply::RecordId, std::vector<apply::Extent>>> io;
  bool flush = false;
  std::vector<apply::ReplicaState> commits;
  std::optional<proto::ResyncState> state;
  bool resync_done = false;
  uint64_t ops = 0;

  auto handle = [&](apply::Actions& a) {
    REQUIRE_MESSAGE(a.fail.empty(), (a.fail.empty() ? "" : a.fail[0].message));
    for (auto& s : a.submit) io.emplace_back(s.id, s.only);
    if (a.flush) flush = true;
    for (auto& c : a.commits) commits.push_back(c.state);
    if (a.resync_state) state = a.resync_state;
    if (a.resync_done) resync_done = true;
  };
  // Completes one pending operation at random; false when idle or cut.
  auto step = [&]() -> bool {
    if (++ops > cut_after) return false;
    std::vector<int> kinds;
    if (!io.empty()) kinds.push_back(0);
    if (flush) kinds.push_back(1);
    if (!commits.empty()) kinds.push_back(2);
    if (kinds.empty()) return false;
    apply::Actions a;
    switch (kinds[rng() % kinds.size()]) {
      case 0: {
        const size_t i = rng() % io.size();
        auto [id, only] = io[i];
        io.erase(io.begin() + static_cast<long>(i));
        const proto::RecordHeader& h = extents.at(id);
        const std::vector<apply::Extent> whole{{h.offset_bytes, h.length_bytes}};
        base::Status s;
        for (const apply::Extent& e : only.empty() ? whole : only) {
          if (h.type == proto::MsgType::resync_zero) {
            s = disk.write_zeroes(e.offset_bytes, e.length_bytes);
          } else {
            base::AlignedBuffer buf(e.length_bytes);
            std::memcpy(buf.data(), source.data() + e.offset_bytes, e.length_bytes);
            s = disk.write(e.offset_bytes, buf.span());
          }
        }
        m.on_io_done(id, s, false, a);
        break;
      }
      case 1:
        flush = false;
        m.on_flush_done(disk.flush(), a);
        break;
      case 2:
        stored = commits.front();
        commits.erase(commits.begin());
        m.on_commit_done(base::Status::ok(), a);
        break;
    }
    handle(a);
    return true;
  };
  auto run_until = [&](auto&& cond) {
    while (!cond()) {
      if (!step()) return false;
    }
    return true;
  };

  proto::Hello h;
  h.role = proto::Role::original;
  h.pair_id = stored.pair_id;
  h.disk_size_bytes = kDiskBytes;
  h.logical_block_bytes = kBlock;
  h.generation = 2;
  h.flags = proto::kHelloMaintenance;
  apply::Actions a;
  m.start_session(h, a);
  REQUIRE(a.hello_reply);
  handle(a);
  a = {};
  m.on_resync_begin({2, 0, 0, kExtent, 0}, a);
  handle(a);
  if (!run_until([&] { return state.has_value(); })) return out;
  out.resumed_at = state->cursor_bytes;

  const std::vector<uint8_t> clone_now = disk_image(disk);
  for (uint64_t e = state->cursor_bytes / kExtent; e < kExtents; ++e) {
    ++out.extents_compared;
    const uint64_t off = e * kExtent;
    // The original compares digests; comparing the bytes is the same answer.
    if (std::memcmp(clone_now.data() + off, source.data() + off, kExtent) != 0) {
      proto::RecordHeader x;
      const bool zero = std::all_of(source.begin() + static_cast<long>(off),
                                    source.begin() + static_cast<long>(off + kExtent), [](uint8_t b) { return b == 0; });
      x.type = zero ? proto::MsgType::resync_zero : proto::MsgType::resync_data;
      x.offset_bytes = off;
      x.length_bytes = kExtent;
      apply::Actions r;
      apply::RecordId id = 0;
      m.on_resync_extent(x, id, r);
      REQUIRE(id != 0);
      extents[id] = x;
      handle(r);
    }
    if ((e + 1) % kMarkEvery == 0) {
      apply::Actions r;
      m.on_resync_mark((e + 1) * kExtent, r);
      handle(r);
    }
    for (int k = 0; k < 2; ++k)
      if (!step() && ops > cut_after) return out;
  }
  apply::Actions r;
  m.on_resync_end(0, r);
  handle(r);
  out.done = run_until([&] { return resync_done; });
  while (out.done && step()) {
  }
  return out;
}

}  // namespace

TEST_CASE("a resync cut by power failures resumes at its durable cursor and ends identical") {
  const SeedWindow window = seed_window(1, 40);
  uint64_t cuts = 0, resumed_past_zero = 0, compared = 0, sessions = 0;
  for (uint64_t seed = window.first; seed < window.first + window.count; ++seed) {
    CAPTURE(seed);
    INFO(replay_command("scenario_test", "a resync cut by power failures*", seed));
    ReplayOnCrash on_crash(replay_command("scenario_test", "a resync cut by power failures*", seed));
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> source(kDiskBytes, 0);
    for (size_t i = 0; i < source.size(); ++i)
      if ((i / kExtent) % 5 != 0) source[i] = static_cast<uint8_t>(rng());  // every fifth extent zero
    auto inner = std::make_unique<blockio::MemoryDevice>(kDiskBytes, kBlock);
    {  // the clone holds unrelated data, some of it equal to the source
      std::vector<uint8_t> junk(kDiskBytes);
      for (size_t i = 0; i < junk.size(); ++i) junk[i] = (i / kExtent) % 3 == 0 ? source[i] : static_cast<uint8_t>(rng());
      base::AlignedBuffer buf(kDiskBytes);
      std::memcpy(buf.data(), junk.data(), kDiskBytes);
      REQUIRE(inner->write(0, buf.span()).is_ok());
    }
    blockio::FaultyDevice disk(std::move(inner), seed);
    apply::ReplicaState stored;
    stored.pair_id = proto::PairId{9};
    stored.state = proto::CloneState::consistent;
    Outcome o;
    for (int attempt = 0; attempt < 6 && !o.done; ++attempt) {
      const bool last = attempt == 5;
      const uint64_t durable_cursor = stored.resync.active() ? stored.resync.cursor_bytes : 0;
      o = resync_session(disk, rng, stored, source, last ? UINT64_MAX : 20 + rng() % 200);
      ++sessions;
      compared += o.extents_compared;
      if (attempt > 0) {
        // The resumed resync starts exactly at the cursor the store held.
        CHECK(o.resumed_at == durable_cursor);
        if (o.resumed_at > 0) ++resumed_past_zero;
      }
      if (o.done) break;
      disk.power_cut(blockio::PowerCutMode::drop_unflushed);
      disk.revive();
      ++cuts;
      // Everything below the durable cursor holds the source's data.
      if (stored.resync.active()) {
        const std::vector<uint8_t> now = disk_image(disk);
        const uint64_t c = stored.resync.cursor_bytes;
        CHECK_MESSAGE(std::equal(now.begin(), now.begin() + static_cast<long>(c), source.begin()),
                      "below the durable cursor " << c << " the disk differs from the source");
        CHECK(stored.state == proto::CloneState::inconsistent);
        CHECK(stored.generation == 2);
      }
    }
    REQUIRE(o.done);
    CHECK(disk_image(disk) == source);
    CHECK(stored.state == proto::CloneState::consistent);
    CHECK(stored.generation == 2);
    CHECK_FALSE(stored.resync.active());
  }
  MESSAGE("resync power cuts: " << window.count << " seeds from " << window.first << "; " << cuts << " cuts over "
                                << sessions << " sessions; " << resumed_past_zero
                         << " resumed past byte 0; extents compared " << compared << " (a restart from 0 each time would be "
                         << sessions * kExtents << ")");
  if (window.fixed) {  // the fixed window must cut, and resume past zero, to be worth its time
    CHECK(cuts > window.count / 2);
    CHECK(resumed_past_zero > 0);
    CHECK(compared < sessions * kExtents);  // resuming saved comparisons
  }
}
