# syntax=docker/dockerfile:1
# klassify: one image, two commands.
#   classify function (default):  node dist/classify/main.js
#   UI server:                    node dist/ui/server.js
#
# The base is pinned by version tag (the exact Node.js release). Where Docker Hub cannot
# be reached, scripts/build-base-image.sh assembles the same layout (Debian bookworm +
# Node.js 22.23.3 + npm, user `node` uid 1000) and the build passes
#   --build-arg BASE_IMAGE=localhost/klassify-base:bookworm-node22
# For production, pin by digest: node:22.23.3-bookworm-slim@sha256:<digest from your registry>.
#
# Stages are split by what their output depends on, so that a code-only change rebuilds
# only the code and yields a new dist/ layer alone (scripts/layer-check.sh shows it):
#   deps   production node_modules: the lockfile and the prune script only;
#   model  the converted model: the lockfile, the model checksums and converter, the
#          function's source (which the converter imports);
#   build  dist/: everything.
# Each stage's output gets fixed file times (KLASSIFY_FILE_TIME), so a stage that reruns
# with the same result yields the same layer digest.
ARG BASE_IMAGE=docker.io/library/node:22.23.3-bookworm-slim

# ---------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS node-base
WORKDIR /src
# KLASSIFY_FILE_TIME: 1985-10-26, the time npm stamps on packed files; any fixed value works.
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false \
    KLASSIFY_FILE_TIME=499162500

# ONNX Runtime's install script would fetch its optional CUDA libraries from NuGet; the
# image uses the CPU and WebGPU providers bundled in the package. package.json's
# allowScripts skips that script for npm 11.16 and later; the image's npm 10 ignores that
# field, so it gets the variable the script itself reads.
ENV ONNXRUNTIME_NODE_INSTALL=skip

# ---------------------------------------------------------------------------------------
# deps: production dependencies only (no @types/*, no TypeScript, no esbuild), pruned to
# what Node.js on Linux loads, with the ONNX Runtime and sharp binaries of the architecture
# being built (amd64 or arm64: `minikube image build` builds for the node's own, so an
# Apple Silicon Mac gets arm64). The stage runs on that architecture, natively or emulated,
# so npm installs its sharp binaries and the prune script keeps its ONNX Runtime ones; it
# checks TARGETARCH (set by BuildKit and buildah, empty with the legacy builder) against
# `uname -m`.
FROM node-base AS deps
ARG TARGETARCH=
# Only for builds behind a TLS-intercepting proxy: the path of a CA bundle that the build
# mounts with --volume (scripts/test-container.sh does). It reaches no layer of the image.
ARG NODE_EXTRA_CA_CERTS=
COPY package.json package-lock.json .npmrc ./
COPY container/prune-node-modules.sh container/
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --omit=dev \
 && sh container/prune-node-modules.sh node_modules \
 && mkdir /app && mv node_modules /app/ \
 && find /app -exec touch -h -d "@$KLASSIFY_FILE_TIME" {} +

# ---------------------------------------------------------------------------------------
# dev: every dependency, for compiling and for the model converter.
FROM node-base AS dev
ARG NODE_EXTRA_CA_CERTS=
COPY package.json package-lock.json .npmrc ./
RUN --mount=type=cache,target=/root/.npm,sharing=locked npm ci

# ---------------------------------------------------------------------------------------
# model: every model the image serves (MobileNet v1 from its TF.js files, v2 from its TFLite
# file), fetched from its public URL and checked against the SHA-256 sums pinned in its
# module (functions/classify/src/model/mobilenet-v1.ts, mobilenet-v2.ts), then converted to
# ONNX; v1 also in int8 (KLASSIFY_MODEL_PRECISION=int8). Offline builds pass a mirror inside
# the build context instead (scripts/test-container.sh stages one at .cache/model-mirror);
# the same checksums apply, so a mirror cannot change what gets baked in. `npm run model` also
# saves ONNX Runtime's optimised graph for the build machine's CPU (~200 ms less cold start);
# its name carries a CPU+runtime fingerprint, so on another CPU the function ignores it.
FROM dev AS model
ARG NODE_EXTRA_CA_CERTS=
ARG KLASSIFY_MODEL_MIRROR=
COPY tsconfig.json ./
COPY scripts/fetch-model.ts scripts/
COPY contracts contracts
COPY server-kit server-kit
COPY functions/classify/src functions/classify/src
# The optional mirror (.dockerignore lets only .cache/model-mirror in); package.json makes
# the COPY valid when there is none.
COPY package.json .cach[e] .cache/
RUN KLASSIFY_MODEL_CACHE=/app/model npm run model \
 && KLASSIFY_MODEL_CACHE=/app/model KLASSIFY_MODELS=mobilenet_v1_0.75_224 KLASSIFY_MODEL_PRECISION=int8 npm run model \
 && find /app -exec touch -h -d "@$KLASSIFY_FILE_TIME" {} +

# ---------------------------------------------------------------------------------------
# build: the esbuild bundles of the function and the UI.
FROM dev AS build
COPY . .
RUN npm run build \
 && mkdir /app && cp -R dist /app/ \
 && find /app -exec touch -h -d "@$KLASSIFY_FILE_TIME" {} +

# ---------------------------------------------------------------------------------------
# runtime: production dependencies, the converted model and the compiled code, owned by
# root and read-only to the unprivileged user. Nothing is written outside /tmp, so the
# root filesystem can be mounted read-only (mount an emptyDir at /tmp).
FROM ${BASE_IMAGE} AS runtime
# MALLOC_ARENA_MAX=2: two malloc arenas instead of one per thread, ~30 MB less RSS under
# load with no throughput change (docs/performance.md).
# UV_THREADPOOL_SIZE=6: with KLASSIFY_DECODERS=0 (decoding in the server), four decode
# threads plus two for file I/O (docs/reliability.md); libuv reads it before any
# JavaScript runs, so it lives here.
# MALLOC_MMAP_THRESHOLD_=4 MiB: a large decode buffer goes back to the kernel when freed,
# instead of staying in an arena while the next decode allocates its own, so the decode
# gate's budget holds (docs/reliability.md). The decoder processes inherit both.
ENV NODE_ENV=production \
    HOME=/tmp \
    TMPDIR=/tmp \
    PORT=8080 \
    KLASSIFY_MODEL_CACHE=/app/model \
    KLASSIFY_MODEL_FETCH=never \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=4194304 \
    UV_THREADPOOL_SIZE=6
WORKDIR /app
# Layers ordered by how often they change: dependencies (lockfile), the model (pinned
# checksums), package.json, then the compiled code. For a code change a registry-based
# cluster pulls only the last one (~3 MB, 0.7 MB compressed: the function's pure-JS dependencies are bundled into it).
COPY --from=deps /app/node_modules /app/node_modules
COPY --from=model /app/model /app/model
COPY package.json /app/package.json
COPY --from=build /app/dist /app/dist
# Numeric, so Kubernetes' runAsNonRoot can verify it; uid 1000 is `node` in the base.
USER 1000:1000
EXPOSE 8080
CMD ["node", "dist/classify/main.js"]
