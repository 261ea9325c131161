// SPDX-License-Identifier: MIT
// nbdkit's `requires` for our tests: a test that needs something this machine
// lacks (root, a loop device, network namespaces, a program) says what and
// exits 77, which meson reports as SKIP. A skip never counts as a pass.
//
// Contract: call require() first in a test case, before it creates anything
// that needs cleaning up (a temporary directory, a loop device, a namespace):
// exiting does not unwind the stack. Everything after a met requirement that
// still fails is a test failure, not a skip. So one executable (one meson
// test) holds only test cases with the same requirements; tests that can run
// anywhere live in another executable (docs/TESTING.md, "Skips").
#pragma once

#include <initializer_list>
#include <string>

namespace test_support {

// A requirement: `missing` is empty when met, else a sentence saying what is
// missing and how to get it.
struct Requirement {
  std::string missing;
};

// Each probe only looks; none changes the machine.
Requirement root();
// `name` found as an executable on PATH (or in /sbin, /usr/sbin); `package`
// is the Debian package that provides it.
Requirement program(const std::string& name, const std::string& package);
// `path` exists and is readable and writable; `why` says what it is for.
Requirement device(const std::string& path, const std::string& why);
// Root, losetup and /dev/loop-control: this test may attach loop devices.
Requirement loop_devices();
// Root, iproute2's ip, and a child that can unshare(CLONE_NEWNET): this test
// may create network namespaces.
Requirement network_namespaces();
// Anything else the test probed itself: met when `met`, else `missing`.
Requirement that(bool met, const std::string& missing);

// Returns when every requirement is met; otherwise prints
// "skipped: <what is missing>" for each one that is not and exits 77.
void require(std::initializer_list<Requirement> requirements);
[[noreturn]] void skip(const std::string& reason);

// For probes a test makes itself (losetup, partx): a shell command's first
// output line without its trailing newline and spaces; "" if the command
// failed or printed nothing.
std::string first_line_of(const std::string& command);
bool is_block_device(const std::string& path);

}  // namespace test_support
