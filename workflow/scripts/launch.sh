#!/usr/bin/env bash
# How a training step starts (rules/common.smk, `launcher`):
#   launch.sh NPROC PYTHON PROGRAM ARGS...
# - one process when NPROC is 1 (CPU, or one GPU);
# - torchrun over NPROC processes of this node (NPROC "gpu": one per GPU of the node);
# - under `{resources.mpi}` (srun, one task per node, SLURM_NTASKS > 1): one torchrun per node,
#   with a c10d rendezvous on the allocation's first node. The port comes from the job id, so
#   that two jobs sharing a node do not collide.
set -euo pipefail
nproc=$1
python=$2
shift 2
if [ "${SLURM_NTASKS:-1}" -gt 1 ]; then
  head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)
  exec "$python" -m torch.distributed.run --nnodes="$SLURM_NTASKS" --nproc_per_node="$nproc" \
    --rdzv_backend=c10d --rdzv_id="$SLURM_JOB_ID" \
    --rdzv_endpoint="$head:$((20000 + SLURM_JOB_ID % 20000))" "$@"
elif [ "$nproc" != 1 ]; then
  exec "$python" -m torch.distributed.run --standalone --nproc_per_node="$nproc" "$@"
else
  exec "$python" "$@"
fi
