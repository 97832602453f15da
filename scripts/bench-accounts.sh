#!/usr/bin/env bash
# Account request + token exchange on SQLite: new users, and existing users with 1 and 50 projects.
# Usage: scripts/bench-accounts.sh [concurrency] [duration]   (needs a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
conc=${1:-16}
dur=${2:-10s}
port=18082
. scripts/bench-server.sh

echo "== new users"
bench --scenario new-user-flow
for projects in 1 50; do
  "$bin" admin --database-url "$db" seed --users 1000 --projects $projects --out "$dir/users-$projects.json"
  echo "== existing users with $projects project(s), linked by team_id"
  bench --scenario existing-user-flow --users-file "$dir/users-$projects.json"
done
echo "== peak RSS of the server: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"
