#!/bin/sh
# Replaces queue3.sh after its Cube DINO-WM job: the Reacher dataset collected here has the same content identity
# (sac:c4e71decd7822554) as results/reacher-cpu-avx2's, so only the Reacher agents without rows are run.
while kill -0 4854 2>/dev/null; do sleep 15; done
echo "=== cube dinowm end $(date -u +%FT%TZ)"
cd /work/runclone3
export MUJOCO_GL=egl PYTHONPATH=/tmp/rcsite3:/work/runclone3
py=/work/main/.venv/bin/python
for job in "two-room dinowm,dinowm-proprio" "pusht dinowm-proprio" "reacher pldm" "reacher dinowm"; do
  set -- $job
  echo "=== $1 $2 start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
  /usr/bin/time -f "wall %e s, max RSS %M KB" $py -m lewm_bench.cli run --suite all --profile cpu --envs $1 --agents $2 --out runs/cpu5 --no-progress 2>&1 | tail -30
  echo "=== $1 $2 end $(date -u +%FT%TZ)"
done
