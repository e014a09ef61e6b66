#!/usr/bin/env bash
# A change to the planning call against main before it and against bad9139: one paper-size LeWM planning call
# (planning-call.py, 3 calls after a warm-up) with bad9139's tree (eager: issue 18's "today"), main before the change
# (compiled) and main with it (compiled), alternately, three rounds. The other trees are git worktrees (/work/wt_base at
# bad9139, /work/wt_head at main before the change) that sitecustomize_tree.py, copied to /tmp/site_base, puts in place
# of /work/main for the editable install (LEWM_TREE). Runs: /work/wt_head at 21d8db0 for the rollout's modulations
# (planning-modulations-avx512.txt), at a8dcce8 for the single token's projection (planning-proj-avx512.txt).
mkdir -p /tmp/site_base && cp sitecustomize_tree.py /tmp/site_base/sitecustomize.py
echo "# $0, $(date -u +%FT%TZ), $(nproc) cores, torch $(python -c 'import torch; print(torch.__version__)')"
for r in 1 2 3; do
  echo "round $r $(date -u +%T)"
  LEWM_TREE=/work/wt_base PYTHONPATH=/tmp/site_base python planning-call.py 3 2>&1 | grep median
  LEWM_TREE=/work/wt_head PYTHONPATH=/tmp/site_base python planning-call.py 3 compile 2>&1 | grep median
  python planning-call.py 3 compile 2>&1 | grep median
done
echo "# ended $(date -u +%FT%TZ)"
