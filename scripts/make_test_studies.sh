#!/usr/bin/env bash
# Regenerates test/studies/, the small fixed held-out set of simulated studies used by ./test.sh
# and the tests. Seed 900001 (synthetic.generate.HELDOUT_SEED) and study numbers 901-903 are
# reserved for it: `python -m synthetic` refuses that seed, so no training set can contain these
# images. The parameters (modalities, organelles, sizes, focus plans) live in synthetic/heldout.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
rm -rf test/studies/Study_* test/studies/bestz.csv test/studies/EVALUATION_SET.json
"$PY" -m synthetic.heldout --out test/studies
