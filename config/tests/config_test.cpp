// SPDX-License-Identifier: MIT
#include "config/config.h"
#include "blockio/disk.h"
#include "test/support/temp_dir.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace {

namespace fs = std::filesystem;

// A scratch directory under /tmp, removed with everything in it.
struct TempDir : test_support::TempDir {
  TempDir() : test_support::TempDir("config_test") { REQUIRE(ok()); }
};

// fchmod after creating, so the test does not depend on the umask.
void write_file(const std::string& path, const std::string& content, mode_t mode = 0644) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
  REQUIRE(::fchmod(fd, mode) == 0);
  ::close(fd);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

const std::string kSecretHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

// The smallest valid clone config, 7 lines: tests append tables from line 8.
const std::string kMinimalClone =
    "[pair]\n"
    "id = \"00112233445566778899aabbccddeeff\"\n"
    "secret_file = \"pair.secret\"\n"
    "[target]\n"
    "path = \"disk.img\"\n"
    "kind = \"file\"\n"
    "size_bytes = \"1M\"\n";

const std::string kMinimalOrigin =
    "[pair]\n"
    "id = \"00112233445566778899aabbccddeeff\"\n"
    "secret_file = \"pair.secret\"\n"
    "[clone]\n"
    "address = \"[fd00::2]:7300\"\n"
    "disk_size_bytes = 1048576\n";

void create_image(const std::string& path, off_t size_bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, size_bytes) == 0);
  ::close(fd);
}

}  // namespace

TEST_CASE("a written pair loads back on both sides with the same pair id, secret and keys") {
  TempDir tmp;
  const std::string target = tmp.path() + "/disk.img";
  create_image(target, 4 << 20);
  config::PairRequest request{tmp.path() + "/clone", tmp.path() + "/sub/origin", target, "127.0.0.1:7300"};
  base::Status written = config::write_pair(request);
  REQUIRE_MESSAGE(written.is_ok(), written.message());

  auto clone = config::load_clone_config(tmp.path() + "/clone/cloned.toml");
  REQUIRE_MESSAGE(clone.is_ok(), clone.status().message());
  auto origin = config::load_origin_config(tmp.path() + "/sub/origin/origin.toml");
  REQUIRE_MESSAGE(origin.is_ok(), origin.status().message());
  CHECK(clone->pair_id == origin->pair_id);
  CHECK(clone->pair_id != proto::PairId{});
  CHECK(clone->secret_file == tmp.path() + "/clone/pair.secret");
  CHECK(origin->secret_file == tmp.path() + "/sub/origin/pair.secret");
  CHECK(mode_of(clone->secret_file) == 0600);
  CHECK(mode_of(origin->secret_file) == 0600);

  auto clone_secret = config::load_secret(clone->secret_file);
  auto origin_secret = config::load_secret(origin->secret_file);
  REQUIRE_MESSAGE(clone_secret.is_ok(), clone_secret.status().message());
  REQUIRE(origin_secret.is_ok());
  CHECK(clone_secret->bytes == origin_secret->bytes);
  CHECK(clone_secret->bytes != config::PairSecret{}.bytes);
  config::DerivedKeys clone_keys = config::derive_keys(*clone_secret);
  config::DerivedKeys origin_keys = config::derive_keys(*origin_secret);
  CHECK(clone_keys.auth_key == origin_keys.auth_key);
  CHECK(clone_keys.digest_key == origin_keys.digest_key);

  CHECK(clone->target_identity.kind == "file");
  CHECK(clone->target_identity.size_bytes == (4u << 20));
  CHECK(fs::equivalent(clone->target_path, target));
  CHECK(clone->listen_host == "127.0.0.1");
  CHECK(clone->listen_port == 7300);
  CHECK(clone->state_dir == tmp.path() + "/clone/state");
  CHECK(clone->runtime_dir == tmp.path() + "/clone/run");
  CHECK(origin->clone_host == "127.0.0.1");
  CHECK(origin->clone_port == 7300);
  CHECK(origin->disk_size_bytes == (4u << 20));
  CHECK(origin->logical_block_bytes == clone->target_identity.logical_block_bytes);
  CHECK(origin->state_dir == tmp.path() + "/sub/origin/state");
  CHECK(read_file(tmp.path() + "/clone/cloned.toml").rfind("# cloned.toml: ", 0) == 0);
  CHECK(read_file(tmp.path() + "/sub/origin/origin.toml").rfind("# origin.toml: ", 0) == 0);
  CHECK(mode_of(tmp.path() + "/clone/cloned.toml") == 0644);
  // Each file is written under a temporary name and moved to its own: none is left behind.
  for (const std::string dir : {"/clone", "/sub/origin"}) {
    std::string names;
    for (const auto& e : fs::directory_iterator(tmp.path() + dir)) names += e.path().filename().string() + " ";
    CHECK_MESSAGE((names == "pair.secret cloned.toml " || names == "cloned.toml pair.secret " ||
                   names == "pair.secret origin.toml " || names == "origin.toml pair.secret "),
                  dir << " holds " << names);
  }
}

