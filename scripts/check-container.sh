#!/usr/bin/env bash
# Checks the container recipe (Dockerfile, .dockerignore) end to end.
#
#   scripts/check-container.sh [DOCKERFILE]      (default: the repository's Dockerfile)
#
# With a Docker engine (`docker info` answers): builds the image, runs it, waits for its HEALTHCHECK
# to report healthy, looks at the running container, stops it; then removes container and image.
#
# Without one (CI): the image is checked stage by stage, each stage read from the Dockerfile:
#   a. the build context, computed the way .dockerignore defines it (target/ and *.db out, every
#      COPY source in), copied to a temporary directory;
#   b. the build stage: its COPY lines applied to an empty directory, from that context copy only,
#      then its RUN lines there, with this machine's Rust toolchain (rust:… cannot be pulled);
#   c. the runtime stage: `debootstrap --variant=minbase` of the base image's Debian suite (cached
#      under target/container-context/, made like the official image: slim dpkg excludes, apt
#      sources, no services started), its RUN lines in a chroot, its COPY lines, then its
#      ENTRYPOINT+CMD as its USER in its WORKDIR with its ENV, as PID 1 of its own PID namespace;
#      its HEALTHCHECK CMD until it passes; the database in the VOLUME, owned by USER, mode 0600;
#      the server not root; SIGTERM stops it cleanly within docker stop's 10 s.
# What this cannot prove: the exact contents of rust:…-bookworm and debian:…-slim (a fresh
# minbase of the same suite stands in for the latter; this machine's toolchain for the former).
#
# Needs root without an engine (chroot, mount, debootstrap); installs debootstrap when missing.
# Port(s) the image EXPOSEs must be free on this machine: a chroot shares the host's network.
# The df_* variables are defined by the plan read from the Dockerfile (eval, below):
# shellcheck disable=SC2154
set -euo pipefail

dockerfile="${1:-Dockerfile}"
[ -f "$dockerfile" ] || { echo "check-container: no Dockerfile at $dockerfile" >&2; exit 1; }
dockerfile="$(realpath "$dockerfile")"
cd "$(dirname "$0")/.."
repo="$PWD"
# BuildKit reads <Dockerfile>.dockerignore beside the Dockerfile before the context's .dockerignore.
ignorefile="$dockerfile.dockerignore"
[ -f "$ignorefile" ] || ignorefile="$repo/.dockerignore"

fail() {
  echo "check-container: FAILED: $*" >&2
  exit 1
}
started=$SECONDS
summary=()

# ---------------------------------------------------------------------------------------------
# The Dockerfile and .dockerignore readers (Python 3 standard library). Every form they do not
# support is refused by name rather than guessed at.
# ---------------------------------------------------------------------------------------------
read -r -d '' py_tool <<'PY' || true
import json, os, re, shlex, sys

def die(msg):
    print(f"check-container: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)

# .dockerignore as moby/patternmatcher reads and matches it: '#' at column 0 is a comment, lines
# are trimmed and cleaned (filepath.Clean, leading '/' dropped), '*' and '?' do not cross '/',
# '**' crosses any number of directories, a pattern also matches every path below a match, and the
# last matching line wins ('!' lines re-include).
def read_ignore(path):
    pats = []
    if not os.path.exists(path):
        return pats
    with open(path, encoding="utf-8-sig") as f:
        for n, raw in enumerate(f.read().splitlines(), 1):
            if raw.startswith("#"):
                continue
            p = raw.strip()
            if not p:
                continue
            neg = p.startswith("!")
            if neg:
                p = p[1:].strip()
            if not p or "[" in p or "\\" in p or p.startswith("../") or p == "..":
                die(f"{path}:{n}: {raw.strip()!r}: a pattern form this check does not support "
                    "(character classes, escapes, empty or parent patterns); extend scripts/check-container.sh")
            p = os.path.normpath(p)
            if len(p) > 1:
                p = p.lstrip("/")
            pats.append((neg, p, compile_pattern(p)))
    return pats

def compile_pattern(p):
    rx, i = "^", 0
    while i < len(p):
        c = p[i]
        if c == "*" and p[i + 1:i + 2] == "*":
            i += 2
            if p[i:i + 1] == "/":
                i += 1
            rx += ".*" if i >= len(p) else "(.*/)?"
            continue
        rx += "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
        i += 1
    return re.compile(rx + "$")

def excluded(rel, pats):
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts))]
    matched = False
    for neg, _, rx in pats:
        if neg != matched:
            continue
        if rx.match(rel) or any(rx.match(q) for q in prefixes):
            matched = not neg
    return matched

def context(root, ignore):
    pats = read_ignore(ignore)
    exceptions = [p for neg, p, _ in pats if neg]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        reldir = os.path.relpath(dirpath, root)
        rel = lambda name: name if reldir == "." else f"{reldir}/{name}"
        keep = []
        for d in sorted(dirnames):
            r = rel(d)
            if os.path.islink(os.path.join(dirpath, d)):
                filenames.append(d)
            elif not excluded(r, pats):
                out.append(r)
                keep.append(d)
            # An excluded directory is walked only if a '!' line names something inside it (as
            # the builders do): that is what keeps target/ from being read at all.
            elif any((e + "/").startswith(r + "/") for e in exceptions):
                keep.append(d)
        dirnames[:] = keep
        out += [rel(f) for f in sorted(filenames) if not excluded(rel(f), pats)]
    for r in out:
        if "\n" in r:
            die(f"{r!r}: a file name with a newline in the build context")
        print(r)

