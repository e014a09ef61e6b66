#!/bin/sh
# Issue 18: planning benchmark after a08cf4e (shared context frames, newest output only), DINO-WM run paused (SIGSTOP).
cd /work/main
for c in 1 3; do
  echo "=== context $c $(date -u +%FT%TZ)"
  .venv/bin/python -m lewm_bench.cli bench planning --profile cpu --calls 3 --batch 2 --context $c --json results/bench/planning-reuse-context$c-avx2.json
done
echo "=== end $(date -u +%FT%TZ)"
