// SPDX-License-Identifier: MIT
#include "origin/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <algorithm>
#include <cstring>

#include "base/file_io.h"
#include "base/units.h"

namespace origin {

using base::u64s;

namespace {

base::ByteSpan entry_digest_input(base::ByteSpan entry, size_t record_bytes) {
  return entry.first(kSpoolEntryLengthBytes + record_bytes);
}

// A whole entry's record bytes, between its length and its digest.
base::ByteSpan entry_record(base::ByteSpan entry) {
  return entry.subspan(kSpoolEntryLengthBytes, entry.size() - kSpoolEntryLengthBytes - kSpoolEntryDigestBytes);
}

}  // namespace

// ------------------------------------------------------------------ writer

SpoolWriter::SpoolWriter(base::UniqueFd fd, std::string path, uint64_t first_seq, const digest::DigestKey& key)
    : fd_(std::move(fd)), path_(std::move(path)), next_seq_(first_seq), digest_key_(key) {}

SpoolWriter::~SpoolWriter() = default;

base::Result<std::unique_ptr<SpoolWriter>> SpoolWriter::create(const std::string& path, const proto::PairId& pair_id,
                                                               uint64_t first_seq,
                                                               const digest::DigestKey& digest_key) {
  assert(first_seq >= 1);
  base::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) {
    if (errno == EEXIST)
      return base::Status::error(EEXIST, "spool " + path + " already exists; a spool is never overwritten: "
                                         "replay it, or remove it, or choose another path.");
    return base::Status::from_errno("cannot create spool " + path);
  }
  std::unique_ptr<SpoolWriter> w(new SpoolWriter(std::move(fd), path, first_seq, digest_key));
  base::Bytes header;
  base::ByteWriter out(header);
  out.raw(kSpoolMagic, sizeof kSpoolMagic);
  out.u32(kSpoolVersion);
  out.raw(pair_id.data(), pair_id.size());
  out.u64(first_seq);
  assert(header.size() == kSpoolHeaderBytes);
  BASE_TRY(w->write_all(header));
  return w;
}

// The spool grows at its end only: offset_bytes_ is where the next byte goes.
base::Status SpoolWriter::write_all(const base::Bytes& bytes) {
  BASE_TRY(base::pwrite_full(fd_.get(), bytes, offset_bytes_).with_context("cannot write spool " + path_));
  offset_bytes_ += bytes.size();
  return base::Status::ok();
}

base::Status SpoolWriter::append(const Record& record) {
  assert(fd_.valid());
  assert(record.header.seq == next_seq_);
  assert(!record.plain.empty() && record.plain.size() <= kSpoolEntryBytesMax);
  const size_t n = record.plain.size();
  entry_.resize(kSpoolEntryLengthBytes + n + kSpoolEntryDigestBytes);
  base::store_le32(entry_.data(), static_cast<uint32_t>(n));
  std::memcpy(entry_.data() + kSpoolEntryLengthBytes, record.plain.data(), n);
  const digest::Digest d = digest::keyed_digest(digest_key_, entry_digest_input(entry_, n));
  std::memcpy(entry_.data() + kSpoolEntryLengthBytes + n, d.data(), d.size());
  BASE_TRY(write_all(entry_));
  ++next_seq_;
  return base::Status::ok();
}

base::Status SpoolWriter::finish() {
  assert(fd_.valid());
  const int fd = fd_.release();  // closed here, where a failed close is an error
  if (::fdatasync(fd) != 0) {
    base::Status s = base::Status::from_errno("cannot make spool " + path_ + " durable (fdatasync)");
    ::close(fd);
    return s;
  }
  if (::close(fd) != 0) return base::Status::from_errno("cannot close spool " + path_);
  return base::Status::ok();
}

// ------------------------------------------------------------------ reader

SpoolReader::SpoolReader(base::UniqueFd fd, std::string path, const digest::DigestKey& key)
    : fd_(std::move(fd)), path_(std::move(path)), digest_key_(key) {}

SpoolReader::~SpoolReader() = default;

base::Result<std::unique_ptr<SpoolReader>> SpoolReader::open(const std::string& path, const proto::PairId& pair_id,
                                                             const digest::DigestKey& digest_key,
                                                             bool payload_digests) {
  base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return base::Status::from_errno("cannot open spool " + path);
  std::unique_ptr<SpoolReader> r(new SpoolReader(std::move(fd), path, digest_key));
  r->payload_digests_ = payload_digests;
  BASE_TRY(r->read_header(pair_id));
  return r;
}

