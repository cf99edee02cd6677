# shellcheck shell=bash
# The capacity arithmetic: what a node holds, from the CPU and memory requests. The scheduler
# places a pod only where the requests fit the node's allocatable resources (use does not
# matter), so this is all it takes to know when a pod would stay Pending. Used before
# `minikube start` (which profile fits the host) and before every deploy (max-scale from the
# node's allocatable). Sourced after common.sh; knative/test/capacity.test.ts runs these
# functions for 4, 6 and 8 CPUs and checks them against its own reading of the manifests.
#
# The per-pod numbers are read from the manifests themselves (the one place they live):
# resources.requests of knative/base/200-classify-service.yaml and 210-ui-service.yaml.

# What Kubernetes and the pinned Knative install request before klassify: the sums of the
# table in docs/scaling.md, from the release YAMLs of the versions in versions.sh.
INSTALL_CPU_MILLI=2375
INSTALL_MEMORY_MIB=1444
# Serving's queue-proxy sidecar in every Knative pod: queue-sidecar-cpu-request (25m by
# default in config-deployment); it sets no memory request unless configured to.
QUEUE_PROXY_CPU_MILLI=25
QUEUE_PROXY_MEMORY_MIB=0

# Minikube profiles, largest first: name:CPUs:memory in MiB. The memory is not set by the
# requests (they need under 3.5 GiB even for "large") but by what runs: about 2 GiB for
# Kubernetes, Knative and Eventing, a classify pod's 512 MiB limit per pod, and the image
# build inside the node. An estimate, not a measurement.
KLASSIFY_PROFILES="large:8:8192 default:6:6144 small:4:5120"
# What a profile leaves to the host, or to Docker Desktop's VM: Minikube itself warns when
# less than 1 GiB is left (RSRC_OVER_ALLOC_MEM).
HOST_MEMORY_HEADROOM_MIB=1024

CLASSIFY_MANIFEST="$ROOT/knative/base/200-classify-service.yaml"
UI_MANIFEST="$ROOT/knative/base/210-ui-service.yaml"

# quantity_milli_cpu Q: "500m" → 500, "1" → 1000, "1.5" → 1500.
quantity_milli_cpu() {
  awk -v q="$1" 'BEGIN {
    if (q ~ /^[0-9]+m$/) { print q + 0; exit }
    if (q ~ /^[0-9]+(\.[0-9]+)?$/) { printf "%d\n", q * 1000 + 0.5; exit }
    exit 1 }' || die "not a CPU quantity: '$1'"
}

# quantity_mib Q: a Kubernetes memory quantity in whole MiB ("256Mi", "8029532Ki", "1G", bytes).
quantity_mib() {
  awk -v q="$1" 'BEGIN {
    f["Ki"] = 1 / 1024; f["Mi"] = 1; f["Gi"] = 1024; f["Ti"] = 1048576
    f["k"] = 1000 / 1048576; f["M"] = 1e6 / 1048576; f["G"] = 1e9 / 1048576; f["T"] = 1e12 / 1048576; f[""] = 1 / 1048576
    unit = q; sub(/^[0-9]+(\.[0-9]+)?/, "", unit)
    if (q !~ /^[0-9]/ || !(unit in f)) exit 1
    printf "%d\n", (q + 0) * f[unit] }' || die "not a memory quantity: '$1'"
}

# minikube_memory_mib SPEC: Minikube's --memory syntax (8g, 6144mb, 6144m, 6144 = MiB) in MiB.
minikube_memory_mib() {
  awk -v q="$1" 'BEGIN {
    s = tolower(q); unit = s; sub(/^[0-9]+/, "", unit); sub(/i?b$/, "", unit)
    f["k"] = 1 / 1024; f["m"] = 1; f["g"] = 1024; f["t"] = 1048576; f[""] = 1
    if (s !~ /^[0-9]+[a-z]*$/ || !(unit in f)) exit 1
    printf "%d\n", (s + 0) * f[unit] }' || die "MINIKUBE_MEMORY: not a memory size like 8g or 6144mb: '$1'"
}

