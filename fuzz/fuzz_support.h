// SPDX-License-Identifier: MIT
// What the fuzz targets share: the fixed pairing material (so that seeds made
// by make_corpus authenticate and digest correctly inside the targets), a
// check that aborts whatever NDEBUG says, and a reusable temporary file for
// the targets whose code under test reads a path.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/bytes.h"
#include "config/config.h"
#include "proto/handshake.h"
#include "proto/messages.h"

namespace fuzz {

// A failed check is a finding: libFuzzer saves the input on abort().
#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

// The pair every target and every seed belongs to. Derived like a real pair's
// keys (config::derive_keys), so a spool written by `clone-origin capture`
// with this secret is a valid seed too.
inline config::PairSecret fixed_secret() {
  config::PairSecret s;
  for (size_t i = 0; i < s.bytes.size(); ++i) s.bytes[i] = static_cast<uint8_t>(0xa0 + i);
  return s;
}

inline const config::DerivedKeys& fixed_keys() {
  static const config::DerivedKeys keys = config::derive_keys(fixed_secret());
  return keys;
}

inline proto::PairId fixed_pair_id() {
  proto::PairId id;
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(0x10 + i);
  return id;
}

// The session key of the frame target's stream (one direction's key, as a
// handshake would have derived it).
inline proto::Key fixed_frame_key() {
  proto::Key k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(0x40 + 3 * i);
  return k;
}

// One file per process under $TMPDIR, rewritten for every input and removed
// at exit; scripts/fuzz.sh points TMPDIR at a scratch directory it deletes,
// so a crashed run leaves nothing behind either.
class ScratchFile {
 public:
  explicit ScratchFile(const char* suffix) {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/fuzz-XXXXXX" + suffix;
    const int fd = ::mkstemps(path_.data(), static_cast<int>(std::string(suffix).size()));
    if (fd < 0) {
      std::perror("fuzz: cannot create a scratch file");
      std::abort();
    }
    ::close(fd);
  }
  ~ScratchFile() { ::unlink(path_.c_str()); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  // Replaces the file's contents with `bytes`; returns its path.
  const std::string& write(const uint8_t* bytes, size_t size) {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::write(fd, bytes + done, size - done);
      FUZZ_CHECK(n > 0);
      done += static_cast<size_t>(n);
    }
    ::close(fd);
    return path_;
  }

 private:
  std::string path_;
};

// Every message a peer may send, decoded the way the daemon and the original
// do: peek_type, then the decoder of that type. Checks the decoders' contract
// (an error is a Status, a success re-encodes to something that decodes the
// same) and returns whether the message decoded.
bool decode_any(base::ByteSpan msg);

}  // namespace fuzz
