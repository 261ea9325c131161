// SPDX-License-Identifier: MIT
// The disk workers: digest scans, resync writes cut around the log's ranges,
// and the read-back check against a disk that does not keep what it is given.
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <span>
#include <sstream>
#include <thread>

#include "base/thread.h"
#include "blockio/faulty_device.h"
#include "blockio/memory_device.h"
#include "cloned/daemon/workers.h"
#include "test/support/temp_dir.h"

#include <future>

namespace {

constexpr uint64_t kDisk = 1 << 20;
const digest::DigestKey kKey{7, 7, 7};

// Waits (bounded) for the next completion of `kind`.
cloned::Completion next(cloned::Completions& done, cloned::Completion::Kind kind) {
  for (int i = 0; i < 2000; ++i) {
    for (cloned::Completion& c : done.take_all())
      if (c.kind == kind) return std::move(c);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  FAIL("no completion within 2 s");
  return {};
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 31);
  return v;
}

// A frame holding a resync_data or write message whose payload is `data`.
proto::Frame frame_with(const proto::RecordHeader& h, const std::vector<uint8_t>& data) {
  proto::Frame f;
  f.storage = base::AlignedBuffer(proto::kFramePlainOffset + proto::kWriteHeaderBytes + data.size());
  f.plain_bytes = proto::kWriteHeaderBytes + data.size();
  proto::encode_write_header(h, f.plain_data());
  std::memcpy(f.plain_data() + proto::kWriteHeaderBytes, data.data(), data.size());
  return f;
}

proto::RecordHeader header(proto::MsgType type, uint64_t off, const std::vector<uint8_t>& data) {
  proto::RecordHeader h;
  h.type = type;
  h.seq = type == proto::MsgType::write ? 1 : 0;
  h.epoch = type == proto::MsgType::write ? 1 : 0;
  h.offset_bytes = off;
  h.length_bytes = data.size();
  h.digest = digest::keyed_digest(kKey, data);
  return h;
}

std::vector<uint8_t> read_back(blockio::BlockDevice& d, uint64_t off, size_t n) {
  base::AlignedBuffer b(n);
  REQUIRE(d.read(off, b.span()).is_ok());
  return {b.data(), b.data() + n};
}

// This process's threads that the kernel shows as "cloned-disk" (their
// /proc/self/task/TID directories), as top -H and ps -L read them.
std::vector<std::filesystem::path> disk_worker_tasks() {
  std::vector<std::filesystem::path> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name) && name == "cloned-disk") out.push_back(task.path());
  }
  return out;
}

}  // namespace

