#!/usr/bin/env bash
# Runs on the GPU machine (no network, no npm, no Vulkan loader): unpacks bench/gpu/bundle/
# (made by pack.sh), installs the Vulkan loader, points it at NVIDIA's ICD and runs
# measure.mjs, then (when the bundle has server.tar.xz and time is left) the real HTTP server
# with the batcher under `hey` at concurrency 1, 16 and 64, first on webgpu, then on cpu.
# Results land in $OUT (the device tool brings that folder back, at most 8 files):
# gpu-measure.json, gpu-measure.md, env.txt (what the machine had), measure.log (stderr,
# Vulkan loader messages included), hey.txt, server.log and metrics.txt.
#
# Usage (repo root): bash bench/gpu/run-on-gpu.sh
#   GL_ROOT=/        where the .debs are unpacked. `/` (the default, as root) then ldconfig is
#                    the recipe known to work on these machines; any other directory is used
#                    through LD_LIBRARY_PATH instead, which also lets this script run unprivileged.
#   MEASURE_TIMEOUT  seconds for measure.mjs (default 360)
#   MEASURE_ARGS     extra arguments for measure.mjs (e.g. "--runs 50")
#   SERVER=0         skip the HTTP part
#   LOAD_SECONDS     seconds per hey run (default 6)
#   BUDGET_S         no server run starts after this many seconds of the script (default 200)
#   CPU_WORKERS      inference workers for the cpu server run (default: half the cores, the
#                    other half left to decoding and to hey)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUNDLE=$ROOT/bench/gpu/bundle
WORK=${WORK:-/tmp/klassify-gpu}
OUT=${OUT:-$WORK/out}
GL_ROOT=${GL_ROOT:-$([[ $(id -u) == 0 ]] && echo / || echo "$WORK/gl")}
MEASURE_TIMEOUT=${MEASURE_TIMEOUT:-360}
LOAD_SECONDS=${LOAD_SECONDS:-6}
BUDGET_S=${BUDGET_S:-200}
PORT=18080
NVIDIA_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
NVIDIA_EGL=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json

log() { printf '[gpu] %s\n' "$*" >&2; }

# xz, or Python's lzma where the xz tool is missing.
unxz_to() {
  if command -v xz >/dev/null; then
    xz -dc "$1" >"$2"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  fi
}

unpack() {
  local t0=$SECONDS
  mkdir -p "$WORK" "$OUT"
  unxz_to "$BUNDLE/node.xz" "$WORK/node"
  chmod +x "$WORK/node"
  unxz_to "$BUNDLE/ort.tar.xz" "$WORK/ort.tar"
  tar -xf "$WORK/ort.tar" -C "$WORK" && rm "$WORK/ort.tar"
  unxz_to "$BUNDLE/model.onnx.xz" "$WORK/model.onnx"
  log "unpacked in $((SECONDS - t0)) s"
}

