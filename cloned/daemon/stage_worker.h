// SPDX-License-Identifier: MIT
// The stage worker: one thread that carries out the apply machine's staged
// resync actions (apply.h, Actions::stage_*) on the stage file next to the
// state store (cloned/stage), in the order they were given: open, appends
// (each checked against its digest first, like a disk write), syncs, the
// copy to the disk, the removal.
//
// Once an open, append or sync fails, every later append and sync fails with
// the same sentence until the next open: a stage never holds an extent after
// one that is missing. Completions go to the loop through Completions: an
// append as Kind::io (its record id), the rest as Kind::stage_*.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "cloned/apply/apply.h"
#include "cloned/daemon/workers.h"
#include "cloned/stage/stage.h"

namespace cloned {

class StageWorker {
 public:
  // `path`: the stage file. `device` and `digest_key` outlive the worker.
  StageWorker(std::string path, const stage::Limits& limits, blockio::BlockDevice& device,
              const digest::DigestKey& digest_key, Completions& done);
  ~StageWorker();  // joins; jobs queued before are carried out first
  StageWorker(const StageWorker&) = delete;
  StageWorker& operator=(const StageWorker&) = delete;

  void open(const apply::StageOpen& how);
  void append(apply::RecordId id, const proto::RecordHeader& header, proto::Frame frame);
  void sync();
  void apply();
  void remove();
  const std::string& path() const { return path_; }
  // The bound and the free space on the stick now, less the state store's
  // reserve (statvfs of the stage's directory; any thread, it is quick).
  apply::StageRoom room() const;

 private:
  struct Job {
    enum class Kind { open, append, sync, apply, remove } kind = Kind::open;
    apply::StageOpen how;
    apply::RecordId id = 0;
    proto::RecordHeader header;
    proto::Frame frame;
  };
  void push(Job job);
  void run();
  void perform(Job& job);
  void do_open(const apply::StageOpen& how);
  void do_append(Job& job);

  const std::string path_;
  const stage::Limits limits_;
  blockio::BlockDevice& device_;
  const digest::DigestKey& digest_key_;
  Completions& done_;
  // Worker thread only.
  std::optional<stage::Stage> stage_;
  base::Status broken_;  // not ok: the last open, append or sync failed
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cloned
