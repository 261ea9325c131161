// SPDX-License-Identifier: MIT
// clone-origin: the reference original. Parses the command line (the only
// place, with config loading, where exceptions are used: a UsageError ends
// in exit 2 with the usage text), loads the configuration and the pairing
// secret, and runs one command from the table. Exit 0 success, 1 failure
// (a sentence on stderr), 2 usage error.
#include <algorithm>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/units.h"
#include "config/config.h"
#include "origin/commands.h"
#include "origin/wake.h"

namespace {

const char kUsage[] =
    "usage: clone-origin --config FILE [--log-level LEVEL] COMMAND [OPTIONS]\n"
    "The reference original: captures writes into a commit log and ships it to cloned.\n"
    "\n"
    "commands:\n"
    "  workload --source IMAGE --seed N --bytes SIZE [--write-min SIZE] [--write-max SIZE]\n"
    "           [--epoch-max RECORDS] [--epoch-records RECORDS] [--pattern random|sequential]\n"
    "           [--trim-percent P] [--compare PATH]\n"
    "      generate a seeded workload, write it to IMAGE and replicate it; returns once\n"
    "      every record is durable on the clone; --compare then checks IMAGE == PATH\n"
    "  capture --source IMAGE --spool FILE --seed N --bytes SIZE [generator options]\n"
    "      like workload, but the records go to a new spool file instead of the clone\n"
    "  replay --spool FILE\n"
    "      validate the spool and send its records; returns once all are durable\n"
    "  resync --source IMAGE [--extent SIZE] [--discard-clone-changes]\n"
    "      bring the clone to IMAGE's content as a new generation, sending only the\n"
    "      extents whose digests differ; resumes an interrupted resync; exits 0 once\n"
    "      the clone reports consistent. --discard-clone-changes overwrites a\n"
    "      Diverged clone (only if its cloned.toml allows it)\n"
    "  verify --source IMAGE [--extent SIZE] [--repair]\n"
    "      compare the clone with IMAGE by digest and print the ranges that differ;\n"
    "      exit 1 if any (after --repair: any the repair did not fix)\n"
    "  health [--json] [--collect-ms MS]\n"
    "      print the clone's health reports kept by this original, newest first;\n"
    "      --collect-ms first opens a health-only session (at most MS ms, ending\n"
    "      after a quiet moment) that collects and acknowledges waiting reports\n"
    "  wake [--interface IF] [--mac MAC]\n"
    "      send one Wake-on-LAN magic packet to the clone: to MAC, or [wake] mac,\n"
    "      or the MAC the clone told; out of IF, or [wake] interface\n"
    "  sleep [--timeout-s N]\n"
    "      ask the clone to sleep now (sleep_request) and wait up to N seconds\n"
    "      (default 30) for it to say it goes to sleep\n"
    "\n"
    "generator options: each epoch holds 1..--epoch-max records (uniform), or exactly\n"
    "--epoch-records (the last epoch may hold fewer); --pattern random places records\n"
    "anywhere on the disk, sequential puts each right after the previous one and\n"
    "wraps to offset 0 at the end of the disk.\n"
    "\n"
    "SIZE takes K, M, G suffixes (powers of 1024). Defaults: --write-min 4K,\n"
    "--write-max 1M, --epoch-max 64, --pattern random, --trim-percent 0.\n"
    "LEVEL: error, warning, notice, info, debug.\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using Options = std::map<std::string, std::string>;

struct CommandSpec {
  const char* name;
  std::vector<std::string> required;
  std::vector<std::string> optional;
  std::vector<std::string> flags;  // options without a value
  base::Status (*run)(const config::OriginConfig&, const config::DerivedKeys&, const Options&);
};

const std::vector<std::string> kGeneratorOptions = {"--write-min",     "--write-max", "--epoch-max",
                                                   "--epoch-records", "--pattern",   "--trim-percent"};

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
  auto it = o.find(name);
  return it == o.end() ? fallback : it->second;
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
  if (o.count("--epoch-records") != 0) {
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
  if (o.count("--extent") == 0) return 0;
  const uint64_t e = parse_size("--extent", get(o, "--extent"));
  if (e < 4096 || e > (1u << 20) || (e & (e - 1)) != 0)
    throw UsageError("--extent takes a power of two from 4K to 1M, such as 64K");
  return static_cast<uint32_t>(e);
}

bool yes_option(const Options& o, const std::string& name) { return o.count(name) != 0; }

base::Status cmd_resync(const config::OriginConfig& c, const config::DerivedKeys& k, const Options& o) {
  origin::ResyncCommand cmd;
  cmd.source_path = get(o, "--source");
  cmd.extent_bytes = extent_option(o);
  cmd.discard_clone_changes = yes_option(o, "--discard-clone-changes");
  return origin::run_resync(c, k, cmd);
}

base::Status cmd_verify(const config::OriginConfig& c, const config::DerivedKeys& k, const Options& o) {
  origin::VerifyCommand cmd;
  cmd.source_path = get(o, "--source");
  cmd.extent_bytes = extent_option(o);
  cmd.repair = yes_option(o, "--repair");
  return origin::run_verify(c, k, cmd);
}

base::Status cmd_health(const config::OriginConfig& c, const config::DerivedKeys& k, const Options& o) {
  origin::HealthCommand cmd;
  cmd.json = o.count("--json") != 0;
  cmd.collect_ms = o.count("--collect-ms") != 0 ? parse_u64("--collect-ms", get(o, "--collect-ms")) : 0;
  if (cmd.collect_ms > 3'600'000) throw UsageError("--collect-ms must be at most 3600000");
  return origin::run_health(c, k, cmd);
}

base::Status cmd_replay(const config::OriginConfig& c, const config::DerivedKeys& k, const Options& o) {
  return origin::run_replay(c, k, origin::ReplayCommand{get(o, "--spool")});
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

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Later commands (wake) join this table.
const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> table = {
      {"workload", {"--source", "--seed", "--bytes"}, concat(kGeneratorOptions, {"--compare"}), {}, cmd_workload},
      {"capture", {"--source", "--spool", "--seed", "--bytes"}, kGeneratorOptions, {}, cmd_capture},
      {"replay", {"--spool"}, {}, {}, cmd_replay},
      {"resync", {"--source"}, {"--extent"}, {"--discard-clone-changes"}, cmd_resync},
      {"verify", {"--source"}, {"--extent"}, {"--repair"}, cmd_verify},
      {"health", {}, {"--collect-ms"}, {"--json"}, cmd_health},
      {"wake", {}, {"--interface", "--mac"}, {}, cmd_wake},
      {"sleep", {}, {"--timeout-s"}, {}, cmd_sleep},
  };
  return table;
}

struct Invocation {
  std::string config_path;
  std::string log_level;
  const CommandSpec* command = nullptr;
  Options options;
};

bool allowed(const CommandSpec& spec, const std::string& name) {
  for (const auto* list : {&spec.required, &spec.optional})
    for (const std::string& n : *list)
      if (n == name) return true;
  return false;
}

bool is_flag(const CommandSpec& spec, const std::string& name) {
  return std::find(spec.flags.begin(), spec.flags.end(), name) != spec.flags.end();
}

const CommandSpec& find_command(const std::string& name) {
  for (const CommandSpec& spec : commands())
    if (name == spec.name) return spec;
  throw UsageError("unknown command '" + name + "'");
}

// Splits "--name=value" or "--name value" (flags, which take none, are handled before).
std::pair<std::string, std::string> take_option(int argc, char** argv, int& i) {
  std::string arg = argv[i];
  const size_t eq = arg.find('=');
  if (eq != std::string::npos) return {arg.substr(0, eq), arg.substr(eq + 1)};
  if (i + 1 >= argc) throw UsageError(arg + " needs a value");
  return {arg, argv[++i]};
}

Invocation parse(int argc, char** argv) {
  Invocation inv;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      if (inv.command != nullptr) throw UsageError("unexpected argument '" + arg + "'");
      inv.command = &find_command(arg);
      continue;
    }
    if (inv.command != nullptr && is_flag(*inv.command, arg)) {
      if (!inv.options.emplace(arg, "").second) throw UsageError(arg + " given twice");
      continue;
    }
    auto [name, value] = take_option(argc, argv, i);
    if (name == "--config") inv.config_path = value;
    else if (name == "--log-level") inv.log_level = value;
    else if (inv.command == nullptr || !allowed(*inv.command, name)) throw UsageError("unknown option " + name);
    else if (!inv.options.emplace(name, value).second) throw UsageError(name + " given twice");
  }
  if (inv.config_path.empty()) throw UsageError("--config FILE is required");
  if (inv.command == nullptr) throw UsageError("no command given");
  for (const std::string& name : inv.command->required)
    if (inv.options.count(name) == 0) throw UsageError(std::string(inv.command->name) + " needs " + name);
  return inv;
}

