#!/usr/bin/env bash
# Removes klassify from the Minikube profile (its namespace: Services, Broker, Triggers).
# Knative stays installed, so scripts/deploy.sh or minikube-up.sh bring it back quickly.
# With --cluster, deletes the whole Minikube profile instead.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=scripts/lib/knative.sh
source "$ROOT/scripts/lib/knative.sh"

usage() {
  printf 'usage: %s [--cluster]\n  --cluster  delete the Minikube profile %s as well\n' "${0##*/}" "$MINIKUBE_PROFILE" >&2
  exit 2
}

delete_namespace() {
  log "deleting namespace $NAMESPACE"
  kube delete namespace "$NAMESPACE" --ignore-not-found --wait=true
}

delete_cluster() {
  log "deleting Minikube profile $MINIKUBE_PROFILE"
  minikube delete -p "$MINIKUBE_PROFILE"
}

main() {
  local cluster=false
  case "${1:-}" in
    "") ;;
    --cluster) cluster=true ;;
    *) usage ;;
  esac
  command -v minikube >/dev/null 2>&1 || die "minikube not found"
  if $cluster; then
    delete_cluster
  else
    command -v kubectl >/dev/null 2>&1 || die "kubectl not found"
    delete_namespace
  fi
}

main "$@"
