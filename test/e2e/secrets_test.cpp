// SPDX-License-Identifier: MIT
// Level 3, black box (root): where the pairing secret and the keys are in the
// real cloned's memory (issue 14, finding 6). The test reads every readable
// mapping of the running daemon through /proc/PID/mem and counts the raw
// secret (bytes and hex text), the auth key, the digest key and one live
// session's two keys, noting for each hit whether its mapping is excluded
// from core dumps ("dd" in /proc/PID/smaps VmFlags).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "origin/testing.h"
#include "test/support/harness.h"
#include "test/support/requires.h"
#include "test/support/sanitizer.h"

namespace t = origin::testing;

namespace {

struct Mapping {
  uint64_t start = 0, end = 0;
  bool readable = false;
  std::string flags;  // VmFlags
  std::string name;
};

std::vector<Mapping> mappings_of(pid_t pid) {
  std::vector<Mapping> out;
  std::ifstream smaps("/proc/" + std::to_string(pid) + "/smaps");
  std::string line;
  while (std::getline(smaps, line)) {
    std::istringstream in(line);
    std::string range, perms;
    in >> range >> perms;
    const size_t dash = range.find('-');
    if (dash != std::string::npos && perms.size() == 4 && range.find(':') == std::string::npos) {
      Mapping m;
      m.start = std::stoull(range.substr(0, dash), nullptr, 16);
      m.end = std::stoull(range.substr(dash + 1), nullptr, 16);
      m.readable = perms[0] == 'r';
      std::string skip;
      in >> skip >> skip >> skip >> m.name;
      out.push_back(m);
    } else if (line.rfind("VmFlags:", 0) == 0 && !out.empty()) {
      out.back().flags = line.substr(8);
    }
  }
  return out;
}

bool has_flag(const Mapping& m, const std::string& flag) {
  return (" " + m.flags + " ").find(" " + flag + " ") != std::string::npos;
}

struct Hits {
  int total = 0;
  int not_dontdump = 0;  // in a mapping a core dump would hold
  int locked = 0;        // in a locked mapping ("lo")
  std::string where;     // each hit a core dump would hold: its mapping and offset in it
};

// Counts each needle in every readable mapping of `pid`.
std::vector<Hits> scan(pid_t pid, const std::vector<std::string>& needles) {
  std::vector<Hits> hits(needles.size());
  const int mem = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(mem >= 0);
  for (const Mapping& m : mappings_of(pid)) {
    if (!m.readable || m.name == "[vvar]" || m.name == "[vsyscall]") continue;
    std::string bytes(m.end - m.start, '\0');
    const ssize_t n = ::pread(mem, bytes.data(), bytes.size(), static_cast<off_t>(m.start));
    if (n <= 0) continue;
    bytes.resize(static_cast<size_t>(n));
    for (size_t i = 0; i < needles.size(); ++i) {
      for (size_t at = bytes.find(needles[i]); at != std::string::npos; at = bytes.find(needles[i], at + 1)) {
        ++hits[i].total;
        if (!has_flag(m, "dd")) {
          ++hits[i].not_dontdump;
          hits[i].where += " " + (m.name.empty() ? std::string("[anonymous]") : m.name) + "+" + std::to_string(at) +
                           " (flags" + m.flags + ")";
        }
        hits[i].locked += has_flag(m, "lo") ? 1 : 0;
      }
    }
  }
  ::close(mem);
  return hits;
}

std::string as_text(const uint8_t* p, size_t n) { return std::string(reinterpret_cast<const char*>(p), n); }

}  // namespace

TEST_CASE("the running daemon holds no raw secret, and its keys only in locked pages left out of core dumps") {
  // It reads another process's memory. A sanitizer build maps terabytes of
  // shadow memory, which a scan cannot read whole: the plain build runs it.
  test_support::require({test_support::root(),
                         test_support::that(!test_support::kAddressSanitizer && !test_support::kThreadSanitizer,
                                            "a sanitizer build's shadow memory is too large to scan; the plain build "
                                            "runs this test")});
  harness::TempDir dir;
  REQUIRE(harness::make_zero_file(dir / "clone.img", 16u << 20));
  const harness::Pair pair = harness::make_pair(dir.path(), dir / "clone.img");
  REQUIRE(!pair.clone_config.empty());
  base::Result<config::OriginConfig> cfg = config::load_origin_config(pair.origin_config);
  REQUIRE(cfg.is_ok());
  base::Result<config::PairSecret> secret = config::load_secret(cfg->secret_file);
  REQUIRE(secret.is_ok());
  const config::DerivedKeys keys = config::derive_keys(*secret);
  std::string hex = harness::read_file(cfg->secret_file);
  hex.erase(std::remove(hex.begin(), hex.end(), '\n'), hex.end());
  harness::Process cloned({harness::binary("CLONED_BIN"), "--config", pair.clone_config}, dir / "cloned.log");
  REQUIRE(harness::wait_for_listener(pair.port, 10000));

  // A live session: its keys are the ones this side derived too.
  auto fd = t::connect("127.0.0.1", pair.port);
  REQUIRE(fd.is_ok());
  base::Result<t::HandshakeResult> hs = t::handshake(fd->get(), keys.auth_key, cfg->pair_id);
  REQUIRE_MESSAGE(hs.is_ok(), hs.status().message());
  t::RawSession session(std::move(*fd), hs->keys);
  origin::SessionConfig sc = origin::make_session_config(*cfg, keys);
  REQUIRE(session.send_hello(origin::original_hello(sc, 1, 1)).is_ok());
  base::Bytes plain;
  REQUIRE(session.receive_until(proto::MsgType::hello, plain).is_ok());

  const std::vector<std::string> names = {"raw secret", "secret as hex",   "auth key",
                                          "digest key", "session key c2s", "session key s2c"};
  const std::vector<std::string> needles = {as_text(secret->bytes.data(), 32), hex,
                                            as_text(keys.auth_key.data(), 32), as_text(keys.digest_key.data(), 32),
                                            as_text(hs->keys.send.data(), 32), as_text(hs->keys.recv.data(), 32)};
  const std::vector<Hits> hits = scan(cloned.pid(), needles);
  for (size_t i = 0; i < names.size(); ++i) {
    CAPTURE(names[i]);
    MESSAGE(names[i] << ": found " << hits[i].total << " times, " << hits[i].not_dontdump
                     << " of them in pages a core dump holds, " << hits[i].locked << " in locked pages");
    CHECK_MESSAGE(hits[i].not_dontdump == 0, "in" << hits[i].where);
  }
  CHECK(hits[0].total == 0);
  CHECK(hits[1].total == 0);
  CHECK(hits[2].total == 1);  // the guarded copy, used in place by every handshake
  CHECK(hits[3].total == 1);  // the same guarded page: the workers and the guard read it in place
  CHECK(hits[4].total == 1);  // the reader's guarded page
  CHECK(hits[5].total == 1);  // the sealer's
  cloned.signal(SIGTERM);
  CHECK(cloned.wait(30000) == 0);
}
