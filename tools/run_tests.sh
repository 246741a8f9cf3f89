#!/usr/bin/env bash
# Set up .venv if needed (idempotent, seconds when up to date), then run the test suite.
#   bash tools/run_tests.sh                 # the default suite (everything not marked slow)
#   bash tools/run_tests.sh -m slow         # only the heavier end-to-end runs
#   bash tools/run_tests.sh tests/test_models -k jafar   # any pytest arguments
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
if [[ $# -eq 0 ]]; then
    set -- -m "not slow"
fi
exec "$ROOT/.venv/bin/python" -m pytest "$@"
