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
#include <fstream>
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

// --follow: an entry the log counts but that does not pass is read again for
// at least this long before it is refused (see Shipment::wait_and_refresh).
constexpr uint64_t kTailGraceMs = 5000;

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
  Walker(lw::LogFile& file, const lw::Target& target, uint64_t index, uint64_t offset, uint64_t seq, uint64_t epoch)
      : file_(file), target_(target), index_(index), offset_(offset), seq_(seq), epoch_(epoch) {}

  uint64_t index() const { return index_; }
  uint64_t offset() const { return offset_; }
  uint64_t next_seq() const { return seq_; }
  uint64_t next_epoch() const { return epoch_; }
  bool epoch_open() const { return open_epoch_.open; }

  // Reads, checks and plans the next entry. `records` receives what it
  // becomes; `boundaries` one entry per barrier among them.
  base::Status step(std::vector<lw::Planned>& planned, std::vector<Boundary>& boundaries, uint64_t& first_seq) {
    lw::Entry e;
    BASE_TRY(file_.read_entry(index_, offset_, target_, e));
    planned.clear();
    boundaries.clear();
    lw::plan_entry(e, open_epoch_, planned);
    first_seq = seq_;
    // Records of the entry after the barrier at i.
    const auto records_after = [&](size_t i) {
      return std::any_of(planned.begin() + static_cast<std::ptrdiff_t>(i) + 1, planned.end(),
                         [](const lw::Planned& q) { return q.type != lw::Planned::Type::barrier; });
    };
    for (size_t i = 0; i < planned.size(); ++i) {
      const uint64_t seq = seq_++;
      if (planned[i].type != lw::Planned::Type::barrier) continue;
      Boundary b;
      b.seq = seq;
      b.epoch = epoch_++;
      // A barrier before the entry's records (a preflush, a full epoch's) or
      // between them (an entry larger than an epoch): a resume starts at this
      // entry again, with an empty epoch, so the barrier is not repeated
      // (what of the entry the clone holds is written again, the same bytes).
      const bool before_records = records_after(i);
      b.at.next_entry = before_records ? index_ : index_ + 1;
      b.at.next_offset = before_records ? offset_ : e.next_log_offset_bytes;
      boundaries.push_back(b);
    }
    offset_ = e.next_log_offset_bytes;
    ++index_;
    return base::Status::ok();
  }

 private:
  lw::LogFile& file_;
  lw::Target target_;
  uint64_t index_, offset_, seq_, epoch_;
  lw::EpochState open_epoch_;  // every walk starts right after a barrier
};

constexpr uint64_t kWindowBytes = 1u << 20;

// The digest of the log before `next_offset` (LogFile::window_digest).
base::Result<std::string> previous_window_digest(lw::LogFile& file, uint64_t next_offset) {
  const uint64_t first = file.sector_bytes();
  return file.window_digest(std::max(first, next_offset > kWindowBytes ? next_offset - kWindowBytes : 0), next_offset);
}

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
  // Saves what is acknowledged now; the last save's error, if it failed.
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
      error_ = save_locked();  // a later save that works clears an earlier failure
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
    base::Result<std::string> digest = previous_window_digest(file_, newest->at.next_offset);
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

// A write comes back unsealed: send_until seals several at once (seal_writes).
std::shared_ptr<Record> build_record(lw::LogFile& file, const lw::Planned& p, uint64_t seq, uint64_t epoch,
                                     base::Status& status) {
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
  return r;
}

// Refuses a log that is not the one this original was shipping.
base::Status check_same_log(lw::LogFile& file, const LogWritesPosition& at, const std::string& state_dir) {
  const std::string how =
      " The clone holds the first " + u64s(at.next_entry) +
      " entries of the log shipped before; to ship another log, "
      "first bring the clone to the original's disk with clone-origin resync --source DEVICE, which starts the next "
      "log from there (" +
      position_path(state_dir) + " keeps the old log's place until then).";
  const uint64_t first = file.super().sector_bytes;
  base::Result<std::string> start = file.window_digest(first, first + at.first_bytes);
  // A read that fails says why, not "another log": a failing log device is
  // no reason to resync. A log shorter than what was shipped is another.
  if (!start && start.status().code() != ENODATA)
    return start.status().with_context("cannot check that " + file.path() + " is the log shipped before");
  if (!start || *start != at.first_digest)
    return base::Status::error(EINVAL, file.path() +
                                           " does not start as the log this original was shipping: another "
                                           "log, or the log was rewritten." +
                                           how);
  if (file.super().nr_entries < at.next_entry)
    return base::Status::error(EINVAL, file.path() + " holds " + u64s(file.super().nr_entries) +
                                           " entries, fewer than the " + u64s(at.next_entry) +
                                           " already shipped: it was rewritten." + how);
  if (at.next_entry > 0) {
    base::Result<std::string> previous = previous_window_digest(file, at.next_offset);
    if (!previous && previous.status().code() != ENODATA)
      return previous.status().with_context("cannot check that " + file.path() + " is the log shipped before");
    if (!previous || *previous != at.previous_digest)
      return base::Status::error(EINVAL, file.path() + ": the entries before entry " + u64s(at.next_entry) +
                                             " are not the ones shipped before: the log was rewritten." + how);
  }
  return base::Status::ok();
}

