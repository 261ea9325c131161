// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>

#include "base/file_io.h"
#include "base/unique_fd.h"
#include "base/units.h"

namespace {

// A scratch file, removed at the end of the test.
struct TempFile {
  std::string path = "/tmp/base-file-io-XXXXXX";
  base::UniqueFd fd;
  TempFile() {
    fd.reset(::mkstemp(path.data()));
    REQUIRE(fd.valid());
  }
  ~TempFile() { ::unlink(path.c_str()); }
};

}  // namespace

TEST_CASE("pwrite_full and pread_full move whole buffers at an offset") {
  TempFile f;
  const base::Bytes data = {1, 2, 3, 4, 5, 6, 7, 8};
  REQUIRE(base::pwrite_full(f.fd.get(), data, 4096).is_ok());
  base::Bytes back(data.size());
  REQUIRE(base::pread_full(f.fd.get(), back, 4096).is_ok());
  CHECK(back == data);
  base::Bytes hole(16, 0xff);
  REQUIRE(base::pread_full(f.fd.get(), hole, 0).is_ok());
  CHECK(hole == base::Bytes(16, 0));  // a hole reads as zeroes
}

TEST_CASE("a read past the end: pread_upto returns what there is, pread_full fails with EIO and the request") {
  TempFile f;
  const base::Bytes data(100, 7);
  REQUIRE(base::pwrite_full(f.fd.get(), data, 0).is_ok());
  base::Bytes buf(64);
  base::Result<size_t> got = base::pread_upto(f.fd.get(), buf, 60);
  REQUIRE(got.is_ok());
  CHECK(*got == 40u);
  base::Status s = base::pread_full(f.fd.get(), buf, 60);
  CHECK(s.code() == EIO);
  CAPTURE(s.message());
  CHECK(s.message().find("offset=60 len=64") != std::string::npos);
  CHECK(s.message().find("after 40 bytes") != std::string::npos);
}

TEST_CASE("an error carries the errno and the offset and length asked for") {
  TempFile f;
  base::UniqueFd read_only(::open(f.path.c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(read_only.valid());
  const base::Bytes data(10, 1);
  base::Status w = base::pwrite_full(read_only.get(), data, 512);
  CHECK(w.code() == EBADF);
  CAPTURE(w.message());
  CHECK(w.message().find("write at offset=512 len=10 failed") != std::string::npos);
  base::Bytes buf(8);
  base::Status r = base::pread_full(-1, buf, 3);
  CHECK(r.code() == EBADF);
  CHECK(r.message().find("read at offset=3 len=8 failed") != std::string::npos);
}

TEST_CASE("numbers in sentences and the wall clock") {
  CHECK(base::u64s(0) == "0");
  CHECK(base::u64s(18446744073709551615ull) == "18446744073709551615");
  const int64_t before_ms = static_cast<int64_t>(std::time(nullptr)) * 1000;
  const int64_t now_ms = base::unix_ms();
  CHECK(now_ms >= before_ms);
  CHECK(now_ms < before_ms + 2000);
}

TEST_CASE("make_dirs makes each missing parent with exactly its mode, whatever the umask") {
  char templ[] = "/tmp/base-dirs-XXXXXX";
  REQUIRE(::mkdtemp(templ) != nullptr);
  const std::string root = templ;
  const mode_t old_umask = ::umask(077);
  const std::string deep = root + "/a//b/c/";
  base::Status made = base::make_dirs(deep, 0755);
  ::umask(old_umask);
  REQUIRE_MESSAGE(made.is_ok(), made.message());
  struct stat st {};
  for (const std::string& dir : {root + "/a", root + "/a/b", root + "/a/b/c"}) {
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK_MESSAGE((st.st_mode & 07777) == 0755, dir);
  }
  // One that exists keeps its mode; a second call is fine.
  REQUIRE(::chmod((root + "/a").c_str(), 0711) == 0);
  CHECK(base::make_dirs(root + "/a/b/c", 0700).is_ok());
  REQUIRE(::stat((root + "/a").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0711);
  // A file in the way is named.
  base::UniqueFd file(::open((root + "/f").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  REQUIRE(file.valid());
  base::Status in_the_way = base::make_dirs(root + "/f", 0700);
  CHECK(in_the_way.code() == ENOTDIR);
  CHECK(in_the_way.message() == root + "/f is not a directory");
  base::Status below_a_file = base::make_dirs(root + "/f/g", 0700);
  CHECK(below_a_file.code() == ENOTDIR);
  CHECK(below_a_file.message().find("cannot create directory " + root + "/f/g") != std::string::npos);
  CHECK(base::make_dirs("", 0700).code() == EINVAL);
  std::filesystem::remove_all(root);
}

TEST_CASE("lock_exclusive waits its time for another holder, then says EWOULDBLOCK") {
  TempFile f;
  base::UniqueFd holder(::open(f.path.c_str(), O_RDWR | O_CLOEXEC));  // its own open file description
  REQUIRE(holder.valid());
  REQUIRE(base::lock_exclusive(holder.get(), std::chrono::milliseconds(0), std::chrono::milliseconds(1)).is_ok());
  const auto start = std::chrono::steady_clock::now();
  base::Status held = base::lock_exclusive(f.fd.get(), std::chrono::milliseconds(60), std::chrono::milliseconds(10));
  CHECK(held.code() == EWOULDBLOCK);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(60));
  // Let go while the second waits: it takes the lock.
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    holder.reset();
  });
  base::Status taken = base::lock_exclusive(f.fd.get(), std::chrono::seconds(10), std::chrono::milliseconds(5));
  release.join();
  CHECK_MESSAGE(taken.is_ok(), taken.message());
  CHECK(base::lock_exclusive(-1, std::chrono::milliseconds(0), std::chrono::milliseconds(1)).code() == EBADF);
}

TEST_CASE("sync_dir syncs a directory and names one it cannot; parent_dir of every form of path") {
  TempFile f;
  CHECK(base::sync_dir(base::parent_dir(f.path)).is_ok());
  const base::Status missing = base::sync_dir(f.path + ".missing");
  CHECK(missing.code() == ENOENT);
  CHECK(missing.message().find("cannot open the directory " + f.path + ".missing to sync it") != std::string::npos);
  CHECK(base::sync_dir(f.path).code() == ENOTDIR);  // a file is no directory
  CHECK(base::parent_dir("/var/tmp/x") == "/var/tmp");
  CHECK(base::parent_dir("/x") == "/");
  CHECK(base::parent_dir("x") == ".");
  CHECK(base::parent_dir("a/b") == "a");
}
