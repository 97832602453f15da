#!/usr/bin/env bash
# Load measurement of signed GET /provisioning/services next to unauthenticated /healthz, on loopback.
# Usage: scripts/bench-services.sh [connections] [seconds]   (needs wrk and a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-64}
secs=${2:-10}
bin=target/release/provisio
dir=$(mktemp -d)
secret=whsec_bench
port=18080
"$bin" serve --listen 127.0.0.1:$port --database-url "sqlite://$dir/bench.db" --signing-secret $secret >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:$port/healthz >/dev/null && break; sleep 0.1; done
# A GET signs the empty body; one header stays valid for the 300 s tolerance window, so wrk reuses it.
t=$(date +%s)
v1=$(printf '%s.' "$t" | openssl dgst -sha256 -hmac "$secret" -hex | awk '{print $NF}')
sig="t=$t,v1=$v1"
curl -sf -H "Stripe-Signature: $sig" -H "API-Version: 0.1d" http://127.0.0.1:$port/provisioning/services >/dev/null
echo "== signed GET /provisioning/services ($conns connections, ${secs}s)"
wrk -t2 -c"$conns" -d"${secs}s" --latency -H "Stripe-Signature: $sig" -H "API-Version: 0.1d" \
  http://127.0.0.1:$port/provisioning/services
echo "== GET /healthz ($conns connections, ${secs}s)"
wrk -t2 -c"$conns" -d"${secs}s" --latency http://127.0.0.1:$port/healthz
echo "== peak RSS of the server: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"
