#!/usr/bin/env bash
# The culled tree measured here is commit 50834e1, reverted at once: 1.00-1.03x (the oracle keeps the arm in view).
# Geoms outside the camera's view left out of Cube's frames: cube-cull-ab.py (10 episodes of the cpu-profile
# collection, one process) with main before the change (21d8db0, the worktree /work/wt_head put in place of /work/main
# by sitecustomize_tree.py) and with it, alternately, three rounds.
mkdir -p /tmp/site_base && cp sitecustomize_tree.py /tmp/site_base/sitecustomize.py
echo "# $0, $(date -u +%FT%TZ), $(nproc) cores, MUJOCO_GL=egl (Mesa llvmpipe)"
for r in 1 2 3; do
  echo "round $r $(date -u +%T)"
  LEWM_TREE=/work/wt_head PYTHONPATH=/tmp/site_base MUJOCO_GL=egl python cube-cull-ab.py 10
  MUJOCO_GL=egl python cube-cull-ab.py 10
done
echo "# ended $(date -u +%FT%TZ)"
