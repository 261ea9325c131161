// SPDX-License-Identifier: MIT
// clone-origin: the reference original. Parses the command line (base/cli.h;
// with config loading the only place where exceptions are used: a bad value
// throws UsageError, which ends in exit 2 with the command's usage), loads the
// configuration and the pairing secret, and runs one command from the table. Exit 0 success, 1 failure
// (a sentence on stderr), 2 usage error.
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/cli.h"
#include "base/heap.h"
#include "base/log.h"
#include "base/units.h"
#include "config/config.h"
#include "origin/commands.h"
#include "origin/wake.h"

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What the parser read (base/cli.h); the values are checked here, where a bad one throws UsageError.
using Options = base::cli::Args;

uint64_t parse_u64(const std::string& name, const std::string& text) {
  if (text.empty() || text.size() > 20 || text.find_first_not_of("0123456789") != std::string::npos)
    throw UsageError(name + " takes a whole number, not '" + text + "'");
  try {
    return std::stoull(text);
  } catch (const std::out_of_range&) {
    throw UsageError(name + " " + text + " is too large");
  }
}

origin::WorkloadPattern parse_pattern(const std::string& text) {
  if (text == "random") return origin::WorkloadPattern::random;
  if (text == "sequential") return origin::WorkloadPattern::sequential;
  throw UsageError("--pattern takes random or sequential, not '" + text + "'");
}

uint64_t parse_size(const std::string& name, const std::string& text) {
  std::optional<uint64_t> v = base::parse_size_bytes(text);
  if (!v) throw UsageError(name + " takes a size such as 4096, 64K, 256M or 1G, not '" + text + "'");
  return *v;
}

std::string get(const Options& o, const std::string& name, const std::string& fallback = "") {
  return o.get(name, fallback);
}

origin::WorkloadOptions workload_options(const Options& o) {
  origin::WorkloadOptions w;
  w.seed = parse_u64("--seed", get(o, "--seed"));
  w.total_bytes = parse_size("--bytes", get(o, "--bytes"));
  w.write_min_bytes = parse_size("--write-min", get(o, "--write-min", "4K"));
  w.write_max_bytes = parse_size("--write-max", get(o, "--write-max", "1M"));
  const uint64_t epoch_max = parse_u64("--epoch-max", get(o, "--epoch-max", "64"));
  const uint64_t trim = parse_u64("--trim-percent", get(o, "--trim-percent", "0"));
  if (epoch_max == 0 || epoch_max > 1'000'000) throw UsageError("--epoch-max must be between 1 and 1000000");
  if (trim > 100) throw UsageError("--trim-percent must be between 0 and 100");
  w.epoch_records_max = static_cast<uint32_t>(epoch_max);
  if (o.has("--epoch-records")) {
    const uint64_t exact = parse_u64("--epoch-records", get(o, "--epoch-records"));
    if (exact == 0 || exact > 1'000'000) throw UsageError("--epoch-records must be between 1 and 1000000");
    w.epoch_records = static_cast<uint32_t>(exact);
  }
  w.pattern = parse_pattern(get(o, "--pattern", "random"));
  w.trim_percent = static_cast<uint32_t>(trim);
  return w;
}

base::Status cmd_workload(const config::OriginConfig& c, const config::DerivedKeys& k, const Options& o) {
  origin::WorkloadCommand cmd;
  cmd.source_path = get(o, "--source");
  cmd.compare_path = get(o, "--compare");
  cmd.workload = workload_options(o);
  return origin::run_workload(c, k, cmd);
}

base::Status cmd_capture(const config::OriginConfig& c, const config::DerivedKeys& k, const Options& o) {
  origin::CaptureCommand cmd;
  cmd.source_path = get(o, "--source");
  cmd.spool_path = get(o, "--spool");
  cmd.workload = workload_options(o);
  return origin::run_capture(c, k, cmd);
}

