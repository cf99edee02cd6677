#!/usr/bin/env bash
# npm run test:container: builds the Dockerfile with podman and runs the image with buildah,
# then checks it from outside: readiness, a classification of chelsea.png over HTTP, the
# UI command, a non-root user, and no writes outside /tmp.
#
# podman run fails in our CI sandbox (setrlimit), so the image runs with
# `buildah run --isolation=chroot`, which shares the host's network: the function's port is
# reachable on the host's loopback. Storage is vfs (no overlayfs here).
#
# Environment:
#   KLASSIFY_BASE_IMAGE      base image to build on (default: the official node image if
#                            it can be pulled, else the local base that
#                            scripts/build-base-image.sh assembles and caches)
#   KLASSIFY_MIRROR          data mirror: models/ and fixtures/images/ (default ../shared)
#   KLASSIFY_MODEL_MIRROR    TF.js model mirror (default $KLASSIFY_MIRROR/models if present,
#                            else the build downloads from the public URL)
#   KLASSIFY_FIXTURES_MIRROR folder holding chelsea.png (default $KLASSIFY_MIRROR/fixtures/images)
#   KLASSIFY_BUILD_CA        CA bundle for npm during the build (default $NODE_EXTRA_CA_CERTS,
#                            else /etc/ssl/certs/ca-certificates.crt)
#   KLASSIFY_TEST_PORT       first of three loopback ports to use (default 18080)
#   KLASSIFY_TEST_IMAGE      the image name to build (default localhost/klassify:test)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"

IMAGE="${KLASSIFY_TEST_IMAGE:-localhost/klassify:test}"
OFFICIAL_BASE="docker.io/library/node:$NODE_VERSION-bookworm-slim"
MIRROR_STAGE="$ROOT/.cache/model-mirror"
PORT_BASE="${KLASSIFY_TEST_PORT:-18080}"
CONTAINER=""
SERVER_PID=""
FAILED=0