TEST_CASE("pairing refuses to overwrite any existing file and then writes nothing") {
  TempDir tmp;
  const std::string target = tmp.path() + "/disk.img";
  create_image(target, 1 << 20);
  config::PairRequest request{tmp.path() + "/clone", tmp.path() + "/origin", target};
  REQUIRE(config::write_pair(request).is_ok());
  base::Status again = config::write_pair(request);
  REQUIRE_FALSE(again.is_ok());
  CHECK(again.message().find(tmp.path() + "/clone/pair.secret already exists") != std::string::npos);
  CHECK(again.message().find("remove it first or choose another directory") != std::string::npos);

  // Only the origin's config is in the way: the clone side stays untouched.
  fs::remove_all(tmp.path() + "/clone");
  fs::remove(tmp.path() + "/origin/pair.secret");
  base::Status blocked = config::write_pair(request);
  REQUIRE_FALSE(blocked.is_ok());
  CHECK(blocked.message().find("origin.toml already exists") != std::string::npos);
  CHECK_FALSE(fs::exists(tmp.path() + "/clone"));
  CHECK_FALSE(fs::exists(tmp.path() + "/origin/pair.secret"));
}

// The name given for the disk is what cloned.toml records (a
// /dev/disk/by-id/ link stays the same disk across boots; /dev/sdX may not),
// and a start through that link finds the same disk.
TEST_CASE("pairing records the target's path as given, links kept, and the identity check follows them") {
  TempDir tmp;
  const std::string target = tmp.path() + "/disk.img";
  create_image(target, 1 << 20);
  fs::create_symlink(target, tmp.path() + "/by-id-link");
  base::Status written =
      config::write_pair({tmp.path() + "/clone", tmp.path() + "/origin", tmp.path() + "/by-id-link"});
  REQUIRE_MESSAGE(written.is_ok(), written.message());
  CHECK(read_file(tmp.path() + "/clone/cloned.toml").find("path = \"" + tmp.path() + "/by-id-link\"") !=
        std::string::npos);
  auto clone = config::load_clone_config(tmp.path() + "/clone/cloned.toml");
  REQUIRE_MESSAGE(clone.is_ok(), clone.status().message());
  CHECK(clone->target_path == tmp.path() + "/by-id-link");
  auto probed = blockio::probe_identity(clone->target_path);
  REQUIRE_MESSAGE(probed.is_ok(), probed.status().message());
  CHECK(probed->path == fs::canonical(target).string());
  base::Status same = blockio::check_identity(clone->target_identity, *probed);
  CHECK_MESSAGE(same.is_ok(), same.message());
}

// cloned refuses a secret in a directory others may write: the directories
// pairing makes are 0755 whatever the umask.
TEST_CASE("pairing makes its directories 0755 under a umask of 002, and the secrets load") {
  TempDir tmp;
  const std::string target = tmp.path() + "/disk.img";
  create_image(target, 1 << 20);
  const mode_t before = ::umask(002);
  base::Status written = config::write_pair({tmp.path() + "/a/clone", tmp.path() + "/b/origin", target});
  ::umask(before);
  REQUIRE_MESSAGE(written.is_ok(), written.message());
  for (const char* dir : {"/a", "/a/clone", "/b", "/b/origin"}) CHECK(mode_of(tmp.path() + dir) == 0755);
  auto clone = config::load_clone_config(tmp.path() + "/a/clone/cloned.toml");
  REQUIRE_MESSAGE(clone.is_ok(), clone.status().message());
  auto secret = config::load_secret(clone->secret_file);
  CHECK_MESSAGE(secret.is_ok(), secret.status().message());
}

