#!/usr/bin/env bash
# Issue 18's "faster than today in the same run", with the compiled rollouts: one paper-size LeWM planning call
# (planning-call.py) with the tree of bad9139 (the commit before the first change), and with main eagerly and
# compiled, alternately, three rounds. The bad9139 tree is a git worktree at /work/wt_base;
# /tmp/site_base/sitecustomize.py points the editable install's finder there (see planning-baseline-ab.sh).
for r in 1 2 3; do
  echo "round $r $(date -u +%T)"
  PYTHONPATH=/tmp/site_base python planning-call.py 3 2>&1 | grep median
  python planning-call.py 3 2>&1 | grep median
  python planning-call.py 3 compile 2>&1 | grep median
done
