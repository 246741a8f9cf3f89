#!/usr/bin/env bash
# Multi-process training with torchrun (NCCL on GPUs, gloo on CPU):
#   bash tools/dist_train.sh CONFIG GPUS [tools/train.py options...]
#   TRAIN_SCRIPT=tools/pretrain_jafar.py bash tools/dist_train.sh CONFIG GPUS     # pretraining
# NNODES, NODE_RANK, MASTER_ADDR and PORT select a multi-node set-up.
set -euo pipefail
if [[ $# -lt 2 ]]; then
    echo "usage: bash tools/dist_train.sh CONFIG GPUS [options]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
shift 2
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec python -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$GPUS" --master_port="${PORT:-29500}" \
    "${TRAIN_SCRIPT:-tools/train.py}" "$CONFIG" --launcher pytorch "$@"
