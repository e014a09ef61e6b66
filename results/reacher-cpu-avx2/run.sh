#!/bin/sh
# Issues 13/15/16: Reacher rows at the cpu profile (code of the /work/runclone2 worktree), after the DINO-WM PushT run.
while pgrep -f "agents dinowm --out runs/cpu3" > /dev/null; do sleep 30; done
cd /work/runclone2
export MUJOCO_GL=egl PYTHONPATH=/tmp/rcsite2:/work/runclone2
for agents in lewm,random gcbc,gcivl,gciql pldm dinowm; do
  echo "=== $agents start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
  /usr/bin/time -f "wall %e s, max RSS %M KB" /work/main/.venv/bin/python -m lewm_bench.cli run --suite all --profile cpu --envs reacher --agents $agents --out runs/cpu4 --no-progress 2>&1 | tail -30
  echo "=== $agents end $(date -u +%FT%TZ)"
done