struct Scan {
  uint64_t end_index = 0;   // entries [start, end_index) are sent
  uint64_t end_offset = 0;  // the header offset of entry end_index
  uint64_t end_seq = 0;     // their last record
  uint64_t last_barrier_seq = 0;
  uint64_t records = 0, barriers = 0, marks = 0, data_bytes = 0;
};

// Validates entries up to the log's current end and counts their records;
// `to_barrier`: stop after the last barrier (the tail waits for a flush).
// With `tail_error`, an entry that does not pass ends the scan before it
// (its reason in *tail_error) instead of failing it: a follower retries it.
base::Status scan(Walker walker, uint64_t nr_entries, bool to_barrier, Scan& out, base::Status* tail_error = nullptr) {
  std::vector<lw::Planned> planned;
  std::vector<Boundary> boundaries;
  Scan s;
  s.end_index = walker.index();
  s.end_offset = walker.offset();
  s.end_seq = walker.next_seq() - 1;
  Scan open = s;  // counts up to the current entry
  while (walker.index() < nr_entries) {
    uint64_t first = 0;
    if (base::Status st = walker.step(planned, boundaries, first); !st.is_ok()) {
      if (tail_error == nullptr) return st;
      *tail_error = st;
      break;
    }
    for (const lw::Planned& p : planned) {
      ++open.records;
      if (p.type == lw::Planned::Type::write) open.data_bytes += p.length_bytes;
      if (p.type == lw::Planned::Type::barrier) ++open.barriers;
      if (!p.mark.empty()) ++open.marks;
    }
    open.end_index = walker.index();
    open.end_offset = walker.offset();
    open.end_seq = walker.next_seq() - 1;
    if (!boundaries.empty()) open.last_barrier_seq = boundaries.back().seq;
    // A write that followed the entry's barrier leaves the epoch open.
    if (!to_barrier || !walker.epoch_open()) s = open;
  }
  if (!to_barrier) s = open;
  out = s;
  return base::Status::ok();
}

