// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <fstream>
#include <string>
#include <thread>

#include "base/bytes.h"
#include "base/promise.h"
#include "base/status.h"
#include "base/thread.h"
#include "base/units.h"

TEST_CASE("sizes parse with K, M, G suffixes and reject junk") {
  CHECK(base::parse_size_bytes("4096") == 4096u);
  CHECK(base::parse_size_bytes("4K") == 4096u);
  CHECK(base::parse_size_bytes("256M") == 256ull << 20);
  CHECK(base::parse_size_bytes("1G") == 1ull << 30);
  CHECK(base::parse_size_bytes("1GiB") == 1ull << 30);
  CHECK(base::parse_size_bytes("1.5K") == 1536u);
  CHECK_FALSE(base::parse_size_bytes(""));
  CHECK_FALSE(base::parse_size_bytes("K"));
  CHECK_FALSE(base::parse_size_bytes("12Q"));
  CHECK_FALSE(base::parse_size_bytes("1.0001K"));          // not a whole byte
  CHECK_FALSE(base::parse_size_bytes("99999999999999999999"));
  CHECK_FALSE(base::parse_size_bytes("16777216T"));        // overflows
}

TEST_CASE("byte sizes format for people") {
  CHECK(base::format_bytes(100) == "100 B");
  CHECK(base::format_bytes(1536) == "1.5 KiB");
  CHECK(base::format_bytes(256ull << 20) == "256 MiB");
}

TEST_CASE("little-endian reader fails sticky on overrun") {
  base::Bytes buf;
  base::ByteWriter w(buf);
  w.u8(7);
  w.u32(0xdeadbeef);
  w.u64(0x0102030405060708ull);
  w.str16("hi");
  base::ByteReader r(buf);
  CHECK(r.u8() == 7);
  CHECK(r.u32() == 0xdeadbeefu);
  CHECK(r.u64() == 0x0102030405060708ull);
  CHECK(r.str16() == "hi");
  CHECK(r.done());
  CHECK(r.u16() == 0);
  CHECK_FALSE(r.ok());
}

TEST_CASE("hex round-trips and rejects bad digits") {
  base::Bytes out;
  CHECK(base::from_hex("00ff10Ab", out));
  CHECK(base::to_hex(out) == "00ff10ab");
  CHECK_FALSE(base::from_hex("abc", out));
  CHECK_FALSE(base::from_hex("zz", out));
}

TEST_CASE("a status carries errno and a sentence") {
  base::Status s = base::Status::from_errno(ENOENT, "cannot open /nope");
  CHECK_FALSE(s.is_ok());
  CHECK(s.code() == ENOENT);
  CHECK(s.message() == "cannot open /nope: No such file or directory");
  base::Result<int> r = base::Status::error(EINVAL, "bad");
  CHECK_FALSE(r.is_ok());
  base::Result<int> v = 5;
  CHECK(*v == 5);
}

TEST_CASE("a kept promise costs only its condition: the sentence is not built") {
  int built = 0;
  auto sentence = [&] {
    ++built;
    return std::string("never");
  };
  CLONED_PROMISE(1 + 1 == 2, sentence());
  CHECK(built == 0);
}

TEST_CASE("a broken promise stops the process with a sentence naming the condition, in every build") {
  int out[2];
  REQUIRE(::pipe(out) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGABRT, SIG_DFL);  // doctest's crash handler is the parent's business
    ::dup2(out[1], STDERR_FILENO);
    const uint64_t acked = 132, reserved = 131;
    CLONED_PROMISE(acked <= reserved, "ack of record " + std::to_string(acked) + " past the reservation");
    ::_exit(0);  // not reached: a broken promise never returns
  }
  ::close(out[1]);
  std::string said;
  char buf[512];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) said.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CAPTURE(said);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
  CHECK(said.rfind("<3>broken promise at base_test.cpp:", 0) == 0);
  CHECK(said.find("(acked <= reserved): ack of record 132 past the reservation; stopping now") != std::string::npos);
}

// What the kernel shows for a thread of this process, as top -H and ps -L read it.
static std::string comm_of(pid_t tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/comm");
  std::string name;
  std::getline(f, name);
  return name;
}

TEST_CASE("a thread's name is what the kernel shows for it, cut to the 15 bytes Linux keeps") {
  std::string short_name, long_name;
  std::thread([&] {
    base::name_this_thread("cloned-disk");
    short_name = comm_of(::gettid());
    base::name_this_thread("a-name-of-twenty-bytes");
    long_name = comm_of(::gettid());
  }).join();
  CHECK(short_name == "cloned-disk");
  CHECK(long_name == "a-name-of-twent");
}
