#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The house keeper (issue 13, item 12): a ratchet on what conventions.md asks.

Counts, in every tracked *.cpp and *.h, what the house rules do not want:
  format         the file differs from .clang-format (clang-format --dry-run)
  long-line      lines over 120 columns
  long-function  a function body over 70 lines (top-level definitions and
                 TEST_CASEs: a line at column 0 that opens a body, up to the
                 `}` at column 0 that closes it; in-class bodies are not seen)
  banned         naked `new`, strcpy, sprintf, system, rand
and compares each count with scripts/tidy-baseline.txt. Anything above its
baseline fails (a new offender, or an old one grown); anything below is
reported so that `scripts/tidy.py --update` locks the gain in. The baseline
only falls: --update refuses to raise a count unless --allow-raise is given
(and then the commit says why).
Usage: scripts/tidy.py [--update [--allow-raise]]
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = os.path.join(ROOT, "scripts", "tidy-baseline.txt")
LINE_MAX = 120
FUNCTION_LINES_MAX = 70
BANNED = {
    "new": re.compile(r"(?<![\w:])new\s+[A-Za-z_(]"),
    "strcpy": re.compile(r"(?<![\w])strcpy\s*\("),
    "sprintf": re.compile(r"(?<![\w])v?sprintf\s*\("),
    "system": re.compile(r"(?<![\w.>])(std::)?system\s*\("),
    "rand": re.compile(r"(?<![\w.>])(std::)?s?rand\s*\("),
}
NOT_FUNCTIONS = re.compile(r"^(namespace|struct|class|enum|union|extern|typedef|using)\b")


def tracked_sources():
    out = subprocess.run(["git", "-C", ROOT, "ls-files", "*.cpp", "*.h"], check=True, capture_output=True, text=True)
    return sorted(p for p in out.stdout.split() if os.path.isfile(os.path.join(ROOT, p)))


def code_only(line):
    """The line without string and character literals and // comments (roughly)."""
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])*'", "''", line)
    return line.split("//", 1)[0]


def long_functions(lines):
    """(name, body lines) of each top-level body longer than the limit."""
    found = []
    i = 0
    while i < len(lines):
        line = lines[i]
        head = code_only(line).rstrip()
        starts = head and not line[0].isspace() and line[0] not in "#}/" and "(" in head
        if starts and not NOT_FUNCTIONS.match(head) and not head.endswith(";"):
            # The body opens on this line or within the next few (a wrapped signature).
            open_at = None
            for j in range(i, min(i + 6, len(lines))):
                code = code_only(lines[j]).rstrip()
                if code.endswith("{"):
                    open_at = j
                    break
                if code.endswith(";") or code.endswith("}"):
                    break  # a declaration, or a body on one line
            if open_at is not None:
                close_at = next((j for j in range(open_at + 1, len(lines)) if lines[j].rstrip() in ("}", "};")), None)
                if close_at is not None:
                    body = close_at - open_at - 1
                    if body > FUNCTION_LINES_MAX:
                        name = re.sub(r"\s+", " ", head.split("(")[0]).split(" ")[-1] or head[:40]
                        if name in ("TEST_CASE", "SUBCASE"):
                            name = line.split("{")[0].strip()[:90]
                        found.append(name)
                    i = close_at + 1
                    continue
        i += 1
    return found


def measure():
    counts = {}

    def add(kind, path, detail=""):
        key = (kind, path, detail)
        counts[key] = counts.get(key, 0) + 1

    for path in tracked_sources():
        with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
        for line in lines:
            if len(line) > LINE_MAX:
                add("long-line", path)
            code = code_only(line)
            for call, pattern in BANNED.items():
                if pattern.search(code):
                    add("banned", path, call)
        for name in long_functions(lines):
            add("long-function", path, name)
        fmt = subprocess.run(["clang-format", "--dry-run", "-Werror", os.path.join(ROOT, path)], capture_output=True)
        if fmt.returncode != 0:
            add("format", path)
    return counts


def read_baseline():
    base = {}
    if not os.path.exists(BASELINE):
        return base
    with open(BASELINE, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            count, kind, path, detail = (line.rstrip("\n").split("\t") + [""])[:4]
            base[(kind, path, detail)] = int(count)
    return base


def write_baseline(counts):
    with open(BASELINE, "w", encoding="utf-8") as f:
        f.write("# scripts/tidy.py's ratchet: count<TAB>kind<TAB>file<TAB>detail. Counts only fall.\n")
        for (kind, path, detail), n in sorted(counts.items()):
            f.write(f"{n}\t{kind}\t{path}\t{detail}\n")


def main(argv):
    if subprocess.run(["which", "clang-format"], capture_output=True).returncode != 0:
        print("tidy: clang-format is missing (scripts/setup.sh installs it)", file=sys.stderr)
        return 2
    counts = measure()
    base = read_baseline()
    worse = sorted((k, n, base.get(k, 0)) for k, n in counts.items() if n > base.get(k, 0))
    better = sorted((k, counts.get(k, 0), n) for k, n in base.items() if counts.get(k, 0) < n)
    totals = {}
    for (kind, _, _), n in counts.items():
        totals[kind] = totals.get(kind, 0) + n
    print("tidy: " + ", ".join(f"{kind} {totals.get(kind, 0)}" for kind in ("format", "long-line", "long-function", "banned")))
    if "--update" in argv:
        if worse and base and "--allow-raise" not in argv:
            print("tidy: --update would raise the baseline; fix these or pass --allow-raise and say why:")
            for (kind, path, detail), n, was in worse[:40]:
                print(f"  {kind} {path} {detail}: {was} -> {n}")
            return 1
        write_baseline(counts)
        print(f"tidy: baseline written ({len(counts)} entries)")
        return 0
    for (kind, path, detail), n, was in worse[:40]:
        hint = {"format": "run clang-format -i on it", "long-line": f"keep lines within {LINE_MAX} columns",
                "long-function": f"split it (at most {FUNCTION_LINES_MAX} lines)",
                "banned": "use the house's alternative (make_unique, snprintf, <random>, no system())"}[kind]
        print(f"tidy: {path}: {kind} {detail} {was} -> {n}: {hint}")
    if len(worse) > 40:
        print(f"tidy: ... and {len(worse) - 40} more")
    if better:
        print(f"tidy: {len(better)} entries improved; lock the gain in with scripts/tidy.py --update")
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
