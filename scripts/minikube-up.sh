#!/usr/bin/env bash
# One command from nothing to working URLs: checks that the host can hold a profile and
# picks one, starts Minikube, installs Knative Serving (with Kourier) and Eventing
# (in-memory channel, MT broker), builds the image inside Minikube, applies knative/ with a
# max-scale derived from the node, and prints URLs that work once `minikube tunnel` runs.
# Safe to run again: an existing profile is reused and every install step is a declarative
# `kubectl apply`. Runs on macOS (bash 3.2, BSD tools) and Linux.
#
# Environment: MINIKUBE_PROFILE, MINIKUBE_CPUS, MINIKUBE_MEMORY, MINIKUBE_DRIVER
# (scripts/versions.sh; CPUs and memory default to the largest profile in
# scripts/lib/capacity.sh that fits the host), KLASSIFY_DOMAIN (default: the address
# `minikube tunnel` gives Kourier on this OS and driver, .sslip.io), KLASSIFY_IMAGE_TAG,
# KLASSIFY_OVERLAY.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=scripts/lib/knative.sh
source "$ROOT/scripts/lib/knative.sh"

# sslip.io resolves every *.<address>.sslip.io name to <address>: real host names without
# editing DNS. Empty: the address the tunnel will give Kourier (configure_domain).
DOMAIN="${KLASSIFY_DOMAIN:-}"
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

# The driver of a new profile: MINIKUBE_DRIVER, else the one set with `minikube config set
# driver`, else docker when its daemon answers.
choose_driver() {
  if [[ -n ${MINIKUBE_DRIVER:-} ]]; then
    echo "$MINIKUBE_DRIVER"
    return 0
  fi
  local configured
  configured=$(minikube config get driver 2>/dev/null || true)
  if [[ -n $configured ]]; then
    echo "$configured"
    return 0
  fi
  if command -v docker >/dev/null 2>&1 && docker info --format '{{.NCPU}}' >/dev/null 2>&1; then
    echo docker
    return 0
  fi
  die "no Minikube driver: start Docker (Docker Desktop on a Mac), or choose a VM driver, e.g. MINIKUBE_DRIVER=vfkit on macOS or MINIKUBE_DRIVER=kvm2 on Linux"
}

# HOST_CPUS, HOST_MIB and HOST_SOURCE: what the driver can give a profile. The container
# drivers are bounded by their engine (Docker Desktop's VM on a Mac), a VM driver by the host.
read_host_capacity() {
  local info cpus bytes
  case $DRIVER in
    docker | podman)
      HOST_SOURCE="$DRIVER info"
      if [[ $DRIVER == docker ]]; then
        info=$(docker info --format '{{.NCPU}} {{.MemTotal}}') || die "docker info failed: is Docker running?"
      else
        info=$(podman info --format '{{.Host.CPUs}} {{.Host.MemTotal}}') || die "podman info failed: is podman set up?"
      fi
      read -r cpus bytes <<<"$info"
      ;;
    *)
      HOST_SOURCE="this $(os_name) machine, for the $DRIVER VM"
      cpus=$(host_cpus)
      bytes=$(($(host_memory_mib) * 1048576))
      ;;
  esac
  [[ $cpus =~ ^[0-9]+$ && $bytes =~ ^[0-9]+$ ]] || die "cannot read CPUs and memory from $HOST_SOURCE (got '$cpus' and '$bytes')"
  HOST_CPUS=$cpus
  HOST_MIB=$((bytes / 1048576))
}

# What to do about a host that is too small, for the error message.
resize_hint() {
  case $DRIVER in
    docker | podman) printf 'Give %s more CPUs or memory (Docker Desktop: Settings, Resources), or pick a profile with MINIKUBE_CPUS and MINIKUBE_MEMORY.' "$DRIVER" ;;
    *) printf 'Free memory on this machine, or pick a profile with MINIKUBE_CPUS and MINIKUBE_MEMORY.' ;;
  esac
}

