// SPDX-License-Identifier: MIT
// `clone-origin health`: the clone's health reports this original keeps,
// newest first; with --collect-ms, first a short health-only session that
// collects (and acknowledges) the reports waiting on the clone.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string>

#include "base/units.h"
#include "base/log.h"
#include "hwhealth/report.h"
#include "hwhealth/json.h"
#include "origin/commands.h"
#include "origin/health_inbox.h"
#include "origin/log.h"
#include "origin/net.h"
#include "origin/session.h"

namespace origin {
namespace {

// After the backlog burst, this much quiet ends a collecting session early.
// Only once a report came: a clone in the middle of a poll (a failing SATA
// disk's SMART commands can take a minute) sends its backlog when the poll
// ends, so before the first report the session waits its whole time.
constexpr uint64_t kQuietMs = 700;

class CollectListener final : public SessionListener {
 public:
  explicit CollectListener(uint64_t deadline_ms) : deadline_ms_(deadline_ms) {}
  void on_established(const proto::Hello&) override {
    established_ = true;
    last_ms_ = net::now_ms();
  }
  void on_barrier_ack(uint64_t, uint64_t) override {}
  void on_committed(uint64_t) override {}
  void on_receipt_ack(uint64_t) override {}
  void on_records_queued(uint64_t) override {}
  void on_bytes_sent(uint64_t) override {}
  void on_health_report(uint64_t, bool fresh) override {
    last_ms_ = net::now_ms();
    fresh_ += fresh ? 1 : 0;
    ++received_;
  }
  bool stop_requested() const override {
    return collect_done(net::now_ms(), deadline_ms_, established_, received_, last_ms_);
  }
  uint64_t fresh() const { return fresh_; }
  uint64_t received() const { return received_; }

 private:
  uint64_t deadline_ms_;
  bool established_ = false;
  uint64_t last_ms_ = 0;
  uint64_t fresh_ = 0;
  uint64_t received_ = 0;
};

void collect(const config::OriginConfig& config, const config::DerivedKeys& keys, uint64_t collect_ms) {
  SessionConfig sc = make_session_config(config, keys);
  sc.health_only = true;
  RetainedLog log(1u << 20, 1);
  CollectListener listener(net::now_ms() + collect_ms);
  Session session(sc, log, listener, -1);
  const SessionOutcome out = session.run();
  if (!out.established) {
    std::fprintf(stderr, "clone-origin: could not collect health reports from the clone: %s\n",
                 out.status.message().c_str());
    return;
  }
  std::fprintf(stderr, "collected %llu health report(s) from the clone, %llu new\n",
               static_cast<unsigned long long>(listener.received()), static_cast<unsigned long long>(listener.fresh()));
}

}  // namespace

bool collect_done(uint64_t now_ms, uint64_t deadline_ms, bool established, uint64_t received, uint64_t last_ms) {
  return now_ms >= deadline_ms || (established && received > 0 && now_ms - last_ms >= kQuietMs);
}

base::Status run_health(const config::OriginConfig& config, const config::DerivedKeys& keys,
                        const HealthCommand& command) {
  if (command.collect_ms > 0) collect(config, keys, command.collect_ms);
  base::Result<std::unique_ptr<HealthInbox>> inbox = HealthInbox::open(config.state_dir);
  if (!inbox) return inbox.status();
  const std::vector<HealthInbox::Entry>& entries = (*inbox)->entries();
  std::vector<const HealthInbox::Entry*> newest_first;
  for (const HealthInbox::Entry& e : entries) newest_first.push_back(&e);
  // The most recently received first (ids start again at 1 for a clone
  // whose state store was made anew, so they do not order reports).
  std::reverse(newest_first.begin(), newest_first.end());
  if (command.json) {
    hwhealth::Json reports = hwhealth::Json::array();
    for (const HealthInbox::Entry* e : newest_first) {
      base::Result<hwhealth::Report> r = hwhealth::decode_report(e->report);
      if (!r) continue;
      reports.push_back(hwhealth::Json{
          {"id", e->id}, {"received_unix_ms", e->received_unix_ms}, {"report", hwhealth::report_json(*r)}});
    }
    std::fputs((hwhealth::dump_json(hwhealth::Json{{"reports", reports}}) + "\n").c_str(), stdout);
    return base::Status::ok();
  }
  if (newest_first.empty()) std::printf("no health reports from the clone yet (%s)\n", (*inbox)->path().c_str());
  for (const HealthInbox::Entry* e : newest_first) {
    base::Result<hwhealth::Report> r = hwhealth::decode_report(e->report);
    std::printf("report %llu, received %s: ", static_cast<unsigned long long>(e->id),
                base::format_utc_time(e->received_unix_ms).c_str());
    if (!r) std::printf("unreadable: %s\n", r.status().message().c_str());
    else std::fputs(hwhealth::format_report_text(*r).c_str(), stdout);
  }
  return base::Status::ok();
}

}  // namespace origin
