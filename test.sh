#!/usr/bin/env bash
# Proves the algorithm end to end on the held-out studies, under the platform's conditions.
#   ./test.sh            build the image (./build.sh), run it like grand-challenge does, check, score
#   ./test.sh --local    the same without Docker: `python process.py` in .venv (scripts/setup_env.sh)
#   ./test.sh --no-build reuse the image DOCKER_TAG as it is
# The container runs as the platform runs it: no arguments (default /input and /output), no network,
# capped memory / shared memory / processes / CPUs, no capabilities, no privilege escalation, input
# read-only, /output a throwaway volume, /tmp a tmpfs, the image's non-root user, a GPU if there is one.
# The rest is scripts/smoke.py's: staging test/studies as the challenge's input folder, checking every
# output, strict scoring beside the baselines, the defect scan, test/thresholds.json (its docstring
# says more). Any failure stops with "test.sh: FAILED".
# Environment [defaults]: DOCKER_TAG [lightmycells:latest]  STUDIES [test/studies]
#   THRESHOLDS [test/thresholds.json]  WORK [build/test-run]: inputs, outputs, metrics.json are kept
#   WEIGHTS [weights]: the manifest whose routes the defect scan reports (the image bakes in weights/)
#   MEMORY [16g]  SHM_SIZE [1g]  PIDS_LIMIT [256]  CPUS [min(4, cores)]  TMPFS_SIZE [4g]
#   GPUS [auto]: auto = --gpus all when nvidia-smi works; all; none
#   LMC_PYTHON [.venv/bin/python, made by scripts/setup_env.sh]: runs staging, checks and scoring
#   build.sh's variables (BASE_IMAGE, PIP_INDEX_URL, ...) pass through to the build.
set -euo pipefail
cd "$(dirname "$0")"
mode=docker build=1
for arg in "$@"; do
  case "$arg" in
    --local) mode=local ;;
    --no-build) build=0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument $arg (see ./test.sh --help)" >&2; exit 2 ;;
  esac
done
step() { echo "test.sh: == $*" >&2; }
fail() { echo "test.sh: FAILED: $*" >&2; exit 1; }
py=${LMC_PYTHON:-.venv/bin/python}
[ -n "${LMC_PYTHON:-}" ] || { step "python environment (scripts/setup_env.sh)"; scripts/setup_env.sh \
  || fail "scripts/setup_env.sh could not create .venv"; }
work=$("$py" -m scripts.smoke prepare)   # WORK, absolute (bind mounts need it): input/ staged, output/ empty
run_started=$SECONDS
if [ "$mode" = local ]; then
  "$py" -m scripts.smoke run-local
else
  tag=${DOCKER_TAG:-lightmycells:latest}
  if [ "$build" = 1 ]; then
    step "building $tag (./build.sh)"
    DOCKER_TAG=$tag ./build.sh || fail "image build failed (./build.sh)"
  fi
  user=$(docker image inspect --format '{{.Config.User}}' "$tag" 2>/dev/null) || fail "no image $tag (run ./build.sh)"
  # The platform runs algorithms as a non-root user; an image that only works as root must not pass.
  case "${user%%:*}" in ""|0|root) fail "image $tag runs as root (USER '$user'); it must set a non-root USER" ;; esac
  volume=lmc-test-output-$$-$RANDOM copier=lmc-test-copy-$$-$RANDOM
  trap 'docker rm -f "$copier" >/dev/null 2>&1 || true; docker volume rm -f "$volume" >/dev/null 2>&1 || true' EXIT
  docker volume create "$volume" >/dev/null || fail "docker volume create failed"
  gpus=()
  case "${GPUS:-auto}" in
    all) gpus=(--gpus all) ;;
    none) ;;
    auto) if nvidia-smi -L >/dev/null 2>&1; then gpus=(--gpus all); fi ;;
    *) fail "GPUS must be auto, all or none, not $GPUS" ;;
  esac
  cores=$(nproc 2>/dev/null || echo 1)   # the platform gives 4 vCPUs; docker refuses more than exist
  args=(--rm --network none --memory "${MEMORY:-16g}" --memory-swap "${MEMORY:-16g}" --shm-size "${SHM_SIZE:-1g}"
        --pids-limit "${PIDS_LIMIT:-256}" --cpus "${CPUS:-$(( cores < 4 ? cores : 4 ))}"
        --cap-drop ALL --security-opt no-new-privileges --volume "$work/input:/input:ro"
        --volume "$volume:/output" --tmpfs "/tmp:rw,size=${TMPFS_SIZE:-4g}" "${gpus[@]}")
  step "running $tag: docker run ${args[*]} $tag"
  docker run "${args[@]}" "$tag" || fail "container exited with status $?"
  step "copying /output out of volume $volume"
  docker create --name "$copier" --volume "$volume:/output:ro" "$tag" >/dev/null \
    || fail "docker create (to copy the outputs) failed"
  docker cp "$copier:/output/." "$work/output" || fail "docker cp of /output failed"
fi
"$py" -m scripts.smoke verify --mode "$mode" --run-seconds $(( SECONDS - run_started )) --elapsed "$SECONDS"
