#!/usr/bin/env bash
# The committed study results (results/) come from this: the `short` grid, the paper protocol on MNIST
# (seed 0), then the hybrid with a per-pixel reconstruction weight (studies/hybrid-per-pixel.json, then
# studies/hybrid-per-pixel-cifar10.json).
# Resumable: rerun it after an interruption, in this or a later session (finished cells are skipped,
# interrupted ones resume from their finished methods). Results and logs go to $STUDY_OUT (default
# results/; an absolute path lets a separate worktree, safe from edits, write into this checkout).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${STUDY_OUT:-results}
jobs=${STUDY_JOBS:-2}
cifar=${CIFAR_DIR:-../shared/data/cifar-10}
node bin/svdd.js study run short --out "$out"/short --jobs "$jobs" --data-dir "cifar10=$cifar" >> "$out"/short.log 2>&1
node bin/svdd.js study run table1 --out "$out"/table1 --jobs "$jobs" --datasets mnist --seeds 0 >> "$out"/table1.log 2>&1
node bin/svdd.js study run studies/hybrid-per-pixel.json --out "$out"/hybrid-per-pixel --jobs "$jobs" >> "$out"/hybrid-per-pixel.log 2>&1
node bin/svdd.js study run studies/hybrid-per-pixel-cifar10.json --out "$out"/hybrid-per-pixel-cifar10 --jobs "$jobs" --data-dir "cifar10=$cifar" >> "$out"/hybrid-per-pixel-cifar10.log 2>&1
