#!/usr/bin/env bash
# How fast is this machine right now? The same VM type has run the same benchmark at rates three
# times apart on different days, so every sitting in docs/benchmarks.md records this reference beside
# its numbers, and compares sittings through it. Usage: scripts/calibrate.sh (needs a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== $(nproc) cores:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "== reference: the full new-user flow on SQLite (docs/benchmarks.md: 1,117 flows/s on the days its first sections were measured)"
conc=16
dur=10s
port=18084
. scripts/bench-server.sh
bench --scenario new-user-flow --provision | grep 'flows ok'
