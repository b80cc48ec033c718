#!/usr/bin/env bash
# Builds the algorithm image:  ./build.sh [extra `docker build` arguments]
# Environment:
#   DOCKER_TAG     image tag (default lightmycells:latest)
#   BASE_IMAGE     base image with Python 3.11 + torch (default: the Dockerfile's pytorch/pytorch
#                  CUDA runtime tag). Without registry access: BASE_IMAGE=$(scripts/build_base_image.sh)
#   PIP_INDEX_URL  an http(s) PyPI mirror for the build (default: pip config's global.index-url;
#                  file:// indexes cannot reach the build and are ignored)
#   BUILD_NETWORK  network of the build's RUN steps (default host: the build reaches PyPI exactly as
#                  this machine does, proxies and DNS included; set to "default" for Docker's bridge)
#   CA_BUNDLE      CA bundle pip uses during the build (default: this machine's; behind a
#                  TLS-inspecting proxy pip needs it). It is copied to build/docker/ca-bundle.crt,
#                  used only in the Dockerfile's first stage and absent from the final image.
set -euo pipefail
cd "$(dirname "$0")"

DOCKER_TAG=${DOCKER_TAG:-lightmycells:latest}
BUILD_NETWORK=${BUILD_NETWORK:-host}

mkdir -p build/docker
ca_bundle=${CA_BUNDLE:-${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}
if [ -f "$ca_bundle" ]; then
  cp "$ca_bundle" build/docker/ca-bundle.crt
else
  : > build/docker/ca-bundle.crt   # empty = pip keeps its own certificates
fi

args=(--tag "$DOCKER_TAG" --file Dockerfile)
[ -n "${BASE_IMAGE:-}" ] && args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
# The machine's own index (pip config) when the environment names none; only http(s) can reach a build.
index_url=${PIP_INDEX_URL:-$(python3 -m pip config get global.index-url 2>/dev/null || true)}
case "$index_url" in http://*|https://*) args+=(--build-arg "PIP_INDEX_URL=$index_url") ;; esac
[ "$BUILD_NETWORK" != default ] && args+=(--network "$BUILD_NETWORK")

echo "build.sh: docker build ${args[*]} $* ." >&2
start=$(date +%s)
docker build "${args[@]}" "$@" .
echo "build.sh: built $DOCKER_TAG in $(( $(date +%s) - start ))s" >&2
