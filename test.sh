#!/usr/bin/env bash
# Proves the algorithm end to end on the held-out studies, under the platform's conditions.
#   ./test.sh            build the image (./build.sh), run it like grand-challenge does, check, score
#   ./test.sh --local    the same without Docker: `python process.py` in .venv (scripts/setup_env.sh)
#   ./test.sh --no-build reuse the image DOCKER_TAG as it is
# Steps: stage test/studies as the challenge's flat input folder (scripts/stage_inputs.py); run;
# check every output (scripts/check_outputs.py: four folders, same names, same shapes, OME-XML with
# the input's pixel size); score (python -m metrics score --strict); scan for visible defects
# (python -m metrics defects); compare with test/thresholds.json (scripts/check_thresholds.py, which
# documents the file). Any failure stops with "test.sh: FAILED".
#
# The container runs as the platform runs it: no arguments (default /input and /output), no network,
# capped memory / shared memory / processes / CPUs, no capabilities, no privilege escalation, input
# read-only, /output a throwaway volume, /tmp a tmpfs, the image's non-root user, a GPU if there is one.
#
# Environment (defaults in brackets):
#   DOCKER_TAG [lightmycells:latest]  STUDIES [test/studies]  THRESHOLDS [test/thresholds.json]
#   WEIGHTS [weights]: the manifest whose routes the defect scan reports (the image bakes in weights/)
#   WORK [build/test-run]: inputs, outputs and metrics.json are left here for inspection
#   MEMORY [16g]  SHM_SIZE [1g]  PIDS_LIMIT [256]  CPUS [min(4, cores)]  TMPFS_SIZE [4g]
#   GPUS [auto]: auto = --gpus all when nvidia-smi works; all; none
#   LMC_PYTHON: host Python for staging/checks/scoring (default: .venv made by scripts/setup_env.sh)
#   build.sh's variables (BASE_IMAGE, PIP_INDEX_URL, ...) pass through to the build.
set -euo pipefail
cd "$(dirname "$0")"

mode=docker
build=1
for arg in "$@"; do
  case "$arg" in
    --local) mode=local ;;
    --no-build) build=0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument $arg (see ./test.sh --help)" >&2; exit 2 ;;
  esac
done

DOCKER_TAG=${DOCKER_TAG:-lightmycells:latest}
STUDIES=${STUDIES:-test/studies}
THRESHOLDS=${THRESHOLDS:-test/thresholds.json}
WORK=${WORK:-build/test-run}
MEMORY=${MEMORY:-16g}
SHM_SIZE=${SHM_SIZE:-1g}
PIDS_LIMIT=${PIDS_LIMIT:-256}
TMPFS_SIZE=${TMPFS_SIZE:-4g}
GPUS=${GPUS:-auto}
cores=$(nproc 2>/dev/null || echo 1)
CPUS=${CPUS:-$(( cores < 4 ? cores : 4 ))}   # the platform gives 4 vCPUs; docker refuses more than exist

started=$(date +%s)
step() { echo "test.sh: == $*" >&2; }
fail() { echo "test.sh: FAILED: $*" >&2; exit 1; }

if [ -n "${LMC_PYTHON:-}" ]; then
  py=$LMC_PYTHON
else
  step "python environment (scripts/setup_env.sh)"
  scripts/setup_env.sh || fail "scripts/setup_env.sh could not create .venv"
  py=.venv/bin/python
fi

[ -d "$STUDIES" ] || fail "no held-out studies at $STUDIES (Study_*/ folders with TL and organelle files)"
csv=$STUDIES/bestz.csv
[ -f "$csv" ] || fail "no focus table $csv (columns name,modality,image_z,best_z)"
[ -f "$THRESHOLDS" ] || fail "no thresholds file $THRESHOLDS"

rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)   # bind mounts need an absolute path
stage=$WORK/input
out=$WORK/output
mkdir -p "$out"

step "staging $STUDIES as the challenge's input folder"
"$py" -m scripts.stage_inputs --studies "$STUDIES" --out "$stage" || fail "could not stage inputs from $STUDIES"
# The container's user is not the owner: folders must be world-readable (files are hard links to
# the studies and keep their own modes).
find "$stage" -type d -exec chmod a+rx {} +
n_inputs=$(find "$stage" -type f | wc -l)

