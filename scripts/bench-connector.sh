#!/usr/bin/env bash
# Connector mode against built-in mode in one sitting: the full new-user flow with provisioning
# (account request → token → resource create) on a fresh SQLite file each, the connector run in
# front of a SaaS that answers at once (the tests' in-memory SaaS, `bench_saas` example). Then what
# one SaaS call costs as provisio sees it (its histogram's p50 per operation) and how many
# connections provisio held to the SaaS (keep-alive: a handful, not one per call).
# Usage: scripts/bench-connector.sh [concurrency] [duration]
set -euo pipefail
cd "$(dirname "$0")/.."
conc=${1:-16}
dur=${2:-10s}
cargo build --release -q -p provisio -p provisio-server --example bench_saas --example connector_calls
bin=target/release/provisio
secret=whsec_bench
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$dir"' EXIT

target/release/examples/bench_saas >"$dir/saas.out" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$dir/saas.out" 2>/dev/null && break; sleep 0.1; done
saas_url=$(sed -n 's/^bench SaaS listening on //p' "$dir/saas.out")
saas_port=${saas_url##*:}
export BENCH_CONNECTOR_SECRET=$(sed -n 's/^connector secret: //p' "$dir/saas.out")

printf '[rate_limits]\nenabled = false\n' >"$dir/builtin.toml"
cat >"$dir/connector.toml" <<TOML
[rate_limits]
enabled = false

[connector]
url = "$saas_url/connector"
secret_env = "BENCH_CONNECTOR_SECRET"
dashboard_origin = "https://app.saas.test"
TOML

# Starts provisio on $1 (port) with config $2; waits until it answers.
serve() {
  "$bin" serve --listen "127.0.0.1:$1" --database-url "sqlite://$dir/$2.db" --signing-secret $secret \
    --config "$dir/$2.toml" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && break; sleep 0.1; done
}
bench() {
  "$bin" bench --base-url "http://127.0.0.1:$1" --signing-secret $secret --concurrency "$conc" \
    --duration "$dur" --scenario new-user-flow --provision
}

serve 18091 builtin
serve 18092 connector
echo "== built-in mode: new-user flow with provisioning, concurrency $conc, $dur"
bench 18091
echo "== connector mode (SaaS on loopback, answering at once): same flow"
( sleep 3; echo "   connections provisio -> SaaS mid-run: $(ss -Htn state established "( dport = :$saas_port )" | wc -l)" ) &
bench 18092
wait $!
echo "   connections to the SaaS left in TIME-WAIT (closed): $(ss -Htn state time-wait "( dport = :$saas_port )" | wc -l)"
# What one call costs as provisio sees it, from its histogram (all attempts; signing, HTTP and the
# SaaS's own work). Under load on two cores it includes waiting for a core.
per_call() {
  curl -s "http://127.0.0.1:$1/metrics" | python3 -c '
import re, sys
buckets, counts = {}, {}
for line in sys.stdin:
    m = re.match(r"provisio_connector_call_duration_seconds_bucket\{(.*)\} (\S+)", line)
    if m:
        labels = dict(re.findall(r"(\w+)=\"([^\"]*)\"", m.group(1)))
        buckets.setdefault(labels["operation"], []).append((float(labels["le"]), float(m.group(2))))
for op, bs in sorted(buckets.items()):
    bs.sort()
    total = bs[-1][1]
    p50 = next(le for le, c in bs if c >= total / 2)
    p99 = next(le for le, c in bs if c >= total * 0.99)
    print(f"   {op:22} calls {int(total):7}  p50 <= {p50*1000:g} ms  p99 <= {p99*1000:g} ms")
'
}
echo "== each SaaS call during the connector run above"
per_call 18092
echo "== each SaaS call with one flow at a time (no queueing for a core), connector mode, 5 s"
cp "$dir/connector.toml" "$dir/unloaded.toml"
serve 18093 unloaded
"$bin" bench --base-url http://127.0.0.1:18093 --signing-secret $secret --concurrency 1 --duration 5s \
  --scenario new-user-flow --provision | head -1
per_call 18093
echo "== one call at a time through provisio's client, in one process with the SaaS (no flow between)"
target/release/examples/connector_calls
