#!/bin/sh
# Issue 17: the oracle (CEM over the true PushT simulator) with the paper's 30 CEM iterations on the expert-data tasks.
cd /work/runclone4
export MUJOCO_GL=egl PYTHONPATH=/tmp/rcsite4:/work/runclone4 OMP_NUM_THREADS=1
echo "=== oracle cem30 start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
/usr/bin/time -f "wall %e s, max RSS %M KB" /work/main/.venv/bin/python -m lewm_bench.cli eval --env pusht --agent oracle --profile cpu --root runs/cpu5 --iterations 30 --timing-calls 1 --out runs/cpu5/eval/pusht/oracle-cpu-seed0-cem30 2>&1 | tail -30
echo "=== oracle cem30 end $(date -u +%FT%TZ)"
