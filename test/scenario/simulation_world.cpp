// SPDX-License-Identifier: MIT
// The seeded simulation's world (simulation.h): the seed's original (and,
// for a seed with a resync, generation 2's), the network's faults, and the
// invariants checked after every step and every power cut.
#include <algorithm>

#include "test/scenario/simulation.h"

namespace simulation {

World::World(uint64_t s, Faults& f, bool with_resync, bool bursts)
    : seed(s),
      rng(s),
      original(s, 30),
      disk(std::make_unique<blockio::MemoryDevice>(kDiskBytes, kBlock), s),
      faults(f) {
  stored.pair_id = pair;
  limits.reserve_ahead_records = 1 + rng() % 64;
  limits.io_depth_max = 1 + static_cast<uint32_t>(rng() % 8);
  limits.held_bytes_max = (8 + rng() % 64) * 1024;
  limits.stage_resync = true;
  auth[0] = static_cast<uint8_t>(s);
  if (bursts) {  // its own stream, so the rest of the seed stays what it was
    std::mt19937_64 b(s ^ 0x5851f42d4c957f2dull);
    if (b() % 3 == 0) {
      burst = 2 + static_cast<unsigned>(b() % 15);
      limits.held_bytes_max = (64 + b() % 448) * 1024;  // room for epochs ahead
    }
  }
  if (!with_resync) return;
  // Its own stream: the log's and the faults' stay what they were.
  std::mt19937_64 r(s ^ 0x9e3779b97f4a7c15ull);
  if (r() % 2 != 0) return;
  resync_epoch = 4 + r() % 22;
  for (const Rec& rec : original.log)
    if (rec.h.type == proto::MsgType::barrier && rec.h.epoch == resync_epoch) resync_seq = rec.h.seq;
  std::vector<uint8_t> changed = original.at_epoch.at(resync_epoch);
  for (uint64_t off = 0; off < kDiskBytes; off += 4096) {  // 4 KiB extents: zeroed, rewritten, one block, or kept
    const auto at = changed.begin() + static_cast<long>(off);
    switch (r() % 8) {
      case 0:
        std::fill_n(at, 4096, 0);
        break;
      case 1:
        std::generate_n(at, 4096, [&] { return static_cast<uint8_t>(r()); });
        break;
      case 2:
        std::generate_n(at + static_cast<long>(r() % 8 * kBlock), kBlock, [&] { return static_cast<uint8_t>(r()); });
        break;
      default:
        break;
    }
  }
  second = original.diverged_after(resync_epoch, std::move(changed));
}

proto::Hello World::hello() const {
  proto::Hello h = hello_from(original, pair, saw);
  h.log_end_seq = log_end();
  if (phase == Phase::log_after_resync) {  // generation 2's log starts after the resync's target
    h.generation = 2;
    h.log_start_seq = resync_seq + 1;
  }
  return h;
}

StageFile World::memory_stage_file() const {
  std::shared_ptr<stage::MemoryFile> file = stage_file;
  return {[file](bool create) { return stage::open_memory(file, create); }, [file] { stage::remove_memory(*file); }};
}

bool World::deliver(Link& link, base::ByteSpan plain, bool faults_on,
                    const std::function<bool(const proto::Frame&)>& on_frame) {
  base::Bytes wire;
  link.sealer->seal(plain, wire);
  if (faults_on && chance(5)) {
    ++faults.corrupted;
    wire[rng() % wire.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
  }
  const bool duplicate = faults_on && chance(3);
  for (int copy = 0; copy < (duplicate ? 2 : 1); ++copy) {
    faults.duplicated += copy;
    base::ByteSpan in(wire);
    proto::Frame frame;
    bool has = false;
    if (!link.reader->feed(in, frame, has).is_ok()) return false;  // AEAD caught it
    // A corrupted length makes the reader wait for bytes that never come:
    // the idle timeout ends that session.
    if (!has) return false;
    if (!on_frame(frame)) return false;
  }
  return true;
}

// Invariant 9: memory and queues stay bounded whatever arrives.
void World::check_bounds(const Clone& c) {
  proto::RecordHeader largest;
  largest.length_bytes = 16 * kBlock;
  const uint64_t one_record = apply::record_cost_bytes(largest);
  CHECK_MESSAGE(c.machine.held_bytes() <= limits.held_bytes_max + one_record, "seed " << seed);
  CHECK_MESSAGE(c.machine.in_flight() - c.machine.in_flight_after_flush() <= limits.io_depth_max, "seed " << seed);
  CHECK_MESSAGE(c.machine.in_flight_after_flush() <= limits.io_depth_max, "seed " << seed);
  CHECK_MESSAGE(c.held_io.size() <= c.machine.in_flight_after_flush(), "seed " << seed);
  if (!c.held_io.empty()) ++faults.epoch_held;
}

// True if `disk` is what the original's own disk could hold after losing
// power during epoch e+1: the image at the end of epoch e (`base`) with any of epoch
// e+1's writes, trims and zeroes landed (block by block).
bool World::crash_consistent_after(const Original& o, uint64_t e, const std::vector<uint8_t>& base,
                                   const std::vector<uint8_t>& disk_bytes) const {
  for (uint64_t off = 0; off < kDiskBytes; off += kBlock) {
    auto block = [&](const uint8_t* p) {
      return std::equal(p, p + kBlock, disk_bytes.begin() + static_cast<long>(off));
    };
    if (block(base.data() + off)) continue;
    bool explained = false;
    for (const Rec& r : o.log) {
      if (r.h.epoch != e + 1 || r.h.type == proto::MsgType::barrier) continue;
      if (off < r.h.offset_bytes || off >= r.h.offset_bytes + r.h.length_bytes) continue;
      static const std::vector<uint8_t> zeros(kBlock, 0);
      explained =
          r.h.type == proto::MsgType::write ? block(r.payload.data() + (off - r.h.offset_bytes)) : block(zeros.data());
      if (explained) break;
    }
    if (!explained) return false;
  }
  return true;
}

// Invariants 4, 5, 8 after the power went: the disk is the original's at an
// epoch boundary at or after every durable ack, or (after a crash of the
// process mid-epoch, whose writes the disk kept) a state the original's own
// disk could have had after a power cut in the epoch after that boundary;
// unless the store says the clone was replaying (marked inconsistent). The
// original's images are those of the generation the store holds.
void World::check_after_power_cut() {
  if (phase == Phase::resync) return check_after_resync_cut(*this);
  const Original& o = of_generation(stored.generation);
  const std::vector<uint8_t> after = disk_image(disk);
  bool at_boundary = false;
  o.each_epoch_image([&](uint64_t epoch, const std::vector<uint8_t>& image) {
    if (epoch >= last_ack_epoch && (image == after || crash_consistent_after(o, epoch, image, after)))
      at_boundary = true;
  });
  const bool marked = stored.state == proto::CloneState::inconsistent;
  if (!at_boundary && marked) ++faults.cut_while_marked;
  CHECK_MESSAGE((at_boundary || marked), "seed " << seed << ": no epoch boundary >= " << last_ack_epoch);
}

// Invariant 8 while the clone runs: one that says it is consistent holds,
// counting what is not flushed yet (what a kill -9 would leave), a disk the
// original could have had after a power cut: its image at the durable epoch
// (or the next, where an early flush made it durable before the machine
// heard of it), with any of the following epoch's writes landed.
void World::check_consistent_disk(const Clone& c) {
  const apply::ReplicaState& r = c.machine.replica();
  if (phase == Phase::resync || r.state != proto::CloneState::consistent || r.resync.active() || r.needs_resync) return;
  const uint64_t from = c.machine.durable().epoch;
  const uint64_t to = std::max(from, std::min(from + 1, c.early_durable_epoch));  // made durable early
  // Only when the disk or the durable epoch changed since the last look: a
  // look at every step costs minutes under the sanitizers.
  const std::array<uint64_t, 5> key{r.generation, from, to, disk.write_count() + disk.flush_count(),
                                    disk.unflushed_count()};
  if (key == consistent_checked_) return;
  consistent_checked_ = key;
  const Original& o = of_generation(r.generation);
  // The flushed bytes with the unflushed operations over them; the buffers
  // are kept (an allocation of their size is an mmap, costly under TSan).
  if (!consistent_view_) consistent_view_ = std::make_unique<base::AlignedBuffer>(kDiskBytes);
  if (!disk.read(0, consistent_view_->span()).is_ok()) return;
  std::vector<uint8_t>& held = consistent_held_;
  held.assign(consistent_view_->data(), consistent_view_->data() + kDiskBytes);
  bool explained = false;
  for (uint64_t e = from; e <= to && !explained; ++e) {
    auto it = o.at_epoch.find(e);  // every epoch end of the generation the clone holds
    if (it != o.at_epoch.end()) explained = it->second == held || crash_consistent_after(o, e, it->second, held);
  }
  CHECK_MESSAGE(explained, "seed " << seed << ": the clone says it is consistent at epoch " << from
                                   << " but its disk is no state the original's could have had");
}

// Marks: one is reported reached only once its barrier is durable, with its
// own name; and the newest mark the clone reports is the newest at or
// before its durable position (also right after a restart, whose store
// must hold every mark the original was told is durable).
void World::check_marks(Clone& c) {
  for (const apply::MarkReached& m : c.marks_reached) {
    auto it = original.marks.find(m.seq);
    CHECK_MESSAGE((it != original.marks.end() && it->second == m.name), "seed " << seed << ": mark " << m.name);
    CHECK_MESSAGE(m.seq <= c.machine.durable().seq, "seed " << seed);
  }
  c.marks_reached.clear();
  const apply::LogMark* m = c.machine.last_mark();
  CHECK_MESSAGE((m ? m->name : std::string()) == original.newest_mark(c.machine.durable().seq),
                "seed " << seed << ": the clone reports mark " << (m ? m->name : "none") << " at durable record "
                        << c.machine.durable().seq);
}

// Issue 18: while a resync is staged, the disk is byte-identical to the
// generation G it held when the resync began. Nothing is pending on it, and
// whenever a flush could have changed it, it is compared with G.
void World::check_staging(const Clone& c) {
  if (phase != Phase::resync || !(c.machine.staging() || stored.stage.phase == apply::StagePhase::staging)) return;
  CHECK_MESSAGE(disk.unflushed_count() == 0, "seed " << seed << ": the disk was written while staging");
  if (disk.flush_count() == old_checked_flushes) return;
  CHECK_MESSAGE(disk_image(disk) == old_image, "seed " << seed << ": the disk changed while staging");
  old_checked_flushes = disk.flush_count();
}

// Invariant 7: an original of another generation is refused, nothing
// written (told the generation differs, or, while a resync of that
// generation is unfinished, that the resync must go on).
void World::stranger(Clone& c) {
  ++faults.strangers;
  proto::Hello h = hello_from(original, pair, saw);
  h.generation = c.machine.replica().generation + 1;
  apply::Actions a;
  c.machine.start_session(h, a);
  c.handle_quietly(a);
  if (!a.fail.empty())
    CHECK(
        (a.fail[0].code == proto::ErrorCode::generation_mismatch || a.fail[0].code == proto::ErrorCode::resync_needed));
  CHECK(a.submit.empty());
  apply::Actions e;
  c.machine.end_session(e);
}

}  // namespace simulation