TEST_CASE("the disk workers' threads are named, so that top -H and perf tell them apart") {
  auto named = [] { return disk_worker_tasks().size(); };
  blockio::MemoryDevice dev(kDisk, 512);
  cloned::Completions done;
  {
    cloned::DiskWorkers workers(dev, kKey, 3, done);
    // Each names itself as it starts: wait (bounded) until all three have.
    for (int i = 0; i < 2000 && named() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CHECK(named() == 3);
  }
  CHECK(named() == 0);
}

TEST_CASE("the disk workers run writer_priority_boost nice steps above the thread that made them") {
  // The nice value of each disk worker (field 19 of its stat line, the 17th
  // after the command's closing parenthesis).
  auto worker_nices = [] {
    std::vector<int> out;
    for (const std::filesystem::path& task : disk_worker_tasks()) {
      std::ifstream stat(task / "stat");
      std::string line;
      std::getline(stat, line);
      std::istringstream fields(line.substr(line.rfind(')') + 2));
      std::string field;
      for (int i = 0; i < 17; ++i) fields >> field;
      out.push_back(std::stoi(field));
    }
    return out;
  };
  const int own = ::getpriority(PRIO_PROCESS, 0);
  const int want = std::max(-20, own - 5);
  // Root (as in CI) holds CAP_SYS_NICE; anyone else goes only as low as
  // RLIMIT_NICE lets them (20 - its value), else keeps their own.
  rlimit limit{};
  REQUIRE(::getrlimit(RLIMIT_NICE, &limit) == 0);
  const bool allowed =
      ::geteuid() == 0 || limit.rlim_cur == RLIM_INFINITY || want >= 20 - static_cast<int>(limit.rlim_cur);
  const int expected = allowed ? want : own;
  blockio::MemoryDevice dev(kDisk, 512);
  cloned::Completions done;
  cloned::DiskWorkers workers(dev, kKey, 2, done, false, {.nice_boost = 5});
  std::vector<int> nices;
  for (int i = 0; i < 2000; ++i) {
    nices = worker_nices();
    if (nices.size() == 2 && nices[0] == expected && nices[1] == expected) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(nices.size() == 2);
  CHECK(nices[0] == expected);
  CHECK(nices[1] == expected);
  CHECK(::getpriority(PRIO_PROCESS, 0) == own);  // the thread that made them is unchanged
}

namespace {

// A thread's scheduling attributes (sched_getattr(2)); for a thread of the
// fair class, sched_runtime is its time slice on kernels that report one
// (6.12 and later), 0 on older ones.
base::SchedAttr sched_attr_of(pid_t tid) {
  base::SchedAttr attr;
  REQUIRE(::syscall(SYS_sched_getattr, tid, &attr, sizeof attr, 0) == 0);
  return attr;
}

}  // namespace

TEST_CASE("the disk workers ask for writer_time_slice_us slices and keep their raised priority") {
  const base::SchedAttr own = sched_attr_of(0);
  // What a thread of this process may do, tried on throwaway threads: ask for
  // a slice (it must be granted on any kernel: before 6.12 the call succeeds
  // and the slice is ignored), and raise its priority by 3 (needs
  // CAP_SYS_NICE or an RLIMIT_NICE that allows it; a container may have
  // neither, even as root).
  base::Status slice_asked = base::Status::error(EINVAL, "not run");
  std::thread([&] { slice_asked = base::ask_this_thread_time_slice(250); }).join();
  CHECK_MESSAGE(slice_asked.is_ok(), slice_asked.message());
  bool may_raise = false;
  std::thread([&] { may_raise = base::raise_this_thread_priority(3).is_ok(); }).join();
  // A kernel that reports no slice for a thread of the fair class (before
  // 6.12) shows none for the workers either: then only the nice value and the
  // policy are checked, and the test says so.
  const bool slices_reported = own.sched_runtime != 0;
  if (!slices_reported) MESSAGE("this kernel reports no time slices (before 6.12): the workers' slice is not checked");
  const uint64_t expected_slice_ns = slices_reported ? 250'000 : 0;
  const int expected_nice = may_raise ? std::max(-20, own.sched_nice - 3) : own.sched_nice;
  blockio::MemoryDevice dev(kDisk, 512);
  cloned::Completions done;
  cloned::DiskWorkers workers(dev, kKey, 2, done, false, {.nice_boost = may_raise ? 3u : 0u, .time_slice_us = 250});
  auto workers_attrs = [] {
    std::vector<base::SchedAttr> out;
    for (const std::filesystem::path& task : disk_worker_tasks())
      out.push_back(sched_attr_of(static_cast<pid_t>(std::stol(task.filename().string()))));
    return out;
  };
  auto settled = [&](const std::vector<base::SchedAttr>& attrs) {
    return attrs.size() == 2 && std::all_of(attrs.begin(), attrs.end(), [&](const base::SchedAttr& a) {
             return a.sched_runtime == expected_slice_ns && a.sched_nice == expected_nice;
           });
  };
  std::vector<base::SchedAttr> attrs = workers_attrs();
  for (int i = 0; i < 2000 && !settled(attrs); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    attrs = workers_attrs();
  }
  REQUIRE(attrs.size() == 2);
  for (const base::SchedAttr& attr : attrs) {
    CHECK(attr.sched_runtime == expected_slice_ns);
    CHECK(attr.sched_nice == expected_nice);
    CHECK(attr.sched_policy == own.sched_policy);
  }
  const base::SchedAttr after = sched_attr_of(0);  // the thread that made them is unchanged
  CHECK(after.sched_runtime == own.sched_runtime);
  CHECK(after.sched_nice == own.sched_nice);
}

TEST_CASE("a digest request is answered with one keyed digest per extent, the last cut at the disk's end") {
  // A disk of 1 MiB + 8 KiB: 64 KiB extents leave an 8 KiB tail.
  const uint64_t size = kDisk + 8192;
  blockio::MemoryDevice dev(size, 512);
  const std::vector<uint8_t> all = pattern(size, 3);
  base::AlignedBuffer b(size);
  std::memcpy(b.data(), all.data(), size);
  REQUIRE(dev.write(0, b.span()).is_ok());
  cloned::Completions done;
  cloned::DiskWorkers workers(dev, kKey, 2, done);
  workers.digest({9, kDisk - 65536, 65536, 2}, 4);
  cloned::Completion c = next(done, cloned::Completion::Kind::digest);
  REQUIRE(c.status.is_ok());
  CHECK(c.request.id == 9);
  CHECK(c.session_serial == 4);
  REQUIRE(c.digests.size() == 2);
  CHECK(c.digests[0] == digest::keyed_digest(kKey, base::ByteSpan(all.data() + kDisk - 65536, 65536)));
  CHECK(c.digests[1] == digest::keyed_digest(kKey, base::ByteSpan(all.data() + kDisk, 8192)));
}

TEST_CASE("writes submitted in a batch go together, and a bad digest refuses only its own record") {
  blockio::MemoryDevice dev(kDisk, 512);
  cloned::Completions done;
  cloned::DiskWorkers workers(dev, kKey, 2, done);
  std::vector<std::vector<uint8_t>> data;
  for (uint8_t i = 0; i < 8; ++i) data.push_back(pattern(4096, static_cast<uint8_t>(40 + i)));
  {
    cloned::DiskWorkers::Batch batch(workers);
    for (uint64_t i = 0; i < data.size(); ++i) {
      proto::RecordHeader h = header(proto::MsgType::write, i * 8192, data[i]);
      h.seq = i + 1;
      if (i == 5) h.digest[0] ^= 1;  // damaged on the way
      workers.submit(i + 1, h, frame_with(h, data[i]));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(done.take_all().empty());  // held back until the batch ends
  }
  std::map<apply::RecordId, cloned::Completion> got;
  for (int i = 0; i < 2000 && got.size() < data.size(); ++i) {
    for (cloned::Completion& c : done.take_all()) got.emplace(c.id, std::move(c));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(got.size() == data.size());
  for (uint64_t i = 0; i < data.size(); ++i) {
    CAPTURE(i);
    const cloned::Completion& c = got.at(i + 1);
    CHECK(c.kind == cloned::Completion::Kind::io);
    CHECK(c.status.is_ok() == (i != 5));
    CHECK(c.digest_mismatch == (i == 5));
    CHECK_FALSE(c.disk_fault());  // a refused record is the original's, not the disk's
    CHECK((read_back(dev, i * 8192, 4096) == data[i]) == (i != 5));
  }
}

namespace {

// Every completion, in the order they were pushed, until there are `n`
// (bounded: 2 s), then a further 20 ms for any that should not come.
std::vector<cloned::Completion> collect(cloned::Completions& done, size_t n) {
  std::vector<cloned::Completion> got;
  for (int i = 0; i < 2000 && got.size() < n; ++i) {
    for (cloned::Completion& c : done.take_all()) got.push_back(std::move(c));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (cloned::Completion& c : done.take_all()) got.push_back(std::move(c));
  return got;
}

size_t count_kind(const std::vector<cloned::Completion>& got, cloned::Completion::Kind kind) {
  return static_cast<size_t>(
      std::count_if(got.begin(), got.end(), [&](const cloned::Completion& c) { return c.kind == kind; }));
}

// `n` writes of 4 KiB at distinct offsets, seq 1..n; returns their data.
// The gates as apply::SubmitIo's.
std::vector<std::vector<uint8_t>> submit_writes(cloned::DiskWorkers& workers, uint64_t first_id, size_t n,
                                                uint64_t after_flush_gate = 0, uint64_t covered_by_gate = 0) {
  std::vector<std::vector<uint8_t>> data;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t id = first_id + i;
    data.push_back(pattern(4096, static_cast<uint8_t>(id)));
    proto::RecordHeader h = header(proto::MsgType::write, id * 8192, data.back());
    h.seq = id;
    workers.submit(id, h, frame_with(h, data.back()), {}, after_flush_gate, covered_by_gate);
  }
  return data;
}

bool is_cancelled(const cloned::Completion& c) {
  return c.kind == cloned::Completion::Kind::io && c.status.code() == ECANCELED;
}

}  // namespace

TEST_CASE("an early flush waits for every write submitted before it and is reported ahead of the last") {
  // The faulty device keeps writes in an overlay until a flush: a flush that
  // ran before any of them would leave it unflushed.
  blockio::FaultyDevice dev(std::make_unique<blockio::MemoryDevice>(kDisk, 512), 1);
  cloned::Completions done;
  std::atomic<int> wakes{0};
  done.set_waker([&] { ++wakes; });
  cloned::DiskWorkers workers(dev, kKey, 2, done);
  std::vector<std::vector<uint8_t>> data;
  {
    cloned::DiskWorkers::Batch batch(workers);
    data = submit_writes(workers, 1, 100);  // more than one worker's batch (kBatchJobsMax)
    workers.flush_when_drained(77);
  }
  const std::vector<cloned::Completion> got = collect(done, 101);
  REQUIRE(count_kind(got, cloned::Completion::Kind::io) == 100);
  REQUIRE(count_kind(got, cloned::Completion::Kind::early_flush) == 1);
  const auto early = std::find_if(got.begin(), got.end(), [](const cloned::Completion& c) {
    return c.kind == cloned::Completion::Kind::early_flush;
  });
  CHECK(early->id == 77);
  CHECK(early->status.is_ok());
  CHECK(std::string(early->op) == "flush");
  CHECK(early != got.end() - 1);  // ahead of the completion of the write it followed
  // Two batches (64 and 36 writes), but the loop is woken once: by the
  // push that carries the flush, not by the completions it follows.
  CHECK(wakes.load() == 1);
  CHECK(dev.flush_count() == 1);
  CHECK(dev.unflushed_count() == 0);
  for (uint64_t id = 1; id <= data.size(); ++id) CHECK(read_back(dev.inner(), id * 8192, 4096) == data[id - 1]);
}

namespace {

// A memory disk whose write batches wait until the test lets them start, one
// at a time: so that a worker's pushes can be looked at one by one.
class GatedDevice final : public blockio::BlockDevice {
 public:
  explicit GatedDevice(uint64_t size_bytes) : inner_(size_bytes, 512) {}
  blockio::Geometry geometry() const override { return inner_.geometry(); }
  base::Status write(uint64_t offset_bytes, base::ByteSpan data) override { return inner_.write(offset_bytes, data); }
  void write_batch(std::span<blockio::WriteOp> ops) override {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      opened_.wait(lock, [&] { return allowed_ > started_; });
      ++started_;
    }
    BlockDevice::write_batch(ops);
  }
  base::Status read(uint64_t offset_bytes, base::MutableByteSpan out) override {
    return inner_.read(offset_bytes, out);
  }
  base::Status write_zeroes(uint64_t offset_bytes, uint64_t length_bytes) override {
    return inner_.write_zeroes(offset_bytes, length_bytes);
  }
  base::Status discard(uint64_t offset_bytes, uint64_t length_bytes) override {
    return inner_.discard(offset_bytes, length_bytes);
  }
  base::Status flush() override { return inner_.flush(); }
  std::string describe() const override { return "gated " + inner_.describe(); }
  void allow_one_batch() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++allowed_;
    opened_.notify_all();
  }

 private:
  blockio::MemoryDevice inner_;
  std::mutex mutex_;
  std::condition_variable opened_;
  int allowed_ = 0, started_ = 0;
};

// Waits (bounded: 2 s) until `wakes` reaches `n`.
void wait_for_wakes(const std::atomic<int>& wakes, int n) {
  for (int i = 0; i < 2000 && wakes.load() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(wakes.load() >= n);
}

}  // namespace

TEST_CASE("a push is urgent when it says the disk waits for the loop, and taking the completions clears it") {
  cloned::Completions done;
  CHECK_FALSE(done.urgent_waiting());
  done.push(cloned::Completion{cloned::Completion::Kind::io, 1, {}});
  CHECK_FALSE(done.urgent_waiting());
  std::vector<cloned::Completion> two(2);
  done.push_all(two, /*wake=*/false, /*urgent=*/true);
  CHECK(done.urgent_waiting());
  done.push(cloned::Completion{cloned::Completion::Kind::io, 4, {}});  // a plain push keeps it
  CHECK(done.urgent_waiting());
  CHECK(done.take_all().size() == 4);
  CHECK_FALSE(done.urgent_waiting());
  done.push(cloned::Completion{cloned::Completion::Kind::flush, 0, {}}, /*urgent=*/true);
  CHECK(done.urgent_waiting());
}

TEST_CASE("a drain takes again what is pushed urgent while it runs, and only that, a few times at most") {
  using Kind = cloned::Completion::Kind;
  cloned::Completions done;
  std::vector<uint64_t> seen;  // ids, in the order handled
  bool stop = false;
  // Completion n pushes n + 1 while it is handled: urgent while n < `urgent_below`.
  uint64_t urgent_below = 0;
  const auto handle = [&](cloned::Completion& c) {
    seen.push_back(c.id);
    done.push(cloned::Completion{Kind::io, c.id + 1, {}}, /*urgent=*/c.id < urgent_below);
  };
  const auto stopped = [&] { return stop; };

  done.push(cloned::Completion{Kind::io, 1, {}});
  SUBCASE("nothing urgent: one take") {
    done.drain(handle, 4, stopped);
    CHECK(seen == std::vector<uint64_t>{1});
    CHECK(done.take_all().size() == 1);  // left for the next drain
  }
  SUBCASE("urgent pushes meanwhile: taken in the same drain, in order") {
    urgent_below = 3;
    done.drain(handle, 4, stopped);
    CHECK(seen == std::vector<uint64_t>{1, 2, 3});  // 3's push (4) was not urgent
    CHECK_FALSE(done.urgent_waiting());
  }
  SUBCASE("bounded") {
    urgent_below = 100;
    done.drain(handle, 4, stopped);
    CHECK(seen == std::vector<uint64_t>{1, 2, 3, 4});
    CHECK(done.urgent_waiting());  // the loop comes back for it
  }
  SUBCASE("not once stopped") {
    urgent_below = 100;
    stop = true;
    done.drain(handle, 4, stopped);
    CHECK(seen == std::vector<uint64_t>{1});
  }
}

TEST_CASE("the disk workers' pushes are urgent after a flush and when nothing is left outstanding") {
  GatedDevice dev(kDisk);
  cloned::Completions done;
  std::atomic<int> wakes{0};
  done.set_waker([&] { ++wakes; });
  cloned::DiskWorkers workers(dev, kKey, 1, done);  // one worker: its batches in turn
  const size_t first = cloned::DiskWorkers::kBatchJobsMax;
  {
    cloned::DiskWorkers::Batch batch(workers);
    submit_writes(workers, 1, first + 4);  // two batches
  }
  SUBCASE("writes: only the batch that leaves nothing outstanding") {
    dev.allow_one_batch();
    wait_for_wakes(wakes, 1);
    CHECK_FALSE(done.urgent_waiting());  // 4 writes still to go: the loop is not awaited
    CHECK(done.take_all().size() == first);
    dev.allow_one_batch();
    wait_for_wakes(wakes, 2);
    CHECK(done.urgent_waiting());
    CHECK(done.take_all().size() == 4);
  }
  SUBCASE("an early flush, and the loop's own flush") {
    workers.flush_when_drained(3);
    dev.allow_one_batch();
    dev.allow_one_batch();
    wait_for_wakes(wakes, 1);  // the first batch's push waits for the flush's: one wake
    CHECK(done.urgent_waiting());
    const std::vector<cloned::Completion> got = done.take_all();
    CHECK(count_kind(got, cloned::Completion::Kind::early_flush) == 1);
    CHECK(count_kind(got, cloned::Completion::Kind::io) == first + 4);
    CHECK_FALSE(done.urgent_waiting());
    workers.flush(0);
    wait_for_wakes(wakes, 2);
    CHECK(done.urgent_waiting());
    CHECK(count_kind(done.take_all(), cloned::Completion::Kind::flush) == 1);
  }
  done.set_waker(nullptr);
}

// Two workers each end a batch of one epoch's writes, an early flush armed.
// The first settles its writes (the flush follows) and is held before its
// push while the second ends the last write, flushes and wakes the loop,
// which drains that. The first's completions must still wake the loop when
// they come: before, they came without a wake and sat unseen, the barrier
// waiting for them.
TEST_CASE("completions an early flush follows wake the loop when its push went first") {
  GatedDevice dev(kDisk);
  cloned::Completions done;
  std::atomic<int> wakes{0};
  done.set_waker([&] { ++wakes; });
  cloned::DiskWorkers workers(dev, kKey, 2, done);
  std::mutex m;
  std::condition_variable cv;
  int settled = 0;
  bool release = false;
  workers.set_test_hook_after_settle([&] {
    std::unique_lock<std::mutex> lock(m);
    if (++settled > 1) return;
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(5), [&] { return release; });  // the first is held
  });
  const size_t first = cloned::DiskWorkers::kBatchJobsMax;
  {
    cloned::DiskWorkers::Batch batch(workers);
    submit_writes(workers, 1, first + 4);  // two batches, one to each worker
    workers.flush_when_drained(5);
  }
  dev.allow_one_batch();
  {
    std::unique_lock<std::mutex> lock(m);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return settled == 1; }));
  }
  dev.allow_one_batch();
  wait_for_wakes(wakes, 1);
  std::vector<cloned::Completion> got = done.take_all();  // what the loop drains when woken
  CHECK(count_kind(got, cloned::Completion::Kind::early_flush) == 1);
  {
    std::lock_guard<std::mutex> lock(m);
    release = true;
  }
  cv.notify_all();
  // Only what a wake announces is drained, as the loop does.
  for (int woken = 1; woken < 4 && count_kind(got, cloned::Completion::Kind::io) < first + 4; ++woken) {
    for (int i = 0; i < 2000 && wakes.load() <= woken; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (wakes.load() <= woken) break;
    for (cloned::Completion& c : done.take_all()) got.push_back(std::move(c));
  }
  CHECK(count_kind(got, cloned::Completion::Kind::io) == first + 4);
  done.set_waker(nullptr);
}

