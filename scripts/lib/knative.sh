# shellcheck shell=bash
# Steps shared by minikube-up.sh, deploy.sh and load-test.sh. Sourced after versions.sh
# and common.sh. Every kubectl call names the Minikube profile's context, so the scripts
# never act on whatever cluster the user's kubectl happens to point at.

# shellcheck source=scripts/lib/capacity.sh
source "$ROOT/scripts/lib/capacity.sh"

NAMESPACE="klassify"
MANIFEST_DIR="$ROOT/knative"
# KLASSIFY_OVERLAY=gpu deploys knative/overlays/gpu instead of the base.
OVERLAY="${KLASSIFY_OVERLAY:-}"
# The Secret holding the token in the UI's event paths (knative/base/210-ui-service.yaml).
EVENTS_SECRET="klassify-ui-events"

kube() { kubectl --context "$MINIKUBE_PROFILE" "$@"; }

# A unique tag per build: the commit plus a timestamp, so each deploy is a new revision.
# KLASSIFY_IMAGE_TAG overrides it (tests, or re-deploying a known build). Without git
# (a source archive) the commit part is "nogit".
image_tag() {
  if [[ -n ${KLASSIFY_IMAGE_TAG:-} ]]; then
    printf '%s\n' "$KLASSIFY_IMAGE_TAG"
    return
  fi
  local commit
  commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo nogit)
  printf '%s-%s\n' "$commit" "$(date -u +%Y%m%d%H%M%S)"
}

# Builds the image inside Minikube's container runtime: no registry, no push.
build_image() {
  local tag=$1
  log "building $IMAGE_REPOSITORY:$tag inside Minikube"
  minikube -p "$MINIKUBE_PROFILE" image build -t "$IMAGE_REPOSITORY:$tag" "$ROOT"
}

# The token in the UI's event paths: the Secret's, or a new random one on first deploy.
# It is never written into the repository; only the Secret and the Triggers carry it.
events_token() {
  local token
  # --decode: macOS's older base64 reads -d as --debug.
  token=$(kube -n "$NAMESPACE" get secret "$EVENTS_SECRET" --ignore-not-found -o jsonpath='{.data.token}' | base64 --decode)
  if [[ -z $token ]]; then
    token=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
  fi
  [[ $token =~ ^[A-Za-z0-9_-]{16,}$ ]] || die "the Secret $EVENTS_SECRET holds an unusable token; delete it to get a new one"
  printf '%s\n' "$token"
}