void apply_log_level(const std::string& level) {
  static const std::map<std::string, base::LogLevel> levels = {
      {"error", base::LogLevel::error}, {"warning", base::LogLevel::warning}, {"notice", base::LogLevel::notice},
      {"info", base::LogLevel::info},   {"debug", base::LogLevel::debug}};
  auto it = levels.find(level.empty() ? "notice" : level);
  if (it == levels.end()) throw UsageError("--log-level takes error, warning, notice, info or debug");
  base::set_log_level(it->second);
}

int run(const Invocation& inv) {
  base::Result<config::OriginConfig> cfg = config::load_origin_config(inv.config_path);
  if (!cfg) {
    std::fprintf(stderr, "clone-origin: %s\n", cfg.status().message().c_str());
    return 1;
  }
  base::Result<config::PairSecret> secret = config::load_secret(cfg->secret_file);
  if (!secret) {
    std::fprintf(stderr, "clone-origin: %s\n", secret.status().message().c_str());
    return 1;
  }
  const config::DerivedKeys keys = config::derive_keys(*secret);
  base::Status s = inv.command->run(*cfg, keys, inv.options);
  if (!s.is_ok()) {
    std::fprintf(stderr, "clone-origin: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}

bool wants_help(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (wants_help(argc, argv)) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  Invocation inv;
  try {
    inv = parse(argc, argv);
    apply_log_level(inv.log_level);
    // Generator options are checked here so that a bad number is a usage error.
    if (inv.options.count("--seed") != 0) (void)workload_options(inv.options);
    return run(inv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "clone-origin: %s\n\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clone-origin stopped on an unexpected error: %s\n", e.what());
    return 1;
  }
}