TEST_CASE("the clone listens on an IP address: a host name is refused at pairing and at load") {
  TempDir tmp;
  const std::string target = tmp.path() + "/disk.img";
  create_image(target, 1 << 20);
  base::Status named = config::write_pair({tmp.path() + "/c", tmp.path() + "/o", target, "clone.lan:7227"});
  REQUIRE_FALSE(named.is_ok());
  CHECK_MESSAGE(named.message().find("names the host \"clone.lan\"") != std::string::npos, named.message());
  CHECK_FALSE(fs::exists(tmp.path() + "/c"));
  REQUIRE(config::write_pair({tmp.path() + "/c", tmp.path() + "/o", target, "[::1]:7227"}).is_ok());
  std::string text = read_file(tmp.path() + "/c/cloned.toml");
  text.replace(text.find("[::1]:7227"), 10, "localhost:7227");
  write_file(tmp.path() + "/c/cloned.toml", text, 0644);
  auto loaded = config::load_clone_config(tmp.path() + "/c/cloned.toml");
  REQUIRE_FALSE(loaded.is_ok());
  CHECK_MESSAGE(loaded.status().message().find("must be an IP address of this machine") != std::string::npos,
                loaded.status().message());
}

TEST_CASE("pairing refuses one directory for both sides and a bad listen address") {
  TempDir tmp;
  const std::string target = tmp.path() + "/disk.img";
  create_image(target, 1 << 20);
  base::Status same = config::write_pair({tmp.path() + "/both", tmp.path() + "/both/", target});
  CHECK_FALSE(same.is_ok());
  base::Status bad = config::write_pair({tmp.path() + "/c", tmp.path() + "/o", target, "localhost"});
  CHECK_FALSE(bad.is_ok());
  CHECK(bad.message().find("the port is missing") != std::string::npos);
  CHECK_FALSE(fs::exists(tmp.path() + "/c"));
}

TEST_CASE("the example files in dist/ load, with every documented default") {
  TempDir tmp;
  fs::copy_file(std::string(SOURCE_ROOT) + "/dist/cloned.toml.example", tmp.path() + "/cloned.toml");
  fs::copy_file(std::string(SOURCE_ROOT) + "/dist/origin.toml.example", tmp.path() + "/origin.toml");
  write_file(tmp.path() + "/pair.secret", kSecretHex + "\n", 0600);

  auto clone = config::load_clone_config(tmp.path() + "/cloned.toml");
  REQUIRE_MESSAGE(clone.is_ok(), clone.status().message());
  const config::CloneConfig defaults;
  CHECK(clone->target_identity.kind == "block");
  CHECK(clone->target_identity.partition == 0);  // commented out in the example: a whole disk
  CHECK(clone->direct_io == defaults.direct_io);
  CHECK(clone->listen_host == defaults.listen_host);
  CHECK(clone->listen_port == defaults.listen_port);
  CHECK(clone->writer_threads == defaults.writer_threads);
  CHECK(clone->writer_priority_boost == defaults.writer_priority_boost);
  CHECK(clone->writer_time_slice_us == defaults.writer_time_slice_us);
  CHECK(clone->inflight_bytes_max == defaults.inflight_bytes_max);
  CHECK(clone->commit_interval_ms == defaults.commit_interval_ms);
  CHECK(clone->store_commit_delay_ms == defaults.store_commit_delay_ms);
  CHECK(clone->handshake_timeout_ms == defaults.handshake_timeout_ms);
  CHECK(clone->idle_timeout_ms == defaults.idle_timeout_ms);
  CHECK(clone->keepalive_interval_ms == defaults.keepalive_interval_ms);
  CHECK(clone->max_pending_handshakes == defaults.max_pending_handshakes);
  CHECK(clone->log_level == defaults.log_level);
  CHECK(clone->health_interval_s == defaults.health_interval_s);
  CHECK(clone->health_summary_interval_s == defaults.health_summary_interval_s);
  CHECK(clone->health_backlog_max == defaults.health_backlog_max);
  CHECK(clone->testing_io_error_length_bytes == 0);
  CHECK(clone->stage_max_bytes == defaults.stage_max_bytes);
  CHECK(clone->allow_remote_discard == defaults.allow_remote_discard);
  CHECK(clone->state_dir == tmp.path() + "/state");
  CHECK(config::load_secret(clone->secret_file).is_ok());

  auto origin = config::load_origin_config(tmp.path() + "/origin.toml");
  REQUIRE_MESSAGE(origin.is_ok(), origin.status().message());
  const config::OriginConfig origin_defaults;
  CHECK(origin->pair_id == clone->pair_id);
  CHECK(origin->retention_bytes_max == origin_defaults.retention_bytes_max);
  CHECK(origin->want_receipt_acks == origin_defaults.want_receipt_acks);
  CHECK(origin->connect_timeout_ms == origin_defaults.connect_timeout_ms);
  CHECK(origin->reconnect_initial_ms == origin_defaults.reconnect_initial_ms);
  CHECK(origin->reconnect_max_ms == origin_defaults.reconnect_max_ms);
  CHECK(origin->reconnect_attempts_max == origin_defaults.reconnect_attempts_max);
  CHECK(origin->idle_timeout_ms == origin_defaults.idle_timeout_ms);
  CHECK(origin->keepalive_interval_ms == origin_defaults.keepalive_interval_ms);
  CHECK(origin->logical_block_bytes == origin_defaults.logical_block_bytes);
  CHECK(origin->resync_extent_bytes == origin_defaults.resync_extent_bytes);
  CHECK(origin->resync_rate_bytes_max == origin_defaults.resync_rate_bytes_max);
  CHECK(origin->resync_mark_interval_bytes == origin_defaults.resync_mark_interval_bytes);
  CHECK(origin->resync_in_place_unbootable == origin_defaults.resync_in_place_unbootable);
  CHECK_FALSE(origin_defaults.resync_in_place_unbootable);  // staged, or refused: never unbootable unasked
}

