// SPDX-License-Identifier: MIT
// Shared by the level-2 tests that stage a resync (staged_powercut_test,
// simulation_test): the daemon's stage worker (cloned/daemon/stage_worker.h:
// one thread that carries out the machine's stage actions in order), the
// start before any session (Daemon::start_stage), and what a power cut may
// leave of a staged resync (docs/ARCHITECTURE.md, "Staged resync").
#pragma once

#include <doctest/doctest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "blockio/faulty_device.h"
#include "cloned/apply/apply.h"
#include "cloned/stage/stage.h"

namespace sim {

inline constexpr stage::Limits kRoomyStage{64ull << 20, 0};

// Where the stage file lives: a real file or a stage::MemoryFile.
struct StageFile {
  std::function<base::Result<std::unique_ptr<stage::Medium>>(bool create)> open;
  std::function<void()> remove;
};

// The stage worker: the stage's jobs of a machine's actions, run one at a
// time in order, over a FaultyMedium (for the power cut) on the file.
struct StageWorker {
  struct Job {
    enum class Kind { open, append, sync, apply, remove } kind;
    apply::StageOpen how;
    apply::RecordId id = 0;
  };
  struct Extent {
    proto::RecordHeader header;
    std::vector<uint8_t> data;  // resync_data only
  };
  StageFile file;
  uint64_t disk_bytes;
  // Asked before each apply with the stage's entry count: the disk write to
  // fail at (the power goes then: apply_cut), or -1 for none.
  std::function<int64_t(uint64_t entry_count)> apply_fault = [](uint64_t) { return int64_t{-1}; };
  // Asked the same way: the stick's read to fail at (EIO; the machine tries
  // the copy again after a wait), or -1 for none.
  std::function<int64_t(uint64_t entry_count)> stick_fault = [](uint64_t) { return int64_t{-1}; };
  std::deque<Job> jobs;
  std::optional<stage::Stage> stage;
  stage::FaultyMedium* medium = nullptr;      // the open stage's, for the cut
  std::map<apply::RecordId, Extent> extents;  // received, not yet appended
  bool apply_cut = false;

  // The bytes of an accepted resync extent, kept until it is appended (the
  // daemon keeps its frame under the id).
  void keep(apply::RecordId id, const proto::RecordHeader& h, base::ByteSpan data) {
    extents[id] = Extent{h, std::vector<uint8_t>(data.begin(), data.end())};
  }
  // Queues the stage's part of `a`: what goes to the stage, not the disk.
  void take(const apply::Actions& a) {
    if (a.stage_open) jobs.push_back({Job::Kind::open, *a.stage_open});
    for (const apply::SubmitIo& s : a.submit)
      if (s.to_stage) jobs.push_back({Job::Kind::append, {}, s.id});
    if (a.stage_sync) jobs.push_back({Job::Kind::sync, {}});
    if (a.stage_apply) jobs.push_back({Job::Kind::apply, {}});
    if (a.stage_remove || a.stage_drop) jobs.push_back({Job::Kind::remove, {}});
  }
  bool busy() const { return !jobs.empty(); }
  // Runs the next job; its completion goes to the machine.
  void run_one(apply::Machine& m, blockio::FaultyDevice& disk, apply::Actions& a) {
    const Job j = jobs.front();
    jobs.pop_front();
    switch (j.kind) {
      case Job::Kind::open:
        return open(m, j.how, a);
      case Job::Kind::append:
        return append(m, j.id, a);
      case Job::Kind::sync: {
        const base::Status s = stage->sync();
        return m.on_stage_synced(s, stage->synced_bytes(), stage->staged_disk_bytes(), a);
      }
      case Job::Kind::apply:
        return apply_to(m, disk, a);
      case Job::Kind::remove:
        stage.reset();
        medium = nullptr;
        file.remove();
        return;
    }
  }
  // The power went: unsynced writes are lost (maybe the last one torn).
  void power_cut(std::mt19937_64& rng) {
    if (medium != nullptr) medium->power_cut(rng() % 2 == 0, static_cast<size_t>(rng() % 5000));
  }