TEST_CASE("an early flush is cancelled when it would not cover every write") {
  blockio::FaultyDevice dev(std::make_unique<blockio::MemoryDevice>(kDisk, 512), 1);
  cloned::Completions done;
  cloned::DiskWorkers workers(dev, kKey, 2, done);
  SUBCASE("nothing outstanding") {
    workers.flush_when_drained(1);
    CHECK(collect(done, 1).empty());
  }
  SUBCASE("the writes before it have completed already") {
    submit_writes(workers, 1, 4);
    REQUIRE(collect(done, 4).size() == 4);
    workers.flush_when_drained(1);
    CHECK(collect(done, 1).empty());
  }
  SUBCASE("a write submitted after it") {
    std::atomic<int> wakes{0};
    done.set_waker([&] { ++wakes; });
    {
      cloned::DiskWorkers::Batch batch(workers);
      submit_writes(workers, 1, 70);  // two batches (kBatchJobsMax), so two pushes
      workers.flush_when_drained(1);
      submit_writes(workers, 71, 1);
    }
    const std::vector<cloned::Completion> got = collect(done, 71);
    CHECK(count_kind(got, cloned::Completion::Kind::io) == 71);
    CHECK(count_kind(got, cloned::Completion::Kind::early_flush) == 0);
    CHECK(wakes.load() >= 2);  // every push wakes the loop: no flush follows
    done.set_waker(nullptr);
  }
  CHECK(dev.flush_count() == 0);
}