TEST_CASE("a minimal config takes the defaults and resolves paths against its directory") {
  TempDir tmp;
  fs::create_directories(tmp.path() + "/stick");
  write_file(tmp.path() + "/stick/cloned.toml", kMinimalClone + "[state]\ndir = \"/var/x/../y\"\n");
  auto clone = config::load_clone_config(tmp.path() + "/stick/../stick/cloned.toml");
  REQUIRE_MESSAGE(clone.is_ok(), clone.status().message());
  CHECK(clone->config_path == tmp.path() + "/stick/cloned.toml");
  CHECK(clone->secret_file == tmp.path() + "/stick/pair.secret");
  CHECK(clone->target_path == tmp.path() + "/stick/disk.img");
  CHECK(clone->target_identity.path == clone->target_path);
  CHECK(clone->target_identity.size_bytes == (1u << 20));
  CHECK(clone->target_identity.logical_block_bytes == 0);  // not recorded: not compared at the start
  CHECK(clone->target_identity.partition == 0);
  CHECK(clone->target_identity.partition_start_bytes == 0);
  CHECK(clone->state_dir == "/var/y");
  CHECK(clone->runtime_dir == tmp.path() + "/stick/run");
  CHECK(clone->writer_threads == 4);
  CHECK(clone->writer_priority_boost == 10);
  CHECK(clone->writer_time_slice_us == 100);
  CHECK(clone->inflight_bytes_max == (32u << 20));

  write_file(tmp.path() + "/stick/origin.toml", kMinimalOrigin);
  auto origin = config::load_origin_config(tmp.path() + "/stick/origin.toml");
  REQUIRE_MESSAGE(origin.is_ok(), origin.status().message());
  CHECK(origin->clone_host == "fd00::2");
  CHECK(origin->clone_port == 7300);
  CHECK(origin->state_dir == tmp.path() + "/stick/state");
  CHECK(origin->retention_bytes_max == (256u << 20));
}

TEST_CASE("[target] partition and its start are read into the identity cloned checks at its start") {
  TempDir tmp;
  write_file(tmp.path() + "/cloned.toml", kMinimalClone + "partition = 3\npartition_start_bytes = 1048576\n");
  auto clone = config::load_clone_config(tmp.path() + "/cloned.toml");
  REQUIRE_MESSAGE(clone.is_ok(), clone.status().message());
  CHECK(clone->target_identity.partition == 3);
  CHECK(clone->target_identity.partition_start_bytes == (1u << 20));
}

