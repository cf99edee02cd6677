# shellcheck shell=bash disable=SC2034 # sourced: the variables are used by the scripts that source it
# Helpers shared by the scripts. Sourced, not executed.

# shellcheck source=scripts/lib/platform.sh
source "$ROOT/scripts/lib/platform.sh"

# All podman/buildah calls use the vfs storage driver: overlayfs is not available inside
# the unprivileged containers our CI runs in, and mixing drivers would hide images.
PODMAN=(podman --storage-driver=vfs)
BUILDAH=(buildah --storage-driver=vfs)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# ensure_commands CMD:PACKAGE... installs the Debian package for each missing command when
# run as root on a Debian-like system; elsewhere (a Mac, a normal user) it says how.
ensure_commands() {
  local pair missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  apt_install "${missing[@]}"
}

# apt_install PACKAGE...: as root on a Debian-like system; elsewhere it says how.
apt_install() {
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    die "missing $*; install with: $(install_hint "$@")"
  fi
  log "installing $* from apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null
}
