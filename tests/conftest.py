import os
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")
# Trained experts (Reacher's SAC collector) go to a per-session folder, never the user's cache.
os.environ.setdefault("LEWM_BENCH_EXPERTS", tempfile.mkdtemp(prefix="lewm-bench-experts-"))
