#!/bin/sh
# After cube2.sh: DINO-WM-style on Cube; DINO-WM-style and DINO-WM + proprio on Two-Room; DINO-WM + proprio on PushT;
# then Reacher's whole row set on this machine. Code of the /work/runclone3 worktree (765222d).
while pgrep -f cube2.sh > /dev/null; do sleep 20; done
cd /work/runclone3
export MUJOCO_GL=egl PYTHONPATH=/tmp/rcsite3:/work/runclone3
py=/work/main/.venv/bin/python
for job in "cube dinowm" "two-room dinowm,dinowm-proprio" "pusht dinowm-proprio" "reacher lewm,random" "reacher pldm" "reacher dinowm" "reacher gcbc,gcivl,gciql"; do
  set -- $job
  echo "=== $1 $2 start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
  /usr/bin/time -f "wall %e s, max RSS %M KB" $py -m lewm_bench.cli run --suite all --profile cpu --envs $1 --agents $2 --out runs/cpu5 --no-progress 2>&1 | tail -30
  echo "=== $1 $2 end $(date -u +%FT%TZ)"
done
