#!/bin/sh
# Issues 13/17: PLDM then DINO-WM-style at the cpu profile on runs/cpu3's PushT expert data (same tasks as LeWM).
while pgrep -f gc3.sh >/dev/null; do sleep 15; done
cd /work/runclone
export MUJOCO_GL=egl PYTHONPATH=/tmp/rcsite:/work/runclone
for agents in pldm; do
  echo "=== $agents start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
  /usr/bin/time -f "wall %e s, max RSS %M KB" /work/main/.venv/bin/python -m lewm_bench.cli run --suite all --profile cpu --envs pusht --agents $agents --out runs/cpu3 --no-progress 2>&1 | tail -30
  echo "=== $agents end $(date -u +%FT%TZ)"
done
