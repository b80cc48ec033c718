#!/usr/bin/env bash
# The real container path, called by .ci/run: start a Docker engine, build the local base image
# (unless BASE_IMAGE names one), ./build.sh, ./test.sh (the container under the platform's
# constraints, checked and scored), ./export.sh. Where no engine can be started (no root, no
# docker.io, no kernel support), it says why and exits 0: the rest of CI still proves the code
# with ./test.sh --local. Once an engine answers, any failure fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "docker_path: $*" >&2; }
t0=$(date +%s)
lap() { echo "docker_path: $1 took $(( $(date +%s) - t0 ))s" >&2; t0=$(date +%s); }

if ! scripts/start_dockerd.sh; then
  say "SKIPPED: no Docker engine can be started on this machine (see the reason above);"
  say "the container path is not proven here, ./test.sh --local covers the code"
  exit 0
fi
lap "starting the engine"

if [ -z "${BASE_IMAGE:-}" ]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap to build the local base image"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2 \
      || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2; }
  fi
  BASE_IMAGE=$(scripts/build_base_image.sh)
  lap "the local base image ($BASE_IMAGE)"
fi
export BASE_IMAGE

./build.sh
lap "./build.sh"
./test.sh --no-build
lap "./test.sh"
./export.sh
lap "./export.sh"
say "container path passed"
