#!/bin/sh
# Continues cube.sh (stopped after its first group): GC policies, PLDM, then GCBC with 10x the cpu profile's steps.
while kill -0 2007 2>/dev/null; do sleep 20; done
echo "=== lewm,random end $(date -u +%FT%TZ)"
cd /work/runclone3
export MUJOCO_GL=egl PYTHONPATH=/tmp/rcsite3:/work/runclone3
py=/work/main/.venv/bin/python
for agents in gcbc,gcivl,gciql pldm; do
  echo "=== $agents start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
  /usr/bin/time -f "wall %e s, max RSS %M KB" $py -m lewm_bench.cli run --suite all --profile cpu --envs cube --agents $agents --out runs/cpu5 --no-progress 2>&1 | tail -30
  echo "=== $agents end $(date -u +%FT%TZ)"
done
echo "=== gcbc 20k steps start $(date -u +%FT%TZ)"
/usr/bin/time -f "wall %e s, max RSS %M KB" $py -m lewm_bench.cli train --env cube --agent gcbc --profile cpu --steps-per-epoch 5000 --data-root runs/cpu5/data --out runs/cpu5/train/cube/gcbc-cpu-seed0-steps20k --no-progress 2>&1 | tail -5
/usr/bin/time -f "wall %e s, max RSS %M KB" $py -m lewm_bench.cli eval --env cube --agent gcbc --profile cpu --checkpoint runs/cpu5/train/cube/gcbc-cpu-seed0-steps20k --root runs/cpu5 --out runs/cpu5/eval/cube/gcbc-cpu-seed0-steps20k 2>&1 | tail -8
echo "=== gcbc 20k steps end $(date -u +%FT%TZ)"
