#!/bin/sh
# cpu-profile PushT with the scripted expert's data (commit 21c3873): LeWM, random, the oracle
export MUJOCO_GL=egl
echo "=== start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
/usr/bin/time -f "wall %e s, max RSS %M KB" .venv/bin/lewm-bench run --suite all --profile cpu --envs pusht --agents lewm,random,oracle --out runs/cpu3 --no-progress
echo "=== end $(date -u +%FT%TZ)"
