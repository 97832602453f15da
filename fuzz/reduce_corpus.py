"""Cuts a fuzz corpus down to a committed budget (docs/security.md, Fuzzing).

`cargo fuzz cmin` keeps every file that adds a coverage *feature* (edge counters included), which
leaves thousands of files for the serde/jsonschema-heavy targets. This keeps the named seeds, then
takes the fuzzer's files by their own edge coverage (highest first, smaller first on ties), each only
if libFuzzer's merge (`-use_counters=0`: edges only) says it adds an edge, until the budget is met.

    python3 fuzz/reduce_corpus.py fuzz/target/x86_64-unknown-linux-gnu/release/TARGET \
        SEEDS_DIR CANDIDATES_DIR OUT_DIR 50
"""
import os, re, shutil, subprocess, sys, tempfile
binary, seeds_from, candidates_dir, out, budget = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
def cov(path):
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(path, d)
        r = subprocess.run([binary, '-runs=0', '-use_counters=0', d], capture_output=True, text=True)
        m = re.findall(r'INITED cov: (\d+)', r.stderr)
        return int(m[-1]) if m else 0
shutil.rmtree(out, ignore_errors=True); os.makedirs(out)
names = sorted(os.listdir(seeds_from))
for n in names:
    if not re.fullmatch(r'[0-9a-f]{40}', n):
        shutil.copy(os.path.join(seeds_from, n), out)
cands = [os.path.join(candidates_dir, n) for n in os.listdir(candidates_dir) if re.fullmatch(r'[0-9a-f]{40}', n)]
scored = sorted(((cov(c), -os.path.getsize(c), c) for c in cands), reverse=True)
for score, _, c in scored:
    if len(os.listdir(out)) >= budget:
        break
    with tempfile.TemporaryDirectory() as one:
        shutil.copy(c, one)
        before = len(os.listdir(out))
        subprocess.run([binary, '-merge=1', '-use_counters=0', out, one], capture_output=True)
        if len(os.listdir(out)) > before:
            print('kept', os.path.basename(c), score, os.path.getsize(c))
print(len(os.listdir(out)), 'files')
