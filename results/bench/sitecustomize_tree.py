# Point the editable install's finder at another worktree of the repository ($LEWM_TREE, default the bad9139 one at
# /work/wt_base): issue 18's before/after runs with one virtual environment.
import os
import sys

_tree = os.environ.get("LEWM_TREE", "/work/wt_base")
for f in list(sys.meta_path):
    mod = sys.modules.get(getattr(f, "__module__", ""), None)
    if mod is not None and hasattr(mod, "MAPPING") and "lewm_bench" in mod.MAPPING:
        mod.MAPPING.update({k: v.replace("/work/main", _tree) for k, v in mod.MAPPING.items()})
        for k, v in mod.NAMESPACES.items():
            mod.NAMESPACES[k] = [p.replace("/work/main", _tree) for p in v]
