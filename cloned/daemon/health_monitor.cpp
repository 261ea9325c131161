// SPDX-License-Identifier: MIT
#include "cloned/daemon/health_monitor.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstring>
#include <optional>
#include <utility>

#include "base/log.h"
#include "base/thread.h"
#include "base/units.h"
#include "hwhealth/baseline.h"
#include "hwhealth/format.h"

namespace cloned {
namespace {

// The outbox holds what the loop has not taken yet; past this the oldest go
// (they stay in the store and are sent with the next backlog).
constexpr size_t kOutboxMax = 1024;

using base::unix_ms;

uint64_t mono_ms() { return base::monotonic_ns() / 1'000'000; }

std::string errno_text(int err) {
  char buf[128];
  return std::string(strerror_r(err, buf, sizeof buf));
}

store::HealthReportRow row_of(const hwhealth::Report& report) {
  const base::Bytes bytes = hwhealth::encode_report(report);
  store::HealthReportRow row;
  row.created_unix_ms = report.created_unix_ms;
  row.summary = report.kind == hwhealth::ReportKind::summary;
  row.critical = report.worst() == hwhealth::Severity::critical;
  row.bytes.assign(bytes.begin(), bytes.end());
  return row;
}

// Invariant 8: while the clone is no bootable copy, every report says so.
// Diverged is critical (it takes no writes until a person decides);
// inconsistent a warning (it ends by itself when the resync or catch-up does).
std::optional<hwhealth::Finding> replication_finding(const ReplicationNote& note, const std::string& target) {
  const std::string reason = note.reason.empty() ? "no reason recorded" : note.reason.substr(0, 300);
  hwhealth::Finding f;
  f.subject = target;
  f.figures = {{"state", proto::clone_state_name(note.state)}, {"reason", reason.substr(0, 200)}};
  if (note.state == proto::CloneState::inconsistent) {
    f.severity = hwhealth::Severity::warning;
    f.code = "cloned.inconsistent";
    f.sentence = "The clone is inconsistent, not a bootable copy until this ends: " + reason +
                 ". (clonectl status on the clone says more.)";
  } else if (note.state == proto::CloneState::diverged) {
    f.severity = hwhealth::Severity::critical;
    f.code = "cloned.diverged";
    f.sentence =
        "The clone is DIVERGED and takes no writes until a person decides on the clone (clonectl decide): " + reason +
        ".";
  } else {
    return std::nullopt;
  }
  return f;
}

}  // namespace

HealthMonitor::HealthMonitor(HealthSettings settings, std::unique_ptr<store::Store> store,
                             std::unique_ptr<hwhealth::HealthSource> source, std::function<void()> wake,
                             ReplicationNote replication)
    : settings_(std::move(settings)), store_(std::move(store)), collector_(std::move(source)), wake_(std::move(wake)) {
  assert(store_ && settings_.interval_s > 0);
  pending_.replication = std::move(replication);
  thread_ = std::thread([this] { run(); });
}

HealthMonitor::~HealthMonitor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void HealthMonitor::io_error(IoErrorEvent event) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.add_io_error(std::move(event));
  }
  cv_.notify_all();
}

void HealthMonitor::disk_failed(std::string why) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!pending_.disk_failed_why.empty()) return;  // the first says it
    pending_.disk_failed_why = why.empty() ? "a write or flush failed" : std::move(why);
    pending_.poll_now = true;
  }
  cv_.notify_all();
}

void HealthMonitor::replication(ReplicationNote note) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (note == pending_.replication) return;
    if (note.state != pending_.replication.state) pending_.state_poll = true;
    pending_.replication = std::move(note);
  }
  cv_.notify_all();
}

void HealthMonitor::acked(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (pending_.acks.size() < kOutboxMax) pending_.acks.push_back(id);
  }
  cv_.notify_all();
}

void HealthMonitor::poll_now() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.poll_now = true;
  }
  cv_.notify_all();
}

void HealthMonitor::want_backlog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.backlog = true;
  }
  cv_.notify_all();
}

std::vector<HealthOutgoing> HealthMonitor::take_outgoing() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<HealthOutgoing> out;
  out.swap(outbox_);
  return out;
}

uint64_t HealthMonitor::polls() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return polls_;
}

void HealthMonitor::restore_baseline() {
  base::Result<store::HealthBaseline> stored = store_->health_baseline();
  if (!stored) {
    LOG_WARN("health: could not read the stored baseline (%s); the first poll reports every finding as new",
             stored.status().message().c_str());
    return;
  }
  if (stored->bytes.empty()) return;  // a new store
  const base::ByteSpan bytes(reinterpret_cast<const uint8_t*>(stored->bytes.data()), stored->bytes.size());
  base::Result<hwhealth::Baseline> baseline = hwhealth::decode_baseline(bytes);
  if (!baseline) {
    LOG_WARN("health: the stored baseline is unreadable (%s); the first poll reports every finding as new",
             baseline.status().message().c_str());
    return;
  }
  LOG_INFO("health: the first poll compares with poll %llu of %s (%zu lasting finding(s))",
           static_cast<unsigned long long>(baseline->poll_number),
           base::format_utc_time(baseline->taken_unix_ms).c_str(), baseline->findings.size());
  collector_.restore(std::move(*baseline));
  last_summary_unix_ms_ = stored->summary_unix_ms;
}