TEST_CASE("a resync extent with parts writes only those parts") {
  blockio::MemoryDevice dev(kDisk, 512);
  cloned::Completions done;
  cloned::DiskWorkers workers(dev, kKey, 1, done);
  const std::vector<uint8_t> data = pattern(16384, 5);
  const proto::RecordHeader h = header(proto::MsgType::resync_data, 0, data);
  // The log wrote [4096, 8192) meanwhile; the second part starts off a 4 KiB boundary.
  workers.submit(1, h, frame_with(h, data), {{0, 4096}, {8192 + 512, 16384 - 8192 - 512}});
  cloned::Completion c = next(done, cloned::Completion::Kind::io);
  REQUIRE_MESSAGE(c.status.is_ok(), c.status.message());
  const std::vector<uint8_t> now = read_back(dev, 0, 16384);
  CHECK(std::equal(now.begin(), now.begin() + 4096, data.begin()));
  CHECK(std::all_of(now.begin() + 4096, now.begin() + 8192 + 512, [](uint8_t x) { return x == 0; }));
  CHECK(std::equal(now.begin() + 8192 + 512, now.end(), data.begin() + 8192 + 512));
}

TEST_CASE("read-back catches a write the disk did not keep, rewrites it once, and fails a disk that keeps failing") {
  const std::vector<uint8_t> data = pattern(8192, 11);
  const proto::RecordHeader h = header(proto::MsgType::write, 65536, data);
  SUBCASE("once: rewritten, reported, correct on the disk") {
    blockio::FaultyDevice dev(std::make_unique<blockio::MemoryDevice>(kDisk, 512), 1);
    blockio::FaultPlan plan;
    plan.corrupt_writes = 1;
    dev.set_plan(plan);
    cloned::Completions done;
    cloned::DiskWorkers workers(dev, kKey, 1, done, /*read_back=*/true);
    workers.submit(1, h, frame_with(h, data));
    cloned::Completion c = next(done, cloned::Completion::Kind::io);
    CHECK(c.status.is_ok());
    CHECK(c.read_back_note.find("differed from what was written; rewritten once") != std::string::npos);
    CHECK(read_back(dev, 65536, 8192) == data);
  }
  SUBCASE("twice: a disk error") {
    blockio::FaultyDevice dev(std::make_unique<blockio::MemoryDevice>(kDisk, 512), 1);
    blockio::FaultPlan plan;
    plan.corrupt_writes = 2;
    dev.set_plan(plan);
    cloned::Completions done;
    cloned::DiskWorkers workers(dev, kKey, 1, done, true);
    workers.submit(1, h, frame_with(h, data));
    cloned::Completion c = next(done, cloned::Completion::Kind::io);
    CHECK_FALSE(c.status.is_ok());
    CHECK_FALSE(c.digest_mismatch);
    CHECK(c.status.message().find("still differs after a rewrite") != std::string::npos);
  }
  SUBCASE("off (the default): the same fault goes unnoticed") {
    blockio::FaultyDevice dev(std::make_unique<blockio::MemoryDevice>(kDisk, 512), 1);
    blockio::FaultPlan plan;
    plan.corrupt_writes = 1;
    dev.set_plan(plan);
    cloned::Completions done;
    cloned::DiskWorkers workers(dev, kKey, 1, done);
    workers.submit(1, h, frame_with(h, data));
    cloned::Completion c = next(done, cloned::Completion::Kind::io);
    CHECK(c.status.is_ok());
    CHECK(c.read_back_note.empty());
    CHECK(read_back(dev, 65536, 8192) != data);
  }
}