# Before a new profile starts: which profile fits the host, and what it will hold.
# Sets DRIVER, PROFILE_CPUS, PROFILE_MIB and RESERVATION.
preflight() {
  local chosen name holds max_scale beside_ui default_entry
  DRIVER=$(choose_driver)
  read_host_capacity
  read_pod_requests
  log "host ($HOST_SOURCE): $HOST_CPUS CPUs, $HOST_MIB MiB"
  if [[ -n $MINIKUBE_CPUS || -n $MINIKUBE_MEMORY ]]; then
    default_entry=" $KLASSIFY_PROFILES "
    default_entry=${default_entry#* default:}
    default_entry=${default_entry%% *}
    name=custom
    PROFILE_CPUS=${MINIKUBE_CPUS:-${default_entry%%:*}}
    [[ $PROFILE_CPUS =~ ^[0-9]+$ ]] || die "MINIKUBE_CPUS must be a whole number of CPUs, got '$PROFILE_CPUS'"
    if [[ -n $MINIKUBE_MEMORY ]]; then PROFILE_MIB=$(minikube_memory_mib "$MINIKUBE_MEMORY"); else PROFILE_MIB=${default_entry#*:}; fi
    profile_fits "$PROFILE_CPUS" "$PROFILE_MIB" "$HOST_CPUS" "$HOST_MIB" ||
      die "a profile of $PROFILE_CPUS CPUs and $PROFILE_MIB MiB (MINIKUBE_CPUS, MINIKUBE_MEMORY) does not fit this host ($HOST_SOURCE: $HOST_CPUS CPUs, $HOST_MIB MiB), or holds no classify pod with room for a rollout. The profiles:
$(profiles_report "$HOST_CPUS" "$HOST_MIB")"
  else
    chosen=$(choose_profile "$HOST_CPUS" "$HOST_MIB") ||
      die "no klassify profile fits this host ($HOST_SOURCE: $HOST_CPUS CPUs, $HOST_MIB MiB):
$(profiles_report "$HOST_CPUS" "$HOST_MIB")
$(resize_hint)"
    read -r name PROFILE_CPUS PROFILE_MIB <<<"$chosen"
  fi
  holds=$(capacity_for $((PROFILE_CPUS * 1000)) "$PROFILE_MIB")
  read -r max_scale beside_ui <<<"$holds"
  log "profile $name: $PROFILE_CPUS CPUs, $PROFILE_MIB MiB on the $DRIVER driver; max-scale $max_scale ($beside_ui classify pods fit beside Knative and the UI, one slot stays free for a rollout; derived from the requests, docs/scaling.md)"
  RESERVATION=""
  if [[ $DRIVER == docker || $DRIVER == podman ]]; then
    RESERVATION=$(kubelet_reservation "$HOST_CPUS" "$HOST_MIB" "$PROFILE_CPUS" "$PROFILE_MIB")
    [[ -z $RESERVATION ]] || log "the kubelet reserves the rest of the $DRIVER host, so the scheduler sees the profile: --extra-config=$RESERVATION"
  fi
}

# Running, Stopped, or Nonexistent (minikube status exits 85 for a profile it does not know).
profile_state() {
  local host status=0
  host=$(minikube -p "$MINIKUBE_PROFILE" status --format '{{.Host}}' 2>/dev/null) || status=$?
  if [[ $host == Running ]]; then
    echo Running
  elif [[ $status -eq 85 ]]; then
    echo Nonexistent
  else
    echo Stopped
  fi
}

start_minikube() {
  local state args
  state=$(profile_state)
  case $state in
    Running)
      log "Minikube profile $MINIKUBE_PROFILE is already running"
      ;;
    Stopped)
      log "starting the existing Minikube profile $MINIKUBE_PROFILE with the CPUs and memory it was created with"
      minikube start -p "$MINIKUBE_PROFILE" --kubernetes-version="$KUBERNETES_VERSION"
      ;;
    *)
      preflight
      args=(start -p "$MINIKUBE_PROFILE" --driver="$DRIVER" --kubernetes-version="$KUBERNETES_VERSION"
        --container-runtime="$MINIKUBE_CONTAINER_RUNTIME" --cpus="$PROFILE_CPUS" --memory="${PROFILE_MIB}mb")
      if [[ -n $RESERVATION ]]; then args+=(--extra-config="$RESERVATION"); fi
      log "starting Minikube profile $MINIKUBE_PROFILE (Kubernetes $KUBERNETES_VERSION, $MINIKUBE_CONTAINER_RUNTIME runtime)"
      minikube "${args[@]}"
      ;;
  esac
  check_kubernetes_version
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
# smallest, so a re-run with another domain must drop the old one.
configure_domain() {
  local address driver=${DRIVER:-}
  if [[ -z $DOMAIN ]]; then
    [[ -n $driver ]] || driver=$(profile_driver)
    address=$(tunnel_address "$driver")
    DOMAIN="$address.sslip.io"
  fi
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