install_vulkan_loader() {
  local deb
  mkdir -p "$GL_ROOT"
  for deb in "$BUNDLE"/debs/*.deb; do dpkg -x "$deb" "$GL_ROOT"; done
  if [[ $GL_ROOT == / ]]; then
    ldconfig
  else
    export LD_LIBRARY_PATH=$GL_ROOT/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  fi
  # The driver's folder is mounted read-only and the loader does not look there by itself.
  if [[ -f $NVIDIA_ICD ]]; then export VK_DRIVER_FILES=$NVIDIA_ICD; fi
  if [[ -f $NVIDIA_EGL ]]; then export __EGL_VENDOR_LIBRARY_FILENAMES=$NVIDIA_EGL; fi
  # The loader says why it finds no driver, if it finds none.
  export VK_LOADER_DEBUG=${VK_LOADER_DEBUG:-error,warn}
}

record_env() {
  {
    echo "## date"; date -u +%FT%TZ
    echo "## uname"; uname -a
    echo "## nvidia-smi -L"; nvidia-smi -L 2>&1 || true
    echo "## nvidia-smi"; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total,power.limit --format=csv 2>&1 || true
    echo "## lscpu"; lscpu 2>&1 | grep -E 'Model name|^CPU\(s\)|Thread|Socket|MHz' || true
    echo "## nproc / loadavg"; nproc; cat /proc/loadavg
    echo "## libvulkan"; ldconfig -p 2>/dev/null | grep -E 'libvulkan|libGLX_nvidia|libEGL_nvidia' || true
    echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
    echo "## ICD"; echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"; cat "$NVIDIA_ICD" 2>&1 || true
    echo "## bundle"; cat "$BUNDLE/MANIFEST.txt"
  } >"$OUT/env.txt" 2>&1
}

measure() {
  local rc=0
  # shellcheck disable=SC2086 # MEASURE_ARGS is split into arguments on purpose
  timeout "$MEASURE_TIMEOUT" "$WORK/node" "$ROOT/bench/gpu/measure.mjs" \
    --ort "$WORK/node_modules/onnxruntime-node" --model "$WORK/model.onnx" \
    --inputs "$BUNDLE/inputs.bin" --out "$OUT" ${MEASURE_ARGS:-} 2> >(tee "$OUT/measure.log" >&2) || rc=$?
  log "measure.mjs exited $rc"
  return "$rc"
}

unpack_server() {
  unxz_to "$BUNDLE/server.tar.xz" "$WORK/server.tar"
  tar -xf "$WORK/server.tar" -C "$WORK" && rm "$WORK/server.tar"
  # The server finds the converted model by its cache-key name.
  mkdir -p "$WORK/model"
  cp "$WORK/model.onnx" "$WORK/model/$(cat "$BUNDLE/model.name")"
}

# Ready, or 1 as soon as the server has exited (a webgpu start-up failure) or after 45 s.
wait_ready() {
  local pid=$1 end=$((SECONDS + 45))
  while ((SECONDS < end)); do
    kill -0 "$pid" 2>/dev/null || return 1
    "$WORK/node" -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
      "http://127.0.0.1:$PORT/health/readiness" && return 0
    sleep 0.5
  done
  return 1
}

# One server (provider $1, extra env after it) under hey at concurrency 1, 16, 64.
serve_and_load() {
  local provider=$1 pid c t0=$SECONDS
  shift
  if ((SECONDS > BUDGET_S)); then log "skipping the $provider server: over the ${BUDGET_S} s budget"; return 0; fi
  echo "===== server provider=$provider $*" >>"$OUT/server.log"
  env PORT=$PORT HOST=127.0.0.1 NODE_ENV=production KLASSIFY_PROVIDER="$provider" KLASSIFY_PROVIDER_FALLBACK=false \
    KLASSIFY_MODEL_CACHE="$WORK/model" KLASSIFY_MODEL_FETCH=never KLASSIFY_QUEUE_SIZE=256 "$@" \
    "$WORK/node" "$WORK/app/main.js" >>"$OUT/server.log" 2>&1 &
  pid=$!
  if wait_ready "$pid"; then
    log "$provider server ready in $((SECONDS - t0)) s"
    echo "===== $provider: ready after $((SECONDS - t0)) s ($*)" >>"$OUT/hey.txt"
    for c in 1 16 64; do
      echo "===== $provider concurrency $c, ${LOAD_SECONDS} s" >>"$OUT/hey.txt"
      "$WORK/hey" -z "${LOAD_SECONDS}s" -c "$c" -m POST -T image/jpeg -D "$WORK/load.jpg" \
        "http://127.0.0.1:$PORT/classify?topk=1" >>"$OUT/hey.txt" 2>&1 || true
    done
    { echo "===== $provider"; "$WORK/node" -e 'fetch(process.argv[1]).then((r) => r.text()).then((t) => process.stdout.write(t))' \
        "http://127.0.0.1:$PORT/metrics" | grep -E '^klassify_' | grep -v '_bucket' || true; } >>"$OUT/metrics.txt"
  else
    log "$provider server did not become ready (see server.log)"
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

main() {
  [[ -f $BUNDLE/MANIFEST.txt ]] || { log "no bundle at $BUNDLE: run bench/gpu/pack.sh and carry bench/gpu/bundle"; exit 1; }
  unpack
  install_vulkan_loader
  record_env
  local rc=0
  measure || rc=$?
  if [[ ${SERVER:-1} == 1 && -f $BUNDLE/server.tar.xz ]]; then
    unpack_server
    serve_and_load webgpu
    serve_and_load cpu KLASSIFY_WORKERS="${CPU_WORKERS:-$(($(nproc) / 2))}"
  fi
  return "$rc"
}

main "$@"
