// SPDX-License-Identifier: MIT
// Two network namespaces joined by a veth pair, for tests that send and
// receive real frames without touching the host's interfaces.
//
// Names carry this process's pid: cloned-wol-a-<pid> and cloned-wol-b-<pid>.
// The constructor first deletes leftovers with our prefix whose process is
// gone (a crashed earlier run), then creates both namespaces and the veth
// pair directly inside them (never in the host namespace):
//   A: wola 10.213.0.1/24  <-- veth -->  B: wolb 10.213.0.2/24, both up.
// The destructor deletes both namespaces, which deletes the veth with them.
// Needs root and iproute2: a test first calls
// test_support::require({test_support::network_namespaces()}) (requires.h), so
// that a pair which is then not ready() is a failure, and error() says why.
#pragma once

#include <functional>
#include <string>

namespace test_support {

class NetnsPair {
 public:
  static constexpr const char* kVethA = "wola";
  static constexpr const char* kVethB = "wolb";
  static constexpr const char* kAddressA = "10.213.0.1";
  static constexpr const char* kAddressB = "10.213.0.2";
  static constexpr const char* kSubnetBroadcast = "10.213.0.255";

  NetnsPair();
  ~NetnsPair();
  NetnsPair(const NetnsPair&) = delete;
  NetnsPair& operator=(const NetnsPair&) = delete;

  bool ready() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }

  // Runs "ip -n <namespace> <arguments>" quietly; true on success.
  bool ip(const std::string& name_space, const std::string& arguments) const;

 private:
  bool create();
  bool wait_until_up();
  std::string a_;
  std::string b_;
  bool created_a_ = false;
  bool created_b_ = false;
  std::string error_;
};

// Runs `work` on a fresh thread that first joins the named network namespace
// (setns), and waits for it. Sockets opened by `work` stay in that namespace
// and may be used from any thread afterwards. `work` must not throw (so no
// REQUIRE inside it): return results through captured variables.
// False, with `error` set, if the namespace could not be joined.
bool run_in_netns(const std::string& name_space, const std::function<void()>& work, std::string& error);

// Deletes namespaces named cloned-wol-*-<pid> whose process no longer exists.
void remove_stale_namespaces();

}  // namespace test_support
