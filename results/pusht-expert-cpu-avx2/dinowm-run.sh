#!/bin/sh
# Issues 13/17: DINO-WM-style (fp32 preset, 2cf3207) at the cpu profile on runs/cpu3's PushT expert data (same tasks as LeWM).
cd /work/runclone
export MUJOCO_GL=egl PYTHONPATH=/tmp/rcsite:/work/runclone
for agents in dinowm; do
  echo "=== $agents start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
  /usr/bin/time -f "wall %e s, max RSS %M KB" /work/main/.venv/bin/python -m lewm_bench.cli run --suite all --profile cpu --envs pusht --agents $agents --out runs/cpu3 --no-progress 2>&1 | tail -30
  echo "=== $agents end $(date -u +%FT%TZ)"
done
