#!/bin/sh
# Issue 17: the PushT oracle with the angle-aware goal cost, at the cpu profile's 8 CEM iterations and the paper's 30,
# on the expert-data tasks (runs/cpu5/data/pusht, content identity ba12d4af2879659c), one process each, side by side.
cd /work/runclone6
export MUJOCO_GL=egl PYTHONPATH=/tmp/rcsite6:/work/runclone6 OMP_NUM_THREADS=1
echo "=== oracle start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
/usr/bin/time -f "cem8: wall %e s, max RSS %M KB" /work/main/.venv/bin/python -m lewm_bench.cli eval --env pusht --agent oracle --profile cpu --root runs/cpu5 --timing-calls 3 --out runs/cpu5/eval/pusht/oracle-cpu-seed0 > /work/runlogs/oracle8.out 2>&1 &
/usr/bin/time -f "cem30: wall %e s, max RSS %M KB" /work/main/.venv/bin/python -m lewm_bench.cli eval --env pusht --agent oracle --profile cpu --root runs/cpu5 --iterations 30 --timing-calls 1 --out runs/cpu5/eval/pusht/oracle-cpu-seed0-cem30 > /work/runlogs/oracle30c.out 2>&1
wait
tail -3 /work/runlogs/oracle8.out /work/runlogs/oracle30c.out
echo "=== oracle end $(date -u +%FT%TZ)"
