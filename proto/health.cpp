// SPDX-License-Identifier: MIT
// The health messages (docs/PROTOCOL.md, "health_report", "health_ack").
#include <cassert>

#include "proto/codec_internal.h"
#include "proto/messages.h"

namespace proto {
namespace {

using codec::check_fixed;
using codec::malformed;
using codec::too_large;
using codec::u64s;

inline constexpr size_t kHealthReportHeaderBytes = 1 + 8 + 4;
inline constexpr size_t kHealthAckBytes = 1 + 8;

}  // namespace

void encode_health_report(uint64_t id, base::ByteSpan report, base::Bytes& out) {
  assert(report.size() <= kMaxHealthReportBytes);
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::health_report));
  w.u64(id);
  w.u32(static_cast<uint32_t>(report.size()));
  w.raw(report);
}

void encode_health_ack(uint64_t id, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::health_ack));
  w.u64(id);
}

base::Status decode_health_report(base::ByteSpan msg, uint64_t& id, base::ByteSpan& report) {
  if (msg.empty() || msg[0] != static_cast<uint8_t>(MsgType::health_report))
    return malformed("health_report", "the type byte is not 32");
  base::ByteReader r(msg);
  r.u8();
  const uint64_t read_id = r.u64();
  const uint32_t length = r.u32();
  if (!r.ok())
    return malformed("health_report", u64s(msg.size()) + " bytes is shorter than its " +
                                          u64s(kHealthReportHeaderBytes) + "-byte header");
  if (length > kMaxHealthReportBytes)
    return too_large("health_report", "a report of " + u64s(length) + " bytes is over the limit of " +
                                          u64s(kMaxHealthReportBytes));
  if (r.remaining() != length)
    return malformed("health_report", "length " + u64s(length) + " does not match the " + u64s(r.remaining()) +
                                          " bytes that follow");
  if (read_id == 0) return malformed("health_report", "id 0 is not a report id");
  id = read_id;
  report = r.rest();
  return base::Status::ok();
}

base::Status decode_health_ack(base::ByteSpan msg, uint64_t& id) {
  BASE_TRY(check_fixed(msg, MsgType::health_ack, kHealthAckBytes, "health_ack"));
  base::ByteReader r(msg);
  r.u8();
  id = r.u64();
  return base::Status::ok();
}

}  // namespace proto
