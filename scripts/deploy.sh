#!/usr/bin/env bash
# Rebuilds the image under a new unique tag and rolls out a new revision of both Services
# on the Minikube profile that scripts/minikube-up.sh created. Knative shifts traffic to
# the new revision once it is ready; the old one scales to zero.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=scripts/lib/knative.sh
source "$ROOT/scripts/lib/knative.sh"

check_cluster() {
  command -v minikube >/dev/null 2>&1 || die "minikube not found; see scripts/minikube-up.sh"
  command -v kubectl >/dev/null 2>&1 || die "kubectl not found; see scripts/minikube-up.sh"
  minikube -p "$MINIKUBE_PROFILE" status --format '{{.Host}}' 2>/dev/null | grep -qx Running ||
    die "Minikube profile $MINIKUBE_PROFILE is not running; run scripts/minikube-up.sh first"
}

main() {
  check_cluster
  roll_out
}

main "$@"
