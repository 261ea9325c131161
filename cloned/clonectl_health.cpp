// SPDX-License-Identifier: MIT
// clonectl health --config FILE [--json]: the latest hardware health
// assessment the daemon stored (every source with its status, the figures,
// the findings) and how many reports wait for the original. Reads the state
// store read-only: works whether or not the daemon runs.
#include <cstdio>
#include <ctime>
#include <string>

#include "base/cli.h"
#include "base/units.h"
#include "cloned/store/store.h"
#include "config/config.h"
#include "hwhealth/json.h"

// The command line is parsed in clonectl.cpp: --config is there, --json may be.
int clonectl_health(const base::cli::Args& args) {
  const std::string config_path = args.get("--config");
  const bool json = args.has("--json");
  base::Result<config::CloneConfig> cfg = config::load_clone_config(config_path);
  if (!cfg) {
    std::fprintf(stderr, "clonectl: %s\n", cfg.status().message().c_str());
    return 1;
  }
  base::Result<std::unique_ptr<store::Store>> st = store::Store::open(cfg->state_dir, store::OpenMode::read_only);
  base::Result<store::HealthAssessment> latest =
      st ? (*st)->health_latest() : base::Result<store::HealthAssessment>(st.status());
  if (!latest) {
    std::fprintf(stderr, "clonectl: %s\n", latest.status().message().c_str());
    return 1;
  }
  base::Result<uint64_t> waiting = (*st)->health_backlog_count();
  const uint64_t waiting_count = waiting ? *waiting : 0;
  if (latest->taken_unix_ms == 0) {
    if (json) std::printf("%s\n", hwhealth::dump_json({{"assessment", nullptr}, {"reports_waiting", waiting_count}}).c_str());
    else std::printf("no health assessment yet: cloned has not polled the hardware (it does when it starts)\n");
    return 1;
  }
  if (json) {
    // The stored assessment is format_json text; it is embedded as a value, not pasted as text.
    const hwhealth::Json assessment = hwhealth::Json::parse(latest->json, nullptr, false);
    if (assessment.is_discarded()) {
      std::fprintf(stderr, "clonectl: the stored health assessment is not valid JSON; it is replaced at the next poll\n");
      return 1;
    }
    const hwhealth::Json out = {
        {"assessment", assessment}, {"taken_unix_ms", latest->taken_unix_ms}, {"reports_waiting", waiting_count}};
    std::printf("%s\n", hwhealth::dump_json(out).c_str());
    return 0;
  }
  std::printf("assessed %s\n%s", base::format_utc_time(latest->taken_unix_ms).c_str(), latest->text.c_str());
  std::printf("reports waiting for the original: %llu\n", static_cast<unsigned long long>(waiting_count));
  return 0;
}