# path_from DIR TARGET: TARGET relative to DIR, both inside $ROOT. kustomize takes relative
# paths only, and BSD realpath has no --relative-to.
path_from() {
  local rest=${1#"$ROOT"/} up=""
  while [[ -n $rest ]]; do
    up="../$up"
    if [[ $rest == */* ]]; then rest=${rest#*/}; else rest=""; fi
  done
  printf '%s%s\n' "$up" "${2#"$ROOT"/}"
}

overlay_source() {
  if [[ -n $OVERLAY ]]; then echo "$MANIFEST_DIR/overlays/$OVERLAY"; else echo "$MANIFEST_DIR/base"; fi
}

# write_overlay DIR TAG TOKEN [MAX_SCALE]: a kustomization on top of knative/base (or the
# chosen overlay) that sets the image tag, adds the Secret, appends the token to the UI's
# event and dead-letter paths in the Triggers and, when given, sets the classify Service's
# max-scale for this node.
write_overlay() {
  local dir=$1 tag=$2 token=$3 max_scale=${4:-} source
  source=$(overlay_source)
  [[ -f $source/kustomization.yaml ]] || die "no kustomization.yaml in $source (KLASSIFY_OVERLAY=$OVERLAY)"
  source=$(path_from "$dir" "$source")
  (
    umask 077
    cat >"$dir/secret.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: $EVENTS_SECRET
  namespace: $NAMESPACE
  labels:
    app.kubernetes.io/part-of: klassify
type: Opaque
stringData:
  token: "$token"
YAML
    cat >"$dir/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $source
  - secret.yaml
images:
  - name: $IMAGE_REPOSITORY
    newTag: "$tag"
patches:
  - target: {group: eventing.knative.dev, kind: Trigger, name: image-submitted}
    patch: '[{"op": "replace", "path": "/spec/delivery/deadLetterSink/uri", "value": "/dead-letters/$token"}]'
  - target: {group: eventing.knative.dev, kind: Trigger, name: image-classified}
    patch: '[{"op": "replace", "path": "/spec/subscriber/uri", "value": "/events/$token"}]'
  - target: {group: eventing.knative.dev, kind: Trigger, name: image-rejected}
    patch: '[{"op": "replace", "path": "/spec/subscriber/uri", "value": "/events/$token"}]'
YAML
    if [[ -n $max_scale ]]; then
      cat >>"$dir/kustomization.yaml" <<YAML
  - target: {group: serving.knative.dev, kind: Service, name: classify}
    patch: '[{"op": "replace", "path": "/spec/template/metadata/annotations/autoscaling.knative.dev~1max-scale", "value": "$max_scale"}]'
YAML
    fi
  )
}

# Applies the base (or KLASSIFY_OVERLAY) with the build's tag, the events token and the
# max-scale derived for this node.
apply_manifests() {
  local tag=$1 token dir
  token=$(events_token)
  mkdir -p "$ROOT/.cache"
  dir=$(mktemp -d "$ROOT/.cache/deploy.XXXXXX")
  # The overlay holds the token: it goes once applied, and on every failure on the way
  # (a step that dies exits this subshell, and its EXIT trap still runs).
  (
    trap 'rm -rf "$dir"' EXIT
    write_overlay "$dir" "$tag" "$token" "$MAX_SCALE"
    log "applying knative/${OVERLAY:+overlays/}${OVERLAY:-base} with image tag $tag"
    kube apply -k "$dir"
  )
}

wait_for_services() {
  log "waiting for the Services, Broker and Triggers to be ready"
  kube -n "$NAMESPACE" wait --for=condition=Ready --timeout=300s ksvc/classify ksvc/ui
  kube -n "$NAMESPACE" wait --for=condition=Ready --timeout=120s broker/default
  kube -n "$NAMESPACE" wait --for=condition=Ready --timeout=120s triggers.eventing.knative.dev --all
}

# Kourier's external address once `minikube tunnel` has given it one (empty before).
gateway_address() {
  kube -n kourier-system get service kourier -o jsonpath='{.status.loadBalancer.ingress[0].ip}{.status.loadBalancer.ingress[0].hostname}' 2>/dev/null || true
}

# The driver of the profile: docker or podman when its node is a container of that engine
# (labelled by Minikube with the profile's name), else a VM driver.
profile_driver() {
  local engine
  for engine in docker podman; do
    if command -v "$engine" >/dev/null 2>&1 &&
      [[ $("$engine" container inspect --format '{{index .Config.Labels "name.minikube.sigs.k8s.io"}}' "$MINIKUBE_PROFILE" 2>/dev/null) == "$MINIKUBE_PROFILE" ]]; then
      echo "$engine"
      return 0
    fi
  done
  echo vm
}

# tunnel_on_localhost DRIVER: whether `minikube tunnel` will give Kourier 127.0.0.1. It
# forwards ports over SSH (and patches the address to 127.0.0.1) for the container drivers
# where the node is not reachable from the host: on macOS, Windows and WSL, with Docker
# Desktop on Linux, and with a rootless engine. Everywhere else it adds a route to the
# Service network through the node and gives Kourier its ClusterIP (Minikube's
# driver.NeedsPortForward and cmd/minikube/cmd/tunnel.go).
tunnel_on_localhost() {
  case $1 in
    docker)
      [[ $(os_name) == Darwin ]] && return 0
      is_wsl && return 0
      local info
      info=$(docker info --format '{{.OperatingSystem}} {{.SecurityOptions}}' 2>/dev/null || true)
      [[ $info == *"Docker Desktop"* || $info == *rootless* ]]
      ;;
    podman)
      [[ $(os_name) == Darwin ]] || is_wsl ||
        [[ $(podman info --format '{{.Host.Security.Rootless}}' 2>/dev/null) == true ]]
      ;;
    *) return 1 ;;
  esac
}

