#!/bin/sh
# Issue 17 data-quality table, random arm: collect random PushT data (cpu profile), train LeWM on it, evaluate it on
# the expert dataset's tasks, report. Run on 2026-11-26 from a git worktree of 98f2864 (so that edits on main could
# not change the running code), with `python -m lewm_bench.cli` of the project's .venv for `lewm-bench`.
export MUJOCO_GL=egl
B=lewm-bench
EXPERT=runs/cpu3/data/pusht/expert-64px-1700ep-seed0.h5
echo "=== start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
/usr/bin/time -f "wall %e s, max RSS %M KB" $B collect --env pusht --collector random --profile cpu --out runs/dq/data/random-64px-1700ep-seed0.h5 --no-progress 2>&1 | tail -3
echo "=== train random $(date -u +%FT%TZ)"
/usr/bin/time -f "wall %e s, max RSS %M KB" $B train --env pusht --agent lewm --profile cpu --data runs/dq/data/random-64px-1700ep-seed0.h5 --out runs/dq/train/random --resume --no-progress 2>&1 | tail -5
echo "=== eval random $(date -u +%FT%TZ)"
/usr/bin/time -f "wall %e s, max RSS %M KB" $B eval --env pusht --agent lewm --profile cpu --checkpoint runs/dq/train/random --data $EXPERT --root runs/cpu3 --out runs/cpu3/eval/pusht/lewm-random-data-cpu-seed0 2>&1 | tail -5
$B report --root runs/cpu3 2>&1 | tail -3
echo "=== end $(date -u +%FT%TZ)"
