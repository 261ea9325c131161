// SPDX-License-Identifier: MIT
// FileDevice's Linux AIO paths, both for O_DIRECT only.
//
// write_batch: a batch of writes as one AIO submission (io_submit) and one
// wait (io_getevents). The block layer plugs the whole submission, so a
// virtio disk is kicked once per batch instead of once per write, and the
// calling thread sleeps once per batch instead of once per write; adjacent
// writes go as one vectored write.
//
// read_each: read-ahead for a scan. The next piece's read is submitted before
// the consumer hashes this one, so one thread keeps the disk and a core busy
// at once instead of taking turns.
//
// Linux AIO rather than io_uring: no library, systemd's @system-service
// allows it everywhere, and io_uring measured no faster for these batches
// (docs/PERFORMANCE.md). One AIO context per calling thread, made on first
// use. Where the kernel refuses one, or for buffered I/O (where AIO would
// block in io_submit anyway), the plain paths run: writes one by one through
// write(), pieces one by one through read().
#include <linux/aio_abi.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <vector>

#include "base/aligned_buffer.h"
#include "blockio/extent.h"
#include "blockio/file_device.h"

namespace blockio {
namespace {

// Requests in flight per thread; a longer batch goes in several rounds.
constexpr size_t kAioRequestsMax = 128;

// The calling thread's AIO context; 0 once the kernel refused one (it is not
// asked again by this thread).
class ThreadAio {
 public:
  ThreadAio() = default;
  ThreadAio(const ThreadAio&) = delete;
  ThreadAio& operator=(const ThreadAio&) = delete;
  ~ThreadAio() {
    if (ctx_ != 0) (void)::syscall(SYS_io_destroy, ctx_);
  }
  aio_context_t get() {
    if (!tried_) {
      tried_ = true;
      if (::syscall(SYS_io_setup, kAioRequestsMax, &ctx_) != 0) ctx_ = 0;
    }
    return ctx_;
  }

