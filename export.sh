#!/usr/bin/env bash
# Saves the built image as a gzipped archive for upload to grand-challenge:
#   ./export.sh            -> lightmycells.tar.gz   (DOCKER_TAG [lightmycells:latest], ARCHIVE to rename)
set -euo pipefail
cd "$(dirname "$0")"

DOCKER_TAG=${DOCKER_TAG:-lightmycells:latest}
ARCHIVE=${ARCHIVE:-${DOCKER_TAG%%:*}.tar.gz}

docker image inspect "$DOCKER_TAG" >/dev/null 2>&1 || { echo "export.sh: no image $DOCKER_TAG (run ./build.sh)" >&2; exit 1; }
start=$(date +%s)
trap 'rm -f "$ARCHIVE.partial"' EXIT
# Write next to the target and rename: an interrupted export never leaves a truncated archive behind.
docker save "$DOCKER_TAG" | gzip -c > "$ARCHIVE.partial"
mv "$ARCHIVE.partial" "$ARCHIVE"
size=$(du -h "$ARCHIVE" | cut -f1)
echo "export.sh: $ARCHIVE ($size, $(stat -c %s "$ARCHIVE") bytes) in $(( $(date +%s) - start ))s"
