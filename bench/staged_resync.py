# SPDX-License-Identifier: MIT
"""The figures of bench/staged_resync.sh, from what each run left in its directory.

  staged_resync.py run DIR MODE T0_NS T1_NS   writes DIR/run.json from DIR/events.json
                                              (clonectl events --json), DIR/poll,
                                              DIR/origin.out and DIR/stick_bytes
  staged_resync.py line DIR REP               one line on a run, for the log
  staged_resync.py table SCRATCH REPS MODE... the report: medians over the runs
"""
import json
import re
import statistics
import sys

NAMES = {"staged": "staged (default)", "in_place": "in place (stage_max_bytes = 0)",
         "unbootable": "in place (--in-place-unbootable, 1M bound)"}


def run_events(d, t0_ns):
    """This run's events (the first resync's are older than t0), oldest first."""
    events = json.load(open(d + "/events.json"))
    return sorted((e for e in events if e["unix_ms"] >= t0_ns // 1000000), key=lambda e: e["id"])


def first(events, prefix):
    return next((e for e in events if e["message"].startswith(prefix)), None)


def windows(events, mode):
    """The window in which the disk is not a whole generation, and the phases, in seconds."""
    began, plan = first(events, "began generation"), first(events, "plan ")
    applying, complete = first(events, "applying generation"), first(events, "complete: generation")
    secs = lambda a, b: (b["unix_ms"] - a["unix_ms"]) / 1000
    r = {}
    if plan:
        r["compare_s"] = secs(began, plan)
    if mode == "staged":
        copied = next(e for e in events if " from the stage to the disk in " in e["message"])
        r["window_s"] = int(re.search(r"in (\d+) ms", copied["message"]).group(1)) / 1000
        r["staging_s"] = secs(plan, applying)
        r["apply_to_complete_s"] = secs(applying, complete)
        r["copied"] = copied["message"].split(" from the stage")[0].replace("copied ", "")
    else:  # inconsistent from the begin's commit, or (unbootable) from the plan's answer
        r["window_s"] = secs(plan if mode == "unbootable" else began, complete)
    return r


def polled(d):
    """From the polls of clonectl status: the first sample that says not bootable
    to the first after it that says bootable again (None: none said so)."""
    samples = [line.split() for line in open(d + "/poll")]
    samples = [(int(x[0]), int(x[1]), x[2]) for x in samples if len(x) == 3 and x[2] in ("true", "false")]
    r = {"stage_file_bytes": max((s for _, s, _ in samples), default=0), "polled_window_s": None}
    gaps = sorted(b[0] - a[0] for a, b in zip(samples, samples[1:]))
    r["poll_interval_s"] = gaps[len(gaps) // 2] / 1e9 if gaps else 0.0
    start = next((i for i, x in enumerate(samples) if x[2] == "false"), None)
    if start is not None:
        back = next((i for i in range(start, len(samples)) if samples[i][2] == "true"), len(samples) - 1)
        r["polled_window_s"] = (samples[back][0] - samples[start][0]) / 1e9
    return r


def cmd_run(d, mode, t0_ns, t1_ns):
    r = {"mode": mode, "total_s": (int(t1_ns) - int(t0_ns)) / 1e9}
    r.update(windows(run_events(d, int(t0_ns)), mode))
    r.update(polled(d))
    m = re.search(r"data_bytes_sent=(\d+)", open(d + "/origin.out").read())
    r["data_bytes_sent"] = int(m.group(1)) if m else 0
    device, throttled = open(d + "/stick_bytes").read().split()
    r["stick_device_bytes"], r["stick_throttled_bytes"] = int(device), int(throttled)
    json.dump(r, open(d + "/run.json", "w"))


def cmd_line(d, rep):
    r = json.load(open(d + "/run.json"))
    print(f"{r['mode']:<10} run {rep}: {r['total_s']:6.2f} s, not a whole generation for {r['window_s']:6.2f} s")


def cmd_table(scratch, reps, modes):
    reps = int(reps)
    runs = {m: [json.load(open(f"{scratch}/{m}-{r}/run.json")) for r in range(1, reps + 1)] for m in modes}
    med = lambda m, k: statistics.median(x[k] for x in runs[m])
    mib = lambda b: f"{b / 1048576:.1f} MiB"

    def caught(m):
        seen = [x["polled_window_s"] for x in runs[m] if x["polled_window_s"] is not None]
        if not seen:
            return "not caught"
        return f"{statistics.median(seen):.2f} s" + (f" ({len(seen)} of {reps} caught)" if len(seen) < reps else "")

    print("| mode | resync time | not a whole generation (events) | same, polled | data sent | stage file"
          " | written to the stick (device) | of it through the limit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for m in modes:
        each = lambda k: " / ".join(f"{x[k]:.2f}" for x in runs[m])
        stage = med(m, "stage_file_bytes")
        print(f"| {NAMES[m]} | {med(m, 'total_s'):.2f} s ({each('total_s')})"
              f" | {med(m, 'window_s'):.2f} s ({each('window_s')}) | {caught(m)} | {mib(med(m, 'data_bytes_sent'))}"
              f" | {f'{stage:,.0f} B' if stage else 0} | {mib(med(m, 'stick_device_bytes'))}"
              f" | {mib(med(m, 'stick_throttled_bytes'))} |")
    print()
    if "staged" not in runs:
        return
    sm = lambda k: med("staged", k)
    copied = ", ".join(x["copied"] for x in runs["staged"])
    print(f"staged, medians: the comparison (begin to plan) {sm('compare_s'):.2f} s; staging the data (plan to"
          f" apply) {sm('staging_s'):.2f} s, {sm('stage_file_bytes') / 1e6 / sm('staging_s'):.1f} MB/s onto the"
          f" stick; the apply as the daemon times it {sm('window_s'):.2f} s ({copied} copied,"
          f" {sm('stage_file_bytes') / 1e6 / sm('window_s'):.0f} MB/s); apply to completion (events)"
          f" {sm('apply_to_complete_s'):.2f} s; median poll interval {sm('poll_interval_s'):.3f} s")
    if "unbootable" in runs:
        print(f"unbootable, median: the comparison (begin to plan) {med('unbootable', 'compare_s'):.2f} s")
    for m in modes:
        if m != "staged":
            print(f"staged / {m}: resync time {sm('total_s') / med(m, 'total_s'):.2f},"
                  f" window not a whole generation {sm('window_s') / med(m, 'window_s'):.3f}")


if __name__ == "__main__":
    commands = {"run": cmd_run, "line": cmd_line, "table": lambda s, r, *m: cmd_table(s, r, list(m))}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