TEST_CASE("a failed write is reported to health by what it was: a resync extent's write is a write") {
  struct Case {
    proto::MsgType type;
    const char* op;
  };
  for (const Case& k : {Case{proto::MsgType::write, "write"}, Case{proto::MsgType::resync_data, "write"},
                        Case{proto::MsgType::zero, "write zeroes"}, Case{proto::MsgType::resync_zero, "write zeroes"},
                        Case{proto::MsgType::trim, "discard"}}) {
    CAPTURE(static_cast<int>(k.type));
    blockio::FaultyDevice dev(std::make_unique<blockio::MemoryDevice>(kDisk, 512), 1);
    blockio::FaultPlan plan;
    plan.fail_write_after = 0;
    dev.set_plan(plan);
    cloned::Completions done;
    cloned::DiskWorkers workers(dev, kKey, 1, done);
    const std::vector<uint8_t> data = pattern(4096, 1);
    const proto::RecordHeader h = header(k.type, 8192, data);
    const bool carries_data = k.type == proto::MsgType::write || k.type == proto::MsgType::resync_data;
    workers.submit(1, h, carries_data ? frame_with(h, data) : proto::Frame{});
    cloned::Completion c = next(done, cloned::Completion::Kind::io);
    CHECK(std::string(c.op) == k.op);
    CHECK(c.offset_bytes == 8192);
    CHECK(c.length_bytes == 4096);
    if (carries_data) CHECK_FALSE(c.status.is_ok());
    CHECK(c.disk_fault() == !c.status.is_ok());
  }
}

