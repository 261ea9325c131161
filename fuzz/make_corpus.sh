#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Regenerates the committed seed corpora in fuzz/corpus/ (run once, or when a
# format changes; the seeds are committed so that fuzzing needs no set-up):
#  - make_corpus: messages, frames, handshakes, spools from the project's own
#    encoders and writer, with the fixed pair of fuzz/fuzz_support.h;
#  - a spool from a real `clone-origin capture` with that pair's secret;
#  - the config examples in dist/ and a pair of files from `clonectl pair`.
# It leaves fuzz/corpus/digest alone: four inputs made once by hand (a key,
# a count, a flag, random bytes), nothing this tree encodes.
# Usage: fuzz/make_corpus.sh [BUILD_DIR]   (default build-fuzz, configured by scripts/fuzz.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
corpus=fuzz/corpus
ninja -C "$build" fuzz/make_corpus origin/clone-origin cloned/clonectl >/dev/null
# The sanitizers of a fuzz build stay quiet here: these are trusted runs.
export ASAN_OPTIONS=detect_leaks=0
mkdir -p "$corpus"
"$build/fuzz/make_corpus" "$corpus"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The fixed pair: the secret bytes a0 a1 .. bf and the pair id 10 11 .. 1f.
secret=$(printf '%02x' $(seq 160 191))
pair_id=$(printf '%02x' $(seq 16 31))
printf '%s\n' "$secret" >"$scratch/pair.secret"
chmod 600 "$scratch/pair.secret"
cat >"$scratch/origin.toml" <<TOML
[pair]
id = "$pair_id"
secret_file = "pair.secret"
[clone]
address = "127.0.0.1:7227"
disk_size_bytes = 1048576
TOML
truncate -s 1M "$scratch/source.img"
mkdir -p "$corpus/spool"
rm -f "$corpus/spool/capture"
"$build/origin/clone-origin" --config "$scratch/origin.toml" --log-level error capture \
  --source "$scratch/source.img" --spool "$corpus/spool/capture" --seed 7 --bytes 8K \
  --write-min 512 --write-max 2K --epoch-max 4 --trim-percent 20

mkdir -p "$corpus/config"
cp dist/cloned.toml.example "$corpus/config/cloned.toml.example"
cp dist/origin.toml.example "$corpus/config/origin.toml.example"
truncate -s 1M "$scratch/target.img"
"$build/cloned/clonectl" pair --clone-dir "$scratch/clone" --origin-dir "$scratch/origin" \
  --target "$scratch/target.img" --listen 127.0.0.1:7227 >/dev/null
cp "$scratch/clone/cloned.toml" "$corpus/config/paired-cloned.toml"
cp "$scratch/origin/origin.toml" "$corpus/config/paired-origin.toml"
fuzz/make_diverge_corpus.sh "$build"
chmod 644 "$corpus"/*/*  # the spool writer makes 0600 files; seeds are not secrets
for d in "$corpus"/*/; do echo "$(basename "$d"): $(ls "$d" | wc -l) seeds"; done
