#!/usr/bin/env bash
# The full new-user flow (account request → token → create resource) on SQLite, then resource reads
# and rotations at their own rates. Usage: scripts/bench-resources.sh [concurrency] [duration]
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
port=18083
secret=whsec_bench
"$bin" serve --listen 127.0.0.1:$port --database-url "sqlite://$dir/bench.db" --signing-secret $secret --config "$dir/provisio.toml" >/dev/null 2>&1 &
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