TEST_CASE("events beyond the queue's bound are dropped and counted, not lost silently") {
  test_support::TempDir dir("workers_test");
  REQUIRE(dir.ok());
  auto opened = store::Store::open(dir.path(), store::OpenMode::read_write, proto::PairId{}, "file /x (1 MiB)");
  REQUIRE_MESSAGE(opened.is_ok(), opened.status().message());
  std::unique_ptr<store::Store> st = std::move(opened).value();
  cloned::Completions done;
  cloned::StoreWorker worker(*st, done);
  // Hold the store thread so that the events pile up behind this job.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  worker.run_job([released](store::Store&) {
    released.wait();
    return base::Status::ok();
  });
  for (int i = 0; i < 300; ++i) worker.event("info", "test", "event " + std::to_string(i));
  CHECK(worker.events_dropped() == 300 - 256);
  release.set_value();
  (void)next(done, cloned::Completion::Kind::store_job);
  worker.event("info", "test", "after the burst");  // logs the count
  CHECK(worker.events_dropped() == 300 - 256);
  worker.run_job([](store::Store&) { return base::Status::ok(); });
  (void)next(done, cloned::Completion::Kind::store_job);
  base::Result<std::vector<store::Event>> events = st->recent_events(1000);
  REQUIRE(events.is_ok());
  CHECK(events->size() == 257);
}

TEST_CASE("writes held back behind a flush start only once it has succeeded") {
  // The faulty device keeps writes in an overlay until a flush: a held write
  // that ran before the flush would be flushed with the epoch before it.
  blockio::FaultyDevice dev(std::make_unique<blockio::MemoryDevice>(kDisk, 512), 1);
  cloned::Completions done;
  cloned::DiskWorkers workers(dev, kKey, 2, done);
  std::vector<std::vector<uint8_t>> next_epoch;
  {
    cloned::DiskWorkers::Batch batch(workers);
    submit_writes(workers, 1, 20);
    workers.flush_when_drained(21);
    next_epoch = submit_writes(workers, 22, 20, /*after_flush_gate=*/21);
  }
  const std::vector<cloned::Completion> got = collect(done, 41);
  REQUIRE(got.size() == 41);
  size_t flush_at = got.size();
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].status.is_ok());
    if (got[i].kind == cloned::Completion::Kind::early_flush) flush_at = i;
  }
  REQUIRE(flush_at < got.size());
  for (size_t i = 0; i < flush_at; ++i) CHECK(got[i].id < 22);  // none of the held ones reported before it
  CHECK(dev.flush_count() == 1);
  CHECK(dev.unflushed_count() == 20);  // exactly the held writes came after the flush
  for (uint64_t i = 0; i < next_epoch.size(); ++i) CHECK(read_back(dev, (22 + i) * 8192, 4096) == next_epoch[i]);

  SUBCASE("and those submitted after it has succeeded go at once") {
    submit_writes(workers, 50, 2, /*after_flush_gate=*/21);
    const std::vector<cloned::Completion> later = collect(done, 2);
    REQUIRE(later.size() == 2);
    CHECK(later[0].status.is_ok());
    CHECK(later[1].status.is_ok());
  }
}

TEST_CASE("a failed early flush is reported, and it or a write it covers failing cancels the writes held behind it") {
  blockio::FaultyDevice dev(std::make_unique<blockio::MemoryDevice>(kDisk, 512), 1);
  blockio::FaultPlan plan;
  SUBCASE("the flush fails") { plan.fail_flush_after = 0; }
  SUBCASE("a write fails") { plan.fail_write_after = 1; }
  dev.set_plan(plan);
  cloned::Completions done;
  cloned::DiskWorkers workers(dev, kKey, 1, done);
  {
    cloned::DiskWorkers::Batch batch(workers);
    submit_writes(workers, 1, 3, 0, /*covered_by_gate=*/9);
    workers.flush_when_drained(9);
    submit_writes(workers, 10, 2, /*after_flush_gate=*/9);
  }
  std::vector<cloned::Completion> got = collect(done, 6);
  REQUIRE(got.size() == 6);
  REQUIRE(count_kind(got, cloned::Completion::Kind::early_flush) == 1);
  for (const cloned::Completion& c : got)
    if (c.kind == cloned::Completion::Kind::early_flush) CHECK(c.status.is_ok() == (plan.fail_flush_after < 0));
  if (plan.fail_flush_after == 0) CHECK(dev.unflushed_count() == 3);  // the epoch's three, unflushed; none held
  CHECK(std::count_if(got.begin(), got.end(), is_cancelled) == 2);
  for (const cloned::Completion& c : got)
    if (c.id >= 10) CHECK(is_cancelled(c));
  // Any held later for the same barrier is cancelled at once.
  submit_writes(workers, 12, 1, /*after_flush_gate=*/9);
  got = collect(done, 1);
  REQUIRE(got.size() == 1);
  CHECK(is_cancelled(got[0]));
  for (uint64_t id = 10; id <= 12; ++id) CHECK(read_back(dev, id * 8192, 4096) == std::vector<uint8_t>(4096, 0));
}

