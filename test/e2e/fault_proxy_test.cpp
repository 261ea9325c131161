// SPDX-License-Identifier: MIT
// Level 3: network faults between the real original and the real clone
// (issue "Prove it under faults", part 4). A proxy cuts connections at seeded
// byte offsets, flips bytes and stalls; replication still ends byte-identical
// and every corruption is caught by authentication, never written.
#include <doctest/doctest.h>
#include <signal.h>

#include "test/support/fault_proxy.h"
#include "test/support/harness.h"

TEST_CASE("cuts, flipped bytes and stalls on the link: a 256 MiB workload still ends byte-identical") {
  harness::TempDir d;
  constexpr uint64_t kDisk = 256ull << 20;
  REQUIRE(harness::make_zero_file(d / "source.img", kDisk));
  REQUIRE(harness::make_zero_file(d / "clone.img", kDisk));
  const uint16_t proxy_port = harness::free_port();
  // Short timeouts: a flipped length prefix leaves a reader waiting for a
  // frame that never completes, which only the idle timeout ends.
  harness::Pair p = harness::make_pair(d.path(), d / "clone.img",
                                       {{"link.idle_timeout_ms", "1500"}, {"link.keepalive_interval_ms", "300"}},
                                       {{"clone.address", "\"127.0.0.1:" + std::to_string(proxy_port) + "\""},
                                        {"origin.reconnect_initial_ms", "10"},
                                        {"origin.reconnect_max_ms", "200"},
                                        {"origin.reconnect_attempts_max", "1000"},
                                        {"origin.idle_timeout_ms", "1000"},
                                        {"origin.keepalive_interval_ms", "200"}});
  REQUIRE(!p.clone_config.empty());
  harness::Process cloned({harness::binary("CLONED_BIN"), "--config", p.clone_config}, d / "cloned.log");
  REQUIRE(harness::wait_for_listener(p.port, 10000));
  // The proxy takes the port the original's config now names.
  harness::FaultQuota quota;
  auto proxy = std::make_unique<harness::FaultProxy>(p.port, 2026, quota);
  REQUIRE(proxy->port() != 0);
  // Rewrite the original's address to the proxy's actual port.
  std::string text = harness::read_file(p.origin_config);
  const std::string wanted = "127.0.0.1:" + std::to_string(proxy_port);
  const std::string actual = "127.0.0.1:" + std::to_string(proxy->port());
  text.replace(text.find(wanted), wanted.size(), actual);
  REQUIRE(harness::write_file(p.origin_config, text));

  std::string out;
  int code = harness::run({harness::binary("ORIGIN_BIN"), "--config", p.origin_config, "workload", "--source",
                           d / "source.img", "--seed", "11", "--bytes", "256M", "--write-min", "4K", "--write-max",
                           "128K", "--epoch-max", "8", "--trim-percent", "5", "--compare", d / "clone.img"},
                          out, 600000);
  const harness::FaultCounts& c = proxy->counts();
  const uint64_t cuts = c.cuts.load(), flips = c.flips.load();
  MESSAGE("proxy: " << c.connections.load() << " connections, " << cuts << " cuts, " << flips << " flipped bytes, "
                    << c.stalls.load() << " stalls, " << (c.bytes.load() >> 20) << " MiB carried");
  CHECK_MESSAGE(code == 0, out.substr(out.size() > 4000 ? out.size() - 4000 : 0));
  CHECK(out.find("identical") != std::string::npos);
  CHECK(cuts >= 50);
  CHECK(flips >= 50);
  uint64_t diff = 0;
  CHECK_MESSAGE(harness::files_equal(d / "source.img", d / "clone.img", &diff), "first difference at " << diff);
  const std::string log = harness::read_file(d / "cloned.log");
  if (code != 0) MESSAGE("cloned.log (end): " << log.substr(log.size() > 3000 ? log.size() - 3000 : 0));
  CHECK_MESSAGE(log.find("does not match its digest") == std::string::npos, "a corruption got past authentication");
  CHECK(log.find("failed authentication") != std::string::npos);
  proxy.reset();
  cloned.signal(SIGTERM);
  CHECK(cloned.wait(30000) == 0);
}