# The address the routes' host names resolve to (through sslip.io): the one the tunnel will
# give Kourier on this OS and driver, so the URLs printed on the first run already work.
tunnel_address() {
  local driver=$1 ip
  if tunnel_on_localhost "$driver"; then
    echo 127.0.0.1
    return 0
  fi
  ip=$(kube -n kourier-system get service kourier -o jsonpath='{.spec.clusterIP}')
  [[ $ip =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "Kourier's Service has no ClusterIP ('$ip')"
  echo "$ip"
}

print_endpoints() {
  local ui classify broker revision gateway host expected
  ui=$(kube -n "$NAMESPACE" get ksvc ui -o jsonpath='{.status.url}')
  classify=$(kube -n "$NAMESPACE" get ksvc classify -o jsonpath='{.status.url}')
  revision=$(kube -n "$NAMESPACE" get ksvc classify -o jsonpath='{.status.latestReadyRevisionName}')
  broker=$(kube -n "$NAMESPACE" get broker default -o jsonpath='{.status.address.url}')
  gateway=$(gateway_address)
  host=${classify#*://}
  # classify.klassify.<address>.sslip.io: the address the URLs resolve to.
  expected=${host#"classify.$NAMESPACE."}
  expected=${expected%.sslip.io}
  [[ $expected =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || expected=""
  cat <<MSG

klassify is running (classify revision $revision).
  UI:              $ui
  Function:        $classify/classify
  Broker ingress:  $broker   (cluster-internal)

MSG
  if [[ -z $gateway ]]; then
    cat <<MSG
These URLs answer once \`minikube tunnel\` runs: start it now in another terminal and leave
it running (it asks for your password to add a route, or to listen on port 80 of 127.0.0.1):
  minikube tunnel -p $MINIKUBE_PROFILE
No tunnel (or the qemu driver's builtin network, which has none)? Forward Kourier instead:
  kubectl --context $MINIKUBE_PROFILE -n kourier-system port-forward svc/kourier 8080:80
  curl -H 'Host: $host' -H 'Content-Type: image/jpeg' --data-binary @photo.jpg http://127.0.0.1:8080/classify
MSG
  elif [[ -z $expected || $gateway == "$expected" ]]; then
    printf 'The tunnel is up: Kourier answers at %s%s.\n' "$gateway" "${expected:+, where the URLs above resolve}"
  else
    cat <<MSG
The tunnel gives Kourier $gateway, but the URLs above resolve to $expected. Send the host
name yourself:
  curl -H 'Host: $host' -H 'Content-Type: image/jpeg' --data-binary @photo.jpg http://$gateway/classify
or serve the routes under that address (the URLs change to *.$gateway.sslip.io):
  KLASSIFY_DOMAIN=$gateway.sslip.io scripts/minikube-up.sh
MSG
  fi
  cat <<MSG
Send an event through the broker:
  kubectl --context $MINIKUBE_PROFILE -n knative-eventing port-forward svc/broker-ingress 8081:80
  npm run emit -- chelsea.png --broker http://localhost:8081/$NAMESPACE/default
Watch the function scale:  kubectl --context $MINIKUBE_PROFILE -n $NAMESPACE get pods -w
MSG
}

# The node's allocatable CPU (millicores) and memory (MiB), as the scheduler sees them.
node_allocatable() {
  local allocatable cpu mib
  allocatable=$(kube get nodes -o jsonpath='{.items[0].status.allocatable.cpu} {.items[0].status.allocatable.memory}')
  read -r cpu mib <<<"$allocatable"
  [[ -n $cpu && -n $mib ]] || die "cannot read the node's allocatable CPU and memory"
  cpu=$(quantity_milli_cpu "$cpu")
  mib=$(quantity_mib "$mib")
  echo "$cpu $mib"
}

# MAX_SCALE for the classify Service on this node, from the same arithmetic as the profile
# choice (capacity.sh). The GPU overlay is sized by GPUs and keeps its own; it is refused
# where no node advertises one.
derive_max_scale() {
  MAX_SCALE=""
  if [[ -n $OVERLAY ]]; then
    check_overlay_fits
    return 0
  fi
  local allocatable holds cpu mib max_scale beside_ui
  read_pod_requests
  allocatable=$(node_allocatable)
  read -r cpu mib <<<"$allocatable"
  holds=$(capacity_for "$cpu" "$mib")
  read -r max_scale beside_ui <<<"$holds"
  ((max_scale >= 1)) || die "the node's allocatable ${cpu}m CPU and $mib MiB hold no classify pod next to Knative and the UI with room for a rollout. Profiles that do:
$(profiles_report "" "")"
  log "the node has ${cpu}m CPU and $mib MiB allocatable: $beside_ui classify pods fit beside the UI; max-scale $max_scale keeps room for a rollout (derived from requests, docs/scaling.md)"
  warn_unreserved "$cpu"
  MAX_SCALE=$max_scale
}

# A docker-driver node made without the kubelet reservation (by hand, or by an older
# script) reports the whole host: its container's CPU quota is less than the scheduler sees.
warn_unreserved() {
  local quota
  [[ $(profile_driver) == docker ]] || return 0
  quota=$(docker container inspect --format '{{.HostConfig.NanoCpus}}' "$MINIKUBE_PROFILE" 2>/dev/null || true)
  [[ $quota =~ ^[0-9]+$ ]] && ((quota > 0 && $1 > quota / 1000000)) || return 0
  log "WARNING: the scheduler sees $(($1 / 1000)) CPUs, but the node's container may use $((quota / 1000000000)): the profile was made without the kubelet reservation, so pods share fewer CPUs than the arithmetic assumes. Recreate it: npm run teardown -- --cluster && npm run deploy:minikube"
}

check_overlay_fits() {
  [[ $OVERLAY == gpu ]] || return 0
  local gpus
  gpus=$(kube get nodes -o jsonpath='{.items[*].status.allocatable.nvidia\.com/gpu}')
  [[ $gpus =~ [1-9] ]] || die "no node of $MINIKUBE_PROFILE advertises nvidia.com/gpu: the GPU overlay needs a cluster with the NVIDIA device plugin, a GPU image and 4 free CPUs on the GPU node (docs/gpu.md)"
}

# Builds the image under a new unique tag, applies knative/ with it, waits, and prints
# the URLs: the shared last step of minikube-up.sh and deploy.sh.
roll_out() {
  local tag
  derive_max_scale
  tag=$(image_tag)
  build_image "$tag"
  apply_manifests "$tag"
  wait_for_services
  print_endpoints
}
