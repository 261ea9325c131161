// SPDX-License-Identifier: MIT
// stream-bench: the replication link's CPU work with nothing else around it,
// the baseline that end-to-end replication is compared with (bench/run.sh).
//
//   stream-bench send HOST PORT BYTES [RECORD_BYTES [DISK_BYTES]]
//        write records (1 MiB unless RECORD_BYTES), each with a fresh PRNG
//        payload, its keyed digest, and sealed in an AEAD frame, over TCP;
//        with DISK_BYTES at uniform 512-byte-aligned offsets inside a disk of
//        that size (the workload's random pattern), else one after another
//   stream-bench recv PORT [TARGET]
//        accepts one connection on 127.0.0.1, opens every frame, decodes the
//        record, checks its digest, and discards it, or with TARGET writes
//        its payload there with one O_DIRECT pwrite per record (no fsync):
//        the bare receiver of bench/run.sh's small-record figures
//
// Both sides use the project's own code for every step (proto::FrameSealer,
// proto::FrameReader, proto::encode_write_header, proto::decode_record,
// digest::keyed_digest), so the crypto costs what it costs on the real
// path. What is left out is everything else: the handshake (a one-time cost),
// the retained log, the apply machine, the disk. Keys are fixed: both
// processes must agree on them without a handshake. Each side prints one line
// "stream-bench SIDE: bytes=N records=N seconds=S mib_per_s=R cpu_s=C" (C: the
// process's user + system CPU time); the receiver's clock runs from accept to
// the sender's end of stream.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "base/bytes.h"
#include "base/units.h"
#include "bench/cpu_time.h"
#include "digest/digest.h"
#include "proto/frame.h"
#include "proto/messages.h"
#include "origin/rng.h"

