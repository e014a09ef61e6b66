#!/bin/sh
# Issue 17 data-quality table, part 2: the LeWMs trained on pusher and random data (runs/dq.sh) evaluated on the
# tasks of the expert dataset, into the cpu3 suite's folder (beside the expert-trained LeWM, random and the oracle
# on the same tasks), then the report.
export MUJOCO_GL=egl
B=.venv/bin/lewm-bench
EXPERT=runs/cpu3/data/pusht/expert-64px-1700ep-seed0.h5
while pgrep -f "out runs/dq/train/pusher" >/dev/null; do sleep 20; done
echo "=== start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
for name in pusher; do
  echo "=== eval $name-trained LeWM on expert tasks $(date -u +%FT%TZ)"
  /usr/bin/time -f "wall %e s, max RSS %M KB" $B eval --env pusht --agent lewm --profile cpu --checkpoint runs/dq/train/$name --data $EXPERT --root runs/cpu3 --out runs/cpu3/eval/pusht/lewm-$name-data-cpu-seed0
done
$B report --root runs/cpu3
echo "=== end $(date -u +%FT%TZ)"
