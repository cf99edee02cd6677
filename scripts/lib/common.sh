# shellcheck shell=bash disable=SC2034 # sourced: the variables are used by the scripts that source it
# Helpers shared by the container scripts. Sourced, not executed.

# All podman/buildah calls use the vfs storage driver: overlayfs is not available inside
# the unprivileged containers our CI runs in, and mixing drivers would hide images.
PODMAN=(podman --storage-driver=vfs)
BUILDAH=(buildah --storage-driver=vfs)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# ensure_commands CMD:PACKAGE... installs the Debian package for each missing command.
ensure_commands() {
  local pair missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}"
  log "installing ${missing[*]} from apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
}