# ---------------------------------------------------------------------------------------------
# The Dockerfile: instructions (continuations joined, comment lines inside them dropped), two
# stages, each turned into calls of the shell's `step` function, and the image's configuration.
# ---------------------------------------------------------------------------------------------
def instructions(path):
    lines = open(path, encoding="utf-8").read().splitlines()
    for line in lines:
        m = re.match(r"^#\s*(\w+)\s*=\s*(.*?)\s*$", line)
        if not m:
            break
        if m.group(1).lower() == "escape" and m.group(2) != "\\":
            die(f"{path}: the escape directive {m.group(2)!r} is not supported")
    out, cur, start = [], None, 0
    for n, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if cur is None:
            cur, start = "", n
        cont = re.search(r"\\[ \t]*$", line)
        cur += line[:cont.start()] if cont else line
        if not cont:
            out.append((start, cur.strip()))
            cur = None
    if cur is not None:
        out.append((start, cur.strip()))
    result = []
    for n, text in out:
        kw, _, args = text.partition(" ")
        result.append((n, kw.upper(), args.strip()))
    return result

def flags(args, allowed, where):
    found = {}
    while args.startswith("--"):
        word, _, args = args.partition(" ")
        name, _, value = word[2:].partition("=")
        if name not in allowed:
            die(f"{where}: the flag --{name} is not supported by this check; extend scripts/check-container.sh")
        found[name] = value
        args = args.strip()
    return found, args

def exec_form(args, where, shell_ok=True):
    if args.startswith("["):
        try:
            v = json.loads(args)
        except ValueError:
            die(f"{where}: {args!r} looks like a JSON array but is not one (Docker would run it through /bin/sh -c)")
        if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
            die(f"{where}: {args!r} must be a non-empty JSON array of strings")
        return v
    if not shell_ok:
        die(f"{where}: expected a JSON array, found {args!r}")
    return ["/bin/sh", "-c", args]

def no_vars(args, where):
    if "$" in args:
        die(f"{where}: variable substitution is not supported by this check; extend scripts/check-container.sh")

def env_pairs(args, where):
    no_vars(args, where)
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return [f"{words[0]}={args.split(None, 1)[1] if len(words) > 1 else ''}"]
    for w in words:
        if "=" not in w:
            die(f"{where}: {w!r} is not NAME=value")
    return words

def duration(v, where, least=1):
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ms|s|m|h)", v):
        if m.start() != pos:
            break
        total += float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
        pos = m.end()
    if pos != len(v) or not v:
        die(f"{where}: {v!r} is not a duration")
    return max(least, int(round(total)))

def q(v):
    return shlex.quote(v)

def arr(name, values):
    return f"{name}=(" + " ".join(q(v) for v in values) + ")"

