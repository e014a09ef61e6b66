import os
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")
# Trained experts (Reacher's SAC collector) go to a per-session folder, never the user's cache; so do the logs of
# the SB3 models tests train directly (SB3 would make a folder in /tmp for each).
_session = tempfile.mkdtemp(prefix="lewm-bench-tests-")
os.environ.setdefault("LEWM_BENCH_EXPERTS", os.path.join(_session, "experts"))
os.environ.setdefault("SB3_LOGDIR", os.path.join(_session, "sb3-logs"))
# Under pytest-xdist (``make test``) the workers share the CPUs: each gets its share of torch threads, and so do the
# commands the tests start. Set before torch is imported, which reads it once.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS",
                          str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))
