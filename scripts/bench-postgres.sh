#!/usr/bin/env bash
# The full new-user flow (account request → token → create resource) on PostgreSQL, with one and
# with three `provisio serve` instances on one database, then the scale curve: the same flow on one
# instance with 10,000, 100,000 and 1,000,000 users preloaded by `provisio admin seed`.
# Usage: scripts/bench-postgres.sh [concurrency] [duration] [admin URL of a PostgreSQL server]
# Makes (and drops at the end) the database provisio_bench. Rate limits are off, as in the other
# bench scripts. Run `cargo build --release -p provisio` first.
set -euo pipefail
cd "$(dirname "$0")/.."
conc=${1:-32}
dur=${2:-15s}
admin_url=${3:-postgres://postgres@127.0.0.1:5432/postgres}
bin=target/release/provisio
secret=whsec_bench
dir=$(mktemp -d)
db_url="${admin_url%/*}/provisio_bench"
pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; pids=(); }
cleanup() { stop_all; psql "$admin_url" -qc "DROP DATABASE IF EXISTS provisio_bench" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
printf '[rate_limits]\nenabled = false\n' > "$dir/provisio.toml"

fresh_database() {
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS provisio_bench" -c "CREATE DATABASE provisio_bench"
  "$bin" migrate --database-url "$db_url" >/dev/null
}

# start_instances N [POOL]: N servers on ports 18090.. (POOL connections each, default the
# server's); sets $urls (comma-separated)
start_instances() {
  urls=""
  for i in $(seq 0 $(($1 - 1))); do
    port=$((18090 + i))
    RUST_LOG=warn "$bin" serve --listen 127.0.0.1:$port --database-url "$db_url" \
      --signing-secret $secret --config "$dir/provisio.toml" ${2:+--database-pool-size $2} >/dev/null 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/healthz >/dev/null && break; sleep 0.1; done
    urls="${urls:+$urls,}http://127.0.0.1:$port"
  done
}

flow() {
  "$bin" bench --base-url "$urls" --signing-secret $secret --concurrency "$conc" --duration "$dur" \
    --scenario new-user-flow --provision || true   # a failed flow is in the report, not fatal
}

users() { psql "$db_url" -qtAc "SELECT COUNT(*) FROM users"; }

echo "== one instance, empty database"
fresh_database; start_instances 1; flow; stop_all

echo "== three instances, empty database"
fresh_database; start_instances 3; flow; stop_all

echo "== three instances with 2 connections each (6 in all, as one instance), empty database"
fresh_database; start_instances 3 2; flow; stop_all

echo "== scale curve, one instance"
fresh_database
seeded=0
for target in 10000 100000 1000000; do
  start=$(date +%s)
  "$bin" admin --database-url "$db_url" seed --users $((target - seeded)) >/dev/null
  seeded=$target
  echo "-- seeded to $(users) users in $(( $(date +%s) - start )) s; ANALYZE"
  psql "$db_url" -qc "ANALYZE"
  start_instances 1
  echo "== $(users) users before the run"
  flow
  stop_all
done
