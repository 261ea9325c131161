// SPDX-License-Identifier: MIT
// Fuzz target: the commit-log spool reader (origin/spool.h). The input is a
// spool file; the target writes it to a scratch file and reads it twice, with
// SpoolReader record by record and with scan_spool, which must agree.
//
// Random bytes never carry a valid keyed digest, so the reader would refuse
// every mutated entry at its digest and nothing behind it would be fuzzed.
// Hence a second pass over a re-signed copy: the target recomputes each
// entry's digest (and a write record's payload digest) with the fixed pair's
// key, as the writer would have, and reads that too. What the digests guard
// (lengths, record decoding, sequence and epoch rules, truncation) then meets
// the fuzzer's bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz/fuzz_support.h"
#include "origin/spool.h"

namespace {

// Signs what it can: stops at the first entry whose length is out of range
// or runs past the end, exactly where the reader stops too.
void resign(base::Bytes& file, const digest::DigestKey& key) {
  size_t at = origin::kSpoolHeaderBytes;
  while (file.size() >= at + origin::kSpoolEntryLengthBytes) {
    const uint32_t n = base::load_le32(file.data() + at);
    if (n == 0 || n > origin::kSpoolEntryBytesMax) return;
    const size_t end = at + origin::kSpoolEntryLengthBytes + n + origin::kSpoolEntryDigestBytes;
    if (end > file.size()) return;
    uint8_t* record = file.data() + at + origin::kSpoolEntryLengthBytes;
    if (record[0] == static_cast<uint8_t>(proto::MsgType::write) && n > proto::kWriteHeaderBytes) {
      const digest::Digest d = digest::keyed_digest(
          key, base::ByteSpan(record + proto::kWriteHeaderBytes, n - proto::kWriteHeaderBytes));
      std::memcpy(record + 32, d.data(), d.size());  // the digest field of a write header
    }
    const digest::Digest d =
        digest::keyed_digest(key, base::ByteSpan(file.data() + at, origin::kSpoolEntryLengthBytes + n));
    std::memcpy(record + n, d.data(), d.size());
    at = end;
  }
}

void read_spool(const std::string& path) {
  const config::DerivedKeys& keys = fuzz::fixed_keys();
  const proto::PairId pair = fuzz::fixed_pair_id();
  base::Result<std::unique_ptr<origin::SpoolReader>> reader = origin::SpoolReader::open(path, pair, keys.digest_key);
  const base::Result<origin::SpoolSummary> summary = origin::scan_spool(path, pair, keys.digest_key);
  if (!reader) {
    FUZZ_CHECK(!summary);
    return;
  }
  uint64_t count = 0, last_seq = (*reader)->header().first_seq - 1, data_bytes = 0;
  bool barrier_last = false;
  bool clean = false;
  for (;;) {
    origin::Record r;
    bool has = false;
    if (!(*reader)->next(r, has).is_ok()) break;
    if (!has) {
      clean = true;
      break;
    }
    // What the reader hands out is a record a replay may send as it is.
    FUZZ_CHECK(r.header.seq == last_seq + 1);
    FUZZ_CHECK(r.plain.size() <= origin::kSpoolEntryBytesMax);
    proto::RecordHeader h;
    base::ByteSpan payload;
    FUZZ_CHECK(proto::decode_record(r.plain, h, payload).is_ok() && h.seq == r.header.seq);
    ++count;
    last_seq = r.header.seq;
    data_bytes += r.data_bytes();
    barrier_last = r.header.type == proto::MsgType::barrier;
  }
  FUZZ_CHECK(bool(summary) == clean);
  if (summary) {
    FUZZ_CHECK(summary->record_count == count && summary->last_seq == last_seq);
    FUZZ_CHECK(summary->data_bytes == data_bytes && summary->ends_with_barrier == barrier_last);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::ScratchFile file(".spool");
  read_spool(file.write(data, size));
  base::Bytes signed_copy(data, data + size);
  resign(signed_copy, fuzz::fixed_keys().digest_key);
  if (size != 0 && std::memcmp(signed_copy.data(), data, size) != 0)
    read_spool(file.write(signed_copy.data(), signed_copy.size()));
  return 0;
}
