#!/bin/bash
# Issue 18: the grid's world models trained 5 epochs (the cpu profile: 7), then evaluated at the cpu profile; one torch
# thread per job. Run in three parts, one after the other (07:47-08:16 and 08:18-09:17 UTC; part 3 in a later session,
# 10:38-11:03 UTC, on part 2's PushT dataset, which its collect found complete; run.log), as below.
cd /work/main
export MUJOCO_GL=egl OMP_NUM_THREADS=1
B=.venv/bin/lewm-bench
R=/tmp/e5/runs  # the working folder that compare.py reads
t() {  # train ENV AGENT for 5 epochs, then evaluate it
  $B train --env $1 --agent $2 --profile cpu --epochs 5 --data-root $R/data --out $R/train/$1/$2-cpu-seed0 \
    --no-progress > /tmp/e5/train-$1-$2.log 2>&1
  $B eval --env $1 --agent $2 --profile cpu --root $R > /tmp/e5/eval-$1-$2.log 2>&1
  echo "$(date -u +%T) done $1 $2"
}

# Part 1, Two-Room: two jobs at once
$B collect --env two-room --profile cpu --data-root $R/data --no-progress
(t two-room lewm; t two-room pldm) &
(t two-room dinowm) &
wait
$B eval --env two-room --agent random --profile cpu --root $R > /tmp/e5/eval-two-room-random.log 2>&1

# Part 2, Cube and PushT: two lanes (PushT's DINO-WM-style left out for time)
( $B collect --env cube --profile cpu --data-root $R/data --workers 1 --no-progress > /tmp/e5/collect-cube.log 2>&1
  echo "$(date -u +%T) cube data"; touch /tmp/e5/cube-ready; t cube lewm; t cube pldm ) &
( $B collect --env pusht --profile cpu --data-root $R/data --workers 1 --no-progress > /tmp/e5/collect-pusht.log 2>&1
  echo "$(date -u +%T) pusht data"; t pusht lewm; t pusht pldm
  while [ ! -e /tmp/e5/cube-ready ]; do sleep 10; done; t cube dinowm ) &
wait

# Part 3, PushT's DINO-WM-style alone (the collect finds part 2's dataset)
$B collect --env pusht --profile cpu --data-root $R/data --workers 2 --no-progress > /tmp/e5/collect-pusht-part3.log 2>&1
t pusht dinowm
cat $R/summary.csv
