// SPDX-License-Identifier: MIT
// Fuzz target: the configuration parser (config::load_clone_config and
// config::load_origin_config). The input is the file, written to a scratch
// file with a .toml name; both loaders read it. A config file comes from the
// operator, not from the network, but the daemon must still refuse anything
// malformed with a sentence (a Status), never crash, throw past the loader,
// or accept a value outside the documented ranges.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.h"

namespace {

bool power_of_two(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

void check_clone(const base::Result<config::CloneConfig>& r) {
  if (!r) {
    FUZZ_CHECK(!r.status().message().empty());
    return;
  }
  const config::CloneConfig& c = r.value();
  FUZZ_CHECK(!c.secret_file.empty() && !c.target_path.empty());
  FUZZ_CHECK(c.target_identity.kind == "block" || c.target_identity.kind == "file");
  FUZZ_CHECK(c.target_identity.size_bytes >= 1 &&
             (c.target_identity.logical_block_bytes == 0 || power_of_two(c.target_identity.logical_block_bytes)));
  FUZZ_CHECK(c.writer_threads >= 1 && c.writer_threads <= 64);
  FUZZ_CHECK(c.inflight_bytes_max >= (1ull << 20) && c.inflight_bytes_max <= (1ull << 30));
  FUZZ_CHECK(c.commit_interval_ms >= 1 && c.commit_interval_ms <= 60000);
  FUZZ_CHECK(c.keepalive_interval_ms < c.idle_timeout_ms);
  FUZZ_CHECK(c.max_pending_handshakes >= 1 && c.max_pending_handshakes <= 64);
}

void check_origin(const base::Result<config::OriginConfig>& r) {
  if (!r) {
    FUZZ_CHECK(!r.status().message().empty());
    return;
  }
  const config::OriginConfig& c = r.value();
  FUZZ_CHECK(!c.secret_file.empty() && !c.state_dir.empty());
  FUZZ_CHECK(c.disk_size_bytes >= 1 && power_of_two(c.logical_block_bytes));
  FUZZ_CHECK(c.retention_bytes_max >= (1ull << 20) && c.retention_bytes_max <= (1ull << 40));
  FUZZ_CHECK(c.reconnect_initial_ms <= c.reconnect_max_ms);
  FUZZ_CHECK(c.keepalive_interval_ms < c.idle_timeout_ms);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::ScratchFile file(".toml");
  const std::string& path = file.write(data, size);
  check_clone(config::load_clone_config(path));
  check_origin(config::load_origin_config(path));
  return 0;
}
