// SPDX-License-Identifier: MIT
// The commit-log spool file: the original's commit log on disk, append-only
// (docs/PROTOCOL.md, "Commit-log spool file"). A capture writes it; a replay
// reads it back and sends its records.
//
//   header: "CLNSPOOL" | u32 version (1) | pair id (16 B) | u64 first_seq
//   entry:  u32 length L | L record bytes | 32-byte keyed BLAKE2b of (L, bytes)
//
// The record bytes are exactly a record's protocol encoding. The entry digest
// is keyed with the pair's digest key, like the payload digests inside the
// write records, so a spool rotting on a cheap USB stick is caught twice.
//
// Threading: a writer or reader is used by one thread at a time. Each owns
// its file descriptor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"
#include "digest/digest.h"
#include "proto/messages.h"
#include "origin/record.h"

namespace origin {

inline constexpr char kSpoolMagic[8] = {'C', 'L', 'N', 'S', 'P', 'O', 'O', 'L'};
inline constexpr uint32_t kSpoolVersion = 1;
inline constexpr size_t kSpoolHeaderBytes = 8 + 4 + proto::kPairIdBytes + 8;  // 36
inline constexpr size_t kSpoolEntryLengthBytes = 4;
inline constexpr size_t kSpoolEntryDigestBytes = digest::kDigestBytes;
// A record encoding is at most one frame's plaintext.
inline constexpr uint32_t kSpoolEntryBytesMax = proto::kMaxFramePlainBytes;
static_assert(kSpoolHeaderBytes == 36);

class SpoolWriter {
 public:
  // Creates a new spool (refuses an existing file: a spool is never
  // overwritten) whose first record will be `first_seq`.
  static base::Result<std::unique_ptr<SpoolWriter>> create(const std::string& path, const proto::PairId& pair_id,
                                                           uint64_t first_seq, const digest::DigestKey& digest_key);
  ~SpoolWriter();
  SpoolWriter(const SpoolWriter&) = delete;
  SpoolWriter& operator=(const SpoolWriter&) = delete;

  // Appends the next record (seq must follow the previous one: asserted).
  base::Status append(const Record& record);
  // Makes the file durable (fdatasync) and closes it.
  base::Status finish();
  uint64_t next_seq() const { return next_seq_; }
  uint64_t size_bytes() const { return offset_bytes_; }

 private:
  SpoolWriter(base::UniqueFd fd, std::string path, uint64_t first_seq, const digest::DigestKey& key);
  base::Status write_all(const base::Bytes& bytes);

  base::UniqueFd fd_;
  std::string path_;
  uint64_t next_seq_;
  uint64_t offset_bytes_ = 0;
  digest::DigestKey digest_key_;
  base::Bytes entry_;  // reused for each entry
};

struct SpoolHeader {
  uint32_t version = kSpoolVersion;
  proto::PairId pair_id{};
  uint64_t first_seq = 0;
};

class SpoolReader {
 public:
  // Opens and checks the header: magic, version, and that the spool belongs
  // to `pair_id`. `payload_digests` false: next() does not re-hash a write's
  // payload against its record's digest, for a pass over a spool that a
  // pass with them already validated whole (replay's second pass): the keyed
  // entry digest still binds every byte to what that pass read, and the
  // clone checks each payload's digest again before it writes.
  static base::Result<std::unique_ptr<SpoolReader>> open(const std::string& path, const proto::PairId& pair_id,
                                                         const digest::DigestKey& digest_key,
                                                         bool payload_digests = true);
  ~SpoolReader();
  SpoolReader(const SpoolReader&) = delete;
  SpoolReader& operator=(const SpoolReader&) = delete;

  // The next record, validated: entry length within limits (checked before
  // allocating), entry digest, the record decodes, a write's payload digest,
  // its seq is the next one and its epoch the open one. `has_record` is
  // false at a clean end of file.
  // An error names the file and the byte offset of the bad entry; every
  // record before that entry has been handed out first.
  //
  // Entries are read ahead in batches (up to kAheadEntries, or kAheadBytes
  // and at least one), and a batch's digests are computed together, side by
  // side in SIMD lanes (digest::keyed_digests): a spool of small records
  // shares one entry length, and hashing is most of a replay's work.
  base::Status next(Record& out, bool& has_record);
  const SpoolHeader& header() const { return header_; }
  uint64_t next_seq() const { return next_seq_; }

  static constexpr size_t kAheadEntries = 64;
  static constexpr size_t kAheadBytes = 8u << 20;

 private:
  // An entry read ahead, with what its batch's digests found.
  struct Ahead {
    uint64_t offset = 0;    // of its first byte in the file
    size_t at = 0;          // its bytes (length, record bytes, entry digest) in arena_
    size_t bytes = 0;
    bool entry_ok = false;  // the entry digest matches
    bool payload_ok = true; // not a write, not checked, or its payload matches its digest
  };
  base::ByteSpan entry_of(const Ahead& a) const { return {arena_.data() + a.at, a.bytes}; }
  SpoolReader(base::UniqueFd fd, std::string path, const digest::DigestKey& key);
  base::Status read_header(const proto::PairId& pair_id);
  // Reads exactly n bytes; `got` tells how many arrived before end of file.
  // Through buf_: one pread per kReadBytes, not two per entry.
  base::Status read_exact(uint8_t* out, size_t n, size_t& got);
  static constexpr size_t kReadBytes = 256 * 1024;
  base::Status corrupt(uint64_t entry_offset, const std::string& what) const;
  // Reads the next batch into ahead_ and checks its digests. It stops at
  // the end of the file (at_end_) or before an entry it cannot read whole
  // (ahead_error_ says why; next() reports it after the entries before it).
  void fill_ahead();
  void check_digests();
  base::Status check_entry(const Ahead& a, Record& out);

  base::UniqueFd fd_;
  std::string path_;
  digest::DigestKey digest_key_;
  SpoolHeader header_;
  uint64_t offset_bytes_ = 0;  // of the next byte read_exact reads
  uint64_t next_seq_ = 0;
  uint64_t open_epoch_ = 0;  // epoch the next record must carry; 0 before the first
  bool payload_digests_ = true;
  // ahead_[ahead_next_, ahead_count_) are read and not yet handed out; their
  // bytes lie back to back in arena_, which holds one batch (kAheadBytes
  // and at most one entry more) and is reused for the next.
  std::vector<Ahead> ahead_;
  base::Bytes arena_;
  size_t ahead_count_ = 0;
  size_t ahead_next_ = 0;
  base::Status ahead_error_;
  bool at_end_ = false;
  // The file's bytes from buf_offset_ on, buf_used_ of them handed out.
  base::Bytes buf_;
  uint64_t buf_offset_ = 0;
  size_t buf_used_ = 0;
};

// Everything a replay must know before its first byte is sent, from one full
// validating pass: the first and last seqs and whether the last is a barrier.
struct SpoolSummary {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;        // first_seq - 1 when empty
  uint64_t record_count = 0;
  uint64_t data_bytes = 0;      // write payloads + trim/zero extents
  bool ends_with_barrier = false;
};
base::Result<SpoolSummary> scan_spool(const std::string& path, const proto::PairId& pair_id,
                                      const digest::DigestKey& digest_key);

}  // namespace origin
