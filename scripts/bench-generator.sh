#!/usr/bin/env bash
# Is `provisio bench` the bottleneck? One core each: the load generator on CPU 0, the target on CPU 1.
# The targets are the trivial responder (what the generator alone can drive) and `provisio serve`'s
# fastest endpoint, signed GET /provisioning/services (what the server can take). wrk, which does not
# sign, measures both as a reference. Prints every run, then the medians and their ratio.
# Usage: scripts/bench-generator.sh [runs] [seconds] [connections]
#   (needs wrk, taskset, and cargo build --release -p provisio -p provisio-orchestrator --examples)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
secs=${2:-8}
conns=${3:-64}
bin=target/release/provisio
responder=target/release/examples/trivial_responder
dir=$(mktemp -d)
secret=whsec_bench
printf '[rate_limits]\nenabled = false\n' >"$dir/provisio.toml"
taskset -c 1 "$responder" 127.0.0.1:18099 >/dev/null &
rpid=$!
taskset -c 1 "$bin" serve --listen 127.0.0.1:18098 --database-url "sqlite://$dir/bench.db" \
  --signing-secret $secret --config "$dir/provisio.toml" >/dev/null 2>&1 &
spid=$!
trap 'kill $rpid $spid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:18098/healthz >/dev/null && break; sleep 0.1; done

# Busy share of CPU 0 (the generator's core) while a command runs, in percent.
busy0() {
  local a b
  a=$(grep '^cpu0 ' /proc/stat)
  "$@" >"$dir/out"
  b=$(grep '^cpu0 ' /proc/stat)
  paste <(echo "$a" | tr ' ' '\n' | tail -n +2) <(echo "$b" | tr ' ' '\n' | tail -n +2) |
    awk '{d=$2-$1; t+=d; if (NR!=4 && NR!=5) u+=d} END {printf "%.0f", 100*u/t}'
}
bench() {
  taskset -c 0 "$bin" bench --base-url "$1" --signing-secret $secret --scenario services \
    --concurrency "$conns" --duration "${secs}s" --json
}
rate() { python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["flows_per_sec"]))' "$dir/out"; }
wrk_rate() { awk '/Requests\/sec/ {printf "%.0f", $2}' "$dir/out"; }
t=$(date +%s)
sig="t=$t,v1=$(printf '%s.' "$t" | openssl dgst -sha256 -hmac "$secret" -hex | awk '{print $NF}')"

echo "run  bench->responder  bench->provisio (cpu0 busy)  wrk->responder  wrk->provisio"
: >"$dir/rows"
for i in $(seq "$runs"); do
  busy0 bench http://127.0.0.1:18099 >/dev/null
  a=$(rate)
  b_busy=$(busy0 bench http://127.0.0.1:18098)
  b=$(rate)
  taskset -c 0 wrk -t1 -c"$conns" -d"${secs}s" http://127.0.0.1:18099/provisioning/services >"$dir/out"
  c=$(wrk_rate)
  taskset -c 0 wrk -t1 -c"$conns" -d"${secs}s" -H "Stripe-Signature: $sig" -H "API-Version: 0.1d" \
    http://127.0.0.1:18098/provisioning/services >"$dir/out"
  d=$(wrk_rate)
  printf '%-4s %-17s %-28s %-15s %s\n' "$i" "$a" "$b ($b_busy %)" "$c" "$d"
  echo "$a $b $c $d" >>"$dir/rows"
done
python3 - "$dir/rows" <<'PY'
import statistics, sys
cols = list(zip(*(map(int, l.split()) for l in open(sys.argv[1]))))
a, b, c, d = (statistics.median(col) for col in cols)
print(f"medians: bench->responder {a:.0f}, bench->provisio {b:.0f}, wrk->responder {c:.0f}, wrk->provisio {d:.0f}")
print(f"generator headroom: {a / max(b, d):.2f}x the server's fastest endpoint (goal >= 3); wrk: {c / max(b, d):.2f}x")
PY
