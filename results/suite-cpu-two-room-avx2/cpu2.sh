#!/bin/sh
# cpu-profile Two-Room rows at commit 3eb7eeb, one suite invocation per agent group (each ends with a report)
export MUJOCO_GL=egl
for agents in lewm,random sac-her gcbc,gcivl,gciql pldm dinowm; do
  echo "=== $agents $(date -u +%FT%TZ)"
  /usr/bin/time -f "wall %e s, max RSS %M KB" .venv/bin/lewm-bench run --suite all --profile cpu --envs two-room --agents $agents --out runs/cpu2 --no-progress
done
echo "=== end $(date -u +%FT%TZ)"
