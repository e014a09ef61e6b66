#!/bin/sh
cd /work/runclone3
export MUJOCO_GL=egl PYTHONPATH=/tmp/rcsite3:/work/runclone3
echo "=== reacher dinowm start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
/usr/bin/time -f "wall %e s, max RSS %M KB" /work/main/.venv/bin/python -m lewm_bench.cli run --suite all --profile cpu --envs reacher --agents dinowm --out runs/cpu5 --no-progress 2>&1 | tail -30
echo "=== reacher dinowm end $(date -u +%FT%TZ)"