namespace {

constexpr uint32_t kDefaultRecordBytes = proto::kMaxWritePayloadBytes;  // 1 MiB, as in the benchmark
constexpr uint64_t kPlacementBlockBytes = 512;  // the random pattern's alignment (bench/run.sh)
constexpr size_t kRecvChunkBytes = 256 * 1024;                    // the daemon's read size
constexpr size_t kDirectReadMinBytes = 64 * 1024;                 // and its direct-read threshold

// Fixed, recognisable keys: nothing here is secret, they only have to match.
proto::Key bench_frame_key() {
  proto::Key k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(0xb0 + i);
  return k;
}

digest::DigestKey bench_digest_key() {
  digest::DigestKey k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(0x30 + i);
  return k;
}

int usage() {
  std::fputs("usage: stream-bench send HOST PORT BYTES [RECORD_BYTES [DISK_BYTES]] | stream-bench recv PORT [TARGET]\n"
             "Sizes take K, M, G suffixes; BYTES is rounded up to whole records.\n",
             stderr);
  return 2;
}

int fail(const char* what) {
  std::fprintf(stderr, "stream-bench: %s: %s\n", what, std::strerror(errno));
  return 1;
}

std::optional<uint16_t> parse_port(const char* text) {
  char* end = nullptr;
  errno = 0;
  const unsigned long v = std::strtoul(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v == 0 || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

void report(const char* side, uint64_t bytes, uint64_t records, uint64_t start_ns) {
  const double seconds = static_cast<double>(base::monotonic_ns() - start_ns) / 1e9;
  const double mib_per_s = static_cast<double>(bytes) / (1024.0 * 1024.0) / seconds;
  std::printf("stream-bench %s: bytes=%llu records=%llu seconds=%.3f mib_per_s=%.1f cpu_s=%.3f\n", side,
              static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(records), seconds, mib_per_s,
              bench::process_cpu_seconds());
}

// TCP_NODELAY as on the real link (docs/PROTOCOL.md, "Transport").
void set_nodelay(int fd) {
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int connect_to(const char* host, uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    errno = EINVAL;
    return -1;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  set_nodelay(fd);
  return fd;
}

// Listens on 127.0.0.1 only and returns the first connection.
int accept_one(uint16_t port) {
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) return -1;
  int one = 1;
  (void)::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = -1;
  if (::bind(lfd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 && ::listen(lfd, 1) == 0)
    fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  const int saved = errno;
  ::close(lfd);
  errno = saved;
  if (fd >= 0) set_nodelay(fd);
  return fd;
}

bool write_all(int fd, const uint8_t* data, size_t n) {
  while (n > 0) {
    const ssize_t k = ::write(fd, data, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    data += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

// The payload is filled the way origin's workload does it (splitmix64 from
// a per-record seed), then digested and the header encoded in front of it.
struct SendShape {
  uint32_t record_bytes = kDefaultRecordBytes;
  uint64_t disk_bytes = 0;  // 0: sequential placement
};

void build_record(origin::Rng& rng, const digest::DigestKey& digest_key, const SendShape& shape, uint64_t seq,
                  base::Bytes& plain) {
  const uint32_t n = shape.record_bytes;
  uint8_t* payload = plain.data() + proto::kWriteHeaderBytes;
  origin::fill_splitmix64(rng.next(), payload, n);
  proto::RecordHeader h;
  h.type = proto::MsgType::write;
  h.seq = seq;
  h.epoch = 1;
  h.offset_bytes = shape.disk_bytes == 0
                       ? (seq - 1) * uint64_t{n}
                       : rng.uniform(0, (shape.disk_bytes - n) / kPlacementBlockBytes) * kPlacementBlockBytes;
  h.length_bytes = n;
  h.digest = digest::keyed_digest(digest_key, base::ByteSpan(payload, n));
  proto::encode_write_header(h, plain.data());
}

int run_send(const char* host, uint16_t port, uint64_t total_bytes, const SendShape& shape) {
  const int fd = connect_to(host, port);
  if (fd < 0) return fail("cannot connect");
  const uint32_t n = shape.record_bytes;
  const uint64_t records = (total_bytes + n - 1) / n;
  const digest::DigestKey digest_key = bench_digest_key();
  proto::FrameSealer sealer(bench_frame_key());
  origin::Rng rng(1);
  // Both buffers are reused: the baseline should not pay for allocation.
  base::Bytes plain(proto::kWriteHeaderBytes + n);
  base::Bytes wire;
  wire.reserve(proto::kMaxFrameWireBytes);
  const uint64_t start_ns = base::monotonic_ns();
  for (uint64_t seq = 1; seq <= records; ++seq) {
    build_record(rng, digest_key, shape, seq, plain);
    wire.clear();
    sealer.seal(plain, wire);
    if (!write_all(fd, wire.data(), wire.size())) {
      ::close(fd);
      return fail("sending failed");
    }
  }
  ::close(fd);
  report("send", records * n, records, start_ns);
  return 0;
}

// Counts what the receiver accepted; any bad frame or record ends the run.
struct Received {
  uint64_t bytes = 0;
  uint64_t records = 0;
  int target_fd = -1;  // O_DIRECT; -1: discard
};

bool consume(const proto::Frame& frame, const digest::DigestKey& digest_key, Received& got) {
  proto::RecordHeader h;
  base::ByteSpan payload;
  if (base::Status s = proto::decode_record(frame.plain(), h, payload); !s.is_ok()) {
    std::fprintf(stderr, "stream-bench: a record did not decode: %s\n", s.message().c_str());
    return false;
  }
  if (h.type != proto::MsgType::write || h.seq != got.records + 1 ||
      !digest::digest_equal(digest::keyed_digest(digest_key, payload), h.digest)) {
    std::fprintf(stderr, "stream-bench: record %llu is out of order or does not match its digest\n",
                 static_cast<unsigned long long>(h.seq));
    return false;
  }
  // The payload is 4096-aligned inside the frame: straight to O_DIRECT.
  if (got.target_fd >= 0 &&
      ::pwrite(got.target_fd, payload.data(), payload.size(), static_cast<off_t>(h.offset_bytes)) !=
          static_cast<ssize_t>(payload.size())) {
    std::fprintf(stderr, "stream-bench: writing record %llu failed: %s\n", static_cast<unsigned long long>(h.seq),
                 std::strerror(errno));
    return false;
  }
  got.bytes += payload.size();
  ++got.records;
  return true;
}

// Feeds one read's bytes to the frame reader; false on a bad stream.
bool feed_all(proto::FrameReader& reader, base::ByteSpan in, const digest::DigestKey& digest_key, Received& got) {
  while (!in.empty()) {
    proto::Frame frame;
    bool has_frame = false;
    if (base::Status s = reader.feed(in, frame, has_frame); !s.is_ok()) {
      std::fprintf(stderr, "stream-bench: %s\n", s.message().c_str());
      return false;
    }
    if (has_frame && !consume(frame, digest_key, got)) return false;
  }
  return true;
}

int run_recv(uint16_t port, const char* target) {
  Received got;
  if (target != nullptr) {
    got.target_fd = ::open(target, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (got.target_fd < 0) return fail("cannot open the target");
  }
  const int fd = accept_one(port);
  if (fd < 0) return fail("cannot accept a connection");
  const uint64_t start_ns = base::monotonic_ns();
  const digest::DigestKey digest_key = bench_digest_key();
  proto::FrameReader reader(bench_frame_key());
  auto buf = std::make_unique<uint8_t[]>(kRecvChunkBytes);
  for (;;) {
    // As cloned reads (cloned/daemon/link.cpp): the rest of a large frame
    // straight into it, everything else through the buffer.
    const base::MutableByteSpan body = reader.body_space(kDirectReadMinBytes);
    const ssize_t n = body.empty() ? ::read(fd, buf.get(), kRecvChunkBytes) : ::read(fd, body.data(), body.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("receiving failed");
    if (n == 0) break;
    if (body.empty()) {
      if (!feed_all(reader, base::ByteSpan(buf.get(), static_cast<size_t>(n)), digest_key, got)) return 1;
      continue;
    }
    proto::Frame frame;
    bool has_frame = false;
    if (base::Status s = reader.body_filled(static_cast<size_t>(n), frame, has_frame); !s.is_ok()) {
      std::fprintf(stderr, "stream-bench: %s\n", s.message().c_str());
      return 1;
    }
    if (has_frame && !consume(frame, digest_key, got)) return 1;
  }
  ::close(fd);
  if (got.target_fd >= 0) ::close(got.target_fd);
  if (reader.buffered_bytes() != 0) {
    std::fprintf(stderr, "stream-bench: the stream ended inside a frame\n");
    return 1;
  }
  report("recv", got.bytes, got.records, start_ns);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "send" && argc >= 5 && argc <= 7) {
    const std::optional<uint16_t> port = parse_port(argv[3]);
    const std::optional<uint64_t> bytes = base::parse_size_bytes(argv[4]);
    SendShape shape;
    const std::optional<uint64_t> record = argc > 5 ? base::parse_size_bytes(argv[5]) : kDefaultRecordBytes;
    const std::optional<uint64_t> disk = argc > 6 ? base::parse_size_bytes(argv[6]) : uint64_t{0};
    if (!port || !bytes || *bytes == 0 || !record || *record == 0 || *record % kPlacementBlockBytes != 0 ||
        *record > proto::kMaxWritePayloadBytes || !disk || (*disk != 0 && *disk < *record))
      return usage();
    shape.record_bytes = static_cast<uint32_t>(*record);
    shape.disk_bytes = *disk;
    return run_send(argv[2], *port, *bytes, shape);
  }
  if (mode == "recv" && (argc == 3 || argc == 4)) {
    const std::optional<uint16_t> port = parse_port(argv[2]);
    if (!port) return usage();
    return run_recv(*port, argc == 4 ? argv[3] : nullptr);
  }
  return usage();
}