// The spool is read front to back: offset_bytes_ is where the next byte is.
base::Status SpoolReader::read_exact(uint8_t* out, size_t n, size_t& got) {
  got = 0;
  while (got < n) {
    if (buf_used_ == buf_.size()) {
      buf_offset_ += buf_.size();
      buf_.resize(kReadBytes);
      base::Result<size_t> k =
          base::pread_upto(fd_.get(), base::MutableByteSpan(buf_.data(), buf_.size()), buf_offset_);
      if (!k) return k.status().with_context("cannot read spool " + path_);
      buf_.resize(*k);
      buf_used_ = 0;
      if (*k == 0) break;  // end of file
    }
    const size_t take = std::min(n - got, buf_.size() - buf_used_);
    std::memcpy(out + got, buf_.data() + buf_used_, take);
    buf_used_ += take;
    got += take;
  }
  offset_bytes_ += got;
  return base::Status::ok();
}

base::Status SpoolReader::corrupt(uint64_t entry_offset, const std::string& what) const {
  return base::Status::error(EBADMSG, "spool " + path_ + " is corrupt at byte offset " + u64s(entry_offset) + ": " +
                                          what + "; nothing from there on can be used (records before it are intact).");
}

base::Status SpoolReader::read_header(const proto::PairId& pair_id) {
  uint8_t h[kSpoolHeaderBytes];
  size_t got = 0;
  BASE_TRY(read_exact(h, sizeof h, got));
  if (got < sizeof h || std::memcmp(h, kSpoolMagic, sizeof kSpoolMagic) != 0)
    return base::Status::error(EBADMSG, "file " + path_ + " is not a clone-origin spool (no CLNSPOOL header at byte offset 0).");
  base::ByteReader in(base::ByteSpan(h, sizeof h).subspan(sizeof kSpoolMagic));
  header_.version = in.u32();
  in.raw(header_.pair_id.data(), header_.pair_id.size());
  header_.first_seq = in.u64();
  if (header_.version != kSpoolVersion)
    return base::Status::error(EBADMSG, "spool " + path_ + " has version " + u64s(header_.version) +
                                            " at byte offset 8; this clone-origin reads version 1 only.");
  if (header_.pair_id != pair_id)
    return base::Status::error(EBADMSG, "spool " + path_ + " belongs to another pair (pair id at byte offset 12 is " +
                                            base::to_hex(header_.pair_id) + "); replay it with that pair's config.");
  if (header_.first_seq == 0) return corrupt(28, "the first sequence number is 0 (records start at 1)");
  next_seq_ = header_.first_seq;
  return base::Status::ok();
}

base::Status SpoolReader::next(Record& out, bool& has_record) {
  has_record = false;
  if (ahead_next_ == ahead_count_) {
    if (!ahead_error_.is_ok()) return ahead_error_;
    if (at_end_) return base::Status::ok();
    fill_ahead();
    if (ahead_count_ == 0) return ahead_error_;  // ok at a clean end
  }
  BASE_TRY(check_entry(ahead_[ahead_next_++], out));
  has_record = true;
  ++next_seq_;
  return base::Status::ok();
}

void SpoolReader::fill_ahead() {
  ahead_count_ = 0;
  ahead_next_ = 0;
  size_t bytes = 0;  // of arena_ in use
  while (ahead_count_ < kAheadEntries && bytes < kAheadBytes) {
    const uint64_t entry_offset = offset_bytes_;
    uint8_t len_bytes[kSpoolEntryLengthBytes];
    size_t got = 0;
    if (base::Status s = read_exact(len_bytes, sizeof len_bytes, got); !s.is_ok()) {
      ahead_error_ = std::move(s);
      break;
    }
    if (got == 0) {
      at_end_ = true;  // a clean end
      break;
    }
    if (got < sizeof len_bytes) {
      ahead_error_ = corrupt(entry_offset, "the file ends inside an entry's length (truncated)");
      break;
    }
    const uint32_t n = base::load_le32(len_bytes);
    if (n == 0 || n > kSpoolEntryBytesMax) {
      ahead_error_ = corrupt(entry_offset, "entry length " + u64s(n) + " is outside 1.." + u64s(kSpoolEntryBytesMax));
      break;
    }
    if (ahead_.size() == ahead_count_) ahead_.emplace_back();
    Ahead& a = ahead_[ahead_count_];
    a.offset = entry_offset;
    a.at = bytes;
    a.bytes = kSpoolEntryLengthBytes + n + kSpoolEntryDigestBytes;
    if (arena_.size() < a.at + a.bytes) arena_.resize(a.at + a.bytes);  // grows to one batch, once
    std::memcpy(arena_.data() + a.at, len_bytes, sizeof len_bytes);
    if (base::Status s = read_exact(arena_.data() + a.at + kSpoolEntryLengthBytes, n + kSpoolEntryDigestBytes, got);
        !s.is_ok()) {
      ahead_error_ = std::move(s);
      break;
    }
    if (got < n + kSpoolEntryDigestBytes) {
      ahead_error_ = corrupt(entry_offset, "the file ends inside an entry of " + u64s(n) + " bytes (truncated)");
      break;
    }
    ++ahead_count_;
    bytes += a.bytes;
  }
  check_digests();
}