pass() { printf 'PASS %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; FAILED=1; }
# expect DESCRIPTION CMD...: PASS when CMD succeeds, else FAIL.
expect() {
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

cleanup() {
  local status=$?
  if ((status != 0)) && [[ -z ${FINISHED:-} ]]; then
    printf 'FAIL test:container aborted (exit %d); see the output above\n' "$status"
  fi
  stop_server
  if [[ -n $CONTAINER ]]; then "${BUILDAH[@]}" rm "$CONTAINER" >/dev/null 2>&1 || true; fi
}

check_prerequisites() {
  [[ $(id -u) -eq 0 ]] || die "run as root: rootful podman/buildah with vfs storage"
  ensure_commands podman:podman buildah:buildah curl:curl
  command -v node >/dev/null || die "node is needed on the host to read the JSON replies"
}

choose_base_image() {
  if [[ -n ${KLASSIFY_BASE_IMAGE:-} ]]; then
    BASE="$KLASSIFY_BASE_IMAGE"
  elif timeout 60 "${PODMAN[@]}" pull -q "$OFFICIAL_BASE" >/dev/null 2>&1; then
    BASE="$OFFICIAL_BASE"
  else
    log "cannot pull $OFFICIAL_BASE; using the local base (built if missing or stale)"
    "$ROOT/scripts/build-base-image.sh"
    BASE="$BASE_IMAGE_LOCAL"
  fi
  log "base image: $BASE"
}

# The mirror goes into the build context so the build stage can verify and convert it.
stage_model_mirror() {
  local mirror="${KLASSIFY_MODEL_MIRROR:-${KLASSIFY_MIRROR:-$ROOT/../shared}/models}"
  rm -rf "$MIRROR_STAGE"
  MIRROR_ARG=""
  if [[ -d $mirror ]]; then
    mkdir -p "$MIRROR_STAGE"
    cp -R "$mirror/." "$MIRROR_STAGE/"
    MIRROR_ARG=".cache/model-mirror"
    log "model mirror: $mirror (staged at $MIRROR_ARG)"
  else
    log "no model mirror; the build downloads the model"
  fi
}

# Behind a TLS-intercepting proxy (as in our CI), npm in the build needs the proxy's CA.
# It is mounted for the build only, never copied into a layer.
build_ca_args() {
  # The host's system bundle holds the proxy's CA where the host trusts one; on other
  # machines it only repeats public CAs, which Node.js adds to its own set harmlessly.
  local ca="${KLASSIFY_BUILD_CA:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}"
  CA_ARGS=()
  if [[ -n $ca && -f $ca ]]; then
    CA_ARGS=(--volume "$ca:/run/klassify-build-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/klassify-build-ca.crt)
    log "build CA bundle: $ca"
  fi
}

build_image() {
  local started=$SECONDS
  build_ca_args
  # Replace, not accumulate: under vfs every old image costs its full size on disk.
  "${PODMAN[@]}" rmi -f "$IMAGE" >/dev/null 2>&1 || true
  "${PODMAN[@]}" build --isolation=chroot --layers=false \
    --build-arg "BASE_IMAGE=$BASE" \
    --build-arg "KLASSIFY_MODEL_MIRROR=$MIRROR_ARG" \
    "${CA_ARGS[@]}" \
    -t "$IMAGE" "$ROOT"
  pass "image built in $((SECONDS - started)) s"
  # Old tags and a replaced base leave dangling images; under vfs each is a full copy.
  "${PODMAN[@]}" image prune -f >/dev/null
}

report_size() {
  local size base_size mnt
  size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
  base_size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$BASE")
  printf 'image %s: %d MB (base %s: %d MB)\n' "$IMAGE" $((size / 1000000)) "$BASE" $((base_size / 1000000))
  mnt=$("${BUILDAH[@]}" mount "$CONTAINER")
  du -sh "$mnt/app/node_modules" "$mnt/app/model" "$mnt/app/dist" "$mnt/usr/local/bin/node" 2>/dev/null |
    sed "s|$mnt||"
  # awk, not head: head closing the pipe early would fail the pipeline under pipefail.
  du -sm "$mnt"/app/node_modules/* "$mnt"/app/node_modules/@*/* 2>/dev/null | sort -rn |
    awk -v mnt="$mnt" 'NR <= 8 { sub(mnt, ""); print $1 " MB\t" $2 }'
  "${BUILDAH[@]}" umount "$CONTAINER" >/dev/null
}

check_image_config() {
  local user cmd
  user=$("${PODMAN[@]}" image inspect --format '{{.Config.User}}' "$IMAGE")
  cmd=$("${PODMAN[@]}" image inspect --format '{{json .Config.Cmd}}' "$IMAGE")
  expect "image user is 1000:1000 (got '$user')" test "$user" = 1000:1000
  expect "default command is the classify function (got $cmd)" test "$cmd" = '["node","dist/classify/main.js"]'
}

# Production dependencies only: no TypeScript declarations, compilers or bundlers, which
# Node never loads (some production packages list @types/* as their own dependencies).
check_no_dev_packages() {
  local mnt found
  mnt=$("${BUILDAH[@]}" mount "$CONTAINER")
  found=$(cd "$mnt/app/node_modules" && find . -maxdepth 3 -name package.json \( -path './@types/*' -o -path './typescript/*' \
    -o -path './esbuild/*' -o -path './@esbuild/*' -o -path './tsx/*' -o -path './uvu/*' -o -path './playwright-core/*' \) |
    sed 's|^\./||; s|/package.json$||' | tr '\n' ' ')
  "${BUILDAH[@]}" umount "$CONTAINER" >/dev/null
  expect "no dev-only packages in node_modules${found:+; found: $found}" test -z "$found"
}

check_non_root() {
  local uid
  uid=$("${BUILDAH[@]}" run --isolation=chroot "$CONTAINER" -- id -u)
  expect "runs as a non-root user (uid $uid)" test "$uid" != 0
}

# start_server PORT CMD... runs CMD in the container in the background, as the image user.
start_server() {
  local port=$1; shift
  "${BUILDAH[@]}" run --isolation=chroot --env "PORT=$port" "${ENV_ARGS[@]}" "$CONTAINER" -- "$@" \
    >"$LOG_DIR/server-$port.log" 2>&1 &
  SERVER_PID=$!
}

stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# wait_ready PORT: polls /health/readiness for up to 120 s; prints the time it took.
wait_ready() {
  local port=$1 started=$SECONDS
  while ((SECONDS - started < 120)); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/health/readiness" 2>/dev/null; then
      pass "ready on :$port after $((SECONDS - started)) s"
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.5
  done
  fail "not ready on :$port; server log:"
  tail -20 "$LOG_DIR/server-$port.log"
  return 1
}

# classify_cat PORT LABEL: POSTs chelsea.png and expects a cat among the top predictions.
classify_cat() {
  local port=$1 what=$2 image reply top
  image="${KLASSIFY_FIXTURES_MIRROR:-${KLASSIFY_MIRROR:-$ROOT/../shared}/fixtures/images}/chelsea.png"
  [[ -f $image ]] || { fail "fixture $image not found (set KLASSIFY_MIRROR or KLASSIFY_FIXTURES_MIRROR)"; return 1; }
  reply=$(curl -fsS -H 'Content-Type: image/png' --data-binary "@$image" "http://127.0.0.1:$port/classify") ||
    { fail "$what: POST /classify failed"; return 1; }
  # shellcheck disable=SC2016 # JavaScript, not shell
  if top=$(node -e '
    const p = JSON.parse(process.argv[1]).predictions[0];
    console.log(`${p.label} (${p.probability.toFixed(2)})`);
    process.exit(/cat/i.test(p.label) ? 0 : 2);' "$reply"); then
    pass "$what: chelsea.png -> $top"
  else
    fail "$what: chelsea.png -> ${top:-unreadable reply: $reply}"
  fi
}

check_function() {
  local port=$((PORT_BASE))
  ENV_ARGS=(--env KLASSIFY_WORKERS=2)
  start_server "$port" node dist/classify/main.js
  if wait_ready "$port"; then classify_cat "$port" "onnx engine"; fi
  stop_server
  port=$((PORT_BASE + 1))
  ENV_ARGS=(--env KLASSIFY_WORKERS=1 --env KLASSIFY_ENGINE=tfjs)
  start_server "$port" node dist/classify/main.js
  if wait_ready "$port"; then classify_cat "$port" "tfjs engine"; fi
  stop_server
}

check_ui() {
  local port=$((PORT_BASE + 2))
  ENV_ARGS=(--env CLASSIFY_URL="http://127.0.0.1:$PORT_BASE")
  start_server "$port" node dist/ui/server.js
  if wait_ready "$port"; then
    expect "UI serves its page" bash -c "curl -fsS http://127.0.0.1:$port/ | grep -qi '<html'"
  fi
  stop_server
}

# Anything the servers wrote outside /tmp would break on a read-only root filesystem.
# buildah itself manages /etc/hosts, /etc/resolv.conf and /run, so those are not counted.
check_no_writes() {
  local mnt written
  mnt=$("${BUILDAH[@]}" mount "$CONTAINER")
  written=$(find "$mnt" -xdev -newer "$MARKER" \
    ! -path "$mnt/tmp" ! -path "$mnt/tmp/*" ! -path "$mnt/run" ! -path "$mnt/run/*" \
    ! -path "$mnt/dev/*" ! -path "$mnt/proc/*" ! -path "$mnt/sys/*" \
    ! -path "$mnt/etc/hosts" ! -path "$mnt/etc/resolv.conf" ! -path "$mnt/etc/hostname" \
    ! -path "$mnt" ! -path "$mnt/etc" ! -path "$mnt/dev" ! -path "$mnt/proc" ! -path "$mnt/sys" | sed "s|$mnt||")
  "${BUILDAH[@]}" umount "$CONTAINER" >/dev/null
  expect "no writes outside /tmp (read-only root works)${written:+; written: $written}" test -z "$written"
}

# The native binaries of the build's own architecture only (container/prune-node-modules.sh):
# ONNX Runtime for linux/<arch> and sharp's @img packages for linux-<arch>.
check_architecture() {
  local mnt arch ort img
  case $(uname -m) in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
  mnt=$("${BUILDAH[@]}" mount "$CONTAINER")
  ort=$(cd "$mnt/app/node_modules/onnxruntime-node/bin/napi-v6" && find . -mindepth 2 -maxdepth 2 -type d | sed 's|^\./||' | sort | tr '\n' ' ')
  img=$(cd "$mnt/app/node_modules/@img" && find . -mindepth 1 -maxdepth 1 -name 'sharp-*' | sed 's|^\./||' | sort | tr '\n' ' ')
  "${BUILDAH[@]}" umount "$CONTAINER" >/dev/null
  expect "ONNX Runtime for linux/$arch only (found: $ort)" test "$ort" = "linux/$arch "
  expect "sharp for linux-$arch only (found: $img)" test "$img" = "sharp-libvips-linux-$arch sharp-linux-$arch "
}

main() {
  local started=$SECONDS
  trap cleanup EXIT
  LOG_DIR="$(mktemp -d)"
  MARKER="$LOG_DIR/marker"
  check_prerequisites
  choose_base_image
  stage_model_mirror
  build_image
  CONTAINER=$("${BUILDAH[@]}" from --pull-never "$IMAGE")
  report_size
  check_image_config
  check_no_dev_packages
  check_architecture
  check_non_root
  touch "$MARKER"
  check_function
  check_ui
  check_no_writes
  FINISHED=1
  if ((FAILED)); then
    printf 'FAIL test:container (%d s); logs in %s\n' $((SECONDS - started)) "$LOG_DIR"
    exit 1
  fi
  printf 'PASS test:container (%d s)\n' $((SECONDS - started))
}

main "$@"