TEST_CASE("each kind of mistake in cloned.toml names the file, the line and the key") {
  struct Mistake {
    std::string what;
    std::string text;
    std::string line;      // ":N: "
    std::string expected;  // part of the message
  };
  const Mistake mistakes[] = {
      {"unknown key", kMinimalClone + "[apply]\nwriter_thread = 3\n",
       ":9: ", "unknown key 'apply.writer_thread'; the keys of [apply] are writer_threads"},
      {"unknown table", kMinimalClone + "[aply]\nwriter_threads = 3\n", ":8: ", "unknown table [aply]"},
      {"unknown top-level key", "verbose = true\n" + kMinimalClone, ":1: ", "unknown key 'verbose'"},
      {"wrong type", kMinimalClone + "[apply]\nwriter_threads = \"4\"\n",
       ":9: ", "key 'apply.writer_threads' must be an integer, not a string"},
      {"out of range", kMinimalClone + "[apply]\n\nwriter_threads = 0\n",
       ":10: ", "key 'apply.writer_threads' must be between 1 and 64, not 0"},
      {"priority boost out of range", kMinimalClone + "[apply]\nwriter_priority_boost = 20\n",
       ":9: ", "key 'apply.writer_priority_boost' must be between 0 and 19, not 20"},
      {"time slice shorter than the kernel gives", kMinimalClone + "[apply]\nwriter_time_slice_us = 50\n",
       ":9: ", "key 'apply.writer_time_slice_us' must be 0 (the kernel's own) or between 100 and 100000, not 50"},
      {"time slice longer than the kernel gives", kMinimalClone + "[apply]\nwriter_time_slice_us = 100001\n",
       ":9: ", "key 'apply.writer_time_slice_us' must be between 0 and 100000, not 100001"},
      {"bad size", kMinimalClone + "[apply]\ninflight_bytes_max = \"lots\"\n",
       ":9: ", "key 'apply.inflight_bytes_max' must be a size"},
      {"size out of range", kMinimalClone + "[apply]\ninflight_bytes_max = \"2G\"\n",
       ":9: ", "key 'apply.inflight_bytes_max' must be between"},
      {"table that is a value", "apply = 3\n" + kMinimalClone, ":1: ", "'apply' must be a table"},
      {"bad enum", kMinimalClone + "[log]\nlevel = \"loud\"\n", ":9: ", "key 'log.level' must be one of"},
      {"bad address", kMinimalClone + "[listen]\naddress = \"::1:7227\"\n",
       ":9: ", "key 'listen.address' is not a usable address"},
      {"keepalive too long", kMinimalClone + "[link]\nkeepalive_interval_ms = 30000\n",
       ":9: ", "key 'link.keepalive_interval_ms' (30000) must be less than idle_timeout_ms"},
      {"block size", kMinimalClone + "logical_block_bytes = 1000\n",
       ":8: ", "key 'target.logical_block_bytes' must be a power of two"},
      {"missing required key",
       "[pair]\nid = \"00112233445566778899aabbccddeeff\"\n"
       "secret_file = \"s\"\n[target]\npath = \"d\"\nsize_bytes = 5\n",
       ":4: ", "key 'target.kind' is required and missing from [target]"},
      {"missing required table",
       "[pair]\nid = \"00112233445566778899aabbccddeeff\"\n"
       "secret_file = \"s\"\n",
       ":1: ", "key 'target.path' is required, and there is no [target] table"},
      {"bad pair id",
       "[pair]\nid = \"0011\"\nsecret_file = \"s\"\n[target]\npath = \"d\"\n"
       "kind = \"file\"\nsize_bytes = 5\n",
       ":2: ", "key 'pair.id' must be 32 hex digits"},
      {"syntax error", kMinimalClone + "[apply\nwriter_threads = 3\n", ":8:", "TOML syntax error"},
      {"health interval zero", kMinimalClone + "[health]\ninterval_s = 0\n",
       ":9: ", "key 'health.interval_s' must be between 1 and 604800, not 0"},
      {"health backlog too small", kMinimalClone + "[health]\nbacklog_max = 2\n",
       ":9: ", "key 'health.backlog_max' must be between 4 and 10000, not 2"},
      {"unknown health key", kMinimalClone + "[health]\ninterval = 60\n", ":9: ", "unknown key 'health.interval'"},
      {"stage too small", kMinimalClone + "[resync]\nstage_max_bytes = \"4K\"\n",
       ":9: ", "key 'resync.stage_max_bytes' must be 0 (no staging"},
  };
  TempDir tmp;
  const std::string file = tmp.path() + "/cloned.toml";
  for (const Mistake& mistake : mistakes) {
    CAPTURE(mistake.what);
    write_file(file, mistake.text);
    auto loaded = config::load_clone_config(file);
    REQUIRE_FALSE(loaded.is_ok());
    const std::string& message = loaded.status().message();
    CAPTURE(message);
    CHECK(message.rfind(file + mistake.line, 0) == 0);
    CHECK(message.find(mistake.expected) != std::string::npos);
  }
}

