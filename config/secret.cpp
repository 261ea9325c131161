// SPDX-License-Identifier: MIT
// The pairing secret: reading it, and the keys derived from it.
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstdio>
#include <string>

#include "base/bytes.h"
#include "config/config.h"

namespace config {
namespace {

// Both sides must derive the same keys from the same secret: this context and
// these subkey ids are part of the protocol (docs/PROTOCOL.md).
constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "clonepr1";
constexpr uint64_t kAuthSubkeyId = 1;
constexpr uint64_t kDigestSubkeyId = 2;

constexpr size_t kSecretHexDigits = 64;

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// A secret anyone else on the machine can read is no secret; one anyone else
// can write, or own (and so chmod), lets them swap in their own pairing.
base::Status check_private(const std::string& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode)) {
    return base::Status::error(EINVAL, "secret file " + path + " is not a regular file");
  }
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    return base::Status::error(EACCES, "secret file " + path + " belongs to uid " + std::to_string(st.st_uid) +
                                           ", neither this process's user (uid " + std::to_string(::geteuid()) +
                                           ") nor root; run chown " + std::to_string(::geteuid()) + " " + path);
  }
  if ((st.st_mode & 077) == 0) return base::Status::ok();
  const char* how = (st.st_mode & 044) != 0 ? "readable" : "writable";
  return base::Status::error(EACCES, "secret file " + path + " is " + how + " by others (mode " +
                                         mode_text(st.st_mode) + "); run chmod 600 " + path);
}

// Whoever may write to the directory may replace the file by another of
// their own making (even if it passes the checks above when it is read).
base::Status check_directory(const std::string& path) {
  const std::string::size_type slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    return base::Status::from_errno("cannot stat " + dir + ", which holds secret file " + path);
  if ((st.st_mode & 022) == 0) return base::Status::ok();
  return base::Status::error(EACCES, "the directory " + dir + " holding secret file " + path +
                                         " is writable by others (mode " + mode_text(st.st_mode) +
                                         "), who could replace the file; run chmod go-w " + dir +
                                         " or keep the secret elsewhere");
}

// Reads at most `max` bytes; one byte more than a valid file may hold is
// enough to tell that it is too long.
base::Status read_small_file(int fd, const std::string& path, char* buffer, size_t max, size_t& length) {
  length = 0;
  while (length < max) {
    ssize_t n = ::read(fd, buffer + length, max - length);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::Status::from_errno("cannot read secret file " + path);
    if (n == 0) break;
    length += static_cast<size_t>(n);
  }
  return base::Status::ok();
}

base::Result<PairSecret> parse_secret(const std::string& path, const char* text, size_t length) {
  if (length == kSecretHexDigits + 1 && text[kSecretHexDigits] == '\n') length = kSecretHexDigits;
  base::Bytes bytes;
  if (length != kSecretHexDigits || !base::from_hex(std::string_view(text, kSecretHexDigits), bytes)) {
    return base::Status::error(EINVAL, "secret file " + path +
                                           " must hold exactly 64 hex digits and an optional newline; copy it again "
                                           "from the pairing (it must be the same file on both sticks)");
  }
  PairSecret secret;
  std::copy(bytes.begin(), bytes.end(), secret.bytes.begin());
  sodium_memzero(bytes.data(), bytes.size());
  return secret;
}

}  // namespace

PairSecret::~PairSecret() { sodium_memzero(bytes.data(), bytes.size()); }

namespace {

void derive_into(DerivedKeys& keys, const PairSecret& secret) {
  static_assert(sizeof(PairSecret::bytes) == crypto_kdf_KEYBYTES);
  static_assert(sizeof(DerivedKeys::auth_key) >= crypto_kdf_BYTES_MIN &&
                sizeof(DerivedKeys::auth_key) <= crypto_kdf_BYTES_MAX);
  static_assert(sizeof(DerivedKeys::digest_key) >= crypto_kdf_BYTES_MIN &&
                sizeof(DerivedKeys::digest_key) <= crypto_kdf_BYTES_MAX);
  int rc = crypto_kdf_derive_from_key(keys.auth_key.data(), keys.auth_key.size(), kAuthSubkeyId, kKdfContext,
                                      secret.bytes.data());
  assert(rc == 0);
  rc = crypto_kdf_derive_from_key(keys.digest_key.data(), keys.digest_key.size(), kDigestSubkeyId, kKdfContext,
                                  secret.bytes.data());
  assert(rc == 0);
  (void)rc;
}

}  // namespace

DerivedKeys derive_keys(const PairSecret& secret) {
  DerivedKeys keys;
  derive_into(keys, secret);
  return keys;
}

GuardedKeys guard_keys(PairSecret& secret) {
  GuardedKeys keys;
  derive_into(*keys, secret);  // written where they stay: no copy on the way
  keys.seal();
  sodium_memzero(secret.bytes.data(), secret.bytes.size());
  return keys;
}

base::Result<PairSecret> load_secret(const std::string& path) {
  // No link is followed (it could be pointed at another pairing's secret),
  // and a FIFO or device does not block the open: fstat refuses it below.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0 && errno == ELOOP)
    return base::Status::error(
        EINVAL, "secret file " + path + " is a symbolic link; name the file itself (a link can be re-pointed)");
  if (fd < 0) return base::Status::from_errno("cannot open secret file " + path);
  struct stat st {};
  base::Status status;
  if (::fstat(fd, &st) != 0) status = base::Status::from_errno("cannot stat secret file " + path);
  if (status) status = check_private(path, st);
  if (status) status = check_directory(path);
  char text[kSecretHexDigits + 2];
  size_t length = 0;
  if (status) status = read_small_file(fd, path, text, sizeof text, length);
  ::close(fd);
  if (!status) return status;
  base::Result<PairSecret> secret = parse_secret(path, text, length);
  sodium_memzero(text, sizeof text);
  return secret;
}

}  // namespace config
