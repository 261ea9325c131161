// SPDX-License-Identifier: MIT
// clone-origin replay --log-writes: ships a dm-log-writes log to the clone
// (docs/ORIGINS.md). Entries become records by log_writes::plan_entry; the
// position (the entry after the last barrier the clone acknowledged, with
// the sequence number and epoch that follow it) is saved in
// STATE_DIR/origin.position as acks arrive, so that any interruption resumes
// with no entry lost or sent twice.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "base/units.h"
#include "origin/commands.h"
#include "origin/log.h"
#include "origin/log_writes_file.h"
#include "origin/position.h"
#include "origin/progress.h"
#include "origin/replicator.h"
#include "origin/wake.h"

namespace origin {

using base::u64s;
namespace lw = log_writes;

namespace {

std::atomic<bool> g_stop{false};
void on_stop_signal(int) { g_stop.store(true); }

// Where the log stands after a barrier: what a position saved there says.
struct Boundary {
  uint64_t seq = 0;  // the barrier
  uint64_t epoch = 0;
  LogWritesPosition at;
};

// Walks entries, numbers their records and remembers each barrier's
// boundary. Used twice per entry range: once to validate and count (no
// records built), once to send.
class Walker {
 public:
  Walker(lw::LogFile& file, const lw::Target& target, uint64_t index, uint64_t offset, uint64_t previous_offset,
         uint64_t seq, uint64_t epoch)
      : file_(file),
        target_(target),
        index_(index),
        offset_(offset),
        previous_offset_(previous_offset),
        seq_(seq),
        epoch_(epoch) {}

  uint64_t index() const { return index_; }
  uint64_t offset() const { return offset_; }
  uint64_t next_seq() const { return seq_; }
  uint64_t next_epoch() const { return epoch_; }
  bool epoch_open() const { return epoch_open_; }

  // Reads, checks and plans the next entry. `records` receives what it
  // becomes; `boundaries` one entry per barrier among them.
  base::Status step(std::vector<lw::Planned>& planned, std::vector<Boundary>& boundaries, uint64_t& first_seq) {
    lw::Entry e;
    BASE_TRY(file_.read_entry(index_, offset_, target_, e));
    planned.clear();
    boundaries.clear();
    lw::plan_entry(e, epoch_open_, planned);
    first_seq = seq_;
    for (const lw::Planned& p : planned) {
      const uint64_t seq = seq_++;
      if (p.type != lw::Planned::Type::barrier) continue;
      Boundary b;
      b.seq = seq;
      b.epoch = epoch_++;
      // A preflush barrier comes before its write: a resume starts at this
      // entry again, with an empty epoch, so the preflush is not repeated.
      const bool preflush = &p == &planned.front() && e.kind == lw::Kind::write;
      b.at.next_entry = preflush ? index_ : index_ + 1;
      b.at.next_offset = preflush ? offset_ : e.next_log_offset_bytes;
      b.at.previous_offset = preflush ? previous_offset_ : offset_;
      boundaries.push_back(b);
    }
    previous_offset_ = offset_;
    offset_ = e.next_log_offset_bytes;
    ++index_;
    return base::Status::ok();
  }

 private:
  lw::LogFile& file_;
  lw::Target target_;
  uint64_t index_, offset_, previous_offset_, seq_, epoch_;
  bool epoch_open_ = false;  // every walk starts right after a barrier
};

// Saves the position of the newest boundary the clone has acknowledged,
// every interval and at the end (from its own thread: the producer may be
// blocked on a full retained log meanwhile).
class PositionSaver {
 public:
  PositionSaver(const std::string& state_dir, OriginPosition base, lw::LogFile& file, Replicator& replicator)
      : state_dir_(state_dir), base_(std::move(base)), file_(file), replicator_(replicator) {
    thread_ = std::thread([this] { run(); });
  }
  ~PositionSaver() { stop(); }