 private:
  aio_context_t ctx_ = 0;
  bool tried_ = false;
};

thread_local ThreadAio t_aio;

// Ops [first, first + count) of a batch, adjacent on the disk: one request.
struct Group {
  size_t first = 0;
  size_t count = 0;
  uint64_t bytes = 0;
};

std::vector<Group> adjacent_groups(std::span<const WriteOp> ops) {
  std::vector<Group> groups;
  for (size_t i = 0; i < ops.size(); ++i) {
    const bool joins = !groups.empty() && groups.back().count < IOV_MAX &&
                       ops[groups.back().first].offset_bytes + groups.back().bytes == ops[i].offset_bytes;
    if (!joins) groups.push_back(Group{i, 0, 0});
    ++groups.back().count;
    groups.back().bytes += ops[i].data.size();
  }
  return groups;
}

}  // namespace

void FileDevice::write_batch(std::span<WriteOp> ops) {
  const aio_context_t ctx = direct_io_ && ops.size() > 1 ? t_aio.get() : 0;
  if (ctx == 0) return BlockDevice::write_batch(ops);
  for (const WriteOp& op : ops) {
    assert_extent(geometry_, op.offset_bytes, op.data.size());
    assert_io_buffer(op.data.data());
  }
  const std::vector<Group> all = adjacent_groups(ops);
  std::vector<iovec> iovs(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) iovs[i] = iovec{const_cast<uint8_t*>(ops[i].data.data()), ops[i].data.size()};
  std::vector<iocb> cbs(std::min(all.size(), kAioRequestsMax));
  std::vector<iocb*> cb_ptrs(cbs.size());
  std::vector<io_event> events(cbs.size());
  for (size_t round = 0; round < all.size(); round += kAioRequestsMax) {
    const std::span<const Group> groups(all.data() + round, std::min(kAioRequestsMax, all.size() - round));
    for (size_t g = 0; g < groups.size(); ++g) {
      const Group& group = groups[g];
      iocb& cb = cbs[g];
      cb = iocb{};
      cb.aio_data = g;
      cb.aio_fildes = static_cast<uint32_t>(fd_.get());
      cb.aio_offset = static_cast<int64_t>(ops[group.first].offset_bytes);
      if (group.count == 1) {
        cb.aio_lio_opcode = IOCB_CMD_PWRITE;
        cb.aio_buf = reinterpret_cast<uint64_t>(ops[group.first].data.data());
        cb.aio_nbytes = group.bytes;
      } else {
        cb.aio_lio_opcode = IOCB_CMD_PWRITEV;
        cb.aio_buf = reinterpret_cast<uint64_t>(&iovs[group.first]);
        cb.aio_nbytes = group.count;
      }
      cb_ptrs[g] = &cb;
    }
    // What the kernel does not take is written in turn, like what fails short.
    size_t submitted = 0;
    while (submitted < groups.size()) {
      const long n = ::syscall(SYS_io_submit, ctx, static_cast<long>(groups.size() - submitted), &cb_ptrs[submitted]);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      submitted += static_cast<size_t>(n);
    }
    std::vector<bool> done(groups.size(), false);
    for (size_t reaped = 0; reaped < submitted;) {
      const long n = ::syscall(SYS_io_getevents, ctx, static_cast<long>(submitted - reaped),
                               static_cast<long>(submitted - reaped), events.data(), nullptr);
      if (n < 0 && errno == EINTR) continue;
      // Cannot happen with a valid context and no timeout; if it did, the
      // buffers could still be in use by the kernel: nothing safe is left.
      if (n < 0) std::abort();
      for (long e = 0; e < n; ++e) {
        const Group& group = groups[events[e].data];
        const int64_t res = events[e].res;
        if (res == static_cast<int64_t>(group.bytes)) {
          for (size_t i = group.first; i < group.first + group.count; ++i) ops[i].status = base::Status::ok();
          done[events[e].data] = true;
        } else if (res < 0) {
          for (size_t i = group.first; i < group.first + group.count; ++i)
            ops[i].status = failure("write", ops[i].offset_bytes, ops[i].data.size(), static_cast<int>(-res));
          done[events[e].data] = true;
        }
        // A short write: left for write() below (rewriting the same bytes is harmless).
      }
      reaped += static_cast<size_t>(n);
    }
    for (size_t g = 0; g < groups.size(); ++g) {
      if (done[g]) continue;
      for (size_t i = groups[g].first; i < groups[g].first + groups[g].count; ++i)
        ops[i].status = write(ops[i].offset_bytes, ops[i].data);
    }
  }
}

namespace {

// Submits one read of `out` at `offset_bytes`; false when the kernel did not
// take it (the caller reads it the plain way).
bool submit_read(aio_context_t ctx, int fd, uint64_t offset_bytes, base::MutableByteSpan out, iocb& cb) {
  cb = iocb{};
  cb.aio_fildes = static_cast<uint32_t>(fd);
  cb.aio_lio_opcode = IOCB_CMD_PREAD;
  cb.aio_buf = reinterpret_cast<uint64_t>(out.data());
  cb.aio_nbytes = out.size();
  cb.aio_offset = static_cast<int64_t>(offset_bytes);
  iocb* ptr = &cb;
  for (;;) {
    const long n = ::syscall(SYS_io_submit, ctx, 1L, &ptr);
    if (n < 0 && errno == EINTR) continue;
    return n == 1;
  }
}

// Waits for the one read in flight on `ctx`; its result (bytes or -errno).
int64_t wait_read(aio_context_t ctx) {
  io_event event{};
  for (;;) {
    const long n = ::syscall(SYS_io_getevents, ctx, 1L, 1L, &event, nullptr);
    if (n == 1) return event.res;
    // As in write_batch: the kernel may still be filling the buffer.
    if (n < 0 && errno != EINTR) std::abort();
  }
}

}  // namespace

base::Status FileDevice::read_each(uint64_t offset_bytes, uint64_t length_bytes, uint64_t piece_bytes,
                                   const PieceConsumer& consume) {
  const aio_context_t ctx = direct_io_ && length_bytes > piece_bytes ? t_aio.get() : 0;
  if (ctx == 0) return BlockDevice::read_each(offset_bytes, length_bytes, piece_bytes, consume);
  assert_extent(geometry_, offset_bytes, length_bytes);
  assert(piece_bytes % geometry_.logical_block_bytes == 0);  // every piece stays O_DIRECT-aligned
  base::AlignedBuffer bufs[2] = {base::AlignedBuffer(piece_bytes), base::AlignedBuffer(piece_bytes)};
  const uint64_t end = offset_bytes + length_bytes;
  auto piece = [&](uint64_t at, size_t k) {
    return base::MutableByteSpan(bufs[k % 2].data(), std::min(piece_bytes, end - at));
  };
  iocb cb{};
  bool in_flight = submit_read(ctx, fd_.get(), offset_bytes, piece(offset_bytes, 0), cb);
  // Whatever way this returns (a throwing consumer too), the kernel is done
  // with the buffers before they are freed.
  struct Drain {
    aio_context_t ctx;
    const bool& in_flight;
    ~Drain() {
      if (in_flight) (void)wait_read(ctx);
    }
  } drain{ctx, in_flight};
  size_t k = 0;
  for (uint64_t at = offset_bytes; at < end; at += piece_bytes, ++k) {
    const base::MutableByteSpan out = piece(at, k);
    const int64_t res = in_flight ? wait_read(ctx) : -1;
    in_flight = false;
    // Not submitted, short or failed: read() again, which also says why.
    if (res != static_cast<int64_t>(out.size())) BASE_TRY(read(at, out));
    const uint64_t next = at + piece_bytes;
    in_flight = next < end && submit_read(ctx, fd_.get(), next, piece(next, k + 1), cb);
    consume(at, base::ByteSpan(out.data(), out.size()));
  }
  return base::Status::ok();
}

}  // namespace blockio
