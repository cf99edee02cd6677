# shellcheck shell=bash
# Steps shared by minikube-up.sh, deploy.sh and load-test.sh. Sourced after versions.sh
# and common.sh. Every kubectl call names the Minikube profile's context, so the scripts
# never act on whatever cluster the user's kubectl happens to point at.

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
  token=$(kube -n "$NAMESPACE" get secret "$EVENTS_SECRET" --ignore-not-found -o jsonpath='{.data.token}' | base64 -d)
  if [[ -z $token ]]; then
    token=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
  fi
  [[ $token =~ ^[A-Za-z0-9_-]{16,}$ ]] || die "the Secret $EVENTS_SECRET holds an unusable token; delete it to get a new one"
  printf '%s\n' "$token"
}

# write_overlay DIR TAG TOKEN: a kustomization on top of knative/base (or the chosen
# overlay) that sets the image tag, adds the Secret, and appends the token to the UI's
# event and dead-letter paths in the Triggers.
write_overlay() {
  local dir=$1 tag=$2 token=$3 source="$MANIFEST_DIR/base"
  if [[ -n $OVERLAY ]]; then source="$MANIFEST_DIR/overlays/$OVERLAY"; fi
  [[ -f $source/kustomization.yaml ]] || die "no kustomization.yaml in $source (KLASSIFY_OVERLAY=$OVERLAY)"
  # kustomize takes relative paths only.
  source=$(realpath --relative-to="$dir" "$source")
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
  )
}

# Applies the base (or KLASSIFY_OVERLAY) with the build's tag and the events token.
apply_manifests() {
  local tag=$1 token dir status=0
  token=$(events_token)
  mkdir -p "$ROOT/.cache"
  dir=$(mktemp -d "$ROOT/.cache/deploy.XXXXXX")
  write_overlay "$dir" "$tag" "$token"
  log "applying knative/${OVERLAY:+overlays/}${OVERLAY:-base} with image tag $tag"
  kube apply -k "$dir" || status=$?
  # The overlay holds the token: it goes as soon as it has been applied.
  rm -rf "$dir"
  return "$status"
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

print_endpoints() {
  local ui classify broker revision gateway host
  ui=$(kube -n "$NAMESPACE" get ksvc ui -o jsonpath='{.status.url}')
  classify=$(kube -n "$NAMESPACE" get ksvc classify -o jsonpath='{.status.url}')
  revision=$(kube -n "$NAMESPACE" get ksvc classify -o jsonpath='{.status.latestReadyRevisionName}')
  broker=$(kube -n "$NAMESPACE" get broker default -o jsonpath='{.status.address.url}')
  gateway=$(gateway_address)
  host=${classify#*://}
  cat <<MSG

klassify is running (classify revision $revision).
  UI:              $ui
  Function:        $classify/classify
  Broker ingress:  $broker   (cluster-internal)

MSG
  if [[ -z $gateway ]]; then
    cat <<MSG
These URLs need \`minikube tunnel -p $MINIKUBE_PROFILE\` running in another terminal; then
run this script again to check the address Kourier got. Without a tunnel, forward Kourier:
  kubectl --context $MINIKUBE_PROFILE -n kourier-system port-forward svc/kourier 8080:80
  curl -H 'Host: $host' -H 'Content-Type: image/jpeg' --data-binary @photo.jpg http://127.0.0.1:8080/classify
MSG
  elif [[ $host == *".$gateway.sslip.io" ]]; then
    printf 'The tunnel gives Kourier %s, which the URLs above resolve to.\n' "$gateway"
  else
    cat <<MSG
The tunnel gives Kourier $gateway, but the URLs above do not resolve there. Either serve
the routes under that address (then the URLs above change to *.$gateway.sslip.io):
  KLASSIFY_DOMAIN=$gateway.sslip.io scripts/minikube-up.sh
or send the host name yourself:
  curl -H 'Host: $host' -H 'Content-Type: image/jpeg' --data-binary @photo.jpg http://$gateway/classify
MSG
  fi
  cat <<MSG
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
