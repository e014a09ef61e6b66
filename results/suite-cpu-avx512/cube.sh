#!/bin/sh
# Issues 13/15: Cube rows at the cpu profile after the fidelity fixes (code of the /work/runclone3 worktree, 765222d).
cd /work/runclone3
export MUJOCO_GL=egl PYTHONPATH=/tmp/rcsite3:/work/runclone3
for agents in lewm,random gcbc,gcivl,gciql pldm dinowm; do
  echo "=== $agents start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
  /usr/bin/time -f "wall %e s, max RSS %M KB" /work/main/.venv/bin/python -m lewm_bench.cli run --suite all --profile cpu --envs cube --agents $agents --out runs/cpu5 --no-progress 2>&1 | tail -30
  echo "=== $agents end $(date -u +%FT%TZ)"
done