void HealthMonitor::run() {
  base::name_this_thread("cloned-health");
  restore_baseline();
  uint64_t next_poll_ms = mono_ms();  // the first poll at once
  for (;;) {
    Work work;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      auto has_work = [&] {
        const bool io_due = !pending_.io_errors.empty() && mono_ms() >= io_poll_not_before_ms_;
        const bool state_due = pending_.state_poll && mono_ms() >= state_poll_not_before_ms_;
        return stopping_ || io_due || state_due || !pending_.acks.empty() || pending_.backlog || pending_.poll_now ||
               mono_ms() >= next_poll_ms;
      };
      while (!has_work()) {
        uint64_t until = next_poll_ms;
        if (!pending_.io_errors.empty()) until = std::min(until, io_poll_not_before_ms_);
        if (pending_.state_poll) until = std::min(until, state_poll_not_before_ms_);
        cv_.wait_for(lock, std::chrono::milliseconds(until > mono_ms() ? until - mono_ms() : 1));
      }
      if (stopping_) return;
      work.acks.swap(pending_.acks);
      work.backlog = std::exchange(pending_.backlog, false);
      work.disk_failed_why = pending_.disk_failed_why;  // kept: it lasts
      work.replication = pending_.replication;          // kept: it lasts
      if (std::exchange(pending_.poll_now, false)) next_poll_ms = mono_ms();
      if (pending_.state_poll && mono_ms() >= state_poll_not_before_ms_) {
        pending_.state_poll = false;
        next_poll_ms = mono_ms();
        state_poll_not_before_ms_ = mono_ms() + settings_.state_poll_gap_ms;
      }
      if (!pending_.io_errors.empty() && mono_ms() >= io_poll_not_before_ms_) {
        work.io_errors.swap(pending_.io_errors);
        work.io_errors_dropped = std::exchange(pending_.io_errors_dropped, 0);
      }
    }
    for (uint64_t id : work.acks) {
      if (base::Status s = store_->health_acked(id); !s.is_ok())
        LOG_WARN("could not drop acknowledged health report %llu: %s", static_cast<unsigned long long>(id),
                 s.message().c_str());
    }
    if (!work.io_errors.empty() || mono_ms() >= next_poll_ms) {
      const bool kept = poll(work);
      const uint64_t interval_ms = uint64_t{settings_.interval_s} * 1000;
      next_poll_ms = mono_ms() + (kept ? interval_ms : std::min<uint64_t>(interval_ms, settings_.retry_ms));
      io_poll_not_before_ms_ = mono_ms() + (kept ? kIoPollGapMs : settings_.retry_ms);
      if (!kept) requeue_io_errors(work);
    }
    if (work.backlog) {
      post_backlog(0);  // a new peer: from the oldest
    } else if (backlog_next_after_id_ != 0) {
      backlog_page_acks_owed_ -= std::min(backlog_page_acks_owed_, work.acks.size());
      if (backlog_page_acks_owed_ == 0) post_backlog(backlog_next_after_id_);
    }
  }
}

