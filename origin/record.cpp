// SPDX-License-Identifier: MIT
#include "origin/record.h"

#include <algorithm>
#include <cassert>
#include <vector>

namespace origin {

base::ByteSpan Record::payload() const {
  if (header.type != proto::MsgType::write || plain.size() < proto::kWriteHeaderBytes) return {};
  return base::ByteSpan(plain).subspan(proto::kWriteHeaderBytes);
}

uint64_t Record::data_bytes() const { return header.type == proto::MsgType::barrier ? 0 : header.length_bytes; }

Record begin_write(uint64_t seq, uint64_t epoch, uint64_t offset_bytes, uint32_t length_bytes) {
  assert(length_bytes > 0 && length_bytes <= proto::kMaxWritePayloadBytes);
  Record r;
  r.header.type = proto::MsgType::write;
  r.header.seq = seq;
  r.header.epoch = epoch;
  r.header.offset_bytes = offset_bytes;
  r.header.length_bytes = length_bytes;
  r.plain.resize(proto::kWriteHeaderBytes + length_bytes);
  return r;
}

base::MutableByteSpan payload_of(Record& record) {
  assert(record.header.type == proto::MsgType::write);
  return base::MutableByteSpan(record.plain).subspan(proto::kWriteHeaderBytes);
}

namespace {

void seal_with(Record& record, const digest::Digest& digest) {
  assert(record.plain.size() == proto::kWriteHeaderBytes + record.header.length_bytes);
  record.header.digest = digest;
  proto::encode_write_header(record.header, record.plain.data());
}

}  // namespace

void seal_write(Record& record, const digest::DigestKey& digest_key) {
  seal_with(record, digest::keyed_digest(digest_key, record.payload()));
}

void seal_writes(std::span<Record* const> records, const digest::DigestKey& digest_key) {
  std::vector<base::ByteSpan> payloads;
  payloads.reserve(records.size());
  for (const Record* r : records)
    if (r->header.type == proto::MsgType::write) payloads.push_back(r->payload());
  std::vector<digest::Digest> digests(payloads.size());
  digest::keyed_digests(digest_key, payloads, digests);
  size_t i = 0;
  for (Record* r : records)
    if (r->header.type == proto::MsgType::write) seal_with(*r, digests[i++]);
}

Record make_write(uint64_t seq, uint64_t epoch, uint64_t offset_bytes, base::ByteSpan payload,
                  const digest::DigestKey& digest_key) {
  Record r = begin_write(seq, epoch, offset_bytes, static_cast<uint32_t>(payload.size()));
  base::MutableByteSpan dst = payload_of(r);
  std::copy(payload.begin(), payload.end(), dst.begin());
  seal_write(r, digest_key);
  return r;
}

Record make_extent(proto::MsgType type, uint64_t seq, uint64_t epoch, uint64_t offset_bytes, uint64_t length_bytes) {
  assert(type == proto::MsgType::trim || type == proto::MsgType::zero);
  Record r;
  r.header.type = type;
  r.header.seq = seq;
  r.header.epoch = epoch;
  r.header.offset_bytes = offset_bytes;
  r.header.length_bytes = length_bytes;
  proto::encode_record(r.header, {}, r.plain);
  return r;
}

Record make_barrier(uint64_t seq, uint64_t epoch, std::string_view mark) {
  Record r;
  r.header.type = proto::MsgType::barrier;
  r.header.seq = seq;
  r.header.epoch = epoch;
  if (!mark.empty()) {
    assert(proto::is_valid_mark_name(mark));
    r.header.flags = proto::kBarrierFlagMark;
  }
  proto::encode_record(r.header, base::ByteSpan(reinterpret_cast<const uint8_t*>(mark.data()), mark.size()), r.plain);
  return r;
}

bool is_record_type(proto::MsgType type) {
  return type == proto::MsgType::write || type == proto::MsgType::trim || type == proto::MsgType::zero ||
         type == proto::MsgType::barrier;
}

const char* record_type_name(proto::MsgType type) {
  switch (type) {
    case proto::MsgType::write:
      return "write";
    case proto::MsgType::trim:
      return "trim";
    case proto::MsgType::zero:
      return "zero";
    case proto::MsgType::barrier:
      return "barrier";
    default:
      return "non-record";
  }
}

}  // namespace origin
