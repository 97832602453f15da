# Sourced by the bench scripts: starts `provisio serve` (release) on a fresh SQLite file on $port and
# defines `bench`. Expects $port, $conc and $dur; sets $bin, $dir, $db, $pid, $secret.
# Rate limits are off by default, so that one client hammering a few tokens and 1,000 seeded users
# measures the server, not the limits. PROVISIO_BENCH_LIMITS=generous turns them on with limits well
# above one client's rate, to measure what checking them costs.
bin=target/release/provisio
dir=$(mktemp -d)
db="sqlite://$dir/bench.db"
secret=whsec_bench
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
"$bin" serve --listen 127.0.0.1:$port --database-url "$db" --signing-secret $secret --config "$dir/provisio.toml" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:$port/healthz >/dev/null && break; sleep 0.1; done
bench() { "$bin" bench --base-url http://127.0.0.1:$port --signing-secret $secret --concurrency "$conc" --duration "$dur" "$@"; }
