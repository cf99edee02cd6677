#!/usr/bin/env bash
# Shows that a code-only change produces only a new code layer: builds the Dockerfile twice
# with podman (layer cache on), the second time with one line added to the function's
# source, and compares the two images' layer digests (podman image inspect .RootFS.Layers).
# Every layer but dist/ must be identical. Runs on a copy of the tracked files, so the
# working tree is never touched. Needs root (rootful podman, vfs storage) and the network
# for npm, or a warm npm cache.
#
# Environment: KLASSIFY_BASE_IMAGE (default the local base from build-base-image.sh),
#   KLASSIFY_MIRROR or KLASSIFY_MODEL_MIRROR (as test-container), KLASSIFY_BUILD_CA (as test-container).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"

IMAGE="localhost/klassify-layer-check"
CHANGED_FILE="functions/classify/src/main.ts"
WORK=""

cleanup() {
  if [[ -n $WORK ]]; then rm -rf "$WORK"; fi
  "${PODMAN[@]}" rmi -f "$IMAGE:first" "$IMAGE:second" >/dev/null 2>&1 || true
}

# A copy of the tracked files plus the staged model mirror: the build context.
make_context() {
  WORK=$(mktemp -d)
  git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 cp --parents -t "$WORK")
  local mirror="${KLASSIFY_MODEL_MIRROR:-${KLASSIFY_MIRROR:-$ROOT/../shared}/models}"
  MIRROR_ARG=()
  if [[ -d $mirror ]]; then
    mkdir -p "$WORK/.cache/model-mirror"
    cp -R "$mirror/." "$WORK/.cache/model-mirror/"
    MIRROR_ARG=(--build-arg KLASSIFY_MODEL_MIRROR=.cache/model-mirror)
  fi
}

build() {
  local tag=$1 started=$SECONDS ca="${KLASSIFY_BUILD_CA:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}" ca_args=()
  if [[ -f $ca ]]; then ca_args=(--volume "$ca:/run/klassify-build-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/klassify-build-ca.crt); fi
  "${PODMAN[@]}" build --isolation=chroot --layers=true -q \
    --build-arg "BASE_IMAGE=${KLASSIFY_BASE_IMAGE:-$BASE_IMAGE_LOCAL}" "${MIRROR_ARG[@]}" "${ca_args[@]}" \
    -t "$IMAGE:$tag" "$WORK" >/dev/null
  log "built $IMAGE:$tag in $((SECONDS - started)) s"
}

layers() {
  "${PODMAN[@]}" image inspect --format '{{range .RootFS.Layers}}{{println .}}{{end}}' "$IMAGE:$1" | sed '/^$/d'
}

main() {
  [[ $(id -u) -eq 0 ]] || die "run as root: rootful podman with vfs storage"
  trap cleanup EXIT
  make_context
  build first
  printf '\n// layer-check: a one-line code change\n' >>"$WORK/$CHANGED_FILE"
  build second
  local -a a b
  mapfile -t a < <(layers first)
  mapfile -t b < <(layers second)
  local i changed=0 names=(base… node_modules model package.json dist)
  local base_count=$((${#a[@]} - 4))
  printf '%-14s %-20s %-20s\n' layer first second
  for ((i = 0; i < ${#a[@]}; i++)); do
    local name="base $((i + 1))"
    ((i >= base_count)) && name=${names[$((i - base_count + 1))]}
    local mark=""
    [[ ${a[i]} != "${b[i]:-}" ]] && { mark=" <- changed"; changed=$((changed + 1)); }
    printf '%-14s %-20s %-20s%s\n' "$name" "${a[i]:7:12}" "${b[i]:7:12}" "$mark"
  done
  [[ ${#a[@]} -eq ${#b[@]} ]] || die "the images have ${#a[@]} and ${#b[@]} layers"
  [[ $changed -eq 1 && ${a[-1]} != "${b[-1]}" ]] || die "$changed layers changed; only dist/ should"
  log "a one-line change in $CHANGED_FILE changed only the dist/ layer"
}

main "$@"
