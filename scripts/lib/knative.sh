# shellcheck shell=bash
# Steps shared by minikube-up.sh and deploy.sh. Sourced after versions.sh and common.sh.
# Every kubectl call names the Minikube profile's context, so the scripts never act on
# whatever cluster the user's kubectl happens to point at.

NAMESPACE="klassify"
MANIFEST_DIR="$ROOT/knative"
# The tag the manifests carry; rendering replaces it with the build's unique tag.
MANIFEST_IMAGE="$IMAGE_REPOSITORY:dev"

kube() { kubectl --context "$MINIKUBE_PROFILE" "$@"; }

# A unique tag per build: the commit plus a timestamp, so each deploy is a new revision.
# KLASSIFY_IMAGE_TAG overrides it (tests, or re-deploying a known build).
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

# All manifests in file order as one stream, with the image tag substituted.
render_manifests() {
  local tag=$1 file
  for file in "$MANIFEST_DIR"/[0-9][0-9][0-9]-*.yaml; do
    printf -- '---\n# Source: knative/%s\n' "${file##*/}"
    sed "s#$MANIFEST_IMAGE\$#$IMAGE_REPOSITORY:$tag#" "$file"
  done
}

apply_manifests() {
  local tag=$1
  log "applying knative/ with image tag $tag"
  render_manifests "$tag" | kube apply -f -
}

wait_for_services() {
  log "waiting for the Services, Broker and Triggers to be ready"
  kube -n "$NAMESPACE" wait --for=condition=Ready --timeout=300s ksvc/classify ksvc/ui
  kube -n "$NAMESPACE" wait --for=condition=Ready --timeout=120s broker/default
  kube -n "$NAMESPACE" wait --for=condition=Ready --timeout=120s trigger --all
}

print_endpoints() {
  local ui classify broker revision
  ui=$(kube -n "$NAMESPACE" get ksvc ui -o jsonpath='{.status.url}')
  classify=$(kube -n "$NAMESPACE" get ksvc classify -o jsonpath='{.status.url}')
  revision=$(kube -n "$NAMESPACE" get ksvc classify -o jsonpath='{.status.latestReadyRevisionName}')
  broker=$(kube -n "$NAMESPACE" get broker default -o jsonpath='{.status.address.url}')
  cat <<MSG

klassify is running (classify revision $revision).
  UI:              $ui
  Function:        $classify/classify
  Broker ingress:  $broker   (cluster-internal)

These URLs need \`minikube tunnel -p $MINIKUBE_PROFILE\` running in another terminal.
Without it, forward Kourier and add the port:
  kubectl --context $MINIKUBE_PROFILE -n kourier-system port-forward svc/kourier 8080:80
  open $ui:8080
Send an event through the broker:
  kubectl --context $MINIKUBE_PROFILE -n knative-eventing port-forward svc/broker-ingress 8081:80
  npm run emit -- chelsea.png --broker http://localhost:8081/$NAMESPACE/default
Watch the function scale:  kubectl --context $MINIKUBE_PROFILE -n $NAMESPACE get pods -w
MSG
}

# Builds the image under a new unique tag, applies knative/ with it, waits, and prints
# the URLs: the shared last step of minikube-up.sh and deploy.sh.
roll_out() {
  local tag
  tag=$(image_tag)
  build_image "$tag"
  apply_manifests "$tag"
  wait_for_services
  print_endpoints
}
