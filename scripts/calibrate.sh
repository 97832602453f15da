#!/usr/bin/env bash
# How fast is this machine right now? The same VM type has run the same benchmark at rates three
# times apart on different days, so every sitting in docs/benchmarks.md records these beside its
# numbers, and compares sittings through them. Usage: scripts/calibrate.sh (needs a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== $(nproc) cores:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
if command -v perf >/dev/null; then
  # A thread waking another and being woken back: what a database round trip and a hand-off
  # between threads cost, apart from the work itself.
  echo "== wake-up round trip between two processes (perf bench sched pipe)"
  perf bench sched pipe -l 100000 | grep 'usecs/op'
fi
echo "== reference: the full new-user flow on SQLite (docs/benchmarks.md: 1,117 flows/s on the days its first sections were measured)"
conc=16
dur=10s
port=18084
. scripts/bench-server.sh
bench --scenario new-user-flow --provision | grep 'flows ok'
