#!/usr/bin/env bash
# The full new-user flow (account request → token → create resource) on SQLite, then resource reads
# and rotations at their own rates. Usage: scripts/bench-resources.sh [concurrency] [duration]
set -euo pipefail
cd "$(dirname "$0")/.."
conc=${1:-16}
dur=${2:-10s}
bin=target/release/provisio
dir=$(mktemp -d)
port=18083
secret=whsec_bench
"$bin" serve --listen 127.0.0.1:$port --database-url "sqlite://$dir/bench.db" --signing-secret $secret >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:$port/healthz >/dev/null && break; sleep 0.1; done
bench() { "$bin" bench --base-url http://127.0.0.1:$port --signing-secret $secret --concurrency "$conc" --duration "$dur" "$@"; }
echo "== full new-user flow with a resource"
bench --scenario new-user-flow --provision
echo "== resource reads"
bench --scenario resource-read
echo "== credential rotations"
bench --scenario rotate
echo "== peak RSS of the server: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"
