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
ARG BASE_IMAGE=docker.io/library/node:22.23.3-bookworm-slim

# ---------------------------------------------------------------------------------------
# build: lockfile install, compile, bundle the UI, fetch + verify + convert the model,
# then reduce node_modules to what linux-x64 production needs. One COPY and one RUN on
# purpose: under the vfs storage driver (our CI) every layer is a full copy of the tree,
# and the npm cache mount keeps reinstalls fast without a separate `npm ci` layer.
FROM ${BASE_IMAGE} AS build
WORKDIR /src
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
# Only for builds behind a TLS-intercepting proxy: the path of a CA bundle that the build
# mounts with --volume (scripts/test-container.sh does). It reaches no layer of the image.
ARG NODE_EXTRA_CA_CERTS=
# The model is fetched from its public URL and checked against the SHA-256 sums pinned in
# functions/classify/src/model/checksums.ts. Offline builds pass a mirror inside the build
# context instead (scripts/test-container.sh stages one at .cache/model-mirror); the same
# checksums apply, so a mirror cannot change what gets baked in.
ARG KLASSIFY_MODEL_MIRROR=
COPY . .
# `npm run model` also saves ONNX Runtime's optimised graph for the build machine's CPU
# (~200 ms less cold start). Its name carries a CPU+runtime fingerprint, so on another CPU
# the function ignores it and loads the portable ONNX file.
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci \
 && npm run build \
 && KLASSIFY_MODEL_CACHE=/app/model npm run model \
 && npm prune --omit=dev \
 && sh container/prune-node-modules.sh node_modules \
 && cp -R package.json dist node_modules /app/ \
 && rm -rf /src/node_modules

# ---------------------------------------------------------------------------------------
# runtime: production dependencies, compiled code and the converted model, owned by root
# and read-only to the unprivileged user. Nothing is written outside /tmp, so the root
# filesystem can be mounted read-only (mount an emptyDir at /tmp).
FROM ${BASE_IMAGE} AS runtime
# MALLOC_ARENA_MAX=2: two malloc arenas instead of one per thread, ~30 MB less RSS under
# load with no throughput change (docs/performance.md).
ENV NODE_ENV=production \
    HOME=/tmp \
    TMPDIR=/tmp \
    PORT=8080 \
    KLASSIFY_MODEL_CACHE=/app/model \
    KLASSIFY_MODEL_FETCH=never \
    MALLOC_ARENA_MAX=2
WORKDIR /app
# Layers ordered by how often they change, so a registry-based cluster pulls only
# the small dist/ layer (~3 MB, 0.7 MB compressed) for a code change: dependencies (lockfile), the model
# (pinned checksums), then the compiled code.
COPY --from=build /app/node_modules /app/node_modules
COPY --from=build /app/model /app/model
COPY --from=build /app/package.json /app/package.json
COPY --from=build /app/dist /app/dist
# Numeric, so Kubernetes' runAsNonRoot can verify it; uid 1000 is `node` in the base.
USER 1000:1000
EXPOSE 8080
CMD ["node", "dist/classify/main.js"]