uint32_t extent_option(const Options& o) {
  if (!o.has("--extent")) return 0;
  const uint64_t e = parse_size("--extent", get(o, "--extent"));
  if (e < 4096 || e > (1u << 20) || (e & (e - 1)) != 0)
    throw UsageError("--extent takes a power of two from 4K to 1M, such as 64K");
  return static_cast<uint32_t>(e);
}

bool yes_option(const Options& o, const std::string& name) { return o.has(name); }

base::Status cmd_resync(const config::OriginConfig& c, const config::DerivedKeys& k, const Options& o) {
  origin::ResyncCommand cmd;
  cmd.source_path = get(o, "--source");
  cmd.extent_bytes = extent_option(o);
  cmd.discard_clone_changes = yes_option(o, "--discard-clone-changes");
  cmd.in_place_unbootable = yes_option(o, "--in-place-unbootable");
  return origin::run_resync(c, k, cmd);
}

base::Status cmd_verify(const config::OriginConfig& c, const config::DerivedKeys& k, const Options& o) {
  origin::VerifyCommand cmd;
  cmd.source_path = get(o, "--source");
  cmd.extent_bytes = extent_option(o);
  cmd.repair = yes_option(o, "--repair");
  cmd.in_place_unbootable = yes_option(o, "--in-place-unbootable");
  if (cmd.in_place_unbootable && !cmd.repair) throw UsageError("--in-place-unbootable goes with --repair");
  return origin::run_verify(c, k, cmd);
}

base::Status cmd_health(const config::OriginConfig& c, const config::DerivedKeys& k, const Options& o) {
  origin::HealthCommand cmd;
  cmd.json = o.has("--json");
  cmd.collect_ms = o.has("--collect-ms") ? parse_u64("--collect-ms", get(o, "--collect-ms")) : 0;
  if (cmd.collect_ms > 3'600'000) throw UsageError("--collect-ms must be at most 3600000");
  return origin::run_health(c, k, cmd);
}

