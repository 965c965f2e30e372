#!/usr/bin/env bash
# Parity + speed of the gpujs kernels (src/tensor/kernels/gpujs) against the `ts` reference in
# every gpu.js mode this machine can run: webgpu, headlessgl, webasm, cpu. Per mode: kernel parity,
# one training step through the whole engine (forward, backward, Adam) against the ts backend,
# and a small benchmark. webgpu runs through the worker bridge (gpu.js in a worker thread that
# awaits each kernel; the engine blocks on it), and its kernels are also checked awaited in-thread.
# Without a GPU both GPU paths run on software renderers (Mesa lavapipe / llvmpipe): correct, slow.
#
# Usage (from the repository root):
#   bash scripts/gpu-parity.sh                 # set up software WebGPU (~5 s) and run every mode it can
#   GPUJS_BUILD_GL=1 bash scripts/gpu-parity.sh    # also build headless-gl (apt packages + ~4 min
#                                                  # ANGLE build, once) and run the GL mode under xvfb-run
#   bash scripts/gpu-parity.sh webgpu cpu      # only these modes
#   GPUJS_BENCH_N=256,1024 bash scripts/gpu-parity.sh   # gemm benchmark sizes
#   GPUJS_NO_SOFTWARE_WEBGPU=1 ...             # keep the machine's own Vulkan driver (real GPU)
#   SVDD_GPUJS_WORKER=1 bash scripts/gpu-parity.sh cpu  # the synchronous modes through the worker bridge too
# Everything is installed under .software-webgpu/ (git-ignored), nothing into node_modules:
#   .software-webgpu/node : npm `webgpu@0.6.2` (Dawn; gpu.js's pinned 0.2.9 needs glibc 2.38)
#   .software-webgpu/gl   : npm `gl@8.1.6` (headless-gl), found by gpu.js through NODE_PATH
#   .software-webgpu/root : Mesa lavapipe, via ../shared/gpu/software-webgpu.sh
# Exit status: non-zero if any parity check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.software-webgpu
shared=${GPU_SHARED_DIR:-../shared/gpu}

if [ -z "${GPUJS_NO_SOFTWARE_WEBGPU:-}" ] && [ -f "$shared/software-webgpu.sh" ]; then
  eval "$(bash "$shared/software-webgpu.sh" "$tools")"
fi
if [ ! -d "$tools/node/node_modules/webgpu" ]; then
  mkdir -p "$tools/node"
  [ -f "$tools/node/package.json" ] || echo '{"name":"gpujs-parity-webgpu","private":true}' > "$tools/node/package.json"
  (cd "$tools/node" && npm install --no-save --no-audit --no-fund webgpu@0.6.2 >/dev/null 2>&1) \
    || echo "(could not install webgpu@0.6.2: the webgpu mode will be skipped)"
fi
export GPUJS_WEBGPU_DIR="$PWD/$tools/node"

run=(npx tsx scripts/gpu-parity.ts "$@")
if [ -n "${GPUJS_BUILD_GL:-}" ] && [ ! -f "$tools/gl/node_modules/gl/build/Release/webgl.node" ]; then
  apt-get install -y libxi-dev libglew-dev libx11-dev libxext-dev xvfb xauth pkg-config >"$tools/apt-gl.log" 2>&1 || true
  mkdir -p "$tools/gl"
  [ -f "$tools/gl/package.json" ] || echo '{"name":"gpujs-parity-gl","private":true}' > "$tools/gl/package.json"
  # --foreground-scripts runs gl's node-gyp build (npm 11 otherwise may skip unapproved install scripts).
  (cd "$tools/gl" && npm install --no-save --no-audit --no-fund --foreground-scripts gl@8.1.6 >"$PWD/npm-gl.log" 2>&1) \
    || echo "(headless-gl build failed: see $tools/gl/npm-gl.log)"
fi
if [ -f "$tools/gl/node_modules/gl/build/Release/webgl.node" ]; then
  export NODE_PATH="$PWD/$tools/gl/node_modules${NODE_PATH:+:$NODE_PATH}"
  # A GL context needs an X display; Xvfb's is software (llvmpipe).
  if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null; then run=(xvfb-run -a "${run[@]}"); fi
fi
# Dawn prints two harmless "artificially reduced" limit warnings per device; drop them.
set +e
"${run[@]}" 2>&1 | grep -v '^Warning: max.*artificially reduced'
status=${PIPESTATUS[0]}
exit "$status"
