#!/usr/bin/env bash
# The test suite: sets up .venv (scripts/setup_env.sh) and runs pytest. Extra arguments go to
# pytest, e.g. `./run_tests.sh -m slow` for the long checks or `./run_tests.sh test/test_metrics*.py`.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh
exec .venv/bin/python -m pytest "$@"
