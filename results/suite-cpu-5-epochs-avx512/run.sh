#!/bin/bash
# Two-Room, cpu profile, training epochs 5 (profile: 7), two jobs at once, one thread each
set -e
cd /work/main
export MUJOCO_GL=egl OMP_NUM_THREADS=1
B=.venv/bin/lewm-bench
R=/tmp/e5/runs  # the working folder that compare.py reads
$B collect --env two-room --profile cpu --data-root $R/data --no-progress
t() { $B train --env two-room --agent $1 --profile cpu --epochs 5 --data-root $R/data --out $R/train/two-room/$1-cpu-seed0 --no-progress > /tmp/e5/train-$1.log 2>&1; $B eval --env two-room --agent $1 --profile cpu --root $R > /tmp/e5/eval-$1.log 2>&1; }
(t lewm; t pldm) &
(t dinowm) &
wait
$B eval --env two-room --agent random --profile cpu --root $R > /tmp/e5/eval-random.log 2>&1
cat $R/summary.csv

# Cube and PushT, cpu profile, training epochs 5 (profile: 7), two lanes, one thread each
cd /work/main
export MUJOCO_GL=egl OMP_NUM_THREADS=1
B=.venv/bin/lewm-bench
R=/tmp/e5/runs  # the working folder that compare.py reads
t() { $B train --env $1 --agent $2 --profile cpu --epochs 5 --data-root $R/data --out $R/train/$1/$2-cpu-seed0 --no-progress > /tmp/e5/train-$1-$2.log 2>&1; $B eval --env $1 --agent $2 --profile cpu --root $R > /tmp/e5/eval-$1-$2.log 2>&1; echo "$(date -u +%T) done $1 $2"; }
( $B collect --env cube --profile cpu --data-root $R/data --workers 1 --no-progress > /tmp/e5/collect-cube.log 2>&1; echo "$(date -u +%T) cube data"; touch /tmp/e5/cube-ready; t cube lewm; t cube pldm ) &
( $B collect --env pusht --profile cpu --data-root $R/data --workers 1 --no-progress > /tmp/e5/collect-pusht.log 2>&1; echo "$(date -u +%T) pusht data"; t pusht lewm; t pusht pldm; while [ ! -e /tmp/e5/cube-ready ]; do sleep 10; done; t cube dinowm ) &
wait
cat $R/summary.csv