// Every entry digest of the batch, then every write's payload digest (of
// entries whose own digest matched: the others are refused as they are).
void SpoolReader::check_digests() {
  std::vector<base::ByteSpan> pieces;
  for (size_t i = 0; i < ahead_count_; ++i) {
    const base::ByteSpan e = entry_of(ahead_[i]);
    pieces.push_back(entry_digest_input(e, entry_record(e).size()));
  }
  std::vector<digest::Digest> got(pieces.size());
  digest::keyed_digests(digest_key_, pieces, got);
  std::vector<size_t> writes;  // of ahead_, and each one's payload digest as its record says
  std::vector<digest::Digest> want;
  pieces.clear();
  for (size_t i = 0; i < ahead_count_; ++i) {
    Ahead& a = ahead_[i];
    const base::ByteSpan e = entry_of(a);
    digest::Digest stored;
    std::memcpy(stored.data(), e.data() + e.size() - stored.size(), stored.size());
    a.entry_ok = digest::digest_equal(stored, got[i]);
    a.payload_ok = true;
    if (!a.entry_ok || !payload_digests_) continue;
    const base::ByteSpan plain = entry_record(e);
    base::Result<proto::MsgType> type = proto::peek_type(plain);
    proto::RecordHeader h;
    base::ByteSpan payload;
    if (!type || *type != proto::MsgType::write || !proto::decode_record(plain, h, payload).is_ok()) continue;
    writes.push_back(i);
    want.push_back(h.digest);
    pieces.push_back(payload);
  }
  std::vector<digest::Digest> got_payload(pieces.size());
  digest::keyed_digests(digest_key_, pieces, got_payload);
  for (size_t k = 0; k < writes.size(); ++k)
    ahead_[writes[k]].payload_ok = digest::digest_equal(want[k], got_payload[k]);
}

base::Status SpoolReader::check_entry(const Ahead& a, Record& out) {
  if (!a.entry_ok) return corrupt(a.offset, "the entry's digest does not match its bytes");
  const base::ByteSpan plain = entry_record(entry_of(a));
  base::Result<proto::MsgType> type = proto::peek_type(plain);
  if (!type || !is_record_type(*type)) return corrupt(a.offset, "the entry is not a log record");
  proto::RecordHeader h;
  base::ByteSpan payload;
  if (base::Status s = proto::decode_record(plain, h, payload); !s.is_ok())
    return corrupt(a.offset, "the record does not decode (" + s.message() + ")");
  if (!a.payload_ok)
    return corrupt(a.offset, "the payload of write record " + u64s(h.seq) + " does not match its digest");
  if (h.seq != next_seq_)
    return corrupt(a.offset, "record " + u64s(h.seq) + " stands where record " + u64s(next_seq_) + " belongs");
  if (open_epoch_ != 0 && h.epoch != open_epoch_)
    return corrupt(a.offset, "record " + u64s(h.seq) + " belongs to epoch " + u64s(h.epoch) + " but epoch " +
                                 u64s(open_epoch_) + " is open");
  open_epoch_ = h.type == proto::MsgType::barrier ? h.epoch + 1 : h.epoch;
  out.header = h;
  out.plain.assign(plain.begin(), plain.end());
  return base::Status::ok();
}

// ------------------------------------------------------------------ scan

base::Result<SpoolSummary> scan_spool(const std::string& path, const proto::PairId& pair_id,
                                      const digest::DigestKey& digest_key) {
  base::Result<std::unique_ptr<SpoolReader>> reader = SpoolReader::open(path, pair_id, digest_key);
  if (!reader) return reader.status();
  SpoolSummary sum;
  sum.first_seq = (*reader)->header().first_seq;
  sum.last_seq = sum.first_seq - 1;
  Record r;
  for (;;) {
    bool has = false;
    BASE_TRY((*reader)->next(r, has));
    if (!has) break;
    sum.last_seq = r.header.seq;
    ++sum.record_count;
    sum.data_bytes += r.data_bytes();
    sum.ends_with_barrier = r.header.type == proto::MsgType::barrier;
  }
  return sum;
}

}  // namespace origin
