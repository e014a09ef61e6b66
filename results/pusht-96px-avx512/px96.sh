#!/bin/sh
# Issue 17, the model axis: LeWM on PushT expert data at 96 px instead of the cpu profile's 64 (same episodes, same
# seed, same training budget), one thread (the Cube oracle holds the other core). Does the block angle become
# readable from the embedding (probe), and does success move?
cd /work/runclone6
export MUJOCO_GL=egl PYTHONPATH=/tmp/rcsite6:/work/runclone6 OMP_NUM_THREADS=1
PY=/work/main/.venv/bin/python
echo "=== px96 start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
/usr/bin/time -f "collect: wall %e s, max RSS %M KB" $PY -m lewm_bench.cli collect --env pusht --profile cpu --image-size 96 --workers 1 --data-root runs/px96/data --no-progress 2>&1 | tail -n 2
echo "=== train $(date -u +%FT%TZ)"
/usr/bin/time -f "train: wall %e s, max RSS %M KB" $PY -m lewm_bench.cli train --env pusht --agent lewm --profile cpu --data runs/px96/data/pusht/expert-96px-1700ep-seed0.h5 --out runs/px96/train/pusht/lewm-cpu-seed0 2>&1 | tail -n 4
echo "=== probe $(date -u +%FT%TZ)"
$PY -m lewm_bench.cli analyze probe --env pusht --agent lewm --profile cpu --root runs/px96 2>&1 | tail -n 12
echo "=== eval $(date -u +%FT%TZ)"
/usr/bin/time -f "eval: wall %e s, max RSS %M KB" $PY -m lewm_bench.cli eval --env pusht --agent lewm --profile cpu --root runs/px96 2>&1 | tail -n 2
echo "=== px96 end $(date -u +%FT%TZ)"
