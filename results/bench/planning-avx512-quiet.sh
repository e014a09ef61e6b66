#!/bin/sh
cd /work/main
echo "=== sigreg 2 threads $(date -u +%FT%TZ)"
.venv/bin/python results/bench/sigreg-ab.py 2
echo "=== chunks 2 threads $(date -u +%FT%TZ)"
.venv/bin/python results/bench/planning-chunks.py lewm 32 50 2
.venv/bin/python results/bench/planning-chunks.py dinowm 64 10 2
echo "=== bench planning $(date -u +%FT%TZ)"
.venv/bin/python -m lewm_bench.cli bench planning --profile cpu --calls 3 --batch 2 --context 1
echo "=== end $(date -u +%FT%TZ)"
