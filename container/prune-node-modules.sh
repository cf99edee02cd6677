#!/bin/sh
# Removes from a production node_modules what Node.js on linux-x64 never loads:
# - onnxruntime-node's binaries for other platforms (darwin, win32, linux/arm64): ~240 MB;
# - source maps (*.map): ~200 MB, mostly TensorFlow.js;
# - TypeScript declarations (@types/*, *.d.ts): dependencies of dependencies (tfjs,
#   protobufjs) list @types packages as their own dependencies, so --omit=dev keeps them;
# - TensorFlow.js browser bundles (UMD, ES2017, FESM, minified) and WeChat "miniprogram"
#   builds. Node resolves each @tensorflow package through "main" (dist/tf*.node.js) and
#   the dist/ ES modules, both kept; the .wasm files and their workers are kept too.
# Usage: prune-node-modules.sh [node_modules]   (POSIX sh: it runs in the build stage)
set -eu

dir="${1:-node_modules}"
[ -d "$dir" ] || { echo "prune-node-modules: no directory $dir" >&2; exit 1; }
before=$(du -sm "$dir" | cut -f1)

ort="$dir/onnxruntime-node/bin/napi-v6"
if [ -d "$ort" ]; then
  [ -f "$ort/linux/x64/onnxruntime_binding.node" ] ||
    { echo "prune-node-modules: $ort/linux/x64 is missing; refusing to prune" >&2; exit 1; }
  find "$ort" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
  find "$ort/linux" -mindepth 1 -maxdepth 1 ! -name x64 -exec rm -rf {} +
fi

find "$dir" -type f -name '*.map' -delete
rm -rf "$dir/@types"
# npm leaves an empty folder behind for each scope of the omitted dev dependencies.
find "$dir" -mindepth 1 -maxdepth 1 -type d -empty -delete
find "$dir" -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete
find "$dir" -type d -name miniprogram -path '*/@tensorflow/*' -prune -exec rm -rf {} +
for dist in "$dir"/@tensorflow/*/dist; do
  [ -d "$dist" ] || continue
  find "$dist" -maxdepth 1 -type f \( -name 'tf.js' -o -name 'tf-*.js' -o -name 'tf.*.js' \) \
    ! -name '*.node.js' -delete
done

after=$(du -sm "$dir" | cut -f1)
echo "prune-node-modules: $dir ${before} MB -> ${after} MB"
