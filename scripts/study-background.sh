#!/usr/bin/env bash
# The committed study results (results/) come from this: the hybrid with a per-pixel reconstruction
# weight (studies/hybrid-per-pixel.json), the `short` grid, then the paper protocol on MNIST (seed 0).
# Resumable: rerun it after an interruption, in this or a later session (finished cells are skipped,
# interrupted ones resume from their finished methods). Logs go to results/*.log.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=${STUDY_JOBS:-2}
cifar=${CIFAR_DIR:-../shared/data/cifar-10}
node bin/svdd.js study run studies/hybrid-per-pixel.json --out results/hybrid-per-pixel --jobs "$jobs" >> results/hybrid-per-pixel.log 2>&1
node bin/svdd.js study run short --out results/short --jobs "$jobs" --data-dir "cifar10=$cifar" >> results/short.log 2>&1
node bin/svdd.js study run table1 --out results/table1 --jobs "$jobs" --datasets mnist --seeds 0 >> results/table1.log 2>&1
