#!/usr/bin/env bash
# The full new-user flow (account request → token → create resource) on SQLite, then resource reads
# and rotations at their own rates. Usage: scripts/bench-resources.sh [concurrency] [duration]
set -euo pipefail
cd "$(dirname "$0")/.."
conc=${1:-16}
dur=${2:-10s}
port=18083
. scripts/bench-server.sh
echo "== full new-user flow with a resource"
bench --scenario new-user-flow --provision
echo "== resource reads"
bench --scenario resource-read
echo "== credential rotations"
bench --scenario rotate
echo "== peak RSS of the server: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"