TEST_CASE("a misspelt key is reported before the required key it hides") {
  TempDir tmp;
  const std::string file = tmp.path() + "/cloned.toml";
  write_file(file,
             "[pair]\nid = \"00112233445566778899aabbccddeeff\"\nsecret_file = \"s\"\n"
             "[target]\npth = \"d\"\nkind = \"file\"\nsize_bytes = 5\n");
  auto loaded = config::load_clone_config(file);
  REQUIRE_FALSE(loaded.is_ok());
  CHECK(loaded.status().message().rfind(file + ":5: unknown key 'target.pth'", 0) == 0);
  CHECK(loaded.status().message().find("(and 1 more problem in this file)") != std::string::npos);
}

TEST_CASE("mistakes in origin.toml name the file, the line and the key") {
  TempDir tmp;
  const std::string file = tmp.path() + "/origin.toml";
  write_file(file,
             "[pair]\nid = \"00112233445566778899aabbccddeeff\"\nsecret_file = \"s\"\n"
             "[clone]\ndisk_size_bytes = 5\n");
  auto missing = config::load_origin_config(file);
  REQUIRE_FALSE(missing.is_ok());
  CHECK(missing.status().message() == file + ":4: key 'clone.address' is required and missing from [clone]");

  write_file(file, kMinimalOrigin + "[origin]\nreconnect_initial_ms = 500\nreconnect_max_ms = 100\n");
  auto backwards = config::load_origin_config(file);
  REQUIRE_FALSE(backwards.is_ok());
  CHECK(backwards.status().message().rfind(file + ":9: key 'origin.reconnect_max_ms'", 0) == 0);

  write_file(file, kMinimalOrigin + "[resync]\nin_place_unbootable = \"yes\"\n");
  auto unbootable = config::load_origin_config(file);
  REQUIRE_FALSE(unbootable.is_ok());
  CHECK(unbootable.status().message().find("key 'resync.in_place_unbootable' must be true or false") !=
        std::string::npos);

  write_file(file, kMinimalOrigin + "[origin]\nwant_receipt_acks = 1\n");
  auto wrong = config::load_origin_config(file);
  REQUIRE_FALSE(wrong.is_ok());
  CHECK(wrong.status().message() == file + ":8: key 'origin.want_receipt_acks' must be true or false, not an integer");
}

TEST_CASE("a missing config file is an error naming the file") {
  TempDir tmp;
  auto loaded = config::load_clone_config(tmp.path() + "/nope.toml");
  REQUIRE_FALSE(loaded.is_ok());
  CHECK(loaded.status().code() == ENOENT);
  CHECK(loaded.status().message().find(tmp.path() + "/nope.toml") != std::string::npos);
  CHECK(loaded.status().message().find("No such file or directory") != std::string::npos);
  CHECK_FALSE(config::load_origin_config(tmp.path() + "/nope.toml").is_ok());
}

TEST_CASE("a secret file readable by others is refused with the chmod that fixes it") {
  TempDir tmp;
  const std::string path = tmp.path() + "/pair.secret";
  write_file(path, kSecretHex + "\n", 0644);
  auto loaded = config::load_secret(path);
  REQUIRE_FALSE(loaded.is_ok());
  CHECK(loaded.status().message().find("is readable by others") != std::string::npos);
  CHECK(loaded.status().message().find("run chmod 600 " + path) != std::string::npos);

  write_file(path, kSecretHex + "\n", 0620);
  CHECK_FALSE(config::load_secret(path).is_ok());
  write_file(path, kSecretHex + "\n", 0600);
  CHECK(config::load_secret(path).is_ok());
}

TEST_CASE("a secret behind a symbolic link, a FIFO or a directory is refused at once (issue 14, finding 5)") {
  TempDir tmp;
  const std::string path = tmp.path() + "/pair.secret";
  write_file(tmp.path() + "/real.secret", kSecretHex + "\n", 0600);
  REQUIRE(::symlink((tmp.path() + "/real.secret").c_str(), path.c_str()) == 0);
  auto loaded = config::load_secret(path);
  REQUIRE_FALSE(loaded.is_ok());
  CHECK(loaded.status().message().find("is a symbolic link") != std::string::npos);
  ::unlink(path.c_str());
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);  // opening it for reading used to block forever
  loaded = config::load_secret(path);
  REQUIRE_FALSE(loaded.is_ok());
  CHECK(loaded.status().message().find("is not a regular file") != std::string::npos);
  ::unlink(path.c_str());
  REQUIRE(::mkdir(path.c_str(), 0700) == 0);
  CHECK_FALSE(config::load_secret(path).is_ok());
}

