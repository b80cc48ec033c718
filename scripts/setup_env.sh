#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment in .venv with everything the tests,
# the scorer, training and `./test.sh --local` need, and the project installed editable (its
# console scripts). torch is pinned and installed first, so no other package can pull a CUDA
# build of it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  # The project itself, editable: the console scripts of pyproject.toml (lmc-predict, ...).
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
  touch "$stamp"
fi