  void add(const Boundary& b) {
    std::lock_guard lock(mutex_);
    pending_.push_back(b);
  }
  // Saves what is acknowledged now; the last error, if any.
  base::Status save_now() {
    std::lock_guard lock(mutex_);
    return save_locked();
  }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  uint64_t saved_entry() const {
    std::lock_guard lock(mutex_);
    return base_.log_writes.next_entry;
  }
  // Everything acknowledged is saved and nothing was sent past it.
  base::Status finish_clean() {
    std::lock_guard lock(mutex_);
    BASE_TRY(save_locked());
    base_.clean = true;
    return save_position(state_dir_, base_);
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      wake_.wait_for(lock, std::chrono::milliseconds(500));
      if (base::Status s = save_locked(); !s.is_ok()) error_ = s;
    }
  }
  base::Status save_locked() {
    const uint64_t acked = replicator_.counters().acked_seq;
    std::optional<Boundary> newest;
    while (!pending_.empty() && pending_.front().seq <= acked) {
      newest = pending_.front();
      pending_.pop_front();
    }
    if (!newest) return error_;
    OriginPosition p = base_;
    p.next_seq = newest->seq + 1;
    p.next_epoch = newest->epoch + 1;
    p.log_writes.next_entry = newest->at.next_entry;
    p.log_writes.next_offset = newest->at.next_offset;
    p.log_writes.previous_offset = newest->at.previous_offset;
    base::Result<std::string> digest = file_.entry_digest(newest->at.previous_offset);
    if (!digest) return digest.status();
    p.log_writes.previous_digest = *digest;
    BASE_TRY(save_position(state_dir_, p));
    base_ = p;
    return base::Status::ok();
  }