TEST_CASE("held writes go with the loop's own flush for their barrier, or are cancelled on request") {
  blockio::MemoryDevice dev(kDisk, 512);
  cloned::Completions done;
  auto workers = std::make_unique<cloned::DiskWorkers>(dev, kKey, 2, done);
  submit_writes(*workers, 1, 2, /*after_flush_gate=*/5);
  CHECK(collect(done, 1).empty());  // nothing flushed yet: they wait
  workers->flush(4);                // an earlier barrier's: not theirs
  std::vector<cloned::Completion> got = collect(done, 1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].kind == cloned::Completion::Kind::flush);
  workers->flush(5);
  got = collect(done, 3);
  REQUIRE(got.size() == 3);
  CHECK(count_kind(got, cloned::Completion::Kind::io) == 2);
  for (const cloned::Completion& c : got) CHECK(c.status.is_ok());

  submit_writes(*workers, 3, 1, /*after_flush_gate=*/6);
  workers->cancel_after_flush();
  got = collect(done, 1);
  REQUIRE(got.size() == 1);
  CHECK(is_cancelled(got[0]));
  // The session ended: no failure of the disk's to report (health_monitor.h).
  CHECK_FALSE(got[0].disk_fault());
  workers->flush(6);
  CHECK(count_kind(collect(done, 2), cloned::Completion::Kind::io) == 0);

  // Stopping completes what is still held, unwritten.
  submit_writes(*workers, 4, 1, /*after_flush_gate=*/7);
  workers.reset();
  got = done.take_all();
  REQUIRE(got.size() == 1);
  CHECK(is_cancelled(got[0]));
  CHECK(read_back(dev, 4 * 8192, 4096) == std::vector<uint8_t>(4096, 0));
}

TEST_CASE("a digest scan of a session that has ended is reported cancelled, not run") {
  blockio::MemoryDevice dev(kDisk, 512);
  cloned::Completions done;
  cloned::DiskWorkers workers(dev, kKey, 1, done);
  workers.drop_digests_before(5);
  workers.drop_digests_before(3);  // never back
  workers.digest({1, 0, 65536, 4}, 4);
  workers.digest({2, 0, 65536, 4}, 5);
  const std::vector<cloned::Completion> got = collect(done, 2);  // in order: one worker
  REQUIRE(got.size() == 2);
  CHECK(got[0].request.id == 1);
  CHECK(got[0].session_serial == 4);
  CHECK(got[0].status.code() == ECANCELED);
  CHECK_FALSE(got[0].disk_fault());  // not told to health as the disk's
  CHECK(got[0].digests.empty());
  CHECK(got[1].request.id == 2);
  REQUIRE(got[1].status.is_ok());
  CHECK(got[1].digests.size() == 4);
}

TEST_CASE("a held write with a bad digest is refused unwritten once it is let go") {
  blockio::MemoryDevice dev(kDisk, 512);
  cloned::Completions done;
  cloned::DiskWorkers workers(dev, kKey, 2, done);
  const std::vector<uint8_t> good = pattern(4096, 1), bad = pattern(4096, 2);
  proto::RecordHeader hg = header(proto::MsgType::write, 0, good);
  proto::RecordHeader hb = header(proto::MsgType::write, 8192, bad);
  hb.digest[3] ^= 1;
  workers.submit(1, hg, frame_with(hg, good), {}, 3);
  workers.submit(2, hb, frame_with(hb, bad), {}, 3);
  CHECK(collect(done, 1).empty());
  workers.flush(3);
  std::map<apply::RecordId, cloned::Completion> got;
  for (cloned::Completion& c : collect(done, 3)) got.emplace(c.id, std::move(c));
  REQUIRE(got.count(1) == 1);
  REQUIRE(got.count(2) == 1);
  CHECK(got.at(1).status.is_ok());
  CHECK(got.at(2).digest_mismatch);
  CHECK(read_back(dev, 0, 4096) == good);
  CHECK(read_back(dev, 8192, 4096) == std::vector<uint8_t>(4096, 0));
}

TEST_CASE("what became of a gate decides only its own writes: a later gate's wait for their flush") {
  // A session ends with writes held behind gate 9 (cancelled) and one of its
  // epoch's writes refused; the next session's first barrier flush is gate
  // 10 (the machine never names a gate twice).
  blockio::FaultyDevice dev(std::make_unique<blockio::MemoryDevice>(kDisk, 512), 1);
  cloned::Completions done;
  cloned::DiskWorkers workers(dev, kKey, 2, done);
  submit_writes(workers, 1, 1, /*after_flush_gate=*/9, /*covered_by_gate=*/10);
  workers.cancel_after_flush();
  REQUIRE(collect(done, 1).size() == 1);
  const std::vector<uint8_t> bad = pattern(4096, 3);
  proto::RecordHeader hb = header(proto::MsgType::write, 8192, bad);
  hb.digest[0] ^= 1;
  workers.submit(2, hb, frame_with(hb, bad), {}, 0, /*covered_by_gate=*/9);
  std::vector<cloned::Completion> got = collect(done, 1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].digest_mismatch);

  submit_writes(workers, 3, 1, /*after_flush_gate=*/10, /*covered_by_gate=*/11);  // neither cancelled nor let go
  CHECK(collect(done, 1).empty());
  CHECK(dev.unflushed_count() == 0);
  workers.flush(10);  // not held up by the refused write: its gate's flush never came
  got = collect(done, 2);
  REQUIRE(got.size() == 2);
  for (const cloned::Completion& c : got) CHECK(c.status.is_ok());
  CHECK(dev.unflushed_count() == 1);  // written after that flush

  SUBCASE("a write its own flush covers failing still holds them") {
    workers.submit(4, hb, frame_with(hb, bad), {}, 0, /*covered_by_gate=*/11);
    REQUIRE(collect(done, 1).size() == 1);
    submit_writes(workers, 5, 1, /*after_flush_gate=*/11, /*covered_by_gate=*/12);
    workers.flush(11);
    got = collect(done, 2);
    REQUIRE(got.size() == 2);
    CHECK(std::count_if(got.begin(), got.end(), is_cancelled) == 1);
  }
}

