#!/usr/bin/env bash
# Account request + token exchange on SQLite: new users, and existing users with 1 and 50 projects.
# Usage: scripts/bench-accounts.sh [concurrency] [duration]   (needs a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
conc=${1:-16}
dur=${2:-10s}
bin=target/release/provisio
dir=$(mktemp -d)
db="sqlite://$dir/bench.db"
port=18082
secret=whsec_bench
"$bin" serve --listen 127.0.0.1:$port --database-url "$db" --signing-secret $secret >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:$port/healthz >/dev/null && break; sleep 0.1; done
bench() { "$bin" bench --base-url http://127.0.0.1:$port --signing-secret $secret --concurrency "$conc" --duration "$dur" "$@"; }

echo "== new users"
bench --scenario new-user-flow
for projects in 1 50; do
  "$bin" admin seed --database-url "$db" --users 1000 --projects $projects --out "$dir/users-$projects.json"
  echo "== existing users with $projects project(s), linked by team_id"
  bench --scenario existing-user-flow --users-file "$dir/users-$projects.json"
done
echo "== peak RSS of the server: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"