  const std::string state_dir_;
  OriginPosition base_;
  lw::LogFile& file_;
  Replicator& replicator_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Boundary> pending_;
  base::Status error_;
  bool stopping_ = false;
  std::thread thread_;
};

RecordPtr build_record(lw::LogFile& file, const lw::Planned& p, uint64_t seq, uint64_t epoch,
                       const digest::DigestKey& key, base::Status& status) {
  switch (p.type) {
    case lw::Planned::Type::barrier:
      return std::make_shared<Record>(make_barrier(seq, epoch, p.mark));
    case lw::Planned::Type::trim:
      return std::make_shared<Record>(make_extent(proto::MsgType::trim, seq, epoch, p.offset_bytes, p.length_bytes));
    case lw::Planned::Type::write:
      break;
  }
  auto r = std::make_shared<Record>(begin_write(seq, epoch, p.offset_bytes, static_cast<uint32_t>(p.length_bytes)));
  status = file.read(payload_of(*r), p.data_log_offset);
  if (!status.is_ok()) return nullptr;
  seal_write(*r, key);
  return r;
}

// Refuses a log that is not the one this original was shipping.
base::Status check_same_log(lw::LogFile& file, const lw::Target& target, const LogWritesPosition& at,
                            const std::string& state_dir) {
  const std::string how =
      " The clone holds the first " + u64s(at.next_entry) +
      " entries of the log shipped before; to ship another log, "
      "first bring the clone to the original's disk with clone-origin resync --source DEVICE, which starts the next "
      "log from there (" +
      position_path(state_dir) + " keeps the old log's place until then).";
  base::Result<std::string> start = file.start_digest(target);
  if (!start) return start.status();
  if (*start != at.first_digest)
    return base::Status::error(EINVAL, file.path() +
                                           " does not start as the log this original was shipping: another "
                                           "log, or the log was rewritten." +
                                           how);
  if (file.super().nr_entries < at.next_entry)
    return base::Status::error(EINVAL, file.path() + " holds " + u64s(file.super().nr_entries) +
                                           " entries, fewer than the " + u64s(at.next_entry) +
                                           " already shipped: it was rewritten." + how);
  if (at.next_entry > 0) {
    base::Result<std::string> previous = file.entry_digest(at.previous_offset);
    if (!previous || *previous != at.previous_digest)
      return base::Status::error(EINVAL, file.path() + ": entry " + u64s(at.next_entry - 1) +
                                             " is not the one shipped " + "before: the log was rewritten." + how);
  }
  return base::Status::ok();
}

struct Scan {
  uint64_t end_index = 0;  // entries [start, end_index) are sent
  uint64_t end_seq = 0;    // their last record
  uint64_t last_barrier_seq = 0;
  uint64_t records = 0, barriers = 0, marks = 0, data_bytes = 0;
};

// Validates entries up to the log's current end and counts their records;
// `to_barrier`: stop after the last barrier (the tail waits for a flush).
base::Status scan(Walker walker, uint64_t nr_entries, bool to_barrier, Scan& out) {
  std::vector<lw::Planned> planned;
  std::vector<Boundary> boundaries;
  Scan s;
  s.end_index = walker.index();
  s.end_seq = walker.next_seq() - 1;
  Scan open = s;  // counts up to the current entry
  while (walker.index() < nr_entries) {
    uint64_t first = 0;
    BASE_TRY(walker.step(planned, boundaries, first));
    for (const lw::Planned& p : planned) {
      ++open.records;
      if (p.type == lw::Planned::Type::write) open.data_bytes += p.length_bytes;
      if (p.type == lw::Planned::Type::barrier) ++open.barriers;
      if (!p.mark.empty()) ++open.marks;
    }
    open.end_index = walker.index();
    open.end_seq = walker.next_seq() - 1;
    if (!boundaries.empty()) open.last_barrier_seq = boundaries.back().seq;
    // A write that followed the entry's barrier leaves the epoch open.
    if (!to_barrier || !walker.epoch_open()) s = open;
  }
  if (!to_barrier) s = open;
  out = s;
  return base::Status::ok();
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace

base::Status run_replay_log_writes(const config::OriginConfig& config, const config::DerivedKeys& keys,
                                   const ReplayCommand& command) {
  base::Result<lw::LogFile> opened = lw::LogFile::open(command.log_writes_path);
  if (!opened) return opened.status();
  lw::LogFile& file = *opened;
  const SessionConfig session_base = make_session_config(config, keys);
  const lw::Target target{session_base.disk_size_bytes, session_base.logical_block_bytes};
  base::Result<OriginPosition> loaded = load_position(config.state_dir);
  if (!loaded) return loaded.status();
  OriginPosition pos = *loaded;
  if (pos.resync_generation != 0)
    return base::Status::error(EBUSY, "a resync to generation " + u64s(pos.resync_generation) +
                                          " is under way; finish it first: clone-origin resync --source IMAGE");
  g_stop.store(false);
  if (command.follow) install_stop_handlers();
  // A log still empty: in follow mode, wait for its first entry.
  while (file.super().nr_entries == 0) {
    if (!command.follow) {
      std::printf("replay done: the log %s holds no entries\n", file.path().c_str());
      return base::Status::ok();
    }
    if (g_stop.load()) return base::Status::ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(command.poll_ms));
    BASE_TRY(file.refresh());
  }
  if (pos.log_writes.active()) {
    BASE_TRY(check_same_log(file, target, pos.log_writes, config.state_dir));
  } else {
    if (!pos.clean)
      return base::Status::error(EBUSY, "an earlier run stopped before the clone acknowledged all of its records (" +
                                            position_path(config.state_dir) +
                                            " says so); bring the clone to the "
                                            "original's disk with a resync first: clone-origin resync --source IMAGE");
    base::Result<std::string> start = file.start_digest(target);
    if (!start) return start.status();
    pos.log_writes = {*start, 0, file.super().sector_bytes, 0, ""};
  }
  const LogWritesPosition from = pos.log_writes;
  const Walker start_walker(file, target, from.next_entry, from.next_offset, from.previous_offset, pos.next_seq,
                            pos.next_epoch);
  Scan plan;
  BASE_TRY(scan(start_walker, file.super().nr_entries, !command.follow, plan));
  if (!command.follow && plan.end_index == from.next_entry) {
    std::printf(
        "replay done: nothing to send: the clone holds the log's first %llu of %llu entries, and the rest "
        "waits for a flush or a mark\n",
        static_cast<unsigned long long>(from.next_entry), static_cast<unsigned long long>(file.super().nr_entries));
    return base::Status::ok();
  }
  // From here until the clone holds all that was sent, the clone may hold
  // records past the saved position: only this command continues from it.
  pos.clean = false;
  BASE_TRY(save_position(config.state_dir, pos));

  const uint64_t start_ns = base::monotonic_ns();
  RetainedLog log(config.retention_bytes_max, pos.next_seq);
  log.set_known_end_seq(plan.end_seq);
  SessionConfig session_config = session_base;
  session_config.generation = pos.generation;
  if (from.next_entry > 0) {  // the clone acknowledged up to here (hello rule 2)
    session_config.acked_seq = pos.next_seq - 1;
    session_config.acked_epoch = pos.next_epoch - 1;
  }
  Replicator replicator(session_config, make_reconnect_policy(config), log);
  attach_wake(replicator, config);
  BASE_TRY(replicator.start());
  PositionSaver saver(config.state_dir, pos, file, replicator);
  std::atomic<uint64_t> sent_entries{from.next_entry};
  std::atomic<uint64_t> known_entries{plan.end_index};
  ProgressReporter progress([&] {
    const ReplicatorCounters c = replicator.counters();
    return "replay: entry " + u64s(sent_entries.load()) + " of " + u64s(known_entries.load()) + " sent, acked seq " +
           u64s(c.acked_seq) + ", " + format_rate(c.bytes_sent, base::monotonic_ns() - start_ns);
  });

  Walker walker = start_walker;
  std::vector<lw::Planned> planned;
  std::vector<Boundary> boundaries;
  Scan total = plan;
  base::Status status;
  uint64_t last_barrier_seq = 0;
  auto send_until = [&](uint64_t end_index) -> base::Status {
    while (walker.index() < end_index && !g_stop.load()) {
      uint64_t seq = 0;
      BASE_TRY(walker.step(planned, boundaries, seq));
      size_t b = 0;
      uint64_t epoch = walker.next_epoch() - boundaries.size();
      for (const lw::Planned& p : planned) {
        base::Status s;
        RecordPtr r = build_record(file, p, seq, epoch, keys.digest_key, s);
        if (!r) return s;
        if (!log.append(std::move(r))) return replicator.failure();
        if (p.type == lw::Planned::Type::barrier) {
          saver.add(boundaries[b++]);
          last_barrier_seq = seq;
          ++epoch;
        }
        ++seq;
      }
      sent_entries.store(walker.index());
    }
    return base::Status::ok();
  };
  status = send_until(plan.end_index);
  while (status.is_ok() && command.follow && !g_stop.load()) {
    // Wait one poll interval (in short sleeps, so a signal ends it at once),
    // then look for new entries, validate them, and send them.
    for (uint32_t waited = 0; waited < command.poll_ms && !g_stop.load(); waited += 20)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (g_stop.load()) break;
    status = file.refresh();
    if (!status.is_ok() || file.super().nr_entries <= walker.index()) continue;
    Scan more;
    status = scan(walker, file.super().nr_entries, false, more);
    if (!status.is_ok()) break;
    total.records += more.records;
    total.barriers += more.barriers;
    total.marks += more.marks;
    total.data_bytes += more.data_bytes;
    log.set_known_end_seq(more.end_seq);
    known_entries.store(more.end_index);
    status = send_until(more.end_index);
  }
  // Everything sent up to the last barrier must be durable before the end.
  if (status.is_ok() && last_barrier_seq != 0) status = replicator.wait_durable(last_barrier_seq);
  progress.stop();
  const uint64_t elapsed_ns = base::monotonic_ns() - start_ns;
  base::Status saved = saver.save_now();
  // Without --follow nothing was sent past the last barrier: the position is clean again.
  if (status.is_ok() && saved.is_ok() && !walker.epoch_open()) saved = saver.finish_clean();
  saver.stop();
  replicator.stop();
  if (!status.is_ok()) return status;
  if (!saved.is_ok()) return saved;
  std::printf(
      "replay done: %s: the clone holds its first %llu entries (this run sent from entry %llu: %llu records, "
      "%llu epochs, %llu marks, %s of writes) in %.1f s (%s), %llu reconnects%s\n",
      file.path().c_str(), static_cast<unsigned long long>(saver.saved_entry()),
      static_cast<unsigned long long>(from.next_entry), static_cast<unsigned long long>(total.records),
      static_cast<unsigned long long>(total.barriers), static_cast<unsigned long long>(total.marks),
      base::format_bytes(total.data_bytes).c_str(), static_cast<double>(elapsed_ns) / 1e9,
      format_rate(total.data_bytes, elapsed_ns).c_str(),
      static_cast<unsigned long long>(replicator.counters().reconnects),
      g_stop.load() ? "; stopped by a signal, position saved" : "");
  return base::Status::ok();
}

}  // namespace origin
