// SPDX-License-Identifier: MIT
// The daemon's part of a staged resync (issue 18; apply/staged.cpp decides):
// carrying the machine's stage actions to the stage worker, its completions
// back, the events of each phase, and finishing an apply at start.
#include <sys/stat.h>

#include "base/log.h"
#include "base/units.h"
#include "cloned/daemon/daemon.h"

namespace cloned {

using base::u64s;

// Idempotent per Actions: the open goes first (apply_actions calls this
// before the submits when there is one), the rest after the submits.
void Daemon::stage_actions(apply::Actions& a) {
  if (a.stage_open) {
    const apply::StageOpen& o = *a.stage_open;
    stage_worker_->open(o);
    if (o.create) {
      const std::string what = o.generation == o.base_generation
                                   ? "staging a repair of generation " + u64s(o.generation) +
                                         " on the stick; the disk is left as it is until the repair is whole"
                                   : "staging generation " + u64s(o.generation) +
                                         " on the stick; the disk keeps generation " + u64s(o.base_generation) +
                                         ", bootable, until it is whole";
      LOG_NOTICE("%s (%s)", what.c_str(), stage_worker_->path().c_str());
      record_event("notice", "stage", what);
    }
    a.stage_open.reset();
  }
  if (a.stage_sync) stage_worker_->sync();
  a.stage_sync = false;
  if (a.stage_apply) {
    const uint64_t g = machine_.replica().resync.generation;
    LOG_NOTICE("applying generation %llu from the stage to the disk (finishes without the original)",
               static_cast<unsigned long long>(g));
    record_event("notice", "stage", "applying generation " + u64s(g) + " from the stick to the disk");
    stage_worker_->apply();
  }
  a.stage_apply = false;
  if (a.stage_remove) {
    record_event("notice", "stage",
                 "generation " + u64s(machine_.replica().generation) + " applied and committed; the stage was removed");
    stage_worker_->remove();
  }
  a.stage_remove = false;
  if (a.stage_drop) {
    record_event("notice", "stage",
                 "the staged resync was replaced by one in place; its stage was removed from the stick");
    stage_worker_->remove();
  }
  a.stage_drop = false;
}

void Daemon::on_stage_completion(Completion& c, apply::Actions& actions) {
  const unsigned tries_before = machine_.stage_next_try();
  switch (c.kind) {
    case Completion::Kind::stage_open:
      if (machine_.on_stage_opened(c.status, actions)) {
        LOG_ERROR("the stage could not be opened: %s", c.status.message().c_str());
        record_event("error", "stage", "could not open the stage: " + c.status.message());
      } else if (!c.status.is_ok()) {
        LOG_INFO("the stage of a replaced resync could not be opened (it changes nothing): %s",
                 c.status.message().c_str());
      }
      return log_stage_retry(tries_before);
    case Completion::Kind::stage_sync:
      if (!c.status.is_ok()) {
        LOG_ERROR("the stage could not be synced: %s", c.status.message().c_str());
        record_event("error", "stage", "could not sync the stage: " + c.status.message());
      }
      return machine_.on_stage_synced(c.status, c.offset_bytes, c.length_bytes, actions);
    case Completion::Kind::stage_apply:
      if (!c.status.is_ok()) {
        LOG_ERROR("applying the stage failed: %s", c.status.message().c_str());
        if (c.disk_failed) health_.io_error(c);  // the disk's, as a log write's would be
      } else {
        const std::string what = "copied " + base::format_bytes(c.offset_bytes) + " from the stage to the disk in " +
                                 u64s(c.length_bytes / 1000) + " ms (the only time the disk was no whole generation)";
        LOG_NOTICE("%s", what.c_str());
        record_event("notice", "stage", what);
      }
      machine_.on_stage_applied(c.status, c.disk_failed, actions);
      return log_stage_retry(tries_before);
    default:
      return;
  }
}

// After a stick error while applying: says when the next try comes, once
// per try (the machine gives up after a few, and says so in the state).
void Daemon::log_stage_retry(unsigned tries_before) {
  const uint64_t wait_ms = machine_.stage_retry_wait_ms();
  if (wait_ms == 0 || machine_.stage_next_try() == tries_before) return;
  const std::string what = "the stick failed while the staged generation was applied; the copy starts again in " +
                           u64s(wait_ms / 1000) + " s (try " + u64s(machine_.stage_next_try()) + ")";
  LOG_WARN("%s", what.c_str());
  record_event("warning", "stage", what);
}

// At start: an "applying" state finishes the copy by itself; a stage left
// behind with no staged resync in the store is removed.
void Daemon::start_stage() {
  apply::Actions actions;
  if (machine_.applying_stage()) {
    LOG_NOTICE("the last run stopped while applying a staged generation: finishing it from the stick");
    record_event("notice", "stage", "finishing the apply of a staged generation after a restart");
    machine_.resume_staged_apply(actions);
  } else if (!machine_.staging()) {
    struct stat st {};
    if (::stat(stage_worker_->path().c_str(), &st) == 0) stage_worker_->remove();
  }
  apply_actions(actions);
}

}  // namespace cloned
