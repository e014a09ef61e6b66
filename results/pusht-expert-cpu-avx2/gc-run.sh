#!/bin/sh
# Issue 15's PushT rows: finish GCIQL, evaluate GCBC/GCIVL/GCIQL at the cpu profile on runs/cpu3's expert data.
cd /work/runclone
export MUJOCO_GL=egl PYTHONPATH=/tmp/rcsite:/work/runclone
echo "=== gc suite start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
/usr/bin/time -f "wall %e s, max RSS %M KB" /work/main/.venv/bin/python -m lewm_bench.cli run --suite all --profile cpu --envs pusht --agents gcbc,gcivl,gciql --out runs/cpu3 --no-progress 2>&1 | tail -30
echo "=== end $(date -u +%FT%TZ)"
