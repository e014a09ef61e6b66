#!/bin/sh
# Issue 17 data-quality table, part 1: cpu-profile LeWM trained on PushT pusher and random data (171,700 frames
# each, like the expert data of runs/cpu3). The evaluations on the expert dataset's tasks follow in dq-eval.sh.
export MUJOCO_GL=egl
B=.venv/bin/lewm-bench
while pgrep -f "out runs/cpu3" >/dev/null; do sleep 30; done
echo "=== start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
for d in pusher:runs/cpu2/data/pusht/pusher-64px-1700ep-seed0.h5; do
  name=${d%%:*}; path=${d#*:}
  echo "=== train $name $(date -u +%FT%TZ)"
  /usr/bin/time -f "wall %e s, max RSS %M KB" $B train --env pusht --agent lewm --profile cpu --data $path --out runs/dq/train/$name --resume --no-progress
done
/usr/bin/time -f "wall %e s, max RSS %M KB" $B collect --env pusht --collector random --profile cpu --out runs/dq/data/random-64px-1700ep-seed0.h5 --no-progress 2>&1 | tail -3
echo "=== end $(date -u +%FT%TZ)"