def plan(path):
    stages, stage = [], None
    for n, kw, args in instructions(path):
        where = f"{os.path.basename(path)}:{n} ({kw})"
        if kw == "FROM":
            f, args = flags(args, {"platform"}, where)
            words = args.split()
            if len(words) == 3 and words[1].upper() == "AS":
                name = words[2]
            elif len(words) == 1:
                name = str(len(stages))
            else:
                die(f"{where}: {args!r}: expected IMAGE [AS NAME]")
            no_vars(words[0], where)
            stage = {"from": words[0], "name": name, "line": n, "steps": [], "user": "",
                     "workdir": "/", "env": [], "volumes": [], "expose": [], "health": None,
                     "entrypoint": None, "cmd": None, "cmd_set": False, "stopsignal": "SIGTERM",
                     "sources": [], "runs": []}
            stages.append(stage)
            continue
        if stage is None:
            die(f"{where}: an instruction before the first FROM")
        steps = stage["steps"]
        if kw == "RUN":
            if args.startswith("--"):
                die(f"{where}: RUN flags (--mount, --network …) are not supported by this check")
            if re.search(r"<<-?\s*[\"']?[A-Za-z_]", args):
                die(f"{where}: heredocs are not supported by this check")
            cmd = args if not args.startswith("[") else " ".join(shlex.quote(a) for a in exec_form(args, where))
            steps.append(["RUN", cmd])
            stage["runs"].append(cmd)
        elif kw in ("COPY", "ADD"):
            if kw == "ADD":
                die(f"{where}: ADD is not supported by this check (use COPY)")
            f, args = flags(args, {"from", "link"}, where)
            no_vars(args, where)
            words = json.loads(args) if args.startswith("[") else args.split()
            if len(words) < 2:
                die(f"{where}: COPY needs a source and a destination")
            srcs, dest = words[:-1], words[-1]
            for s in srcs:
                if re.search(r"[*?\[]", s) or s.startswith("..") or "/../" in s:
                    die(f"{where}: the source {s!r} (a wildcard or outside the context) is not supported by this check")
            frm = f.get("from", "")
            if frm and frm not in [s["name"] for s in stages[:-1]]:
                die(f"{where}: --from={frm} names no earlier stage (images are not supported)")
            if not frm:
                stage["sources"] += [s.strip("/") or "." for s in srcs]
            steps.append(["COPY", frm, dest] + srcs)
        elif kw == "WORKDIR":
            no_vars(args, where)
            wd = os.path.normpath(os.path.join(stage["workdir"], args))
            stage["workdir"] = wd
            steps.append(["WORKDIR", wd])
        elif kw == "USER":
            no_vars(args, where)
            stage["user"] = args
            steps.append(["USER", args])
        elif kw == "ENV":
            pairs = env_pairs(args, where)
            if any(p.startswith("CARGO_TARGET_DIR=") for p in pairs):
                die(f"{where}: CARGO_TARGET_DIR set in the Dockerfile is not supported by this check")
            stage["env"] += pairs
            steps.append(["ENV"] + pairs)
        elif kw == "VOLUME":
            no_vars(args, where)
            stage["volumes"] += json.loads(args) if args.startswith("[") else args.split()
        elif kw == "EXPOSE":
            for p in args.split():
                port, _, proto = p.partition("/")
                if (proto or "tcp") == "tcp":
                    stage["expose"].append(port)
        elif kw == "HEALTHCHECK":
            if args.upper() == "NONE":
                stage["health"] = None
                continue
            f, args = flags(args, {"interval", "timeout", "start-period", "start-interval", "retries"}, where)
            word, _, rest = args.partition(" ")
            if word.upper() != "CMD":
                die(f"{where}: expected HEALTHCHECK [OPTIONS] CMD …")
            stage["health"] = {
                "interval": duration(f.get("interval", "30s"), where),
                "timeout": duration(f.get("timeout", "30s"), where),
                "start": duration(f.get("start-period", "0s"), where, least=0),
                "retries": int(f.get("retries", "3")),
                "cmd": exec_form(rest.strip(), where),
            }
        elif kw == "ENTRYPOINT":
            # Shell form: /bin/sh -c STRING, and CMD is not appended.
            stage["entrypoint"] = exec_form(args, where)
            stage["entry_shell"] = not args.startswith("[")
            if not stage["cmd_set"]:
                stage["cmd"] = None
        elif kw == "CMD":
            stage["cmd"] = exec_form(args, where)
            stage["cmd_set"] = True
        elif kw == "STOPSIGNAL":
            stage["stopsignal"] = args
        elif kw in ("LABEL", "MAINTAINER"):
            pass
        else:
            die(f"{where}: the instruction {kw} is not supported by this check; extend scripts/check-container.sh")

    if len(stages) != 2:
        die(f"{path}: {len(stages)} stage(s); this check supports exactly two (a build stage, then the image)")
    build, image = stages
    for kw in ("USER", "VOLUME"):
        if any(s[0] == kw for s in build["steps"]):
            die(f"{path}: {kw} in the build stage is not supported by this check")
    m = re.fullmatch(r"(?:docker\.io/)?(?:library/)?rust:(\d+\.\d+)(?:\.\d+)?(?:-slim)?-(\w+)", build["from"])
    if not m:
        die(f"{path}:{build['line']}: build stage FROM {build['from']}: this check emulates rust:<version>-<debian suite> only")
    rust_version, build_suite = m.groups()
    m = re.fullmatch(r"(?:docker\.io/)?(?:library/)?debian:(\w+)(?:-slim)?", image["from"])
    if not m:
        die(f"{path}:{image['line']}: image FROM {image['from']}: this check can only emulate debian:<suite>[-slim]")
    suite = m.group(1)
    if image["entrypoint"] is None and image["cmd"] is None:
        die(f"{path}: the image has neither ENTRYPOINT nor CMD")
    argv = (image["entrypoint"] or []) + ([] if image.get("entry_shell") else image["cmd"] or [])
    if not image["health"]:
        die(f"{path}: the image has no HEALTHCHECK (or HEALTHCHECK NONE): nothing says when it is healthy")

    out = [
        f"df_build_from={q(build['from'])}", f"df_build_name={q(build['name'])}",
        f"df_build_rust={q(rust_version)}", f"df_build_suite={q(build_suite)}",
        f"df_build_workdir={q(build['workdir'])}", arr("df_build_runs", build["runs"]),
        f"df_image_from={q(image['from'])}", f"df_image_suite={q(suite)}",
        arr("df_image_runs", image["runs"]),
        arr("df_context_sources", list(dict.fromkeys(build["sources"] + image["sources"]))),
        f"df_user={q(image['user'] or 'root')}", f"df_workdir={q(image['workdir'])}",
        arr("df_env", image["env"]), arr("df_volumes", image["volumes"]),
        arr("df_expose", image["expose"]), arr("df_argv", argv),
        f"df_stopsignal={q(image['stopsignal'])}",
    ]
    h = image["health"]
    out += [f"df_hc_interval={h['interval']}", f"df_hc_timeout={h['timeout']}",
            f"df_hc_start={h['start']}", f"df_hc_retries={h['retries']}", arr("df_hc_cmd", h["cmd"])]
    for fn, st in (("build_stage_steps", build), ("image_stage_steps", image)):
        out.append(f"{fn}() {{")
        out += ["  step " + " ".join(q(w) for w in s) for s in st["steps"]]
        out.append("  :\n}")
    print("\n".join(out))

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "plan":
        plan(sys.argv[2])
    elif cmd == "context":
        context(sys.argv[2], sys.argv[3])
    else:
        die(f"unknown command {cmd}")
PY

command -v python3 >/dev/null 2>&1 || fail "python3 is needed to read the Dockerfile and .dockerignore"
plan="$(python3 -c "$py_tool" plan "$dockerfile")" || exit 1
# The df_* variables and the build_stage_steps/image_stage_steps functions, from the Dockerfile.
eval "$plan"

