// SPDX-License-Identifier: MIT
// Sentences for a person deciding what to do with a Diverged clone.
#include <map>

#include "cloned/diverge/fingerprint.h"

namespace diverge {
namespace {

const Fact* find_fact(const std::vector<Fact>& facts, const std::string& name) {
  for (const Fact& f : facts) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// "mount count 3 -> 4, last write 2026-11-22 06:40:01 UTC": times show their
// new value only, everything else old -> new.
std::string changed_facts(const Region& before, const Region& after) {
  std::string text;
  for (const Fact& f : after.facts) {
    const Fact* old = find_fact(before.facts, f.name);
    if (old != nullptr && old->value == f.value) continue;
    if (!text.empty()) text += ", ";
    if (old == nullptr || f.name.rfind("last ", 0) == 0) text += f.name + " " + f.value;
    else text += f.name + " " + old->value + " -> " + f.value;
  }
  return text;
}

std::string with_facts(std::string sentence, const std::string& facts) {
  return facts.empty() ? sentence : sentence + " (" + facts + ")";
}

std::string fs_name(const Region& r) { return r.name.substr(0, r.name.find(' ')); }

std::string changed(const Region& before, const Region& after) {
  const std::string facts = changed_facts(before, after);
  const std::string& where = after.where;
  switch (after.kind) {
    case RegionKind::disk_head:
      return "the first 1 MiB of the disk changed (boot code, partition tables and boot loaders live there)";
    case RegionKind::disk_tail:
      return "the last 1 MiB of the disk changed (the backup GPT lives there)";
    case RegionKind::mbr:
      return with_facts("the partition table changed (MBR)", facts);
    case RegionKind::gpt_header:
      return "the partition table changed (GPT header)";
    case RegionKind::gpt_entries:
      return with_facts("the partition table changed (GPT entries)", facts);
    case RegionKind::gpt_backup_header:
      return "the partition table changed (backup GPT header)";
    case RegionKind::gpt_backup_entries:
      return "the partition table changed (backup GPT entries)";
    case RegionKind::ext_superblock: {
      const bool mounted = changed_facts(before, after).find("mount") != std::string::npos;
      const std::string fs = "the " + fs_name(after) + " filesystem on " + where;
      return with_facts(fs + (mounted ? " was mounted since" : " was changed (its superblock differs)"), facts);
    }
    case RegionKind::ntfs_boot_sector:
      return with_facts("the NTFS boot sector on " + where + " changed", facts);
    case RegionKind::ntfs_metadata_records:
      return with_facts("the NTFS filesystem on " + where + " was written (its metadata records $MFT..$Extend changed)",
                        facts);
    case RegionKind::ntfs_logfile:
      return with_facts("the NTFS journal ($LogFile) on " + where +
                            " was written, as a mount by Windows or a reset by ntfs-3g does",
                        facts);
    case RegionKind::ntfs_mft_bitmap:
      return "files were created or deleted on the NTFS filesystem on " + where + " (its $MFT bitmap changed)";
    case RegionKind::ntfs_cluster_bitmap:
      return "clusters were allocated or freed on the NTFS filesystem on " + where +
             " (its cluster bitmap $Bitmap changed: a file grew, shrank, was created or deleted)";
    case RegionKind::partition_head:
      return "the first 128 KiB of " + where + " changed (a filesystem we do not parse was written there)";
  }
  return "the " + after.name + " changed";
}

std::string moved(const Region& before, const Region& after) {
  return "the " + after.name + " moved (offset " + std::to_string(before.offset_bytes) + " -> " +
         std::to_string(after.offset_bytes) + ", length " + std::to_string(before.length_bytes) + " -> " +
         std::to_string(after.length_bytes) + " bytes)";
}

}  // namespace

std::vector<std::string> differences(const Fingerprint& before, const Fingerprint& after) {
  std::vector<std::string> out;
  if (before.disk_bytes != after.disk_bytes) {
    out.push_back("the disk's size changed (" + std::to_string(before.disk_bytes) + " -> " +
                  std::to_string(after.disk_bytes) + " bytes)");
  }
  std::map<std::string, const Region*> old_by_name;
  for (const Region& r : before.regions) old_by_name[r.name] = &r;
  for (const Region& r : after.regions) {
    auto it = old_by_name.find(r.name);
    if (it == old_by_name.end()) {
      out.push_back("the " + r.name + " was not there before");
      continue;
    }
    const Region& old = *it->second;
    old_by_name.erase(it);
    if (old.offset_bytes != r.offset_bytes || old.length_bytes != r.length_bytes) out.push_back(moved(old, r));
    else if (old.kind != r.kind || !digest::digest_equal(old.digest, r.digest)) out.push_back(changed(old, r));
  }
  for (const Region& r : before.regions) {
    if (old_by_name.count(r.name) != 0) out.push_back("the " + r.name + " is no longer there");
  }
  return out;
}

}  // namespace diverge
