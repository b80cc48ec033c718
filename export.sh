#!/usr/bin/env bash
# Saves the built image as a gzipped archive for upload to grand-challenge:
#   ./export.sh            -> lightmycells.tar.gz   (DOCKER_TAG [lightmycells:latest], ARCHIVE to rename)
#   ./export.sh --model    -> model.tar.gz           (MODEL_ARCHIVE to rename): weights/ alone, for the
#                             platform's "model" upload; the container reads it from /opt/ml/model,
#                             so new weights need no new image
set -euo pipefail
cd "$(dirname "$0")"

# Write next to the target and rename: an interrupted export never leaves a truncated archive behind.
if [ "${1:-}" = --model ]; then
  MODEL_ARCHIVE=${MODEL_ARCHIVE:-model.tar.gz}
  [ -f weights/manifest.json ] || { echo "export.sh: weights/manifest.json missing" >&2; exit 1; }
  trap 'rm -f "$MODEL_ARCHIVE.partial"' EXIT
  tar -C weights -czf "$MODEL_ARCHIVE.partial" .
  mv "$MODEL_ARCHIVE.partial" "$MODEL_ARCHIVE"
  echo "export.sh: $MODEL_ARCHIVE ($(stat -c %s "$MODEL_ARCHIVE") bytes): manifest.json and checkpoints at its top"
  exit 0
fi
[ $# -eq 0 ] || { echo "export.sh: unknown argument $1 (only --model)" >&2; exit 2; }

DOCKER_TAG=${DOCKER_TAG:-lightmycells:latest}
ARCHIVE=${ARCHIVE:-${DOCKER_TAG%%:*}.tar.gz}

docker image inspect "$DOCKER_TAG" >/dev/null 2>&1 || { echo "export.sh: no image $DOCKER_TAG (run ./build.sh)" >&2; exit 1; }
start=$(date +%s)
trap 'rm -f "$ARCHIVE.partial"' EXIT
docker save "$DOCKER_TAG" | gzip -c > "$ARCHIVE.partial"
mv "$ARCHIVE.partial" "$ARCHIVE"
size=$(du -h "$ARCHIVE" | cut -f1)
echo "export.sh: $ARCHIVE ($size, $(stat -c %s "$ARCHIVE") bytes) in $(( $(date +%s) - start ))s"
