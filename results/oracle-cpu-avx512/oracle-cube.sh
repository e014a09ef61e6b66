#!/bin/sh
# Issue 17: the Cube oracle (CEM 300 x 8 over MuJoCo) on the cpu-profile Cube tasks (runs/cpu5/data/cube, a4e29be0126b8fe3).
cd /work/runclone6
export MUJOCO_GL=egl PYTHONPATH=/tmp/rcsite6:/work/runclone6 OMP_NUM_THREADS=1
echo "=== cube oracle start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
/usr/bin/time -f "cube cem8: wall %e s, max RSS %M KB" /work/main/.venv/bin/python -m lewm_bench.cli eval --env cube --agent oracle --profile cpu --root runs/cpu5 --data runs/cpu5/data/cube/oracle-64px-160ep-seed0.h5 --timing-calls 1 --out runs/cpu5/eval/cube/oracle-cpu-seed0 2>&1 | tail -n 3
echo "=== cube oracle end $(date -u +%FT%TZ)"
