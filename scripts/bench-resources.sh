#!/usr/bin/env bash
# The full new-user flow (account request → token → create resource) on SQLite, then resource reads
# and rotations at their own rates. Usage: scripts/bench-resources.sh [concurrency] [duration]
set -euo pipefail
cd "$(dirname "$0")/.."
conc=${1:-16}
dur=${2:-10s}
port=18083
. scripts/bench-server.sh
# The server's peak resident memory so far (each scenario runs on what the ones before it left).
peak() { echo "== peak RSS of the server after $1: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"; }
echo "== full new-user flow with a resource"
bench --scenario new-user-flow --provision
peak "the full flow"
echo "== resource reads"
bench --scenario resource-read
peak "the reads"
echo "== credential rotations"
bench --scenario rotate
peak "the rotations"