secret="whsec_ci_container_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# The port(s) the image exposes must be free here (the chroot shares this machine's network, and
# anything else answering on them would make the health check pass for the wrong server).
port_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("0.0.0.0", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

# The SQLite database the image's ENV points at, which must lie in one of its VOLUMEs (else it
# is lost with the container): sets db and db_volume.
database_in_volume() {
  local db_url="" kv vol
  for kv in "${df_env[@]}"; do [[ "$kv" == PROVISIO_DATABASE_URL=* ]] && db_url="${kv#*=}"; done
  [[ "$db_url" == sqlite://* ]] ||
    fail "the image's PROVISIO_DATABASE_URL (${db_url:-unset}) is not SQLite: this check expects the SQLite shape by default"
  db="${db_url#sqlite://}"
  db="${db%%\?*}"
  [[ "$db" == /* ]] || db="$df_workdir/$db"
  db_volume=""
  for vol in "${df_volumes[@]}"; do [[ "$db" == "${vol%/}"/* ]] && db_volume="$vol"; done
  [ -n "$db_volume" ] || fail "the database $db is in no VOLUME (${df_volumes[*]:-none}): it would be lost with the container"
}
database_in_volume

# ---------------------------------------------------------------------------------------------
# 1. With an engine: the real thing.
# ---------------------------------------------------------------------------------------------
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  image=provisio-ci
  name="provisio-ci-$$"
  trap 'docker rm -f "$name" >/dev/null 2>&1 || true; docker rmi "$image" >/dev/null 2>&1 || true' EXIT
  echo "== Docker engine available: docker build -f $dockerfile -t $image ."
  t=$SECONDS
  docker build -f "$dockerfile" -t "$image" . || fail "docker build"
  summary+=("docker build: $((SECONDS - t)) s")
  echo "== docker run -d $image (PROVISIO_SIGNING_SECRET set)"
  docker run -d --name "$name" -e PROVISIO_SIGNING_SECRET="$secret" "$image" >/dev/null ||
    fail "docker run $image"
  t=$SECONDS
  status=""
  while [ $((SECONDS - t)) -lt 120 ]; do
    status="$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.Status}}' "$name")"
    case "$status" in
      healthy\ *|unhealthy\ *|none\ *|*\ exited|*\ dead) break ;;
    esac
    sleep 2
  done
  if [ "${status%% *}" != healthy ]; then
    echo "--- docker logs $name" >&2
    docker logs "$name" >&2 || true
    echo "--- health: $(docker inspect --format '{{json .State.Health}}' "$name" 2>&1)" >&2
    fail "the container is not healthy after $((SECONDS - t)) s (health, state: ${status:-unknown}; the limit is 120 s)"
  fi
  summary+=("healthy after $((SECONDS - t)) s (docker inspect .State.Health.Status)")
  # What the stage-by-stage check asserts too, asked of the container (the image has coreutils).
  uid="$(docker exec "$name" id -u "${df_user%%:*}")" || fail "docker exec $name id -u ${df_user%%:*}"
  gid="$(docker exec "$name" id -g "${df_user%%:*}")" || fail "docker exec $name id -g ${df_user%%:*}"
  proc_uid="$(docker exec "$name" sh -c 'grep "^Uid:" /proc/1/status' | awk '{print $2}')"
  [ "$proc_uid" = "$uid" ] && [ "$proc_uid" != 0 ] ||
    fail "the server (PID 1) runs as uid ${proc_uid:-?}, not as USER $df_user (uid $uid), or as root"
  summary+=("PID 1 runs as $df_user (uid $uid)")
  owner="$(docker exec "$name" stat -c '%u %g %a' "$db")" || fail "no database at $db in the container"
  [ "$owner" = "$uid $gid 600" ] || fail "$db is owner, group, mode $owner, not $uid $gid 600"
  summary+=("database $db in VOLUME $db_volume, owned by $df_user, mode 0600")
  t=$SECONDS
  docker stop -t 10 "$name" >/dev/null || fail "docker stop $name"
  code="$(docker inspect --format '{{.State.ExitCode}}' "$name")"
  [ "$code" = 0 ] || { docker logs "$name" >&2 || true; fail "after docker stop the server exited with status $code, not 0"; }
  summary+=("docker stop: exited 0 after $((SECONDS - t)) s")
  echo "== container check passed (Docker engine), $((SECONDS - started)) s in all:"
  printf '   - %s\n' "${summary[@]}"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# 2. Without an engine: stage by stage.
# ---------------------------------------------------------------------------------------------
echo "== No Docker engine here (docker info fails): checking the image stage by stage instead"
echo "   ($dockerfile: build stage FROM $df_build_from, image FROM $df_image_from)"
[ "$(id -u)" -eq 0 ] || fail "the stage-by-stage check needs root (chroot, mount, debootstrap)"

state="$repo/target/container-context"
mkdir -p "$state"
exec 9>"$state/lock"
flock -n 9 || fail "another scripts/check-container.sh holds $state/lock"

# Mounts under DIR are undone (deepest first) before DIR is removed, and DIR is removed only if
# none is left; --one-file-system keeps rm out of anything still mounted all the same.
unmount_under() {
  local m
  awk -v d="$1/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}
remove_tree() {
  [ -e "$1" ] || return 0
  unmount_under "$1"
  if awk -v d="$1/" 'index($5, d) == 1 {found=1} END {exit !found}' /proc/self/mountinfo; then
    echo "check-container: left $1 in place: something is still mounted under it" >&2
    return 1
  fi
  rm -rf --one-file-system "$1"
}

# A run killed outright (no trap) leaves its directory, maybe with mounts and the server it
# started still running in its chroot: under the lock no other run uses it, so the processes whose
# root is in it are killed, then it is removed.
for stale in "$state"/run.*; do
  [ -e "$stale" ] || continue
  echo "   removing the leftovers of an interrupted run: ${stale#"$repo"/}"
  for proc in /proc/[0-9]*; do
    [[ "$(readlink "$proc/root" 2>/dev/null)" == "$stale"/* ]] && kill -KILL "${proc#/proc/}" 2>/dev/null
  done
  sleep 0.5
  remove_tree "$stale" || fail "cannot remove ${stale#"$repo"/}"
done
run="$(mktemp -d "$state/run.XXXXXX")"
wrap_pid=""
serve_pid=""
cleanup() {
  set +e
  if [ -n "$wrap_pid" ] && kill -0 "$wrap_pid" 2>/dev/null; then
    [ -n "$serve_pid" ] && kill -KILL "$serve_pid" 2>/dev/null
    kill -KILL "$wrap_pid" 2>/dev/null
    wait "$wrap_pid" 2>/dev/null
  fi
  remove_tree "$run"
  remove_tree "${rootfs_tmp:-}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- a. The build context ---------------------------------------------------------------------
t=$SECONDS
echo "== a. build context, as ${ignorefile#"$repo"/} defines it"
python3 -c "$py_tool" context "$repo" "$ignorefile" >"$run/context.list" || exit 1
if bad="$(grep -E '(^|/)target(/|$)' "$run/context.list")"; then
  fail "target/ is in the build context (${ignorefile#"$repo"/}):"$'\n'"$(head -n 5 <<<"$bad")"
fi
if bad="$(grep -E '\.db$' "$run/context.list")"; then
  fail "a database file is in the build context (${ignorefile#"$repo"/}):"$'\n'"$(head -n 5 <<<"$bad")"
fi
for src in "${df_context_sources[@]}"; do
  if [ "$src" = . ]; then
    continue
  elif ! grep -qxF "$src" "$run/context.list"; then
    fail "COPY source $src is not in the build context: ${ignorefile#"$repo"/} leaves it out (or it does not exist)"
  elif [ -d "$src" ] && ! awk -v p="$src/" 'index($0, p) == 1 {f = 1} END {exit !f}' "$run/context.list"; then
    fail "COPY source $src/ is in the build context but empty: ${ignorefile#"$repo"/} leaves out everything in it"
  fi
done
mkdir "$run/context"
tar -C "$repo" --no-recursion --verbatim-files-from -T "$run/context.list" -cf - | tar -C "$run/context" -xf -
files="$(find "$run/context" -type f | wc -l)"
size="$(du -sh "$run/context" | cut -f1)"
echo "   $files files, $size; not in it: target/, *.db; in it: ${df_context_sources[*]}"
summary+=("a. build context: $files files ($size) by ${ignorefile#"$repo"/}; target/ and *.db out; COPY sources ${df_context_sources[*]} in ($((SECONDS - t)) s)")

# --- Steps, as the Dockerfile lists them (plan above): `step KIND ARGS…` -----------------------
# The build stage's filesystem is build_root; the image's is rootfs (a chroot).
build_root="$state/build"
# CARGO_TARGET_DIR is kept under target/ between runs so that a run does not build every
# dependency from scratch as `docker build` does: the first run compiles all registry crates in
# release mode once (about 0.7 GB, and 6 minutes on a 2-core machine); later runs rebuild only
# what changed.
# The sources themselves are copied afresh each run (with their mtimes, so cargo's fingerprints
# hold): a file the build reads that the context lacks is missing, its crate stale, and the build
# fails as it would in Docker.
# CONTAINER_CARGO_TARGET_DIR overrides it: CI points it at the repository's own target/, whose
# registry crates are already built (only the workspace crates, at the context copy's path, are
# built again; target/release/provisio is then the context's build of the same sources).
cargo_target="${CONTAINER_CARGO_TARGET_DIR:-$state/cargo-target}"
stage=""
b_workdir=/
b_env=()
r_user=""
r_workdir=/
r_env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)

# copy_into ROOT WORKDIR DEST SRC…: COPY's rules (a directory's contents, not the directory; a
# destination ending in / or several sources is a directory), refusing a destination that a
# symbolic link inside ROOT would lead out of it.
copy_into() {
  local root wd="$2" dest="$3" src target
  root="$(realpath "$1")"
  shift 3
  [[ "$dest" == /* ]] || dest="$wd/$dest"
  local as_dir=0
  { [[ "$dest" == */ ]] || [ $# -gt 1 ]; } && as_dir=1
  target="$(realpath -m "$root/$dest")"
  [[ "$target" == "$root" || "$target" == "$root"/* ]] || fail "COPY destination $dest leads out of the stage's root ($target)"
  for src in "$@"; do
    [ -e "$src" ] || fail "COPY source ${src#"$run"/} does not exist in its stage"
    if [ -d "$src" ]; then
      mkdir -p "$target"
      cp -a "$src/." "$target/"
    elif [ "$as_dir" = 1 ] || [ -d "$target" ]; then
      mkdir -p "$target"
      cp -a "$src" "$target/"
    else
      mkdir -p "$(dirname "$target")"
      cp -a "$src" "$target"
    fi
  done
}

# image_cmd USER WORKDIR ARGV…: sets image_argv to the command that runs ARGV as the engine
# would: in the chroot, as USER (chroot resolves it in the chroot's own passwd and group), in
# WORKDIR, with nothing of this machine's environment but the image's ENV (plus run_env, the
# `docker run -e` variables, and the ns wrapper, when set).
run_env=()
ns=()
image_cmd() {
  local user="$1" wd="$2"
  shift 2
  local userspec=()
  [ -n "$user" ] && userspec=(--userspec="$user")
  image_argv=(env -i "${r_env[@]}" HOME="$(image_home "$user")" HOSTNAME=provisio-check "${run_env[@]}"
    "${ns[@]}" chroot "${userspec[@]}" "$rootfs" /usr/bin/env --chdir="$wd" -- "$@")
}
image_home() {
  local home
  home="$(awk -F: -v u="${1%%:*}" '$1 == u || $3 == u {print $6; exit}' "$rootfs/etc/passwd")"
  echo "${home:-/root}"
}

step() {
  local kind="$1"
  shift
  case "$stage:$kind" in
    build:WORKDIR) b_workdir="$1"; mkdir -p "$build_root$1" ;;
    build:ENV) b_env+=("$@") ;;
    build:COPY)
      local dest="$2" srcs=() s
      shift 2
      for s in "$@"; do srcs+=("$run/context/${s#/}"); done
      echo "   COPY $* $dest"
      copy_into "$build_root" "$b_workdir" "$dest" "${srcs[@]}"
      ;;
    build:RUN)
      echo "   RUN $1   (in ${build_root#"$repo"/}$b_workdir, CARGO_TARGET_DIR=${cargo_target#"$repo"/})"
      # The rust image sets none of these; this machine's must not change the build.
      local drop=() v
      for v in $(compgen -e); do
        [[ "$v" =~ ^(RUSTFLAGS|RUSTDOCFLAGS|CARGO_ENCODED_RUSTFLAGS|RUSTC_WRAPPER|RUSTC_WORKSPACE_WRAPPER|CARGO_INCREMENTAL|CARGO_BUILD_.*|CARGO_PROFILE_.*|CARGO_TARGET_.*)$ ]] && drop+=(-u "$v")
      done
      (cd "$build_root$b_workdir" && env "${drop[@]}" "${b_env[@]}" CARGO_TARGET_DIR="$cargo_target" \
        /bin/sh -c "$1" </dev/null) || fail "the build stage's RUN failed: $1"
      ;;
    image:RUN)
      echo "   RUN $1"
      image_cmd "$r_user" "$r_workdir" /bin/sh -c "$1"
      "${image_argv[@]}" </dev/null >"$run/run.log" 2>&1 || {
        tail -n 40 "$run/run.log" >&2
        fail "the image stage's RUN failed in the $df_image_suite chroot: $1"
      }
      sed 's/^/     | /' "$run/run.log" | tail -n 8
      ;;
    image:COPY)
      local from="$1" dest="$2" srcs=() s
      shift 2
      echo "   COPY ${from:+--from=$from }$* $dest"
      for s in "$@"; do
        if [ -z "$from" ]; then
          srcs+=("$run/context/${s#/}")
        elif [[ "$s" == "$df_build_workdir/target/"* ]]; then
          # cargo's default target directory in the build stage is CARGO_TARGET_DIR here.
          srcs+=("$cargo_target/${s#"$df_build_workdir/target/"}")
        else
          srcs+=("$build_root/${s#/}")
        fi
      done
      copy_into "$rootfs" "$r_workdir" "$dest" "${srcs[@]}"
      ;;
    image:USER) r_user="$1" ;;
    image:WORKDIR)
      r_workdir="$1"
      if [ ! -d "$rootfs$1" ]; then
        mkdir -p "$rootfs$1"
        [ -n "$r_user" ] && chroot "$rootfs" chown "$r_user" "$1"
      fi
      ;;
    image:ENV) r_env+=("$@") ;;
    *) fail "internal: no step $kind in stage $stage" ;;
  esac
}

# --- b. The build stage -----------------------------------------------------------------------
t=$SECONDS
host_rust="$(rustc --version | awk '{print $2}')"
# shellcheck source=/dev/null
host_suite="$(. /etc/os-release && echo "${VERSION_CODENAME:-unknown}")"
echo "== b. build stage ($df_build_from cannot be pulled: this machine's rustc $host_rust on Debian $host_suite)"
[[ "$host_rust" == "$df_build_rust".* ]] ||
  echo "   NOTE: the image builds with Rust $df_build_rust, this machine has $host_rust"
[ "$host_suite" = "$df_build_suite" ] ||
  echo "   NOTE: the image builds on Debian $df_build_suite, this machine is $host_suite: the binary links this machine's glibc"
# The binary links the build stage's glibc: the image's Debian must be the same release or newer.
suites=(buster bullseye bookworm trixie forky)
rank() { local i; for i in "${!suites[@]}"; do [ "${suites[$i]}" = "$1" ] && { echo "$i"; return; }; done; echo -1; }
if [ "$df_build_suite" != "$df_image_suite" ]; then
  [ "$(rank "$df_build_suite")" -ge 0 ] && [ "$(rank "$df_image_suite")" -ge 0 ] &&
    [ "$(rank "$df_build_suite")" -lt "$(rank "$df_image_suite")" ] ||
    fail "the build stage is Debian $df_build_suite, the image Debian $df_image_suite: a binary built on a newer glibc than the image's does not start"
fi
remove_tree "$build_root"
mkdir -p "$build_root" "$cargo_target"
stage=build
build_stage_steps
summary+=("b. build stage: its COPY lines from the context copy only, then \`${df_build_runs[*]}\` with rustc $host_rust ($df_build_from not pullable) ($((SECONDS - t)) s)")

# --- c. The runtime stage ---------------------------------------------------------------------
t=$SECONDS
suite="$df_image_suite"
cache="$state/debootstrap-$suite"
echo "== c. image stage: $df_image_from stood in for by debootstrap --variant=minbase $suite"
# A cached root older than 30 days is made again (the real base image is rebuilt upstream too).
if [ -f "$cache/.check-container-rootfs" ] && [ -n "$(find "$cache/.check-container-rootfs" -mtime +30)" ]; then
  echo "   the cached $suite root is older than 30 days: making it again"
  remove_tree "$cache"
fi
if [ ! -f "$cache/.check-container-rootfs" ]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || fail "debootstrap is missing and there is no apt-get to install it"
    echo "   installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  rootfs_tmp="$cache.tmp"
  remove_tree "$rootfs_tmp"
  remove_tree "$cache"
  echo "   debootstrap --variant=minbase $suite (cached in ${cache#"$repo"/} for later runs)"
  debootstrap --variant=minbase "$suite" "$rootfs_tmp" http://deb.debian.org/debian >"$state/debootstrap.log" 2>&1 || {
    tail -n 30 "$state/debootstrap.log" >&2
    fail "debootstrap --variant=minbase $suite (log: ${state#"$repo"/}/debootstrap.log)"
  }
  # Made like the official image (debuerreotype): its apt sources, no service started by a
  # package's scripts, apt's caches cleaned after each install, and the "slim" dpkg excludes,
  # applied to what is installed already too.
  rm -f "$rootfs_tmp/etc/apt/sources.list"
  updates="$suite $suite-updates"
  case "$suite" in sid | unstable) updates="$suite" ;; esac
  cat >"$rootfs_tmp/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  case "$suite" in sid | unstable) ;; *) cat >>"$rootfs_tmp/etc/apt/sources.list.d/debian.sources" <<EOF

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  esac
  printf '#!/bin/sh\nexit 101\n' >"$rootfs_tmp/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs_tmp/usr/sbin/policy-rc.d"
  echo force-unsafe-io >"$rootfs_tmp/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
  printf 'DPkg::Post-Invoke { %s };\nAPT::Update::Post-Invoke { %s };\nDir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' \
    "$clean" "$clean" >"$rootfs_tmp/etc/apt/apt.conf.d/docker-clean"
  echo 'Acquire::GzipIndexes "true";' >"$rootfs_tmp/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Acquire::Languages "none";' >"$rootfs_tmp/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$rootfs_tmp/etc/apt/apt.conf.d/docker-autoremove-suggests"
  excludes=(/usr/share/doc/'*' /usr/share/groff/'*' /usr/share/info/'*' /usr/share/linda/'*'
    /usr/share/lintian/overrides/'*' /usr/share/locale/'*' /usr/share/man/'*')
  includes=(/usr/share/doc/'*'/copyright /usr/share/locale/locale.alias /usr/share/locale/languages
    /usr/share/locale/all_languages /usr/share/locale/currency/'*' /usr/share/locale/l10n/'*')
  {
    printf 'path-exclude %s\n' "${excludes[@]}"
    printf 'path-include %s\n' "${includes[@]}"
  } >"$rootfs_tmp/etc/dpkg/dpkg.cfg.d/docker"
  keep=()
  for p in "${includes[@]}"; do keep+=(${keep[0]+-o} -path "$p"); done
  for p in "${excludes[@]}"; do
    d="${p%/\*}"
    [ -d "$rootfs_tmp$d" ] || continue
    chroot "$rootfs_tmp" find "$d" -depth -mindepth 1 -not \( "${keep[@]}" \) -not \( -type d -o -type l \) -delete
    while [ -n "$(chroot "$rootfs_tmp" find "$d" -depth -mindepth 1 \( -empty -o -xtype l \) -print -delete)" ]; do :; done
  done
  rm -rf "$rootfs_tmp"/var/lib/apt/lists/* "$rootfs_tmp"/var/cache/apt/*.bin
  date -u +%FT%TZ >"$rootfs_tmp/.check-container-rootfs"
  mv "$rootfs_tmp" "$cache"
  rootfs_tmp=""
  echo "   $suite root made in $((SECONDS - t)) s"
  rootfs_note="made by debootstrap now"
else
  rootfs_note="cached, made $(cat "$cache/.check-container-rootfs")"
  echo "   reusing the cached $suite root (${cache#"$repo"/}, $rootfs_note)"
fi

rootfs="$run/rootfs"
cp -a "$cache" "$rootfs"
rm -f "$rootfs/.check-container-rootfs"
# What the engine gives every container: the host's resolver, /proc, a small /dev.
cp -L /etc/resolv.conf "$rootfs/etc/resolv.conf"
mount -t proc proc "$rootfs/proc"
mount -t tmpfs -o mode=0755,nosuid tmpfs "$rootfs/dev"
for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  IFS=: read -r n major minor <<<"$node"
  mknod -m 0666 "$rootfs/dev/$n" c "$major" "$minor" || fail "mknod $rootfs/dev/$n"
done
ln -s /proc/self/fd "$rootfs/dev/fd"
ln -s /proc/self/fd/0 "$rootfs/dev/stdin"
ln -s /proc/self/fd/1 "$rootfs/dev/stdout"
ln -s /proc/self/fd/2 "$rootfs/dev/stderr"
mkdir -m 1777 "$rootfs/dev/shm"

stage=image
image_stage_steps
summary+=("c. image stage: $df_image_from as a minbase $suite root ($rootfs_note); RUN x${#df_image_runs[@]} in a chroot, COPY lines ($((SECONDS - t)) s)")

# --- The container: ENTRYPOINT+CMD as USER, in WORKDIR, with ENV ------------------------------
t=$SECONDS
for port in "${df_expose[@]}"; do
  if ! port_free "$port"; then
    command -v ss >/dev/null 2>&1 && ss -Hltnp "sport = :$port" >&2
    fail "port $port (EXPOSE) is taken on this machine; the chroot shares its network, so free it first"
  fi
done
[ -n "$r_user" ] || fail "the image has no USER: the server would run as root"
uid="$(awk -F: -v u="${r_user%%:*}" '$1 == u || $3 == u {print $3; exit}' "$rootfs/etc/passwd")"
[ -n "$uid" ] || fail "USER ${r_user%%:*} is not in the image's /etc/passwd"
if [[ "$r_user" == *:* ]]; then
  gid="$(awk -F: -v g="${r_user#*:}" '$1 == g || $3 == g {print $3; exit}' "$rootfs/etc/group")"
else
  gid="$(awk -F: -v u="${r_user%%:*}" '$1 == u || $3 == u {print $4; exit}' "$rootfs/etc/passwd")"
fi
[ -n "$gid" ] || fail "the group of USER $r_user is not in the image's /etc/group"

# As in a container, the server is PID 1 of its own PID namespace: PID 1 gets no signal it has no
# handler for, so this is what shows that `docker stop` would stop it rather than kill it.
# The signing secret comes from the environment, as `docker run -e PROVISIO_SIGNING_SECRET`.
run_env=(PROVISIO_SIGNING_SECRET="$secret")
pid1="PID 1 of its own PID namespace"
if unshare --pid --fork --kill-child true 2>/dev/null; then
  ns=(unshare --pid --fork --kill-child --mount-proc="$rootfs/proc")
else
  echo "   NOTE: no PID namespace here (unshare --pid fails): the server does not run as PID 1"
  pid1="not PID 1 (no PID namespace here)"
fi
echo "   starting ${df_argv[*]} as $r_user ($uid:$gid) in $r_workdir, ENV ${r_env[*]:1}, PROVISIO_SIGNING_SECRET"
image_cmd "$r_user" "$r_workdir" "${df_argv[@]}"
ns=()
# (9>&-: the server must not hold the lock, should it outlive this script.)
"${image_argv[@]}" </dev/null >"$run/serve.out" 2>"$run/serve.err" 9>&- &
wrap_pid=$!
serve_log() {
  echo "--- the server's stdout:" >&2; tail -n 20 "$run/serve.out" >&2
  echo "--- the server's stderr:" >&2; tail -n 40 "$run/serve.err" >&2
}
comm="$(basename "${df_argv[0]}" | cut -c1-15)"
for _ in $(seq 1 100); do
  if [[ "$pid1" == PID* ]]; then serve_pid="$(pgrep -P "$wrap_pid" | head -n 1 || true)"; else serve_pid="$wrap_pid"; fi
  [ -n "$serve_pid" ] && [ "$(cat "/proc/$serve_pid/comm" 2>/dev/null)" = "$comm" ] && break
  kill -0 "$wrap_pid" 2>/dev/null || { serve_log; fail "${df_argv[*]} exited at once"; }
  sleep 0.1
done
[ "$(cat "/proc/$serve_pid/comm" 2>/dev/null)" = "$comm" ] || { serve_log; fail "${df_argv[0]} did not start"; }
if [[ "$pid1" == PID* ]]; then
  nspid="$(awk '/^NSpid:/ {print $NF}' "/proc/$serve_pid/status")"
  [ "$nspid" = 1 ] || fail "internal: the server is PID $nspid in its namespace, not 1"
fi

# HEALTHCHECK: Docker runs the CMD every interval and calls the container unhealthy after
# start-period plus retries failed intervals; here it runs every second within that same bound.
bound=$((df_hc_start + df_hc_interval * df_hc_retries))
echo "   HEALTHCHECK ${df_hc_cmd[*]} (every 1 s, at most $bound s: start-period + interval x retries)"
image_cmd "$r_user" "$r_workdir" "${df_hc_cmd[@]}"
healthy=0
checks=0
while [ $((SECONDS - t)) -lt "$bound" ]; do
  kill -0 "$wrap_pid" 2>/dev/null || { serve_log; fail "the server exited before it was healthy"; }
  checks=$((checks + 1))
  if timeout -k 1 "$df_hc_timeout" "${image_argv[@]}" </dev/null >"$run/health.out" 2>&1; then
    healthy=1
    break
  fi
  sleep 1
done
if [ "$healthy" != 1 ]; then
  echo "--- the last health check said:" >&2
  cat "$run/health.out" >&2
  serve_log
  fail "HEALTHCHECK ${df_hc_cmd[*]} never passed within $bound s ($checks tries); the server runs ${df_argv[*]}"
fi
echo "   healthy after $((SECONDS - t)) s ($checks checks): $(head -n 1 "$run/health.out")"
summary+=("container: ${df_argv[*]} ($pid1) with the image's ENV; HEALTHCHECK CMD passed after $((SECONDS - t)) s ($checks tries, bound $bound s)")

# Not root: the kernel's view of the process.
read -r _ ruid euid suid fsuid < <(grep '^Uid:' "/proc/$serve_pid/status")
read -r _ rgid egid sgid fsgid < <(grep '^Gid:' "/proc/$serve_pid/status")
for v in "$ruid" "$euid" "$suid" "$fsuid"; do
  [ "$v" = "$uid" ] || fail "the server runs with uid $v, not USER $r_user's $uid"
done
for v in "$rgid" "$egid" "$sgid" "$fsgid"; do
  [ "$v" = "$gid" ] || fail "the server runs with gid $v, not USER $r_user's group $gid"
done
[ "$uid" != 0 ] || fail "USER $r_user is root"
summary+=("the server runs as $r_user (uid $uid, gid $gid), not root")

# The database: where PROVISIO_DATABASE_URL (ENV) puts it (database_in_volume, above: inside a
# VOLUME), the USER's, 0600.
[ -f "$rootfs$db" ] || { serve_log; fail "the server is healthy but created no database at $db"; }
for f in "$db" "$db-wal" "$db-shm"; do
  [ -e "$rootfs$f" ] || continue
  read -r fu fg fm < <(stat -c '%u %g %a' "$rootfs$f")
  [ "$fu:$fg" = "$uid:$gid" ] || fail "$f is owned by $fu:$fg, not USER $r_user ($uid:$gid)"
  [ "$fm" = 600 ] || fail "$f has mode $fm, not 600"
done
summary+=("database $db created in VOLUME $db_volume, owned by $r_user, mode 0600")

# Stop as docker stop does: STOPSIGNAL, then SIGKILL after 10 s (systemd's unit allows 30).
stop_timeout=10
t=$SECONDS
kill -"${df_stopsignal#SIG}" "$serve_pid"
while kill -0 "$wrap_pid" 2>/dev/null && [ $((SECONDS - t)) -le "$stop_timeout" ]; do sleep 0.2; done
if kill -0 "$wrap_pid" 2>/dev/null; then
  serve_log
  fail "the server did not exit within $stop_timeout s of $df_stopsignal (docker stop would SIGKILL it)"
fi
code=0
wait "$wrap_pid" || code=$?
wrap_pid=""
[ "$code" = 0 ] || { serve_log; fail "after $df_stopsignal the server exited with status $code, not 0"; }
echo "   $df_stopsignal: exited 0 after $((SECONDS - t)) s"
summary+=("$df_stopsignal: exited 0 within $((SECONDS - t)) s (docker stop allows $stop_timeout s)")

echo "== container check passed (no engine: stage by stage), $((SECONDS - started)) s in all:"
printf '   - %s\n' "${summary[@]}"
echo "   Not proven here: the exact contents of $df_build_from and $df_image_from (run this script where 'docker info' works)."