// True while the log at `path` holds no super block yet: shorter than one,
// or its magic still zero (the writer has not come to it).
bool not_yet_written(const std::string& path) {
  const std::string head = [&] {
    std::ifstream in(path, std::ios::binary);
    std::string b(8, '\0');
    in.read(b.data(), 8);
    b.resize(static_cast<size_t>(in.gcount()));
    return b;
  }();
  return head.size() < 8 || head == std::string(8, '\0');
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// One run of the command: open the log, check it against the position and
// validate what is to be sent, send it, follow the log, save and report.
class Shipment {
 public:
  Shipment(const config::OriginConfig& config, const config::DerivedKeys& keys, const ReplayCommand& command)
      : config_(config),
        keys_(keys),
        command_(command),
        session_(make_session_config(config, keys)),
        target_{session_.disk_size_bytes, session_.logical_block_bytes} {}

  base::Status run() {
    g_stop.store(false);
    if (command_.follow) install_stop_handlers();
    BASE_TRY(open_log());
    if (!file_) return base::Status::ok();  // stopped while waiting, or nothing to send
    if (command_.follow) BASE_TRY(wait_and_refresh());
    if (g_stop.load()) return base::Status::ok();
    BASE_TRY(plan());
    if (!walker_) return base::Status::ok();
    return ship();
  }

 private:
  // Opens the log; a follower waits for its super block and first entry.
  base::Status open_log() {
    base::Result<lw::LogFile> opened = lw::LogFile::open(command_.log_writes_path);
    while (!opened && command_.follow && !g_stop.load() && not_yet_written(command_.log_writes_path)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(command_.poll_ms));
      opened = lw::LogFile::open(command_.log_writes_path);
    }
    if (!opened) return g_stop.load() ? base::Status::ok() : opened.status();
    while (opened->super().nr_entries == 0) {
      if (!command_.follow) {
        std::printf("replay done: the log %s holds no entries\n", opened->path().c_str());
        return base::Status::ok();
      }
      if (g_stop.load()) return base::Status::ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(command_.poll_ms));
      BASE_TRY(opened->refresh());
    }
    file_.emplace(std::move(*opened));
    return base::Status::ok();
  }

  // Checks the log against the saved position and validates every entry to
  // be sent; leaves walker_ empty when there is nothing to send.
  base::Status plan() {
    base::Result<OriginPosition> loaded = load_position(config_.state_dir);
    if (!loaded) return loaded.status();
    pos_ = *loaded;
    if (pos_.resync_generation != 0)
      return base::Status::error(EBUSY, "a resync to generation " + u64s(pos_.resync_generation) +
                                            " is under way; finish it first: clone-origin resync --source IMAGE");
    const bool fresh = !pos_.log_writes.active();
    if (!fresh) {
      BASE_TRY(check_same_log(*file_, pos_.log_writes, config_.state_dir));
    } else if (!pos_.clean) {
      return base::Status::error(EBUSY, "an earlier run stopped before the clone acknowledged all of its records (" +
                                            position_path(config_.state_dir) +
                                            " says so); bring the clone to the "
                                            "original's disk with a resync first: clone-origin resync --source IMAGE");
    }
    const uint64_t first_offset = file_->super().sector_bytes;
    const Walker start(*file_, target_, fresh ? 0 : pos_.log_writes.next_entry,
                       fresh ? first_offset : pos_.log_writes.next_offset, pos_.next_seq, pos_.next_epoch);
    if (!command_.follow) {
      BASE_TRY(scan(start, file_->super().nr_entries, true, total_));
    } else {
      // A fresh log is named by its first entries: wait until one passes.
      BASE_TRY(scan_settled(start, total_));
      while (fresh && total_.end_index == start.index() && !g_stop.load()) {
        BASE_TRY(wait_and_refresh());
        BASE_TRY(scan_settled(start, total_));
      }
      if (g_stop.load()) return base::Status::ok();
    }
    if (fresh) {  // name the log by bytes that are final: entries already counted
      const uint64_t first_bytes = std::min<uint64_t>(kWindowBytes, total_.end_offset - first_offset);
      base::Result<std::string> digest = file_->window_digest(first_offset, first_offset + first_bytes);
      if (!digest) return digest.status();
      pos_.log_writes = {*digest, first_bytes, 0, first_offset, ""};
    }
    from_entry_ = pos_.log_writes.next_entry;
    if (!command_.follow && total_.end_index == from_entry_) {
      std::printf(
          "replay done: nothing to send: the clone holds the log's first %llu of %llu entries, and the rest "
          "waits for a flush or a mark\n",
          static_cast<unsigned long long>(from_entry_), static_cast<unsigned long long>(file_->super().nr_entries));
      return base::Status::ok();
    }
    walker_.emplace(start);
    return base::Status::ok();
  }

  base::Status ship() {
    // Until the clone holds all that was sent, it may hold records past the
    // saved position: only this command continues from it.
    pos_.clean = false;
    BASE_TRY(save_position(config_.state_dir, pos_));
    const uint64_t start_ns = base::monotonic_ns();
    log_ = std::make_unique<RetainedLog>(config_.retention_bytes_max, pos_.next_seq);
    log_->set_known_end_seq(total_.end_seq);
    SessionConfig session = session_;
    session.generation = pos_.generation;
    if (from_entry_ > 0) {  // the clone acknowledged up to here (hello rule 2)
      session.acked_seq = pos_.next_seq - 1;
      session.acked_epoch = pos_.next_epoch - 1;
    }
    Replicator replicator(session, make_reconnect_policy(config_), *log_);
    attach_wake(replicator, config_);
    BASE_TRY(replicator.start());
    PositionSaver saver(config_.state_dir, pos_, *file_, replicator);
    replicator_ = &replicator;
    saver_ = &saver;
    known_entries_.store(total_.end_index);
    sent_entries_.store(from_entry_);
    ProgressReporter progress([&] {
      const ReplicatorCounters c = replicator.counters();
      return "replay: entry " + u64s(sent_entries_.load()) + " of " + u64s(known_entries_.load()) +
             " sent, acked seq " + u64s(c.acked_seq) + ", " +
             format_rate(c.bytes_sent, base::monotonic_ns() - start_ns);
    });
    base::Status status = send_until(total_.end_index);
    if (status.is_ok() && command_.follow) status = follow();
    // Everything sent up to the last barrier must be durable, and committed
    // (the clone's store holds it), before the end: as the workload.
    if (status.is_ok() && last_barrier_seq_ != 0) status = replicator.wait_committed(last_barrier_seq_);
    progress.stop();
    const uint64_t elapsed_ns = base::monotonic_ns() - start_ns;
    base::Status saved = saver.save_now();
    // Nothing was sent past the last barrier (always so without --follow): clean again.
    if (status.is_ok() && saved.is_ok() && !walker_->epoch_open()) saved = saver.finish_clean();
    saver.stop();
    replicator.stop();
    if (!status.is_ok()) return status;
    if (!saved.is_ok()) return saved;
    report(saver.saved_entry(), elapsed_ns, replicator.counters().reconnects);
    return base::Status::ok();
  }

  // Sends entries up to `end_index` (validated already). Records are sealed
  // and appended in small batches (kSealBatchRecords, kSealBatchBytes), so that their
  // digests are computed together; a barrier closes its batch before the
  // saver hears of it.
  base::Status send_until(uint64_t end_index) {
    std::vector<lw::Planned> planned;
    std::vector<Boundary> boundaries;
    std::vector<std::shared_ptr<Record>> batch;
    std::vector<Record*> unsealed;
    uint64_t batch_bytes = 0;
    auto send_batch = [&]() -> base::Status {
      unsealed.clear();
      for (const std::shared_ptr<Record>& r : batch) unsealed.push_back(r.get());
      seal_writes(unsealed, keys_.digest_key);
      for (std::shared_ptr<Record>& r : batch)
        if (!log_->append(std::move(r))) return replicator_->failure();
      batch.clear();
      batch_bytes = 0;
      return base::Status::ok();
    };
    while (walker_->index() < end_index && !g_stop.load()) {
      uint64_t seq = 0;
      BASE_TRY(walker_->step(planned, boundaries, seq));
      size_t b = 0;
      uint64_t epoch = walker_->next_epoch() - boundaries.size();
      for (const lw::Planned& p : planned) {
        base::Status s;
        std::shared_ptr<Record> r = build_record(*file_, p, seq, epoch, s);
        if (!r) return s;
        batch_bytes += r->header.length_bytes;
        batch.push_back(std::move(r));
        if (p.type == lw::Planned::Type::barrier) {
          BASE_TRY(send_batch());
          saver_->add(boundaries[b++]);
          last_barrier_seq_ = seq;
          ++epoch;
        } else if (batch.size() >= kSealBatchRecords || batch_bytes >= kSealBatchBytes) {
          BASE_TRY(send_batch());
        }
        ++seq;
      }
      BASE_TRY(send_batch());
      sent_entries_.store(walker_->index());
    }
    return base::Status::ok();
  }

  // A writer may count an entry in the super block before the entry's bytes
  // are in the log: QEMU's blklogwrites (7.2, Debian 12) rewrites nr_entries
  // at a flush while earlier requests' entries are still being written, and
  // dm-log-writes writes its super block without waiting for the entries
  // before it. So a follower acts only on entries counted a poll interval ago
  // or earlier (settled_entries_), and an entry among them that does not pass
  // yet is read again at each poll; it is refused only once it has not passed
  // for kTailGraceMs, or 20 poll intervals if longer.

  // Waits a poll interval (in short sleeps, so that a signal ends it at once),
  // then re-reads the super block: what it counted before has now settled.
  base::Status wait_and_refresh() {
    const uint64_t counted = file_->super().nr_entries;
    for (uint32_t waited = 0; waited < command_.poll_ms && !g_stop.load(); waited += 20)
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<uint32_t>(20, command_.poll_ms - waited)));
    if (g_stop.load()) return base::Status::ok();
    BASE_TRY(file_->refresh());
    settled_entries_ = counted;
    return base::Status::ok();
  }

  // Validates the settled entries from `from`; one that does not pass ends
  // `out` before it and is refused only after the grace period without
  // progress.
  base::Status scan_settled(const Walker& from, Scan& out) {
    base::Status tail;
    BASE_TRY(scan(from, settled_entries_, false, out, &tail));
    const uint64_t now = base::monotonic_ns() / 1000000;
    if (tail.is_ok() || out.end_index > from.index() || !tail_failing_since_ms_) {
      tail_failing_since_ms_ = tail.is_ok() ? std::nullopt : std::optional<uint64_t>(now);
      return base::Status::ok();
    }
    const uint64_t grace_ms = std::max<uint64_t>(kTailGraceMs, 20ull * command_.poll_ms);
    if (now - *tail_failing_since_ms_ < grace_ms) return base::Status::ok();
    return tail.with_context("the entry did not pass for " + u64s(now - *tail_failing_since_ms_) +
                             " ms of following, so it is not one still being written");
  }

  // Every poll interval: new settled entries are validated, then sent.
  base::Status follow() {
    while (!g_stop.load()) {
      // A replicator that gave up (the clone refuses for good, or stayed
      // away past the attempts) ends the run now, with its reason, not at
      // the next write the original makes.
      if (replicator_->failed()) return replicator_->failure();
      BASE_TRY(wait_and_refresh());
      if (g_stop.load()) break;
      if (settled_entries_ <= walker_->index()) continue;
      Scan more;
      BASE_TRY(scan_settled(*walker_, more));
      if (more.end_index == walker_->index()) continue;
      total_.records += more.records;
      total_.barriers += more.barriers;
      total_.marks += more.marks;
      total_.data_bytes += more.data_bytes;
      log_->set_known_end_seq(more.end_seq);
      known_entries_.store(more.end_index);
      BASE_TRY(send_until(more.end_index));
    }
    return base::Status::ok();
  }

  void report(uint64_t saved_entry, uint64_t elapsed_ns, uint64_t reconnects) const {
    std::printf(
        "replay done: %s: the clone holds its first %llu entries (this run sent from entry %llu: %llu records, "
        "%llu epochs, %llu marks, %s of writes) in %.1f s (%s), %llu reconnects%s\n",
        file_->path().c_str(), static_cast<unsigned long long>(saved_entry),
        static_cast<unsigned long long>(from_entry_), static_cast<unsigned long long>(total_.records),
        static_cast<unsigned long long>(total_.barriers), static_cast<unsigned long long>(total_.marks),
        base::format_bytes(total_.data_bytes).c_str(), static_cast<double>(elapsed_ns) / 1e9,
        format_rate(total_.data_bytes, elapsed_ns).c_str(), static_cast<unsigned long long>(reconnects),
        g_stop.load() ? "; stopped by a signal, position saved" : "");
  }

  const config::OriginConfig& config_;
  const config::DerivedKeys& keys_;
  const ReplayCommand& command_;
  const SessionConfig session_;
  const lw::Target target_;
  std::optional<lw::LogFile> file_;
  OriginPosition pos_;
  Scan total_;
  uint64_t from_entry_ = 0;
  std::optional<Walker> walker_;
  uint64_t settled_entries_ = 0;  // --follow: counted a poll interval ago or earlier
  // --follow: since when the first settled entry not sent yet has failed to pass; none while it passes
  std::optional<uint64_t> tail_failing_since_ms_;
  std::unique_ptr<RetainedLog> log_;
  Replicator* replicator_ = nullptr;  // live during ship()
  PositionSaver* saver_ = nullptr;
  uint64_t last_barrier_seq_ = 0;
  // For the progress line, read on its own thread.
  std::atomic<uint64_t> known_entries_{0};
  std::atomic<uint64_t> sent_entries_{0};
};

}  // namespace

base::Status run_replay_log_writes(const config::OriginConfig& config, const config::DerivedKeys& keys,
                                   const ReplayCommand& command) {
  // The open epoch (up to lw::kEpochSplitBytes) and the one before it,
  // waiting for the clone to make it durable, both fit.
  if (config.retention_bytes_max < 2 * lw::kEpochSplitBytes)
    return base::Status::error(EINVAL, "replay --log-writes needs [origin] retention_bytes_max of at least " +
                                           u64s(2 * lw::kEpochSplitBytes) + " bytes (it holds an epoch of up to " +
                                           u64s(lw::kEpochSplitBytes) +
                                           " bytes while the clone makes the one "
                                           "before it durable); it is " +
                                           u64s(config.retention_bytes_max) + ".");
  return Shipment(config, keys, command).run();
}

}  // namespace origin
