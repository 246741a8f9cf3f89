#!/usr/bin/env bash
# Multi-process evaluation with torchrun:  bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py options...]
# It is tools/dist_train.sh running tools/test.py (TEST_SCRIPT selects another script).
set -euo pipefail
if [[ $# -lt 3 ]]; then
    echo "usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [options]" >&2
    exit 2
fi
# dist_train.sh CONFIG GPUS CHECKPOINT [options]: test.py takes CHECKPOINT after CONFIG --launcher pytorch
TRAIN_SCRIPT="${TEST_SCRIPT:-tools/test.py}" exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_train.sh" "$1" "$3" "$2" "${@:4}"