TEST_CASE("a secret in a directory others can write to is refused with the chmod that fixes it") {
  TempDir tmp;
  const std::string dir = tmp.path() + "/open";
  REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
  REQUIRE(::chmod(dir.c_str(), 0777) == 0);
  write_file(dir + "/pair.secret", kSecretHex + "\n", 0600);
  auto loaded = config::load_secret(dir + "/pair.secret");
  REQUIRE_FALSE(loaded.is_ok());
  CHECK(loaded.status().message().find("is writable by others (mode 0777)") != std::string::npos);
  CHECK(loaded.status().message().find("run chmod go-w " + dir) != std::string::npos);
  REQUIRE(::chmod(dir.c_str(), 0755) == 0);
  CHECK(config::load_secret(dir + "/pair.secret").is_ok());
}

// Needs root to give the file to another user; doctest reports it skipped otherwise.
TEST_CASE("a secret owned by another user is refused" * doctest::skip(::geteuid() != 0)) {
  TempDir tmp;
  const std::string path = tmp.path() + "/pair.secret";
  write_file(path, kSecretHex + "\n", 0600);
  REQUIRE(::chown(path.c_str(), 65534, 65534) == 0);  // nobody
  auto loaded = config::load_secret(path);
  REQUIRE_FALSE(loaded.is_ok());
  CHECK(loaded.status().message().find("belongs to uid 65534") != std::string::npos);
  REQUIRE(::chown(path.c_str(), 0, 0) == 0);
  CHECK(config::load_secret(path).is_ok());  // root's file is the daemon's own (it runs as root)
}

TEST_CASE("a secret file must hold exactly 64 hex digits and an optional newline") {
  TempDir tmp;
  const std::string path = tmp.path() + "/pair.secret";
  write_file(path, kSecretHex, 0600);
  auto loaded = config::load_secret(path);
  REQUIRE(loaded.is_ok());
  CHECK(loaded->bytes[1] == 1);
  CHECK(loaded->bytes[31] == 0x1f);
  for (const std::string& bad : {kSecretHex.substr(2), kSecretHex + "00", kSecretHex + "\n\n",
                                 "zz" + kSecretHex.substr(2), std::string(), kSecretHex + " "}) {
    CAPTURE(bad);
    write_file(path, bad, 0600);
    auto refused = config::load_secret(path);
    REQUIRE_FALSE(refused.is_ok());
    CHECK(refused.status().message().find("64 hex digits") != std::string::npos);
  }
  CHECK_FALSE(config::load_secret(tmp.path() + "/missing").is_ok());
}

TEST_CASE("derived keys depend on the secret and differ from each other") {
  config::PairSecret a, b;
  b.bytes[0] = 1;
  config::DerivedKeys ka = config::derive_keys(a), kb = config::derive_keys(b);
  CHECK(ka.auth_key == config::derive_keys(a).auth_key);
  CHECK(ka.auth_key != kb.auth_key);
  CHECK(ka.digest_key != kb.digest_key);
  CHECK(std::vector<uint8_t>(ka.auth_key.begin(), ka.auth_key.end()) !=
        std::vector<uint8_t>(ka.digest_key.begin(), ka.digest_key.end()));
}

TEST_CASE("HOST:PORT parses IPv4, names and bracketed IPv6, and refuses the rest") {
  std::string host;
  uint16_t port = 0;
  REQUIRE(config::parse_host_port("127.0.0.1:7227", host, port).is_ok());
  CHECK(host == "127.0.0.1");
  CHECK(port == 7227);
  REQUIRE(config::parse_host_port("[::1]:7227", host, port).is_ok());
  CHECK(host == "::1");
  CHECK(port == 7227);
  REQUIRE(config::parse_host_port("clone.local:1", host, port).is_ok());
  CHECK(host == "clone.local");
  CHECK(port == 1);
  REQUIRE(config::parse_host_port("[fe80::1%eth0]:65535", host, port).is_ok());
  CHECK(host == "fe80::1%eth0");
  CHECK(port == 65535);

  for (const char* bad : {"", "host", ":7227", "host:", "host:0", "host:65536", "host:99999999", "::1:7227", "[::1]",
                          "[::1]7227", "[::1:7227", "host:12a", "[]:80", "a b:80", "host:-1", "host:+80"}) {
    CAPTURE(bad);
    base::Status status = config::parse_host_port(bad, host, port);
    CHECK_FALSE(status.is_ok());
    CHECK(status.message().find("HOST:PORT") != std::string::npos);
  }
  CHECK(host == "fe80::1%eth0");  // untouched by failures
}

