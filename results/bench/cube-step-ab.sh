#!/usr/bin/env bash
# Cube's physics-only step (cube-step-ab.py) with main before the change (a8dcce8, worktree /work/wt_head put in
# place of /work/main by sitecustomize_tree.py) and with it, alternately, three rounds. Run from results/bench with the
# venv's python on PATH.
mkdir -p /tmp/site_base && cp sitecustomize_tree.py /tmp/site_base/sitecustomize.py
echo "# $0, $(date -u +%FT%TZ), $(nproc) cores, MUJOCO_GL=${MUJOCO_GL:-egl}"
for r in 1 2 3; do
  echo "round $r $(date -u +%T)"
  LEWM_TREE=/work/wt_head PYTHONPATH=/tmp/site_base python cube-step-ab.py 3 2>&1 | grep median
  python cube-step-ab.py 3 2>&1 | grep median
done
echo "# ended $(date -u +%FT%TZ)"
