#!/usr/bin/env bash
# `provisio connector-check` against the example SaaS (examples/saas), then the conformance suite
# against provisio in connector mode: the example SaaS owns users, projects, resources and
# credentials, provisio (release binary) calls it over signed HTTP.
#
#   scripts/conformance-connector.sh [DATABASE_URL]
#
# DATABASE_URL is provisio's store (default: a fresh SQLite file in a temp dir; CI also passes a
# PostgreSQL URL). The SaaS always gets a fresh SQLite file. Both listen on random loopback ports.
# The checks of provisio's built-in backend are skipped (`--skip-tag builtin`) and reported as
# skipped. Prints the summary; fails on any failed check. Needs `cargo build --release -p provisio`
# and the SaaS's requirements (`pip install -r examples/saas/requirements.txt`).
# CONFORMANCE_REPORT=FILE keeps the JSON report.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release/provisio
python="${PYTHON:-python3}"
if [ ! -x "$bin" ]; then
  echo "$bin is missing: run cargo build --release -p provisio" >&2
  exit 1
fi

workdir="$(mktemp -d)"
database_url="${1:-sqlite://$workdir/provisio.db}"
saas_pid=""
server_pid=""
stop() {
  local pid="$1"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
cleanup() {
  stop "$server_pid"
  stop "$saas_pid"
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until file $2 has a line starting with $3 (what follows it is printed) while process $1 runs.
wait_for_line() {
  local pid="$1" file="$2" prefix="$3" label="$4" errors="$5" value=""
  for _ in $(seq 1 300); do
    value="$(sed -n "s|^${prefix}||p" "$file" | head -n 1)"
    [ -n "$value" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$label exited before it was ready:" >&2
      cat "$errors" >&2
      exit 1
    fi
    sleep 0.1
  done
  if [ -z "$value" ]; then
    echo "$label printed no address within 30 s" >&2
    cat "$errors" >&2
    exit 1
  fi
  printf '%s' "$value"
}

new_secret() { printf 'whsec_%s' "$(head -c 32 /dev/urandom | base64)"; }
connector_secret="$(new_secret)"
events_secret="$(new_secret)"
orchestrator_secret="whsec_conformance_connector_$$"

# The example SaaS: a fresh SQLite file, a random loopback port.
SAAS_CONNECTOR_SECRET="$connector_secret" SAAS_EVENTS_SECRET="$events_secret" \
  "$python" examples/saas/app.py --listen 127.0.0.1:0 --db "$workdir/saas.db" \
  >"$workdir/saas.out" 2>"$workdir/saas.err" &
saas_pid=$!
saas_url="$(wait_for_line "$saas_pid" "$workdir/saas.out" 'example SaaS listening on ' 'the example SaaS' "$workdir/saas.err")"

# The SaaS's side first: `provisio connector-check` holds the example SaaS to the connector contract.
echo "== connector-check against the example SaaS at $saas_url"
check_status=0
CHECK_CONNECTOR_SECRET="$connector_secret" CHECK_EVENTS_SECRET="$events_secret" \
  "$bin" connector-check --url "$saas_url/provisio/v1" --secret-env CHECK_CONNECTOR_SECRET \
  --events-url "$saas_url/provisio/events" --events-secret-env CHECK_EVENTS_SECRET \
  >"$workdir/connector-check.out" || check_status=$?
tail -n 2 "$workdir/connector-check.out"
if [ "$check_status" -ne 0 ]; then
  cat "$workdir/connector-check.out" >&2
  echo "connector-check against the example SaaS failed (exit status $check_status)" >&2
  exit 1
fi

cat >"$workdir/provisio.toml" <<TOML
[connector]
url = "$saas_url/provisio/v1"
secret_env = "PROVISIO_CONNECTOR_SECRET"
dashboard_origin = "$saas_url"

[events]
url = "$saas_url/provisio/events"
secret_env = "PROVISIO_EVENTS_SECRET"
TOML

PROVISIO_CONNECTOR_SECRET="$connector_secret" PROVISIO_EVENTS_SECRET="$events_secret" RUST_LOG=warn \
  "$bin" serve --listen 127.0.0.1:0 --database-url "$database_url" \
  --signing-secret "$orchestrator_secret" --config "$workdir/provisio.toml" \
  >"$workdir/serve.out" 2>"$workdir/serve.err" &
server_pid=$!
base_url="$(wait_for_line "$server_pid" "$workdir/serve.out" 'provisio is serving the APP 0.1d provider at ' 'provisio serve' "$workdir/serve.err")"
echo "== conformance against provisio at $base_url, connector to the example SaaS at $saas_url"

report="${CONFORMANCE_REPORT:-$workdir/conformance-connector.json}"
conformance_status=0
"$bin" conformance --base-url "$base_url" --signing-secret "$orchestrator_secret" \
  --skip-tag builtin --report "$report" >"$workdir/conformance.out" || conformance_status=$?
cat "$workdir/conformance.out"

summary="$(tail -n 1 "$workdir/conformance.out")"
checks="$(grep -c '"outcome"' "$report" || true)"
skipped="$(grep -c '"outcome": "skip"' "$report" || true)"
echo "== conformance in connector mode: $checks checks; $summary, $skipped skipped"
if [ "$conformance_status" -ne 0 ] || ! [[ "$summary" =~ ^[0-9]+\ passed,\ 0\ failed ]]; then
  echo "conformance in connector mode failed (exit status $conformance_status)" >&2
  echo "-- provisio serve (last 50 lines of stderr):" >&2
  tail -n 50 "$workdir/serve.err" >&2 || true
  echo "-- example SaaS (last 50 lines of stderr):" >&2
  tail -n 50 "$workdir/saas.err" >&2 || true
  exit 1
fi
