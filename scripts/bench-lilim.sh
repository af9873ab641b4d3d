#!/usr/bin/env bash
# Runs the solver on every Li & Lim instance of a directory, verifies each
# solution with the shared verifier, and prints a markdown table against BKS.
#
# usage: scripts/bench-lilim.sh [DIR] [SECONDS] [SEED]
#   DIR      default $SHARED/bench/lilim/100
#   SECONDS  time per instance, default 10
# env: SOLVER  command prefix taking `solve FILE --time S --seed N --out ROUTES`
#              and printing one JSON line (default: target/release/o2ohub)
#      SHARED  folder holding bench/ (default ../shared next to the project)
#      OUT     where route files go (default a temp dir)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${SHARED:-$(cd "$here/.." && pwd)/shared}"
dir="${1:-$SHARED/bench/lilim/100}"
secs="${2:-10}"
seed="${3:-1}"
bks="$SHARED/bench/lilim/bks.csv"
verify="$SHARED/bench/tools/verify_bks.py"
if [[ -z "${SOLVER:-}" ]]; then
  (cd "$here" && cargo build --release --quiet)
  SOLVER="$here/target/release/o2ohub"
fi
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"

echo "| instance | vehicles | BKS vehicles | delta | distance | BKS distance | gap % | seconds | verifier |"
echo "|---|---|---|---|---|---|---|---|---|"
rows="$out/rows.tsv"
: > "$rows"
for f in "$dir"/*.txt; do
  name="$(basename "$f" .txt)"
  sol="$out/$name.sol"
  json="$($SOLVER solve "$f" --time "$secs" --seed "$seed" --out "$sol")"
  ver="$(python3 "$verify" lilim "$f" "$sol")"
  line="$(grep "^$name," "$bks" || true)"
  python3 - "$json" "$ver" "$line" "$rows" <<'PY'
import json, sys
j = json.loads(sys.argv[1]); ver = sys.argv[2].split(None, 2); bks = sys.argv[3].split(",")
bv, bd = (int(bks[1]), float(bks[2])) if len(bks) > 2 else (None, None)
v, d = int(ver[0]), float(ver[1])
ok = ver[2] == "OK" and j["feasible"] and v == j["vehicles"] and abs(d - j["distance"]) < 1e-3
delta = v - bv if bv is not None else ""
gap = f"{100 * (d - bd) / bd:.2f}" if bv is not None and v == bv else ""
print(f"| {j['instance']} | {v} | {bv} | {delta:+d} | {d:.2f} | {bd:.2f} | {gap} | {j['seconds']:.2f} | {'OK' if ok else 'FAIL ' + ver[2]} |" if bv is not None else f"| {j['instance']} | {v} | - | - | {d:.2f} | - | - | {j['seconds']:.2f} | {'OK' if ok else 'FAIL'} |")
open(sys.argv[4], "a").write(f"{j['instance']}\t{v}\t{bv}\t{d}\t{bd}\t{j['seconds']}\t{int(ok)}\n")
PY
done
python3 - "$rows" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
at = [r for r in rows if r[2] != "None" and int(r[1]) == int(r[2])]
gaps = [100 * (float(r[3]) - float(r[4])) / float(r[4]) for r in at]
veh = sum(int(r[1]) for r in rows); bveh = sum(int(r[2]) for r in rows if r[2] != "None")
mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")
print()
print(f"**Summary**: BKS vehicle count on {len(at)}/{len(rows)} instances; mean gap on those {mean(gaps):.2f}%; "
      f"vehicles {veh} (BKS {bveh}); mean seconds {mean([float(r[5]) for r in rows]):.2f}; "
      f"all feasible: {'yes' if all(r[6] == '1' for r in rows) else 'no'}")
PY
