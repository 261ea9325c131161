// SPDX-License-Identifier: MIT
// The fingerprint over synthetic images in memory: partition tables parse
// into the expected partitions, garbage does not crash, and the sentences.
#include <doctest/doctest.h>

#include <random>

#include "cloned/diverge/fingerprint.h"
#include "cloned/diverge/internal.h"
#include "cloned/diverge/tests/images.h"

using namespace diverge_test;
using diverge::Fingerprint;
using diverge::RegionKind;
using diverge::detail::Partition;
using diverge::detail::PartitionTable;
using diverge::detail::RegionReader;
using diverge::detail::TableKind;

namespace {

constexpr uint64_t kDiskBytes = 64 << 20;
const digest::DigestKey kKey = {1, 2, 3};

PartitionTable table_of(blockio::MemoryDevice& dev) {
  Fingerprint fp;
  RegionReader reader(dev, kKey, fp);
  auto table = diverge::detail::fingerprint_partition_table(reader);
  REQUIRE(table.is_ok());
  return table.value();
}

Fingerprint take(blockio::MemoryDevice& dev, const digest::DigestKey& key = kKey) {
  auto fp = diverge::take_fingerprint(dev, key);
  REQUIRE_MESSAGE(fp.is_ok(), fp.status().message());
  return fp.value();
}

const diverge::Region* find(const Fingerprint& fp, const std::string& name) {
  for (const auto& r : fp.regions) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string joined(const std::vector<std::string>& lines) {
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  return all;
}

}  // namespace

TEST_CASE("an MBR with two primaries and an extended container parses into the two primaries") {
  blockio::MemoryDevice dev(kDiskBytes);
  write_mbr(dev, {{0x83, 2048, 32768, 0x80}, {0x05, 34816, 8192, 0}, {0x07, 43008, 20480, 0}});
  const PartitionTable t = table_of(dev);
  CHECK(t.kind == TableKind::mbr);
  REQUIRE(t.partitions.size() == 2);
  CHECK(t.partitions[0].number == 1);
  CHECK(t.partitions[0].offset_bytes == 2048 * kSector);
  CHECK(t.partitions[0].length_bytes == 32768 * kSector);
  CHECK(t.partitions[1].number == 3);
  CHECK(t.partitions[1].offset_bytes == 43008 * kSector);
  CHECK(t.entries_skipped == 1);

  const Fingerprint fp = take(dev);
  const auto* mbr = find(fp, "partition table (MBR)");
  REQUIRE(mbr != nullptr);
  CHECK(mbr->offset_bytes == 440);
  CHECK(mbr->facts == std::vector<diverge::Fact>{{"partitions", "2"}});
  // Neither partition holds a filesystem we parse: their first 128 KiB are digested.
  CHECK(find(fp, "first 128 KiB of partition 1") != nullptr);
  CHECK(find(fp, "first 128 KiB of partition 3") != nullptr);
  CHECK(find(fp, "GPT header") == nullptr);
}

TEST_CASE("a GPT parses into its used entries, numbered by slot, with both copies digested") {
  blockio::MemoryDevice dev(kDiskBytes);
  write_gpt(dev, {{0, 2048, 10239}, {1, 10240, 20479}, {4, 20480, 40959}});
  const PartitionTable t = table_of(dev);
  CHECK(t.kind == TableKind::gpt);
  REQUIRE(t.partitions.size() == 3);
  CHECK(t.partitions[0].number == 1);
  CHECK(t.partitions[0].offset_bytes == 2048 * kSector);
  CHECK(t.partitions[0].length_bytes == 8192 * kSector);
  CHECK(t.partitions[2].number == 5);
  CHECK(t.partitions[2].length_bytes == 20480 * kSector);

  const Fingerprint fp = take(dev);
  const uint64_t blocks = kDiskBytes / kSector;
  for (const char* name : {"GPT header", "GPT entries", "backup GPT header", "backup GPT entries",
                           "partition table (MBR)", "first 1 MiB", "last 1 MiB", "first 128 KiB of partition 5"}) {
    CAPTURE(name);
    CHECK(find(fp, name) != nullptr);
  }
  CHECK(find(fp, "GPT entries")->offset_bytes == 2 * kSector);
  CHECK(find(fp, "GPT entries")->length_bytes == 128 * 128);
  CHECK(find(fp, "backup GPT header")->offset_bytes == (blocks - 1) * kSector);
  CHECK(find(fp, "backup GPT entries")->offset_bytes == (blocks - 33) * kSector);
  CHECK(find(fp, "GPT entries")->facts == std::vector<diverge::Fact>{{"partitions", "3"}});
}

TEST_CASE("a GPT with more partitions than the cap keeps the first 16") {
  blockio::MemoryDevice dev(kDiskBytes);
  std::vector<GptPart> parts;
  for (uint32_t i = 0; i < 20; ++i) parts.push_back({i, 2048 + i * 1024ull, 2048 + i * 1024ull + 1023});
  write_gpt(dev, parts);
  const PartitionTable t = table_of(dev);
  CHECK(t.partitions.size() == diverge::kPartitionsMax);
  CHECK(t.entries_skipped == 4);
  CHECK(t.partitions.back().number == 16);
}

TEST_CASE("a disk without a partition table is probed as one filesystem at offset 0") {
  blockio::MemoryDevice dev(kDiskBytes);
  write_ext4_superblock(dev, 0, 3, 1795000000);
  const Fingerprint fp = take(dev);
  const auto* sb = find(fp, "ext4 superblock on the whole disk");
  REQUIRE(sb != nullptr);
  CHECK(sb->offset_bytes == 1024);
  CHECK(sb->length_bytes == 1024);
  CHECK(sb->where == "the whole disk");
  CHECK(find(fp, "GPT header") == nullptr);
  // Cost: a few small regions, not the disk.
  CHECK(fp.bytes_read > 2 * diverge::detail::kMiB);
  CHECK(fp.bytes_read < 3 * diverge::detail::kMiB);
}

TEST_CASE("the same disk taken twice shows no differences; another key gives other digests") {
  blockio::MemoryDevice dev(kDiskBytes);
  write_gpt(dev, {{0, 2048, 10239}});
  write_ext4_superblock(dev, 2048 * kSector, 1, 1795000000);
  const Fingerprint a = take(dev);
  const Fingerprint b = take(dev);
  CHECK(diverge::differences(a, b).empty());
  const Fingerprint other = take(dev, digest::DigestKey{9});
  REQUIRE(other.regions.size() == a.regions.size());
  for (size_t i = 0; i < a.regions.size(); ++i) {
    CAPTURE(a.regions[i].name);
    CHECK_FALSE(digest::digest_equal(a.regions[i].digest, other.regions[i].digest));
  }
}

TEST_CASE("a mounted ext4 reads as 'mounted since' with its mount count and last write") {
  blockio::MemoryDevice dev(kDiskBytes);
  write_mbr(dev, {{0x83, 2048, 65536, 0}});
  write_ext4_superblock(dev, 2048 * kSector, 3, 1795000000);
  const Fingerprint before = take(dev);
  write_ext4_superblock(dev, 2048 * kSector, 4, 1795329601);
  const auto diff = diverge::differences(before, take(dev));
  REQUIRE(diff.size() == 1);
  CHECK(diff[0] ==
        "the ext4 filesystem on partition 1 was mounted since (mount count 3 -> 4, last mount 2026-11-22 06:39:01 UTC, "
        "last write 2026-11-22 06:40:01 UTC, kbytes written 12288 -> 16384)");
}

TEST_CASE("a partition table edit is named, and the partitions it adds or removes too") {
  blockio::MemoryDevice dev(kDiskBytes);
  write_mbr(dev, {{0x83, 2048, 32768, 0}});
  const Fingerprint before = take(dev);

  SUBCASE("a changed type") {
    write_mbr(dev, {{0x07, 2048, 32768, 0}});
    const auto diff = diverge::differences(before, take(dev));
    REQUIRE(diff.size() == 2);  // the MBR and the first MiB that holds it
    CHECK(contains(joined(diff), "the partition table changed (MBR)\n"));
    CHECK(contains(joined(diff), "the first 1 MiB of the disk changed"));
  }
  SUBCASE("an added partition") {
    write_mbr(dev, {{0x83, 2048, 32768, 0}, {0x83, 34816, 8192, 0}});
    const std::string all = joined(diverge::differences(before, take(dev)));
    CHECK(contains(all, "the partition table changed (MBR) (partitions 1 -> 2)"));
    CHECK(contains(all, "the first 128 KiB of partition 2 was not there before"));
  }
  SUBCASE("the table replaced by a GPT") {
    write_gpt(dev, {{0, 2048, 34815}});
    const std::string all = joined(diverge::differences(before, take(dev)));
    CHECK(contains(all, "the GPT header was not there before"));
    CHECK(contains(all, "the last 1 MiB of the disk changed"));
  }
}

TEST_CASE("a write into a partition we cannot parse is seen in its first 128 KiB") {
  blockio::MemoryDevice dev(kDiskBytes);
  write_mbr(dev, {{0x0C, 2048, 32768, 0}});
  const Fingerprint before = take(dev);
  write_bytes(dev, 2048 * kSector + 4096, base::Bytes(512, 0x5A));
  const auto diff = diverge::differences(before, take(dev));
  REQUIRE(diff.size() == 1);
  CHECK(diff[0] == "the first 128 KiB of partition 1 changed (a filesystem we do not parse was written there)");
}

TEST_CASE("a different disk size is a difference of its own") {
  blockio::MemoryDevice small(kDiskBytes);
  blockio::MemoryDevice large(2 * kDiskBytes);
  const auto diff = diverge::differences(take(small), take(large));
  REQUIRE_FALSE(diff.empty());
  CHECK(diff[0] == "the disk's size changed (67108864 -> 134217728 bytes)");
}

TEST_CASE("garbage partition tables do not crash and are fingerprinted as raw regions") {
  const uint64_t seed = std::random_device{}();
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 200; ++round) {
    CAPTURE(round);
    blockio::MemoryDevice dev(8 << 20);
    base::Bytes junk(64 * 1024);
    for (auto& b : junk) b = uint8_t(rng());
    // Half the rounds keep what makes the parsers go further: a valid-looking
    // MBR signature, a protective entry, a GPT signature, plausible sizes.
    if (round % 2 == 0) {
      junk[510] = 0x55;
      junk[511] = 0xAA;
      for (int i = 0; i < 4; ++i) junk[446 + 16 * i] = (rng() & 1) ? 0x80 : 0;
      if (round % 4 == 0) {
        junk[446 + 4] = 0xEE;
        std::copy_n("EFI PART", 8, &junk[512]);
        base::store_le32(&junk[512 + 12], 92);
        base::store_le64(&junk[512 + 24], 1);
        base::store_le64(&junk[512 + 72], 2 + rng() % 64);
        base::store_le32(&junk[512 + 84], 128u << (rng() % 4));
        if (round % 8 == 0) base::store_le32(&junk[512 + 80], uint32_t(rng()));
      }
    }
    write_bytes(dev, 0, junk);
    const Fingerprint fp = take(dev);
    CHECK(find(fp, "first 1 MiB") != nullptr);
    CHECK(find(fp, "partition table (MBR)") != nullptr);
    for (const auto& r : fp.regions) {
      CAPTURE(r.name);
      CHECK(r.offset_bytes + r.length_bytes <= fp.disk_bytes);
      CHECK(r.length_bytes <= 4 * diverge::detail::kMiB);
    }
    CHECK(diverge::differences(fp, take(dev)).empty());
  }
}

TEST_CASE("a garbage NTFS boot sector is digested but not followed") {
  blockio::MemoryDevice dev(kDiskBytes);
  base::Bytes boot(512, 0xFF);
  std::copy_n("\xEB\x52\x90NTFS    ", 11, boot.begin());
  write_bytes(dev, 0, boot);
  const Fingerprint fp = take(dev);
  const auto* r = find(fp, "NTFS boot sector on the whole disk");
  REQUIRE(r != nullptr);
  CHECK(r->facts == std::vector<diverge::Fact>{{"layout", "not understood"}});
  CHECK(find(fp, "NTFS metadata records on the whole disk") == nullptr);
}
