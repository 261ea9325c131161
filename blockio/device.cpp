// SPDX-License-Identifier: MIT
// BlockDevice's defaults for what a device may do better.
#include <algorithm>

#include "base/aligned_buffer.h"
#include "blockio/device.h"

namespace blockio {

base::Status BlockDevice::read_each(uint64_t offset_bytes, uint64_t length_bytes, uint64_t piece_bytes,
                                    const PieceConsumer& consume) {
  base::AlignedBuffer buf(static_cast<size_t>(std::min(piece_bytes, length_bytes)));
  for (uint64_t done = 0; done < length_bytes;) {
    const uint64_t n = std::min(piece_bytes, length_bytes - done);
    const base::MutableByteSpan span(buf.data(), n);
    BASE_TRY(read(offset_bytes + done, span));
    consume(offset_bytes + done, base::ByteSpan(span.data(), span.size()));
    done += n;
  }
  return base::Status::ok();
}

}  // namespace blockio
