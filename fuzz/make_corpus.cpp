// SPDX-License-Identifier: MIT
// Writes the seed corpora of the fuzz targets: a few valid inputs each, made
// with the project's own encoders, sealer, handshake and spool writer and the
// fixed pair of fuzz_support.h, so that the fuzzer starts from inputs that
// reach deep (a frame that authenticates, a spool whose digests match).
// Run once by fuzz/make_corpus.sh; the output is committed.
//
// Usage: make_corpus DIR   (writes DIR/<target>/<seed>, replacing same names)
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "proto/frame.h"
#include "proto/resync.h"
#include "proto/wake_messages.h"
#include "fuzz/fuzz_support.h"
#include "origin/record.h"
#include "origin/spool.h"

namespace {

std::string g_dir;

void put(const std::string& target, const std::string& name, base::ByteSpan bytes) {
  const std::string dir = g_dir + "/" + target;
  ::mkdir(dir.c_str(), 0755);
  const std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  FUZZ_CHECK(f != nullptr);
  FUZZ_CHECK(bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
  FUZZ_CHECK(std::fclose(f) == 0);
}

base::Bytes pattern(size_t n, uint8_t start) {
  base::Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(start + i * 7);
  return b;
}

struct Named {
  std::string name;
  base::Bytes bytes;
};

// One of each message, as a peer sends it.
std::vector<Named> messages() {
  std::vector<Named> out;
  auto add = [&](const std::string& name, auto encode) {
    base::Bytes b;
    encode(b);
    out.push_back({name, b});
  };
  proto::Hello h;
  h.pair_id = fuzz::fixed_pair_id();
  h.disk_size_bytes = 1ull << 30;
  h.logical_block_bytes = 512;
  h.generation = 1;
  h.log_start_seq = 1;
  h.log_end_seq = 40;
  h.flags = proto::kHelloWantReceiptAcks;
  add("hello-original", [&](base::Bytes& b) { proto::encode_hello(h, b); });
  proto::Hello c = h;
  c.role = proto::Role::clone;
  c.state = proto::CloneState::inconsistent;
  c.applied_seq = 17;
  c.applied_epoch = 3;
  c.committed_seq = 12;
  c.log_start_seq = c.log_end_seq = 0;
  add("hello-clone", [&](base::Bytes& b) { proto::encode_hello(c, b); });

  const base::Bytes payload = pattern(1024, 1);
  origin::Record w = origin::make_write(5, 2, 8192, payload, fuzz::fixed_keys().digest_key);
  out.push_back({"write", w.plain});
  out.push_back({"trim", origin::make_extent(proto::MsgType::trim, 6, 2, 1 << 20, 65536).plain});
  out.push_back({"zero", origin::make_extent(proto::MsgType::zero, 7, 2, 4096, 512).plain});
  out.push_back({"barrier", origin::make_barrier(8, 2).plain});
  out.push_back({"barrier-mark", origin::make_barrier(8, 2, "before-upgrade").plain});
  add("barrier-ack", [](base::Bytes& b) { proto::encode_barrier_ack(2, 8, b); });
  add("receipt-ack", [](base::Bytes& b) { proto::encode_receipt_ack(7, b); });
  add("committed", [](base::Bytes& b) { proto::encode_committed(8, b); });
  add("ping", [](base::Bytes& b) { proto::encode_ping(0x1234, 40, b); });
  add("pong", [](base::Bytes& b) { proto::encode_pong(0x1234, b); });
  add("error", [](base::Bytes& b) {
    proto::encode_error({proto::ErrorCode::sequence_gap, "record 9 arrived where record 8 belongs."}, b);
  });
  add("goodbye", [](base::Bytes& b) { proto::encode_goodbye({proto::ErrorCode::shutting_down, "stopping."}, b); });
  add("resync-plan", [](base::Bytes& b) {
    proto::encode_resync_plan({10ull << 20, 1ull << 20, 161, proto::kPlanInPlaceUnbootable}, b);
  });
  add("resync-plan-reply", [](base::Bytes& b) {
    proto::encode_resync_plan_reply({proto::PlanVerdict::refused, 0, 11ull << 20, 1ull << 20, 5ull << 30}, b);
  });
  add("wake-info", [](base::Bytes& b) {
    proto::encode_wake_info({proto::WakeArm::armed, proto::kWakeFlagSleepsWhenIdle, {2, 0, 0, 0, 0, 1}, 600,
                             "enp0s31f6", "192.168.1.255", "enp0s31f6 wakes on a magic packet."},
                            b);
  });
  add("going-to-sleep", [](base::Bytes& b) { proto::encode_going_to_sleep({33, 33, "idle for 600 s."}, b); });
  add("sleep-request", [](base::Bytes& b) { proto::encode_sleep_request(b); });
  return out;
}

// The frame target's input: flags, limit, split seed, body (frame.cpp).
base::Bytes frame_input(uint8_t flags, uint8_t limit, uint16_t seed, base::ByteSpan body) {
  base::Bytes b = {flags, limit, static_cast<uint8_t>(seed), static_cast<uint8_t>(seed >> 8)};
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

void frame_seeds(const std::vector<Named>& msgs) {
  base::Bytes list;  // u16 length + plaintext, each message once
  base::ByteWriter w(list);
  for (const Named& m : msgs) {
    w.u16(static_cast<uint16_t>(m.bytes.size()));
    w.raw(m.bytes);
  }
  put("frame", "sealed-session", frame_input(1, 0, 1, list));
  put("frame", "sealed-flipped", frame_input(3, 0, 2, list));
  put("frame", "sealed-over-small-limit", frame_input(1, 8, 3, list));  // 512 B: the write is over it
  // Raw mode: a genuine wire stream (sealed here with the same key).
  proto::FrameSealer sealer(fuzz::fixed_frame_key());
  base::Bytes stream;
  for (size_t i = 0; i < 4; ++i) sealer.seal(msgs[i].bytes, stream);
  put("frame", "wire-stream", frame_input(0, 0, 4, stream));
  const uint8_t too_long[] = {0xff, 0xff, 0xff, 0x7f, 0};
  put("frame", "wire-length-over-limit", frame_input(0, 0, 5, too_long));
}

void handshake_seeds() {
  const config::DerivedKeys& keys = fuzz::fixed_keys();
  proto::ClientHandshake client(keys.auth_key, fuzz::fixed_pair_id());
  const base::Bytes hello = client.client_hello();
  base::Bytes server_in = {0, static_cast<uint8_t>(hello.size())};
  server_in.insert(server_in.end(), hello.begin(), hello.end());
  server_in.resize(server_in.size() + proto::kClientFinishBytes, 0x5a);
  put("handshake", "server-client-hello-and-finish", server_in);

  proto::ServerHandshake server(keys.auth_key, fuzz::fixed_pair_id());
  base::Bytes reply;
  FUZZ_CHECK(server.on_client_hello(hello, reply).is_ok());
  base::Bytes client_in = {1};
  client_in.insert(client_in.end(), reply.begin(), reply.end());
  put("handshake", "client-server-hello", client_in);
  const base::Bytes busy = proto::ServerHandshake::refusal(proto::HelloStatus::busy);
  client_in = {1};
  client_in.insert(client_in.end(), busy.begin(), busy.end());
  put("handshake", "client-server-refusal", client_in);
}

void write_spool(const std::string& name, const std::vector<origin::Record>& records, uint64_t first_seq) {
  const std::string path = g_dir + "/spool/" + name;
  ::mkdir((g_dir + "/spool").c_str(), 0755);
  ::unlink(path.c_str());  // the writer refuses to overwrite: regenerating replaces
  auto w = origin::SpoolWriter::create(path, fuzz::fixed_pair_id(), first_seq, fuzz::fixed_keys().digest_key);
  FUZZ_CHECK(w.is_ok());
  for (const origin::Record& r : records) FUZZ_CHECK((*w)->append(r).is_ok());
  FUZZ_CHECK((*w)->finish().is_ok());
}

void spool_seeds() {
  const digest::DigestKey& key = fuzz::fixed_keys().digest_key;
  write_spool("empty", {}, 1);
  std::vector<origin::Record> rs;
  rs.push_back(origin::make_write(1, 1, 0, pattern(512, 3), key));
  rs.push_back(origin::make_extent(proto::MsgType::trim, 2, 1, 4096, 8192));
  rs.push_back(origin::make_barrier(3, 1));
  rs.push_back(origin::make_extent(proto::MsgType::zero, 4, 2, 512, 1024));
  rs.push_back(origin::make_write(5, 2, 1024, pattern(1536, 9), key));
  rs.push_back(origin::make_barrier(6, 2));
  write_spool("two-epochs", rs, 1);
  std::vector<origin::Record> later;
  later.push_back(origin::make_write(41, 9, 0, pattern(4096, 5), key));
  later.push_back(origin::make_extent(proto::MsgType::trim, 42, 9, 0, 512));  // open epoch at the end
  write_spool("resumed-unfinished-epoch", later, 41);
}

// The apply target's input (apply.cpp): a loaded-state byte, then operations.
struct ApplyScript {
  base::Bytes b;
  // The daemon's start records the disk's fingerprint (a commit): answered first.
  explicit ApplyScript(uint8_t loaded) : b{loaded, 5, 0} {}
  void hello(uint64_t log_end_seq, uint32_t flags = 0) {
    proto::Hello h;
    h.pair_id = fuzz::fixed_pair_id();
    h.flags = flags;
    h.disk_size_bytes = 1 << 20;  // the target's disk
    h.logical_block_bytes = 512;
    h.generation = 1;
    h.log_start_seq = 1;
    h.log_end_seq = log_end_seq;
    b.push_back(0);
    proto::encode_hello(h, b);
  }
  // kind: 0 write, 1 trim, 2 zero, 3 barrier; epoch_ahead 0 = the open epoch.
  void record(uint8_t kind, uint16_t offset_blocks, uint8_t length_blocks_minus_1, uint8_t epoch_ahead = 0) {
    b.insert(b.end(), {2, kind, 0, epoch_ahead, static_cast<uint8_t>(offset_blocks),
                       static_cast<uint8_t>(offset_blocks >> 8)});
    if (kind != 3) b.push_back(length_blocks_minus_1);  // a barrier has no length byte
  }
  void complete_io(uint8_t index) { b.insert(b.end(), {3, index, 0}); }
  void flush_done() { b.insert(b.end(), {4, 0}); }
  void commit_done() { b.insert(b.end(), {5, 0}); }
  void tick(uint8_t fives_ms) { b.insert(b.end(), {6, fives_ms}); }
  void end_session() { b.push_back(7); }
  void read_batch_done() { b.push_back(8); }
  void shutdown() { b.push_back(9); }
  // pick: generation (% 3 past the last), epoch (/ 3 % 3), extent size (/ 9 % 5).
  void resync_begin(uint8_t pick, uint8_t flags, int8_t seq_delta) {
    b.insert(b.end(), {10, pick, flags, static_cast<uint8_t>(seq_delta)});
  }
  // kind bit 0: zeros; `ahead` blocks past the last mark.
  void resync_extent(uint8_t kind, uint8_t ahead_blocks, uint8_t length_blocks_minus_1) {
    b.insert(b.end(), {11, kind, ahead_blocks, length_blocks_minus_1});
  }
  void resync_mark(uint8_t step_4k) { b.insert(b.end(), {12, step_4k}); }  // 0xff: the disk's end
  void resync_end() { b.insert(b.end(), {13, 0}); }
  void stage_done() { b.insert(b.end(), {15, 0}); }
  void power_cut(bool commit_lands) { b.insert(b.end(), {0xff, static_cast<uint8_t>(commit_lands ? 1 : 0)}); }
  // A resync's rest in one extent just above the last mark, written, then
  // the mark at the disk's end and the end.
  void resync_rest_and_end() {
    resync_extent(0, 0, 255);
    complete_io(0);
    resync_mark(0xff);
    resync_end();
  }
};

// A clone of generation 1 takes generation 2 in 4 KiB extents, at its log
// position and the next epoch: data, zeros, a mark, the rest, the end;
// staged, the copy to the disk. `cut`: the power fails once the store says
// "applying", as the copy starts; the next daemon finishes it alone.
void apply_resync_seed(uint8_t loaded, const char* name, bool cut = false) {
  ApplyScript a(loaded);
  a.hello(2, proto::kHelloMaintenance);
  a.resync_begin(13, 0, 32);
  a.stage_done();  // a staged resync opens its stage first
  a.commit_done();
  a.resync_extent(0, 0, 7);
  a.resync_extent(1, 8, 7);
  a.complete_io(0);
  a.complete_io(0);
  a.resync_mark(2);
  a.flush_done();
  a.stage_done();
  a.tick(4);
  a.commit_done();
  a.resync_rest_and_end();
  a.flush_done();
  a.stage_done();
  a.tick(4);
  a.commit_done();  // the last mark; in place the end's flush follows, staged the stage's sync
  a.flush_done();
  a.stage_done();
  a.tick(4);
  a.commit_done();  // staged: "applying", and the copy asked
  if (cut) {
    a.power_cut(false);
    a.stage_done();  // the next daemon opens the stage again
  }
  a.stage_done();  // the copy done
  a.tick(4);
  a.commit_done();
  put("apply", name, a.b);
}

// Generation 2 in place, the power cut after its first mark with an extent
// in flight; the next daemon loads the resync in progress and the
// original's begin (the same generation and target) resumes it to the end.
void apply_resync_cut_seed() {
  ApplyScript a(0);
  a.hello(2, proto::kHelloMaintenance);
  a.resync_begin(13, 0, 32);
  a.commit_done();
  a.resync_extent(0, 0, 7);
  a.complete_io(0);
  a.resync_mark(2);
  a.flush_done();
  a.tick(4);
  a.commit_done();
  a.resync_extent(0, 0, 15);
  a.power_cut(false);
  a.commit_done();  // the next daemon's fingerprint
  a.hello(2, proto::kHelloMaintenance);
  a.resync_begin(9, 0, 0);  // the clone is at record 2 of epoch 1 now: the same target
  a.commit_done();
  a.resync_rest_and_end();
  a.flush_done();
  a.tick(4);
  a.commit_done();  // the last mark
  a.flush_done();   // the end's
  a.tick(4);
  a.commit_done();  // generation 2 whole
  put("apply", "resync-in-place-power-cut", a.b);
}

void apply_seeds() {
  ApplyScript a(0);  // fresh clone: two epochs, overlapping writes, a reconnect
  a.hello(12);
  a.commit_done();  // the fingerprint invalid: the writes go
  a.record(0, 0, 7);
  a.record(0, 4, 3);  // overlaps the first: must wait for it
  a.record(1, 64, 15);
  a.record(3, 0, 0);
  a.read_batch_done();
  a.complete_io(0);
  a.complete_io(0);
  a.complete_io(0);
  a.flush_done();
  a.tick(4);
  a.commit_done();
  a.record(2, 128, 1);
  a.record(0, 2040, 7);
  a.end_session();
  a.complete_io(0);  // the dropped session's writes come back
  a.complete_io(0);
  a.hello(12);
  a.commit_done();  // a new fingerprint, then invalid again: the writes go
  a.commit_done();
  a.record(0, 8, 0);
  a.record(3, 0, 0);
  a.complete_io(0);
  a.flush_done();
  a.shutdown();
  a.tick(10);
  a.commit_done();
  put("apply", "fresh-two-epochs-reconnect", a.b);

  ApplyScript u(1);  // after an unclean stop: catch-up while inconsistent
  u.hello(30);
  u.commit_done();  // catching up
  u.commit_done();  // the fingerprint invalid: the writes go
  // Four blocks and a barrier: what the driver's 64 KiB of held records take
  // (with each record's overhead) before it stops reading.
  for (uint8_t i = 0; i < 4; ++i) u.record(0, static_cast<uint16_t>(i * 16), 0);
  u.record(3, 0, 0);
  u.read_batch_done();
  for (int i = 0; i < 4; ++i) u.complete_io(0);
  u.tick(4);
  u.commit_done();
  u.flush_done();
  u.tick(4);
  u.commit_done();
  put("apply", "unclean-stop-catch-up", u.b);

  apply_resync_seed(0, "resync-in-place");
  apply_resync_seed(5, "resync-staged");  // consistent, staging on
  apply_resync_seed(5, "resync-staged-power-cut-applying", true);
  apply_resync_cut_seed();
}

// fuzz/hwhealth.cpp: an ATA SMART data page and its thresholds
// page (the target fixes the checksums), and an NVMe SMART log. ATA layout:
// revision u16, then 30 slots of 12 bytes (id, flags u16, value, worst, raw
// 6 bytes, reserved); thresholds: revision, then 30 slots (id, threshold).
void hwhealth_seeds() {
  base::Bytes ata(1024, 0);
  ata[0] = 0x10;
  const uint8_t attrs[][5] = {{5, 100, 100, 0, 0}, {9, 98, 98, 0x10, 0x27}, {194, 64, 52, 36, 0}, {197, 100, 100, 2, 0}};
  for (size_t i = 0; i < 4; ++i) {
    uint8_t* slot = ata.data() + 2 + 12 * i;
    slot[0] = attrs[i][0];
    slot[1] = 0x33;  // pre-failure, online
    slot[3] = attrs[i][1];
    slot[4] = attrs[i][2];
    slot[5] = attrs[i][3];
    slot[6] = attrs[i][4];
    uint8_t* threshold = ata.data() + 512 + 2 + 12 * i;
    threshold[0] = attrs[i][0];
    threshold[1] = 10;
  }
  ata[512] = 0x10;
  put("hwhealth", "ata-data-and-thresholds", ata);
  base::Bytes nvme(512, 0);
  nvme[1] = 0x3b;  // 315 K
  nvme[2] = 0x01;
  nvme[3] = 100;   // available spare %
  nvme[4] = 10;    // its threshold
  nvme[5] = 3;     // percentage used
  put("hwhealth", "nvme-smart-log", nvme);
}

void message_seeds(const std::vector<Named>& msgs) {
  for (const Named& m : msgs) put("messages", m.name, m.bytes);
}

}  // namespace

// Small dm-log-writes logs: every kind of entry, both sector sizes, a mark.
void log_writes_seeds() {
  for (uint32_t sector : {512u, 4096u}) {
    base::Bytes log;
    uint64_t entries = 0;
    auto header = [&](uint64_t first, uint64_t nr, uint64_t flags, uint64_t data_len, const std::string& name) {
      base::Bytes h;
      base::ByteWriter w(h);
      w.u64(first);
      w.u64(nr);
      w.u64(flags);
      w.u64(data_len);
      h.insert(h.end(), name.begin(), name.end());
      h.resize(sector, 0);
      log.insert(log.end(), h.begin(), h.end());
      ++entries;
    };
    header(2, 2, 0, 2ull * sector, "");
    log.resize(log.size() + 2ull * sector, 0x5a);
    header(0, 0, 1, 0, "");                    // flush
    header(8, 4, 4, 0, "");                    // discard
    header(16, 1, 2, sector, "");              // FUA write
    log.resize(log.size() + sector, 0xa5);
    header(0, 0, 8, 14, "before-upgrade");     // mark
    header(24, 1, 1, sector, "");              // preflush write
    log.resize(log.size() + sector, 0x33);
    base::Bytes file;
    base::ByteWriter w(file);
    w.u64(0x6a736677736872ull);
    w.u64(1);
    w.u64(entries);
    w.u32(sector);
    file.resize(sector, 0);
    file.insert(file.end(), log.begin(), log.end());
    put("log_writes", "every-kind-" + std::to_string(sector), file);
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
  }
  g_dir = argv[1];
  ::mkdir(g_dir.c_str(), 0755);
  const std::vector<Named> msgs = messages();
  message_seeds(msgs);
  frame_seeds(msgs);
  handshake_seeds();
  spool_seeds();
  apply_seeds();
  hwhealth_seeds();
  log_writes_seeds();
  return 0;
}
