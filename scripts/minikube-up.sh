#!/usr/bin/env bash
# One command from nothing to working URLs: starts a Minikube profile, installs Knative
# Serving (with Kourier) and Eventing (in-memory channel, MT broker), builds the image
# inside Minikube, applies knative/ and prints the URLs. Safe to run again: a running
# profile is reused and every install step is a declarative `kubectl apply`.
#
# Environment: MINIKUBE_PROFILE, MINIKUBE_CPUS, MINIKUBE_MEMORY (scripts/versions.sh),
# KLASSIFY_DOMAIN (default 127.0.0.1.sslip.io), KLASSIFY_IMAGE_TAG, KLASSIFY_OVERLAY.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=scripts/lib/knative.sh
source "$ROOT/scripts/lib/knative.sh"

# With `minikube tunnel`, Kourier's LoadBalancer answers on 127.0.0.1, and sslip.io
# resolves every *.127.0.0.1.sslip.io name there: real host names without editing DNS.
DOMAIN="${KLASSIFY_DOMAIN:-127.0.0.1.sslip.io}"
SERVING="https://github.com/knative/serving/releases/download/$KNATIVE_SERVING_VERSION"
KOURIER="https://github.com/knative-extensions/net-kourier/releases/download/$KNATIVE_KOURIER_VERSION"
EVENTING="https://github.com/knative/eventing/releases/download/$KNATIVE_EVENTING_VERSION"
# Seconds between retries of a configuration patch (tests set 0).
RETRY_PAUSE="${KLASSIFY_RETRY_PAUSE:-5}"

check_prerequisites() {
  local missing=() cmd
  for cmd in minikube kubectl; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    die "missing ${missing[*]}. Install Minikube (https://minikube.sigs.k8s.io/docs/start/) and kubectl $KUBERNETES_VERSION (https://kubernetes.io/docs/tasks/tools/), then run this again."
  fi
}

start_minikube() {
  if minikube -p "$MINIKUBE_PROFILE" status --format '{{.Host}}' 2>/dev/null | grep -qx Running; then
    log "Minikube profile $MINIKUBE_PROFILE is already running"
    check_kubernetes_version
    return 0
  fi
  log "starting Minikube profile $MINIKUBE_PROFILE (Kubernetes $KUBERNETES_VERSION, $MINIKUBE_CONTAINER_RUNTIME, $MINIKUBE_CPUS CPUs, $MINIKUBE_MEMORY)"
  minikube start -p "$MINIKUBE_PROFILE" \
    --kubernetes-version="$KUBERNETES_VERSION" \
    --container-runtime="$MINIKUBE_CONTAINER_RUNTIME" \
    --cpus="$MINIKUBE_CPUS" \
    --memory="$MINIKUBE_MEMORY"
}

# A profile made earlier may run a Kubernetes that the pinned Knative does not support.
check_kubernetes_version() {
  local running
  running=$(kube version -o json | sed -n 's/.*"gitVersion": *"\(v[0-9.]*\).*/\1/p' | tail -n1)
  [[ -n $running ]] || die "cannot read the Kubernetes version of profile $MINIKUBE_PROFILE"
  if [[ ${running%.*} != "${KUBERNETES_VERSION%.*}" ]]; then
    die "profile $MINIKUBE_PROFILE runs Kubernetes $running, but Knative ${KNATIVE_SERVING_VERSION#knative-} is pinned with $KUBERNETES_VERSION; delete it (npm run teardown -- --cluster) or use another MINIKUBE_PROFILE"
  fi
}

# apply_crds URL: CRDs must be Established before resources of their kinds apply.
apply_crds() {
  kube apply -f "$1"
  kube wait --for=condition=Established --timeout=120s crd -l knative.dev/crd-install=true
}

wait_deployments() {
  kube -n "$1" wait --for=condition=Available --timeout=300s deployment --all
}

install_serving() {
  log "installing Knative Serving $KNATIVE_SERVING_VERSION with Kourier $KNATIVE_KOURIER_VERSION"
  apply_crds "$SERVING/serving-crds.yaml"
  kube apply -f "$SERVING/serving-core.yaml"
  kube apply -f "$KOURIER/kourier.yaml"
  # Config changes go through Serving's validating webhook, so it must be up first.
  wait_deployments knative-serving
  wait_deployments kourier-system
  # The webhook may still be starting behind its Service even when its Deployment is
  # Available: retry for a minute.
  retry 12 "$RETRY_PAUSE" kube -n knative-serving patch configmap/config-network --type merge \
    -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
}

# retry N SECONDS CMD...: runs CMD up to N times, SECONDS apart, until it succeeds.
retry() {
  local tries=$1 pause=$2 i
  shift 2
  for ((i = 1; i <= tries; i++)); do
    "$@" && return 0
    ((i < tries)) && { log "retrying in ${pause}s ($i/$tries): $*"; sleep "$pause"; }
  done
  die "failed $tries times: $*"
}

# Replaces the whole data map: with two domains Knative would pick the alphabetically
# smallest, so a re-run with another KLASSIFY_DOMAIN must drop the old one.
configure_domain() {
  log "serving Knative routes under $DOMAIN"
  retry 12 "$RETRY_PAUSE" kube -n knative-serving patch configmap/config-domain --type json \
    -p "[{\"op\":\"add\",\"path\":\"/data\",\"value\":{\"$DOMAIN\":\"\"}}]"
}

install_eventing() {
  log "installing Knative Eventing $KNATIVE_EVENTING_VERSION (in-memory channel, MT broker)"
  apply_crds "$EVENTING/eventing-crds.yaml"
  kube apply -f "$EVENTING/eventing-core.yaml"
  kube apply -f "$EVENTING/in-memory-channel.yaml"
  kube apply -f "$EVENTING/mt-channel-broker.yaml"
  wait_deployments knative-eventing
}

# What the node's pods request, to compare with the install-overhead table in
# docs/scaling.md.
report_requests() {
  log "CPU and memory requested on the node (docs/scaling.md):"
  kube describe nodes | sed -n '/^Allocated resources:/,/^Events:/p' >&2 || true
}

main() {
  check_prerequisites
  start_minikube
  install_serving
  configure_domain
  install_eventing
  roll_out
  report_requests
}

main "$@"
