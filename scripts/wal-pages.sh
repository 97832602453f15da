#!/usr/bin/env bash
# Which b-trees the SQLite write path writes: runs the full new-user flow against a fresh SQLite
# database, kills the server (so the WAL stays as it was), then reads the WAL's frames since its
# last restart and names the table or index each page belongs to (SQLite's dbstat). Prints frames
# per commit, then each b-tree's frames per commit. Usage: scripts/wal-pages.sh [concurrency]
# [duration] (needs a release build and python3 with the sqlite3 module). A short window after a
# WAL restart holds few commits: run it again if it shows fewer than ~100.
set -euo pipefail
cd "$(dirname "$0")/.."
conc=${1:-16}
dur=${2:-4s}
port=18089
. scripts/bench-server.sh
bench --scenario new-user-flow --provision | head -n 1
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null || true
snap=$(mktemp -d)
cp "$dir/bench.db" "$dir/bench.db-wal" "$snap/"
python3 - "$snap/bench.db" <<'PY'
import collections, shutil, sqlite3, struct, sys
db = sys.argv[1]
wal = open(db + "-wal", "rb").read()
_, _, page_size, _, salt1, salt2, _, _ = struct.unpack(">8I", wal[:32])
frames, commits, at = [], 0, 32
while at + 24 + page_size <= len(wal):
    page, size_after, s1, s2, _, _ = struct.unpack(">6I", wal[at:at + 24])
    if (s1, s2) != (salt1, salt2):
        break  # a frame from before the last restart
    frames.append(page)
    commits += size_after != 0
    at += 24 + page_size
print(f"{len(frames)} frames, {commits} commits: {len(frames) / max(commits, 1):.1f} frames per commit")
# Read through a copy: opening it recovers the WAL into what dbstat sees.
shutil.copy(db, db + ".read"); shutil.copy(db + "-wal", db + ".read-wal")
owner = dict((p, n) for n, p in sqlite3.connect(db + ".read").execute("SELECT name, pageno FROM dbstat"))
for name, n in collections.Counter(owner.get(p, "?") for p in frames).most_common():
    print(f"{n / max(commits, 1):6.2f}  {100 * n / len(frames):5.1f}%  {name}")
PY
rm -rf "$snap"