  // The jobs themselves.
  void open(apply::Machine& m, const apply::StageOpen& how, apply::Actions& a) {
    stage.reset();
    medium = nullptr;
    auto opened = file.open(how.create);
    if (!opened.is_ok()) {
      m.on_stage_opened(opened.status(), a);
      return;
    }
    auto faulty = std::make_unique<stage::FaultyMedium>(std::move(opened).value());
    medium = faulty.get();
    base::Result<stage::Stage> s =
        how.create
            ? stage::Stage::create(std::move(faulty), {how.generation, how.base_generation, disk_bytes}, kRoomyStage)
            : stage::Stage::open(std::move(faulty), how.durable_bytes, kRoomyStage);
    REQUIRE_MESSAGE(s.is_ok(), s.status().message());  // what was durable survives every cut
    stage.emplace(std::move(s).value());
    m.on_stage_opened(base::Status::ok(), a);
  }
  void append(apply::Machine& m, apply::RecordId id, apply::Actions& a) {
    auto it = extents.find(id);
    REQUIRE(it != extents.end());
    const Extent x = std::move(it->second);
    extents.erase(it);
    const base::Status s = x.header.type == proto::MsgType::resync_zero
                               ? stage->append_zero(x.header.offset_bytes, x.header.length_bytes)
                               : stage->append_data(x.header.offset_bytes, x.data, {});
    m.on_io_done(id, s, false, a);
  }
  // The copy to the disk; when apply_fault says so, the disk's writes fail
  // part-way and the power goes.
  void apply_to(apply::Machine& m, blockio::FaultyDevice& disk, apply::Actions& a) {
    const int64_t fail_after = stage ? apply_fault(stage->entry_count()) : -1;
    if (fail_after >= 0) {
      disk.set_plan({.fail_write_after = fail_after});
      apply_cut = true;
    }
    const int64_t read_fails_after = stage && fail_after < 0 ? stick_fault(stage->entry_count()) : -1;
    if (read_fails_after >= 0) medium->set_faults({.fail_read_after = read_fails_after});
    // A stage that could not be opened: the machine already decided
    // (on_stage_opened) and ignores this.
    stage::DiskFault fault;
    const base::Status s = stage ? stage::apply_stage(*stage, disk, &fault) : base::Status::error(EIO, "no stage");
    m.on_stage_applied(s, fault.op != nullptr, a);
    disk.set_plan({});
    if (read_fails_after >= 0) medium->set_faults({});
  }
};

// A start before any session (Daemon::start_stage): a stage with no staged
// resync in the store is removed; an "applying" store finishes the copy with
// no original (its actions go to the worker).
inline void start_stage(apply::Machine& m, StageWorker& w, apply::Actions& a) {
  if (!m.applying_stage() && !m.staging()) w.file.remove();
  m.resume_staged_apply(a);
}

// What a power cut may leave of a staged resync from generation G to G+1.
enum class StagedCut { old_generation, applying, new_generation };

// The disk byte-identical to G and the store consistent at G (staging, or
// not begun); the store "applying", inconsistent (the next start finishes
// it); or G+1 committed and whole on the disk.
inline StagedCut check_staged_cut(const apply::ReplicaState& s, uint64_t new_generation,
                                  const std::vector<uint8_t>& disk, const std::vector<uint8_t>& old_image,
                                  const std::vector<uint8_t>& new_image) {
  if (s.stage.phase == apply::StagePhase::applying) {
    CHECK(s.state == proto::CloneState::inconsistent);
    return StagedCut::applying;
  }
  if (s.generation == new_generation) {
    CHECK_MESSAGE(disk == new_image, "after the commit of generation " << new_generation << " the disk is not it");
    return StagedCut::new_generation;
  }
  CHECK_MESSAGE(disk == old_image, "a cut while staging changed the disk");
  CHECK(s.state == proto::CloneState::consistent);
  return StagedCut::old_generation;
}

}  // namespace sim
