#!/bin/sh
# Issue 18: evaluations of checkpoints trained at 765222d (runs/cpu5), rerun with today's planning code, to set their
# wall time beside the original (quiet) evaluation's; the same tasks and seeds, so the success counts should agree.
cd /work/main
export MUJOCO_GL=egl
for spec in "two-room dinowm" "cube lewm" "cube pldm"; do
  set -- $spec
  echo "=== $1 $2 start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
  /usr/bin/time -f "wall %e s, max RSS %M KB" .venv/bin/python -m lewm_bench.cli eval --env $1 --agent $2 --profile cpu \
    --root runs/rerun --checkpoint runs/cpu5/train/$1/$2-cpu-seed0 2>&1 | tail -2
done
echo "=== end $(date -u +%FT%TZ)"
