#!/usr/bin/env bash
# A/B of two provisio binaries on the read and rotate paths, on SQLite and on PostgreSQL:
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY [rounds] [duration] [concurrency]
# Each round starts each binary in turn (A, B, A, B, …) on a fresh database and runs
# `provisio bench --scenario resource-read` and `--scenario rotate` against it. The load generator
# is always NEW_BINARY's `bench`, so only the server differs. Rate limits are off. PostgreSQL:
# ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres); makes and drops provisio_ab.
# SCENARIOS (default "resource-read rotate"; `new-user-flow+provision` adds --provision) and
# BACKENDS (default "sqlite postgres") choose what runs.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 rounds=${3:-2} dur=${4:-8s} conc=${5:-16}
admin_url=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
pg_url="${admin_url%/*}/provisio_ab"
secret=whsec_bench_ab port=18111
dir=$(mktemp -d)
pid=""
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=""; }
trap 'stop; psql "$admin_url" -qc "DROP DATABASE IF EXISTS provisio_ab" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
printf '[rate_limits]\nenabled = false\n' > "$dir/provisio.toml"

serve() { # serve BINARY DATABASE_URL
  RUST_LOG=warn "$1" serve --listen 127.0.0.1:$port --database-url "$2" --signing-secret $secret \
    --config "$dir/provisio.toml" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/healthz >/dev/null && return; sleep 0.1; done
  echo "server did not start" >&2; exit 1
}
rate() { # rate SCENARIO[+provision] → "N flows/s"
  local scenario=${1%+provision} extra=()
  [ "$scenario" != "$1" ] && extra=(--provision)
  "$new" bench --base-url http://127.0.0.1:$port --signing-secret $secret --concurrency "$conc" \
    --duration "$dur" --scenario "$scenario" "${extra[@]}" 2>/dev/null \
    | grep -Eo '[0-9][0-9,.]* (flows|calls|requests)?/s' | head -n 1
}
for backend in ${BACKENDS:-sqlite postgres}; do
  for round in $(seq "$rounds"); do
    for side in A B; do
      bin=$old; [ $side = B ] && bin=$new
      if [ $backend = sqlite ]; then
        rm -f "$dir"/ab.db*; url="sqlite://$dir/ab.db"
      else
        psql "$admin_url" -qc "DROP DATABASE IF EXISTS provisio_ab" -c "CREATE DATABASE provisio_ab"
        "$bin" migrate --database-url "$pg_url" >/dev/null 2>&1; url=$pg_url
      fi
      serve "$bin" "$url"
      line="$backend round $round $side:"
      for scenario in ${SCENARIOS:-resource-read rotate}; do line="$line $scenario $(rate "$scenario"),"; done
      echo "${line%,}"
      stop
    done
  done
done