// The I/O errors of a poll that was not kept go back before any that came
// since (within the bound): an error stops the disk's writes, so none may
// come to report it again.
void HealthMonitor::requeue_io_errors(Work& work) {
  if (work.io_errors.empty() && work.io_errors_dropped == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  work.io_errors_dropped += pending_.io_errors_dropped;
  for (IoErrorEvent& e : pending_.io_errors) work.add_io_error(std::move(e));
  pending_.io_errors = std::move(work.io_errors);
  pending_.io_errors_dropped = work.io_errors_dropped;
}

std::vector<hwhealth::Finding> HealthMonitor::own_findings(const Work& work) const {
  std::vector<hwhealth::Finding> found;
  for (const IoErrorEvent& e : work.io_errors) {
    hwhealth::Finding f;
    f.severity = hwhealth::Severity::critical;
    f.code = "disk.io_error";
    f.subject = settings_.target_path;
    // A read is a digest scan's (resync, verify): the scan fails, writes go on.
    f.sentence =
        "The clone's disk failed a " + e.op + " (offset=" + std::to_string(e.offset_bytes) +
        " len=" + std::to_string(e.length_bytes) + ": " + errno_text(e.err) +
        (e.op == "read" ? "); the resync or verify that read it stopped. Check the disk and its cable."
                        : "); cloned takes no more writes until it is restarted. Check the disk and its cable.");
    f.figures = {{"op", e.op},
                 {"errno", std::to_string(e.err)},
                 {"error", errno_text(e.err)},
                 {"offset_bytes", std::to_string(e.offset_bytes)},
                 {"length_bytes", std::to_string(e.length_bytes)},
                 {"message", e.message.substr(0, 200)}};
    f.event = true;
    found.push_back(std::move(f));
  }
  if (work.io_errors_dropped > 0) {
    hwhealth::Finding f;
    f.severity = hwhealth::Severity::critical;
    f.code = "disk.io_errors_more";
    f.subject = settings_.target_path;
    f.sentence = std::to_string(work.io_errors_dropped) + " more I/O errors of the clone's disk since the last poll.";
    f.figures = {{"count", std::to_string(work.io_errors_dropped)}};
    f.event = true;
    found.push_back(std::move(f));
  }
  if (!work.disk_failed_why.empty()) {
    hwhealth::Finding f;
    f.severity = hwhealth::Severity::critical;
    f.code = "cloned.disk_failed";  // no source's: it lasts while this process runs
    f.subject = settings_.target_path;
    f.sentence = "cloned takes no writes since the clone's disk failed (" + work.disk_failed_why.substr(0, 200) +
                 "); check the disk and its cable, then restart cloned.";
    f.figures = {{"message", work.disk_failed_why.substr(0, 200)}};
    found.push_back(std::move(f));
  }
  if (std::optional<hwhealth::Finding> f = replication_finding(work.replication, settings_.target_path))
    found.push_back(std::move(*f));
  return found;
}

bool HealthMonitor::poll(const Work& work) {
  const int64_t now = unix_ms();
  const hwhealth::Baseline before = collector_.last() != nullptr ? *collector_.last() : hwhealth::Baseline{};
  const int64_t summary_before = last_summary_unix_ms_;
  // In the snapshot before its baseline is kept: cloned.disk_failed lasts, and
  // is news once (found in review: added after, it was new at every poll).
  hwhealth::Snapshot snapshot = collector_.poll(now, own_findings(work));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++polls_;  // before its reports are posted: a reader of both sees them in order
  }
  const std::vector<hwhealth::Change> changes = diff(before, snapshot);
  for (const hwhealth::Change& c : changes) {
    if (c.severity == hwhealth::Severity::critical)
      LOG_ERROR("health: %s", hwhealth::format_change_text(c).c_str());
    else if (c.severity == hwhealth::Severity::warning)
      LOG_WARN("health: %s", hwhealth::format_change_text(c).c_str());
    else
      LOG_INFO("health: %s", hwhealth::format_change_text(c).c_str());
  }
  store::HealthPoll record;
  if (!changes.empty()) record.reports.push_back(row_of(hwhealth::make_changes_report(snapshot, changes)));
  // Due after summary_interval_s, also across restarts; and at once when the
  // clock went back past the last one.
  if (last_summary_unix_ms_ == 0 || now < last_summary_unix_ms_ ||
      now - last_summary_unix_ms_ >= int64_t{settings_.summary_interval_s} * 1000) {
    last_summary_unix_ms_ = now;
    record.reports.push_back(row_of(hwhealth::make_summary_report(snapshot)));
  }
  record.latest = {now, hwhealth::verdict_name(hwhealth::verdict(snapshot)),
                   hwhealth::format_text(snapshot, {.details = true}), hwhealth::format_json(snapshot)};
  const base::Bytes baseline = hwhealth::encode_baseline(*collector_.last());
  record.baseline = {last_summary_unix_ms_, std::string(baseline.begin(), baseline.end())};
  size_t dropped = 0;
  if (base::Status s = store_->health_record_poll(record, settings_.backlog_max, &dropped); !s.is_ok()) {
    // Nothing of this poll was kept: the next one compares with the poll
    // before, so that what changed now is reported then.
    LOG_ERROR("could not keep this health poll and its reports for the original: %s", s.message().c_str());
    collector_.restore(before);
    last_summary_unix_ms_ = summary_before;
    return false;
  }
  if (dropped > 0)
    LOG_WARN("the health backlog is full (%u reports): dropped %zu older report(s)", settings_.backlog_max, dropped);
  for (store::HealthReportRow& row : record.reports) {
    LOG_DEBUG("health report %llu (%s, %zu bytes) waits for the original", static_cast<unsigned long long>(row.id),
              row.summary ? "summary" : "changes", row.bytes.size());
    post(row.id, base::Bytes(row.bytes.begin(), row.bytes.end()));
  }
  return true;
}

void HealthMonitor::post_backlog(uint64_t after_id) {
  backlog_next_after_id_ = 0;
  base::Result<std::vector<store::HealthReportRow>> rows = store_->health_backlog(kOutboxMax, after_id);
  if (!rows) {
    LOG_WARN("could not read the health backlog: %s", rows.status().message().c_str());
    return;
  }
  if (rows->size() == kOutboxMax) {  // more wait: posted once this page is acked
    backlog_next_after_id_ = rows->back().id;
    backlog_page_acks_owed_ = rows->size();
  }
  for (store::HealthReportRow& r : *rows) post(r.id, base::Bytes(r.bytes.begin(), r.bytes.end()));
}

void HealthMonitor::post(uint64_t id, base::Bytes bytes) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (outbox_.size() >= kOutboxMax) outbox_.erase(outbox_.begin());
    outbox_.push_back({id, std::make_shared<const base::Bytes>(std::move(bytes))});
  }
  if (wake_) wake_();
}

}  // namespace cloned