run_started=$(date +%s)
if [ "$mode" = docker ]; then
  if [ "$build" = 1 ]; then
    step "building $DOCKER_TAG (./build.sh)"
    DOCKER_TAG=$DOCKER_TAG ./build.sh || fail "image build failed (./build.sh)"
  fi
  image_user=$(docker image inspect --format '{{.Config.User}}' "$DOCKER_TAG" 2>/dev/null) \
    || fail "no image $DOCKER_TAG (run ./build.sh)"
  # The platform runs algorithms as a non-root user; an image that only works as root must not pass.
  case "${image_user%%:*}" in
    ""|0|root) fail "image $DOCKER_TAG runs as root (USER '${image_user}'); it must set a non-root USER" ;;
  esac

  volume=lmc-test-output-$$-$RANDOM
  copier=lmc-test-copy-$$-$RANDOM
  cleanup() {
    docker rm -f "$copier" >/dev/null 2>&1 || true
    docker volume rm -f "$volume" >/dev/null 2>&1 || true
  }
  trap cleanup EXIT
  docker volume create "$volume" >/dev/null || fail "docker volume create failed"

  gpu_args=()
  case "$GPUS" in
    all) gpu_args=(--gpus all) ;;
    none) ;;
    auto) if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then gpu_args=(--gpus all); fi ;;
    *) fail "GPUS must be auto, all or none, not $GPUS" ;;
  esac

  run_args=(--rm --network none
            --memory "$MEMORY" --memory-swap "$MEMORY" --shm-size "$SHM_SIZE"
            --pids-limit "$PIDS_LIMIT" --cpus "$CPUS"
            --cap-drop ALL --security-opt no-new-privileges
            --volume "$stage:/input:ro"
            --volume "$volume:/output"
            --tmpfs "/tmp:rw,size=$TMPFS_SIZE"
            "${gpu_args[@]}")
  step "running $DOCKER_TAG on $n_inputs inputs: docker run ${run_args[*]} $DOCKER_TAG"
  set +e
  docker run "${run_args[@]}" "$DOCKER_TAG"
  rc=$?
  set -e
  [ "$rc" = 0 ] || fail "container exited with status $rc"

  step "copying /output out of volume $volume"
  docker create --name "$copier" --volume "$volume:/output:ro" "$DOCKER_TAG" >/dev/null \
    || fail "docker create (to copy the outputs) failed"
  docker cp "$copier:/output/." "$out" || fail "docker cp of /output failed"
else
  step "running process.py on $n_inputs inputs (no Docker)"
  set +e
  "$py" process.py --input "$stage/images/organelles-transmitted-light-ome-tiff" --output "$out"
  rc=$?
  set -e
  [ "$rc" = 0 ] || fail "process.py exited with status $rc"
fi
run_seconds=$(( $(date +%s) - run_started ))

step "checking outputs"
"$py" -m scripts.check_outputs --input "$stage" --pred "$out" || fail "outputs missing or invalid (listed above)"

beat=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("require_beat_baselines") is True)' \
  "$THRESHOLDS") || fail "cannot read $THRESHOLDS"
# The baselines (constant image, normalised TL input) are always scored on the same images and
# printed beside the model, into metrics.<baseline>.json beside metrics.json; they become a bar
# only when require_beat_baselines is true.
score_args=(--pred "$out" --gt "$STUDIES" --csv "$csv" --input "$stage/images/organelles-transmitted-light-ome-tiff"
            --json "$out/metrics.json" --quiet --baselines "$stage/images/organelles-transmitted-light-ome-tiff"
            --strict)   # stop as the organizers' evaluation stops (metrics/README.md, "Strict mode")
step "scoring against $STUDIES, with the baselines"
"$py" -m metrics score "${score_args[@]}" || fail "the scorer failed or found unscorable files (python -m metrics score)"
[ -s "$out/metrics.json" ] || fail "the scorer wrote no $out/metrics.json"

baseline_args=()
if [ "$beat" = True ]; then
  for path in "$out"/metrics.*.json; do
    [ -f "$path" ] || fail "require_beat_baselines is set but the scorer wrote no baseline metrics"
    name=${path##*/metrics.}
    baseline_args+=(--baseline "${name%.json}=$path")
  done
fi

# What a person would see and the metrics miss (saturated corners, checkerboards, seams, invented
# spots, NaN): every prediction is scanned with the routes the shipped manifest gives its modality.
# The findings fail the run only where the thresholds file sets enforce_defects.
step "scanning every prediction for visible defects (python -m metrics defects)"
"$py" -m metrics defects --pred "$out" --gt "$STUDIES" --input "$stage/images/organelles-transmitted-light-ome-tiff" \
  --weights "${WEIGHTS:-weights}" --json "$out/defects.json" --quiet || fail "the defect scan could not run"

step "comparing with $THRESHOLDS"
"$py" -m scripts.check_thresholds --metrics "$out/metrics.json" --thresholds "$THRESHOLDS" "${baseline_args[@]}" \
  --defects "$out/defects.json" \
  || fail "metrics below the bar in $THRESHOLDS (or unusable files, see above)"

echo "test.sh: PASSED ($mode: $n_inputs inputs, run ${run_seconds}s, total $(( $(date +%s) - started ))s;" \
  "outputs and metrics.json in $out)" >&2