# manifest_request FILE cpu|memory: resources.requests.<key> of the container in a
# one-container Service manifest, read without a YAML parser (the test compares it with one).
manifest_request() {
  awk -v key="$2" '
    function indent(s) { match(s, /^ */); return RLENGTH }
    /^[ \t]*#/ { next }
    { sub(/[ \t]+#.*$/, "") }
    NF == 0 { next }
    { i = indent($0) }
    inres && i <= resi { inres = 0; inreq = 0 }
    inreq && i <= reqi { inreq = 0 }
    $1 == "resources:" && NF == 1 { inres = 1; resi = i; next }
    inres && $1 == "requests:" && NF == 1 { inreq = 1; reqi = i; next }
    inreq && $1 == key ":" { v = $2; gsub(/"/, "", v); print v; found = 1; exit }
    END { if (!found) exit 1 }' "$1" || die "no resources.requests.$2 in $1"
}

# The pods' requests, queue-proxy included, in millicores and MiB. Call it once in the main
# shell before the functions below: they run in subshells, where a failure would not stop
# the script.
read_pod_requests() {
  [[ -n ${CLASSIFY_POD_CPU:-} ]] && return 0
  CLASSIFY_POD_CPU=$(($(quantity_milli_cpu "$(manifest_request "$CLASSIFY_MANIFEST" cpu)") + QUEUE_PROXY_CPU_MILLI))
  CLASSIFY_POD_MIB=$(($(quantity_mib "$(manifest_request "$CLASSIFY_MANIFEST" memory)") + QUEUE_PROXY_MEMORY_MIB))
  UI_POD_CPU=$(($(quantity_milli_cpu "$(manifest_request "$UI_MANIFEST" cpu)") + QUEUE_PROXY_CPU_MILLI))
  UI_POD_MIB=$(($(quantity_mib "$(manifest_request "$UI_MANIFEST" memory)") + QUEUE_PROXY_MEMORY_MIB))
}

# capacity_for CPU_MILLI MEMORY_MIB: "MAX_SCALE PODS_BESIDE_UI" for a node with that much
# allocatable. PODS_BESIDE_UI: classify pods that fit next to the install and one UI pod.
# MAX_SCALE: the classify pods that still leave room for a rollout's first pods (the new
# revision starts one classify and one UI pod, initial-scale 1, while the old revision is at
# full scale), so `scripts/deploy.sh` never waits for the old revision to scale away.
capacity_for() {
  read_pod_requests
  local free_cpu=$(($1 - INSTALL_CPU_MILLI)) free_mib=$(($2 - INSTALL_MEMORY_MIB))
  local beside_ui by_mib max_scale
  beside_ui=$(((free_cpu - UI_POD_CPU) / CLASSIFY_POD_CPU))
  by_mib=$(((free_mib - UI_POD_MIB) / CLASSIFY_POD_MIB))
  ((by_mib < beside_ui)) && beside_ui=$by_mib
  max_scale=$(((free_cpu - 2 * UI_POD_CPU) / CLASSIFY_POD_CPU - 1))
  by_mib=$(((free_mib - 2 * UI_POD_MIB) / CLASSIFY_POD_MIB - 1))
  ((by_mib < max_scale)) && max_scale=$by_mib
  ((free_cpu < 2 * UI_POD_CPU || free_mib < 2 * UI_POD_MIB)) && max_scale=0
  ((free_cpu < UI_POD_CPU || free_mib < UI_POD_MIB)) && beside_ui=0
  ((max_scale < 0)) && max_scale=0
  ((beside_ui < 0)) && beside_ui=0
  echo "$max_scale $beside_ui"
}

# profile_fits CPUS MIB HOST_CPUS HOST_MIB: the profile leaves the host its headroom and
# holds at least one classify pod with room for a rollout.
profile_fits() {
  local holds max_scale _
  (($1 <= $3 && $2 + HOST_MEMORY_HEADROOM_MIB <= $4)) || return 1
  holds=$(capacity_for $(($1 * 1000)) "$2")
  read -r max_scale _ <<<"$holds"
  ((max_scale >= 1))
}

# choose_profile HOST_CPUS HOST_MIB: "NAME CPUS MIB" of the largest profile that fits.
choose_profile() {
  local entry name cpus mib
  for entry in $KLASSIFY_PROFILES; do
    IFS=: read -r name cpus mib <<<"$entry"
    if profile_fits "$cpus" "$mib" "$1" "$2"; then
      echo "$name $cpus $mib"
      return 0
    fi
  done
  return 1
}

# profiles_report HOST_CPUS HOST_MIB: one line per profile with what it needs and what it
# holds, and whether it fits that host (no verdict when the host is given as "" "").
profiles_report() {
  local entry name cpus mib max_scale beside_ui verdict=""
  for entry in $KLASSIFY_PROFILES; do
    IFS=: read -r name cpus mib <<<"$entry"
    read -r max_scale beside_ui <<<"$(capacity_for $((cpus * 1000)) "$mib")"
    if [[ -n $1 ]]; then
      verdict="; does not fit"
      if profile_fits "$cpus" "$mib" "$1" "$2"; then verdict="; fits"; fi
    fi
    printf '  %-8s %s CPUs, %s MiB (a host with %s CPUs and %s MiB): max-scale %s%s\n' \
      "$name" "$cpus" "$mib" "$cpus" $((mib + HOST_MEMORY_HEADROOM_MIB)) "$max_scale" "$verdict"
  done
}

# kubelet_reservation HOST_CPUS HOST_MIB CPUS MIB: with the docker (or podman) driver the
# node is a container whose --cpus and --memory are only a CFS quota and a cgroup limit:
# the kubelet still reports the whole host (or Docker Desktop's VM) to the scheduler. Reserving
# the difference for the system makes the node's allocatable equal to the profile, so the
# scheduler's arithmetic is the one above. Prints the --extra-config value, or nothing.
kubelet_reservation() {
  local cpu=$((($1 - $3) * 1000)) mib=$(($2 - $4))
  ((cpu < 0)) && cpu=0
  ((mib < 0)) && mib=0
  ((cpu + mib > 0)) || return 0
  printf 'kubelet.system-reserved=cpu=%sm,memory=%sMi\n' "$cpu" "$mib"
}
