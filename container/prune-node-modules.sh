#!/bin/sh
# Removes from a production node_modules what Node.js on Linux never loads, and keeps the
# native binaries of the architecture being built (x64 or arm64):
# - onnxruntime-node's binaries for other platforms and architectures (darwin, win32 and the
#   other Linux one: ~240 MB). The package ships them all; npm cannot choose;
# - sharp's native packages (@img/sharp-*) for another platform or architecture, if any:
#   npm installs only the running architecture's optional packages, but a lockfile
#   installed with --cpu/--os flags may bring others;
# - source maps (*.map): ~200 MB, mostly TensorFlow.js;
# - TypeScript declarations (@types/*, *.d.ts): dependencies of dependencies (tfjs,
#   protobufjs) list @types packages as their own dependencies, so --omit=dev keeps them;
# - TensorFlow.js browser bundles (UMD, ES2017, FESM, minified) and WeChat "miniprogram"
#   builds. Node resolves each @tensorflow package through "main" (dist/tf*.node.js) and
#   the dist/ ES modules, both kept; the .wasm files and their workers are kept too.
# It refuses to prune when the kept architecture's binaries are missing: an image without
# them would only fail when the function starts.
#
# Usage: prune-node-modules.sh [--arch x64|arm64] [node_modules]   (POSIX sh: it runs in
# the build stage). The architecture is the build stage's own (`uname -m`: a cross build
# runs the stage emulated, so it names the target); TARGETARCH, which BuildKit and buildah
# set, must agree with it. --arch overrides both, to prepare another architecture's
# node_modules on this machine (scripts/test-arm64.sh).
set -eu

die() { echo "prune-node-modules: $*" >&2; exit 1; }

# node_arch NAME: Node.js's name for an architecture (x64, arm64), from uname -m or Docker's.
node_arch() {
  case $1 in
    x86_64 | amd64 | x64) echo x64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) return 1 ;;
  esac
}

arch=""
if [ "${1:-}" = --arch ]; then
  arch=$(node_arch "${2:-}") || die "--arch takes x64 or arm64, got '${2:-}'"
  shift 2
else
  arch=$(node_arch "$(uname -m)") || die "unsupported architecture $(uname -m): the image is built for x64 and arm64"
  if [ -n "${TARGETARCH:-}" ]; then
    target=$(node_arch "$TARGETARCH") || die "unsupported TARGETARCH=$TARGETARCH: the image is built for amd64 and arm64"
    [ "$target" = "$arch" ] || die "TARGETARCH=$TARGETARCH, but this build stage runs on $(uname -m): npm installed $arch binaries; build on (or emulate) $TARGETARCH"
  fi
fi

dir="${1:-node_modules}"
[ -d "$dir" ] || die "no directory $dir"
before=$(du -sm "$dir" | cut -f1)

ort="$dir/onnxruntime-node/bin/napi-v6"
if [ -d "$ort" ]; then
  [ -f "$ort/linux/$arch/onnxruntime_binding.node" ] ||
    die "$ort/linux/$arch is missing; refusing to prune"
  find "$ort" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
  find "$ort/linux" -mindepth 1 -maxdepth 1 ! -name "$arch" -exec rm -rf {} +
fi

if [ -d "$dir/sharp" ]; then
  for pkg in "sharp-linux-$arch" "sharp-libvips-linux-$arch"; do
    [ -d "$dir/@img/$pkg" ] || die "sharp's @img/$pkg is missing; refusing to prune"
  done
  find "$dir/@img" -mindepth 1 -maxdepth 1 -name 'sharp-*' \
    ! -name "sharp-linux-$arch" ! -name "sharp-libvips-linux-$arch" -exec rm -rf {} +
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
echo "prune-node-modules: $dir ${before} MB -> ${after} MB, linux-$arch binaries kept"