TEST_CASE("held writes cancelled at any moment after they are submitted are cancelled, never written") {
  blockio::MemoryDevice dev(kDisk, 512);
  cloned::Completions done;
  cloned::DiskWorkers workers(dev, kKey, 2, done);
  const std::vector<uint8_t> data = pattern(512 * 1024, 9);
  for (uint64_t k = 1; k <= 20; ++k) {
    CAPTURE(k);
    proto::RecordHeader h = header(proto::MsgType::write, 0, data);
    h.seq = k;
    workers.submit(k, h, frame_with(h, data), {}, /*after_flush_gate=*/k);
    std::this_thread::sleep_for(std::chrono::microseconds(50 * (k - 1)));
    workers.cancel_after_flush();
    const std::vector<cloned::Completion> got = collect(done, 1);
    REQUIRE(got.size() == 1);
    CHECK(is_cancelled(got[0]));
  }
  CHECK(read_back(dev, 0, 4096) == std::vector<uint8_t>(4096, 0));
}

TEST_CASE("a cancel staged in a batch cancels the held writes staged before it") {
  // The loop may submit writes behind a barrier and drop that barrier while
  // handling one read: the cancel must not pass the writes it follows.
  blockio::MemoryDevice dev(kDisk, 512);
  cloned::Completions done;
  cloned::DiskWorkers workers(dev, kKey, 2, done);
  {
    cloned::DiskWorkers::Batch batch(workers);
    submit_writes(workers, 1, 3, /*after_flush_gate=*/4);
    workers.cancel_after_flush();
  }
  const std::vector<cloned::Completion> got = collect(done, 3);
  REQUIRE(got.size() == 3);
  for (const cloned::Completion& c : got) CHECK(is_cancelled(c));
}

// Writes that take a while: the disk is still busy with some when the loop
// asks for the next early flush.
class SlowWrites final : public blockio::BlockDevice {
 public:
  explicit SlowWrites(blockio::BlockDevice& inner) : inner_(inner) {}
  blockio::Geometry geometry() const override { return inner_.geometry(); }
  base::Status write(uint64_t offset, base::ByteSpan data) override {
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    return inner_.write(offset, data);
  }
  base::Status read(uint64_t offset, base::MutableByteSpan out) override { return inner_.read(offset, out); }
  base::Status write_zeroes(uint64_t offset, uint64_t len) override { return inner_.write_zeroes(offset, len); }
  base::Status discard(uint64_t offset, uint64_t len) override { return inner_.discard(offset, len); }
  base::Status flush() override { return inner_.flush(); }
  std::string describe() const override { return "slow " + inner_.describe(); }

 private:
  blockio::BlockDevice& inner_;
};

TEST_CASE("a held write out for its digest check when its flush succeeds is covered by the next early flush") {
  // Idle workers check held writes' digests while their barrier's flush is
  // pending. A 1 MiB write is still being checked when the flush succeeds
  // (two small ones were checked by then); it must count as outstanding at
  // once, or the early flush asked next runs when the small ones are written
  // and the big one lands after it, in the faulty device's overlay.
  constexpr uint64_t kBig = proto::kMaxWritePayloadBytes;
  blockio::FaultyDevice faulty(std::make_unique<blockio::MemoryDevice>(2 * kBig, 512), 1);
  SlowWrites dev(faulty);
  cloned::Completions done;
  cloned::DiskWorkers workers(dev, kKey, 2, done);
  size_t early_flushes = 0;
  for (uint64_t round = 0; round < 20; ++round) {
    CAPTURE(round);
    const uint64_t barrier = 2 * round + 1;
    const std::vector<uint8_t> big = pattern(kBig, static_cast<uint8_t>(round));
    proto::RecordHeader h = header(proto::MsgType::write, kBig, big);
    h.seq = 100;
    {
      cloned::DiskWorkers::Batch batch(workers);
      workers.submit(100, h, frame_with(h, big), {}, barrier);  // one worker checks it alone
      submit_writes(workers, 1, 2, barrier);                    // the other these
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    workers.flush(barrier);
    std::vector<cloned::Completion> got;
    for (int i = 0; i < 20000 && count_kind(got, cloned::Completion::Kind::flush) == 0; ++i) {
      for (cloned::Completion& c : done.take_all()) got.push_back(std::move(c));
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    REQUIRE(count_kind(got, cloned::Completion::Kind::flush) == 1);
    workers.flush_when_drained(barrier + 1);
    for (int i = 0; i < 20000 && count_kind(got, cloned::Completion::Kind::io) < 3; ++i) {
      for (cloned::Completion& c : done.take_all()) got.push_back(std::move(c));
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    REQUIRE(count_kind(got, cloned::Completion::Kind::io) == 3);
    for (const cloned::Completion& c : got) CHECK(c.status.is_ok());
    if (count_kind(got, cloned::Completion::Kind::early_flush) == 1) {  // asked while writes were outstanding
      ++early_flushes;
      CHECK(faulty.unflushed_count() == 0);
    }
    CHECK(read_back(faulty, kBig, kBig) == big);
    workers.flush();  // empties the overlay for the next round
    CHECK(next(done, cloned::Completion::Kind::flush).status.is_ok());
  }
  CHECK(early_flushes > 0);
}
