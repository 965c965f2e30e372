#!/usr/bin/env bash
# Runs the comparison experiments of the closing notes one after another, resumably: a run whose
# results.json exists is skipped; an interrupted one (directory without results.json) is redone.
#   bash scripts/experiments.sh [runs-dir]      (log: <runs-dir>/experiments.log)
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-runs/experiments}
mkdir -p "$RUNS"
run() {
  local name=$1; shift
  local dir="$RUNS/$name"
  if [ -f "$dir/results.json" ]; then echo "skip $name"; return; fi
  rm -rf "$dir"
  local t0=$(date +%s)
  node bin/svdd.js train --out "$dir" "$@" > "$RUNS/$name.stdout" 2>&1
  echo "$name rc=$? wall=$(( $(date +%s) - t0 ))s $(grep -o 'test AUROC [0-9.]*' "$dir/log.txt" 2>/dev/null)"
}
# Issue 4: MNIST, seed 0, 30 + 30 epochs (milestone 20), then the full protocol (150 + 150, milestone 50).
run mnist0-short  --dataset mnist --normal-class 0 --preset short --seed 0
run mnist3-short  --dataset mnist --normal-class 3 --preset short --seed 0
# Issue 5: hybrid and Mahalanobis / adaptive thresholds on MNIST class 0 (30 + 30).
run mnist0-adaptive   --dataset mnist --normal-class 0 --preset short --seed 0 --threshold adaptive --chi2
run mnist0-hybrid05   --dataset mnist --normal-class 0 --preset short --seed 0 --hybrid --mu2 0.5 --threshold adaptive
run mnist0-hybrid1    --dataset mnist --normal-class 0 --preset short --seed 0 --hybrid --mu2 1 --threshold adaptive
run mnist0-paper  --dataset mnist --normal-class 0 --preset paper --seed 0
run mnist3-paper  --dataset mnist --normal-class 3 --preset paper --seed 0