TEST_CASE("the [wake] tables load, and the test-double knob is refused without the test double") {
  TempDir tmp;
  const std::string file = tmp.path() + "/cloned.toml";
  write_file(file, kMinimalClone + "[wake]\ninterface = \"eth0\"\nidle_sleep_s = 600\npower = \"sysfs\"\n");
  auto ok = config::load_clone_config(file);
  REQUIRE_MESSAGE(ok.is_ok(), ok.status().message());
  CHECK(ok->wake_interface == "eth0");
  CHECK(ok->idle_sleep_s == 600);
  CHECK(ok->power_backend == "sysfs");
  CHECK_FALSE(ok->test_double_counts_as_armed);

  write_file(
      file, kMinimalClone + "[wake]\ninterface = \"v\"\npower = \"test-double\"\ntest_double_counts_as_armed = true\n");
  auto knob = config::load_clone_config(file);
  REQUIRE_MESSAGE(knob.is_ok(), knob.status().message());
  CHECK(knob->test_double_counts_as_armed);
  CHECK(knob->test_double_sleep_limit_ms == 3'600'000);
  write_file(file,
             kMinimalClone + "[wake]\ninterface = \"v\"\npower = \"test-double\"\ntest_double_sleep_limit_ms = 500\n");
  auto limit = config::load_clone_config(file);
  REQUIRE_MESSAGE(limit.is_ok(), limit.status().message());
  CHECK(limit->test_double_sleep_limit_ms == 500);

  write_file(file, kMinimalClone + "[wake]\ninterface = \"ens3\"\ntesting_sleep_on_virtio_nic = true\n");
  auto vm_knob = config::load_clone_config(file);
  REQUIRE_MESSAGE(vm_knob.is_ok(), vm_knob.status().message());
  CHECK(vm_knob->testing_sleep_on_virtio_nic);
  CHECK_FALSE(ok->testing_sleep_on_virtio_nic);

  struct Mistake {
    std::string text, expected;
  };
  const Mistake mistakes[] = {
      {"[wake]\ntesting_sleep_on_virtio_nic = true\n", "testing knob for a virtual machine's virtio NIC"},
      {"[wake]\ninterface = \"eth0\"\ntest_double_counts_as_armed = true\n",
       "valid only together with power = \"test-double\""},
      {"[wake]\ninterface = \"eth0\"\npower = \"logind\"\ntest_double_counts_as_armed = true\n",
       "valid only together with power = \"test-double\""},
      {"[wake]\ninterface = \"eth0\"\ntest_double_sleep_limit_ms = 500\n",
       "valid only together with power = \"test-double\""},
      {"[wake]\ninterface = \"v\"\npower = \"test-double\"\ntest_double_sleep_limit_ms = 10\n",
       "test_double_sleep_limit_ms"},
      {"[wake]\npower = \"hibernate\"\n", "key 'wake.power' must be"},
      {"[wake]\ninterface = \"eth0\"\nidle_sleep_s = 5\n", "at least 10 seconds"},
      {"[wake]\nidle_sleep_s = 60\n", "needs wake.interface"},
  };
  for (const Mistake& m : mistakes) {
    CAPTURE(m.text);
    write_file(file, kMinimalClone + m.text);
    auto loaded = config::load_clone_config(file);
    REQUIRE_FALSE(loaded.is_ok());
    CHECK(loaded.status().message().find(m.expected) != std::string::npos);
  }

  const std::string ofile = tmp.path() + "/origin.toml";
  write_file(ofile, kMinimalOrigin + "[wake]\nmac = \"02:aa:bb:cc:dd:ee\"\ninterface = \"eth1\"\nauto = false\n");
  auto origin = config::load_origin_config(ofile);
  REQUIRE_MESSAGE(origin.is_ok(), origin.status().message());
  CHECK(origin->wake_mac == "02:aa:bb:cc:dd:ee");
  CHECK(origin->wake_interface == "eth1");
  CHECK_FALSE(origin->wake_auto);
  write_file(ofile, kMinimalOrigin + "[wake]\nmac = \"02:aa:bb\"\n");
  auto bad = config::load_origin_config(ofile);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message().find("key 'wake.mac' must be a MAC address") != std::string::npos);
}
