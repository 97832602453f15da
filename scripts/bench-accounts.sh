#!/usr/bin/env bash
# Account request + token exchange on SQLite: new users, and existing users with 1 and 50 projects.
# Usage: scripts/bench-accounts.sh [concurrency] [duration]   (needs a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
conc=${1:-16}
dur=${2:-10s}
bin=target/release/provisio
dir=$(mktemp -d)
# Rate limits are off by default here, so that one client hammering a few tokens and 1,000 seeded
# users measures the server, not the limits. PROVISIO_BENCH_LIMITS=generous turns them on with
# limits well above one client's rate, to measure what checking them costs.
if [ "${PROVISIO_BENCH_LIMITS:-off}" = off ]; then
  printf '[rate_limits]\nenabled = false\n' > "$dir/provisio.toml"
else
  cat > "$dir/provisio.toml" <<'TOML'
[rate_limits]
enabled = true
account_requests_per_orchestrator_account = { burst = 100000, per_minute = 6000000 }
account_requests_per_email = { burst = 100000, per_minute = 6000000 }
resource_calls_per_token = { burst = 100000, per_minute = 6000000 }
dashboard_logins_per_ip = { burst = 20, per_minute = 60 }
TOML
fi
db="sqlite://$dir/bench.db"
port=18082
secret=whsec_bench
"$bin" serve --listen 127.0.0.1:$port --database-url "$db" --signing-secret $secret --config "$dir/provisio.toml" >/dev/null 2>&1 &
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
