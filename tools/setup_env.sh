#!/usr/bin/env bash
# Idempotent set-up of the project's virtual environment at <repo>/.venv.
#
#   bash tools/setup_env.sh demo     # only what the demo needs (minutes): torch, mmengine, timm, scikit-image
#   bash tools/setup_env.sh          # the whole stack the tests need (the first time: the mmcv compile)
#   FORCE=1 bash tools/setup_env.sh  # re-run every pip step even if the stamp matches
#
# demo: torch 2.12.1 + torchvision 0.27.1, mmengine 0.10.7, timm, scikit-image, tensorboard, mmjafar (editable).
# full: the above plus mmcv 2.1.0 compiled from source with CPU ops, mmsegmentation 1.2.2, mmdet 3.3.0,
#       mmdet3d 1.4.0, nuscenes-devkit, open_clip_torch, pytest. Versions are pinned in requirements/constraints.txt.
# Each mode records a stamp of its inputs; the full stack satisfies the demo mode too. pip's cache stays on, so the
# compiled mmcv wheel (about 20 min to build on 2 cores) and the torch download are reused by every later set-up on
# the same machine, CI's fresh clones included.
set -euo pipefail

MODE="${1:-full}"
if [[ "$MODE" != full && "$MODE" != demo ]]; then
    echo "usage: bash tools/setup_env.sh [demo|full]  (got '$MODE')" >&2
    exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON_BIN="${PYTHON:-python3.11}"
REQ="$ROOT/requirements"
CONSTRAINTS="$REQ/constraints.txt"

log() { printf '[setup_env %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# The stamp records the inputs of the last successful set-up; same inputs -> nothing to do.
digest=$(cat "$REQ"/*.txt "$ROOT/setup.py" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)
stamp() { echo "$VENV/.mmjafar-setup-$1-$digest"; }
if [[ -z "${FORCE:-}" && -x "$VENV/bin/python" ]]; then
    for done_mode in full "$MODE"; do
        if [[ -f "$(stamp "$done_mode")" ]]; then
            log "up to date ($(stamp "$done_mode"))"
            exit 0
        fi
    done
fi

start=$SECONDS
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV with $($PYTHON_BIN --version)"
    "$PYTHON_BIN" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# --no-compile: no byte-compiling of the thousands of modules of torch and its CUDA libraries' wrappers at
# install time; Python compiles the modules it imports on first use
INSTALL=(install --no-compile)
export PIP_PROGRESS_BAR=off

# Pin torch explicitly: a looser request would pick the local torch 2.13.0+cpu wheel from find-links,
# which PyPI's torchvision cannot load ("operator torchvision::nms does not exist").
log "build tools, torch and the demo's packages"
"${PIP[@]}" "${INSTALL[@]}" -q -c "$CONSTRAINTS" -r "$REQ/build.txt"
"${PIP[@]}" "${INSTALL[@]}" -q -c "$CONSTRAINTS" torch torchvision -r "$REQ/runtime.txt" -r "$REQ/demo.txt"

if [[ "$MODE" == full ]]; then
    if ! "$VENV/bin/python" -c "import mmcv, mmcv.ops" >/dev/null 2>&1; then
        # mmcv 2.1.0 has no wheels on PyPI: compile it with its CPU ops against the torch above.
        log "compiling mmcv 2.1.0 with CPU ops (about 20 min the first time; cached by pip afterwards)"
        MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
            "${PIP[@]}" "${INSTALL[@]}" -c "$CONSTRAINTS" --no-build-isolation mmcv
    fi
    log "OpenMMLab packages, nuscenes-devkit, test tools"
    "${PIP[@]}" "${INSTALL[@]}" -q -c "$CONSTRAINTS" -r "$REQ/mm.txt" -r "$REQ/tests.txt"
fi
log "mmjafar (editable)"
"${PIP[@]}" "${INSTALL[@]}" -q -c "$CONSTRAINTS" --no-deps --no-build-isolation -e "$ROOT"

# Fail here, not in the demo or the tests, when the stack does not import.
if [[ "$MODE" == full ]]; then
    "$VENV/bin/python" - <<'PY'
import torch, torchvision, mmengine, mmcv, mmcv.ops, mmseg, mmdet, mmdet3d, timm, mmjafar
print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, mmengine {mmengine.__version__}, "
      f"mmcv {mmcv.__version__}, mmseg {mmseg.__version__}, mmdet {mmdet.__version__}, "
      f"mmdet3d {mmdet3d.__version__}, timm {timm.__version__}")
PY
else
    "$VENV/bin/python" - <<'PY'
import torch, torchvision, mmengine, timm, skimage, mmjafar
print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, mmengine {mmengine.__version__}, "
      f"timm {timm.__version__}, scikit-image {skimage.__version__}")
PY
fi
if [[ "$MODE" == full ]]; then
    rm -f "$VENV"/.mmjafar-setup-*       # the full stack covers the demo
else
    rm -f "$VENV"/.mmjafar-setup-demo-*
fi
touch "$(stamp "$MODE")"
log "$MODE set-up done in $((SECONDS - start)) s"