base::Status cmd_replay(const config::OriginConfig& c, const config::DerivedKeys& k, const Options& o) {
  origin::ReplayCommand cmd;
  cmd.spool_path = get(o, "--spool");
  cmd.log_writes_path = get(o, "--log-writes");
  cmd.follow = o.has("--follow");
  if (cmd.spool_path.empty() == cmd.log_writes_path.empty())
    throw UsageError("replay takes one of --spool FILE or --log-writes LOG");
  if (!cmd.spool_path.empty() && (cmd.follow || o.has("--poll-ms")))
    throw UsageError("--follow and --poll-ms go with --log-writes");
  if (o.has("--poll-ms")) {
    const uint64_t ms = parse_u64("--poll-ms", get(o, "--poll-ms"));
    if (ms < 20 || ms > 60'000) throw UsageError("--poll-ms must be between 20 and 60000");
    cmd.poll_ms = static_cast<uint32_t>(ms);
  }
  if (!cmd.log_writes_path.empty()) return origin::run_replay_log_writes(c, k, cmd);
  return origin::run_replay(c, k, cmd);
}

base::Status cmd_wake(const config::OriginConfig& c, const config::DerivedKeys&, const Options& o) {
  base::Result<wol::SendOptions> target = origin::wake_target(c, get(o, "--interface"), get(o, "--mac"));
  if (!target) return target.status();
  std::string summary;
  BASE_TRY(origin::send_wake(*target, summary));
  std::printf("sent a %s\n", summary.c_str());
  return base::Status::ok();
}

base::Status cmd_sleep(const config::OriginConfig& c, const config::DerivedKeys& k, const Options& o) {
  const uint64_t timeout_s = parse_u64("--timeout-s", get(o, "--timeout-s", "30"));
  if (timeout_s == 0 || timeout_s > 3600) throw UsageError("--timeout-s must be between 1 and 3600");
  std::string summary;
  BASE_TRY(origin::request_clone_sleep(c, k, static_cast<uint32_t>(timeout_s * 1000), summary));
  std::printf("%s\n", summary.c_str());
  return base::Status::ok();
}

using base::cli::Option;
using Runner = base::Status (*)(const config::OriginConfig&, const config::DerivedKeys&, const Options&);

const std::vector<Option> kGeneratorOptions = {{"--write-min", "SIZE"},
                                               {"--write-max", "SIZE"},
                                               {"--epoch-max", "RECORDS"},
                                               {"--epoch-records", "RECORDS"},
                                               {"--pattern", "random|sequential"},
                                               {"--trim-percent", "P"}};

std::vector<Option> concat(std::vector<Option> a, const std::vector<Option>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The command line: --config and --log-level anywhere, then one command with its options.
const base::cli::Program kProgram = {
    .name = "clone-origin",
    .about = "The reference original: captures writes into a commit log and ships it to cloned.\n",
    .global_options = {{"--config", "FILE", true}, {"--log-level", "LEVEL"}},
    .commands =
        {
            {"workload",
             concat(concat({{"--source", "IMAGE", true}, {"--seed", "N", true}, {"--bytes", "SIZE", true}},
                           kGeneratorOptions),
                    {{"--compare", "PATH"}}),
             "",
             "generate a seeded workload, write it to IMAGE and replicate it; returns\n"
             "once every record is durable on the clone; --compare then checks that\n"
             "IMAGE == PATH\n"},
            {"capture",
             concat({{"--source", "IMAGE", true},
                     {"--spool", "FILE", true},
                     {"--seed", "N", true},
                     {"--bytes", "SIZE", true}},
                    kGeneratorOptions),
             "", "like workload, but the records go to a new spool file instead of the clone\n"},
            {"replay",
             {{"--spool", "FILE"}, {"--log-writes", "LOG"}, {"--follow", ""}, {"--poll-ms", "MS"}},
             "",
             "validate the spool and send its records; returns once all are durable.\n"
             "--log-writes: ship a dm-log-writes log from where the clone stands, up to\n"
             "its last flush or mark (docs/ORIGINS.md); --follow keeps shipping as it\n"
             "grows (polling every --poll-ms, default 200) until SIGINT or SIGTERM\n"},
            {"resync",
             {{"--source", "IMAGE", true},
              {"--extent", "SIZE"},
              {"--discard-clone-changes", ""},
              {"--in-place-unbootable", ""}},
             "",
             "bring the clone to IMAGE's content as a new generation: compares digests\n"
             "of --extent extents ([resync] extent_bytes, 64K), those that differ again\n"
             "in smaller ones down to 4K, and sends only the 4K blocks that differ;\n"
             "resumes an interrupted resync (with the same --extent); exits 0 once\n"
             "the clone reports consistent. --discard-clone-changes overwrites a\n"
             "Diverged clone (only if its cloned.toml allows it). A clone that keeps its\n"
             "disk bootable by staging the resync on its stick refuses one its stage\n"
             "cannot hold (stage_full, with the figures) before anything is sent;\n"
             "--in-place-unbootable lets it write its disk in place instead, which\n"
             "leaves the clone UNBOOTABLE until the resync completes ([resync]\n"
             "in_place_unbootable = true in origin.toml: every time)\n"},
            {"verify",
             {{"--source", "IMAGE", true}, {"--extent", "SIZE"}, {"--repair", ""}, {"--in-place-unbootable", ""}},
             "",
             "compare the clone with IMAGE by digest and print the ranges that differ;\n"
             "exit 1 if any (after --repair: any the repair did not fix). --repair\n"
             "rewrites them like a resync, staged on the clone's stick; one the stage\n"
             "cannot hold is refused up front unless --in-place-unbootable\n"},
            {"health",
             {{"--json", ""}, {"--collect-ms", "MS"}},
             "",
             "print the clone's health reports kept by this original, newest first;\n"
             "--collect-ms first opens a health-only session (at most MS ms, ending\n"
             "after a quiet moment) that collects and acknowledges waiting reports\n"},
            {"wake",
             {{"--interface", "IF"}, {"--mac", "MAC"}},
             "",
             "send one Wake-on-LAN magic packet to the clone: to MAC, or [wake] mac,\n"
             "or the MAC the clone told; out of IF, or [wake] interface\n"},
            {"sleep",
             {{"--timeout-s", "N"}},
             "",
             "ask the clone to sleep now (sleep_request) and wait up to N seconds\n"
             "(default 30) for it to say it goes to sleep\n"},
        },
    .notes =
        "generator options: each epoch holds 1..--epoch-max records (uniform), or exactly\n"
        "--epoch-records (the last epoch may hold fewer); --pattern random places records\n"
        "anywhere on the disk, sequential puts each right after the previous one and\n"
        "wraps to offset 0 at the end of the disk.\n"
        "\n"
        "SIZE takes K, M, G suffixes (powers of 1024). Defaults: --write-min 4K,\n"
        "--write-max 1M, --epoch-max 64, --pattern random, --trim-percent 0.\n"
        "LEVEL: error, warning, notice, info, debug.\n",
};

Runner runner(std::string_view command) {
  static const std::map<std::string_view, Runner> runners = {
      {"workload", cmd_workload}, {"capture", cmd_capture}, {"replay", cmd_replay}, {"resync", cmd_resync},
      {"verify", cmd_verify},     {"health", cmd_health},   {"wake", cmd_wake},     {"sleep", cmd_sleep}};
  return runners.at(command);
}

void apply_log_level(const std::string& level) {
  static const std::map<std::string, base::LogLevel> levels = {{"error", base::LogLevel::error},
                                                               {"warning", base::LogLevel::warning},
                                                               {"notice", base::LogLevel::notice},
                                                               {"info", base::LogLevel::info},
                                                               {"debug", base::LogLevel::debug}};
  auto it = levels.find(level.empty() ? "notice" : level);
  if (it == levels.end()) throw UsageError("--log-level takes error, warning, notice, info or debug");
  base::set_log_level(it->second);
}

int run(const Options& args) {
  base::Result<config::OriginConfig> cfg = config::load_origin_config(args.get("--config"));
  if (!cfg) {
    std::fprintf(stderr, "clone-origin: %s\n", cfg.status().message().c_str());
    return 1;
  }
  base::Result<config::PairSecret> secret = config::load_secret(cfg->secret_file);
  if (!secret) {
    std::fprintf(stderr, "clone-origin: %s\n", secret.status().message().c_str());
    return 1;
  }
  const config::GuardedKeys keys = config::guard_keys(*secret);  // wipes the secret
  base::Status s = runner(args.command->name)(*cfg, *keys, args);
  if (!s.is_ok()) {
    std::fprintf(stderr, "clone-origin: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}

constexpr size_t kRecordHeapBytes = 30u << 20;

}  // namespace

int main(int argc, char** argv) {
  // Records (up to 1 MiB + 64 bytes each) are made on this thread and kept
  // in the retained log until the clone has them: keep them in the heap, and
  // its first 30 MiB on huge pages (address space only until used), as
  // cloned's frames (docs/PERFORMANCE.md, "Frames on huge pages").
  base::keep_buffers_in_the_heap();
  (void)base::heap_on_huge_pages(kRecordHeapBytes);
  Options args;
  if (int code = base::cli::parse_or_exit_code(kProgram, argc, argv, args); code >= 0) return code;
  try {
    apply_log_level(args.get("--log-level"));
    // Generator options are checked here so that a bad number is a usage error.
    if (args.has("--seed")) (void)workload_options(args);
    return run(args);
  } catch (const UsageError& e) {
    return base::cli::usage_error(kProgram, args.command, e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clone-origin stopped on an unexpected error: %s\n", e.what());
    return 1;
  }
}
