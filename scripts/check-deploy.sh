#!/usr/bin/env bash
# Checks the systemd unit shipped in deploy/ the way systemd reads it: `systemd-analyze verify
# deploy/provisio.service`, failing on any complaint about the unit (systemd only warns about a
# value it cannot parse, "ignoring" it, and verify still exits 0: so its output is read too), and
# on a comment after a value (systemd reads it as part of the value, often without a word).
# Needs no running systemd and no root, except to install systemd-analyze when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

unit=deploy/provisio.service

if ! command -v systemd-analyze >/dev/null 2>&1; then
  # Debian ships systemd-analyze in the package systemd.
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing systemd (for systemd-analyze)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
  else
    echo "systemd-analyze is missing: install it (Debian: apt-get install systemd) to check $unit" >&2
    exit 1
  fi
fi

# A comment after a value: every line that is not a comment, a section or blank must not hold
# ' #' or ' ;' (no value in the unit legitimately does).
if trailing="$(grep -nE '^[[:space:]]*[^#;[:space:][].*[[:space:]][#;]' "$unit")"; then
  echo "$unit: a comment after a value (systemd takes it as part of the value; put it on a line of its own):" >&2
  echo "$trailing" >&2
  exit 1
fi

# verify also requires every ExecStart*= command to exist and be executable, and the unit names
# /usr/local/bin/provisio, where it is installed on a server, not on a build machine. So verify a
# temporary copy (under the same unit name) in which only that path is replaced by an existing
# executable: the release binary if it is built, else /bin/true. Every other line is checked as
# shipped.
bin="$PWD/target/release/provisio"
[ -x "$bin" ] || bin=/bin/true
[ -x "$bin" ] || bin=/usr/bin/true
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
sed "s#/usr/local/bin/provisio#$bin#g" "$unit" >"$workdir/provisio.service"

status=0
output="$(systemd-analyze verify "$workdir/provisio.service" 2>&1)" || status=$?
# Complaints name the unit or its file; anything else is about this machine's own units (the
# targets ours orders itself after), shown but not held against the unit.
complaints="$(grep -F 'provisio.service' <<<"$output" || true)"
others="$(grep -vF 'provisio.service' <<<"$output" || true)"
if [ -n "$others" ]; then
  echo "(systemd-analyze, about this machine's units, not $unit:)"
  echo "$others"
fi
if [ "$status" -ne 0 ] || [ -n "$complaints" ]; then
  echo "systemd-analyze verify $unit failed (exit status $status; ExecStart path replaced by $bin):" >&2
  echo "${complaints:-$output}" | sed "s#$workdir/provisio.service#$unit#g" >&2
  exit 1
fi
echo "$unit: systemd-analyze verify passed (ExecStart checked against $bin)"
