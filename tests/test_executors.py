"""The suite's executors (lewm_bench.executors): the cluster config, and the slurm executor against a fake SLURM.

The fake SLURM is a handful of scripts this file writes onto PATH: ``sbatch`` queues the submission
file and runs it in the background (array tasks one after the other, each with the SLURM_* variables
a real allocation sets), ``srun`` runs the job's command with its --output/--error files, ``sacct``
reports the states, ``scancel`` kills. submitit drives them exactly as it drives a real cluster.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from lewm_bench.errors import LewmBenchError
from lewm_bench.executors import DEFAULT_STAGES, ClusterConfig, StageResources, _read_token

# ---------------------------------------------------------------------------------------------------------------
# the cluster config


def test_cluster_config_from_toml_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "cluster.toml"
    path.write_text(textwrap.dedent("""
        partition = "gpu"
        array_parallelism = 8
        setup = ["module load cuda"]
        [sbatch]
        constraint = "a100"
        [stages.train]
        gpus = 4
        time_min = 2880
    """))
    cfg = ClusterConfig.from_file(path)
    assert cfg.partition == "gpu" and cfg.array_parallelism == 8 and cfg.setup == ("module load cuda",)
    assert cfg.sbatch == {"constraint": "a100"}
    assert cfg.resources("train") == StageResources(gpus=4, cpus=8, mem_gb=64, time_min=2880)
    assert cfg.resources("train").processes == 4  # torchrun, one process per GPU
    assert cfg.resources("collect") == DEFAULT_STAGES["collect"] and cfg.resources("collect").gpus == 0
    flags = cfg.with_all_stages(gpus=2, cpus=16, mem_gb=None, time_min=None)
    assert flags.resources("collect").gpus == 0 and flags.resources("collect").cpus == 16  # collection stays on CPU
    assert flags.resources("eval").gpus == 2 and flags.resources("train").time_min == 2880


def test_the_readme_cluster_config_example_is_valid(tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("\n## Run on a cluster\n", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "cluster.toml").write_text(textwrap.dedent(block))
    cfg = ClusterConfig.from_file(tmp_path / "cluster.toml")
    assert cfg.resources("train").processes == 4 and cfg.resources("collect").cpus == 32


@pytest.mark.parametrize("text, message", [
    ("partitio = 'gpu'", "unknown setting 'partitio'"),
    ("[stages.training]\ngpus = 1", "unknown stage 'training'"),
    ("[stages.train]\ngpu = 1", "unknown setting 'gpu'"),
    ("array_parallelism = 'many'", "array_parallelism = 'many' has the wrong type"),
    ("[stages.eval]\ncpus = 0", "cpus must be >= 1"),
    ("partition = ", "not valid TOML"),
])
def test_a_bad_cluster_config_says_what_and_where(tmp_path, text, message):
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    with pytest.raises(LewmBenchError, match=message) as err:
        ClusterConfig.from_file(path)
    assert str(path) in str(err.value)


def test_the_storage_check_job_sees_only_the_token_the_driver_wrote(tmp_path):
    probe = tmp_path / "probe.txt"
    probe.write_text("abc")
    assert _read_token(str(probe), "abc")[0] and not _read_token(str(probe), "xyz")[0]
    assert not _read_token(str(tmp_path / "elsewhere.txt"), "abc")[0]  # a node that does not see the folder


# ---------------------------------------------------------------------------------------------------------------
# a fake SLURM on PATH

SBATCH = r'''
import json, os, re, subprocess, sys, time
from pathlib import Path
state = Path(os.environ["FAKE_SLURM_DIR"])
script = Path(sys.argv[-1])
text = script.read_text()
array = re.search(r"#SBATCH --array=0-(\d+)", text)
counter = state / "next_id"
job = int(counter.read_text()) if counter.exists() else 1000
counter.write_text(str(job + 1))
tasks = [f"{job}_{i}" for i in range(int(array.group(1)) + 1)] if array else [str(job)]
for task in tasks:
    (state / f"{task}.state").write_text("PENDING")
with open(state / "sbatch.log", "a") as fh:
    fh.write(json.dumps({"job": job, "tasks": tasks, "at": time.time(), "script": text}) + "\n")
subprocess.Popen([sys.executable, str(Path(__file__).with_name("fake_slurm_run")), str(job), json.dumps(tasks),
                  str(script)], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"Submitted batch job {job}")
'''

RUN = r'''
import json, os, subprocess, sys, time
from pathlib import Path
state = Path(os.environ["FAKE_SLURM_DIR"])
job, tasks, script = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
for task in tasks:  # one array task after the other
    while (state / "hold").exists():  # the test holds the queue: jobs stay PENDING
        time.sleep(0.1)
    if (state / f"{task}.state").read_text() == "CANCELLED":
        continue
    env = dict(os.environ, SLURM_JOB_ID=task.replace("_", "0"), SLURM_NTASKS="1", SLURM_JOB_NUM_NODES="1",
               SLURM_NODEID="0", SLURM_PROCID="0", SLURM_LOCALID="0", SLURM_JOB_NODELIST="fakenode1")
    if "_" in task:
        env.update(SLURM_ARRAY_JOB_ID=job, SLURM_ARRAY_TASK_ID=task.split("_")[1])
    (state / f"{task}.state").write_text("RUNNING")
    start = time.time()
    proc = subprocess.Popen(["bash", script], env=env)
    (state / f"{task}.pid").write_text(str(proc.pid))
    code = proc.wait()
    if (state / f"{task}.state").read_text() != "CANCELLED":
        (state / f"{task}.state").write_text("COMPLETED" if code == 0 else "FAILED")
    (state / f"{task}.times").write_text(json.dumps([start, time.time()]))
'''

SRUN = r'''
import os, subprocess, sys
args, files = sys.argv[1:], {}
while args and args[0].startswith("--"):
    flag = args.pop(0)
    if flag in ("--output", "--error"):
        files[flag] = args.pop(0)
def path(pattern):
    for key, var in (("%A", "SLURM_ARRAY_JOB_ID"), ("%a", "SLURM_ARRAY_TASK_ID"), ("%j", "SLURM_JOB_ID")):
        pattern = pattern.replace(key, os.environ.get(var, ""))
    return pattern.replace("%t", "0")
out = open(path(files["--output"]), "a")
err = open(path(files["--error"]), "a") if "--error" in files else out
sys.exit(subprocess.call(args, stdout=out, stderr=err))
'''

SACCT = r'''
import os, sys
from pathlib import Path
state = Path(os.environ["FAKE_SLURM_DIR"])
ids = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "-j"]
print("JobID|State|NodeList")
for f in sorted(state.glob("*.state")):
    task = f.name[:-len(".state")]
    if task.split("_")[0] in ids:
        print(f"{task}|{f.read_text()}|fakenode1")
'''

SCANCEL = r'''
import os, signal, sys
from pathlib import Path
state = Path(os.environ["FAKE_SLURM_DIR"])
job = sys.argv[1]
for f in state.glob(f"{job.split('_')[0]}*.state"):
    task = f.name[:-len(".state")]
    f.write_text("CANCELLED")
    pid = state / f"{task}.pid"
    if pid.exists():
        try:
            os.killpg(int(pid.read_text()), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
'''


def install_fake_slurm(folder: Path) -> dict[str, str]:
    """Write the fake SLURM commands into ``folder/bin``; returns the environment that puts them on PATH."""
    bin_dir, state = folder / "bin", folder / "state"
    bin_dir.mkdir(parents=True)
    state.mkdir()
    for name, code in (("sbatch", SBATCH), ("fake_slurm_run", RUN), ("srun", SRUN), ("sacct", SACCT),
                       ("scancel", SCANCEL)):
        script = bin_dir / name
        script.write_text(f"#!{sys.executable}\n{code}")
        script.chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", FAKE_SLURM_DIR=str(state),
                MUJOCO_GL="egl")


def lewm_bench(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lewm_bench.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=900)


def start_lewm_bench(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """The same command, started in the background (output piped, as text)."""
    return subprocess.Popen([sys.executable, "-m", "lewm_bench.cli", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_slurm_executor_submits_in_dependency_order_resubmits_failures_and_reattaches(tmp_path):
    env = install_fake_slurm(tmp_path / "slurm")
    root = tmp_path / "runs"
    root.mkdir()
    (root / "cluster.toml").write_text(textwrap.dedent("""
        partition = "debug"
        poll_s = 0.5
        [sbatch]
        comment = "lewm-bench-test"
        [stages.collect]
        cpus = 2
        [stages.train]
        cpus = 2
        [stages.eval]
        cpus = 2
    """))
    args = ["run", "--suite", "smoke", "--envs", "two-room", "--agents", "lewm,random", "--executor", "slurm",
            "--out", str(root), "--no-progress"]
    state = Path(env["FAKE_SLURM_DIR"])

    # 1. every training dies (kill -9 at its first optimiser step, as a node failure would): the driver records
    #    the failure with the job's log, blocks the training's dependents and finishes everything else
    first = lewm_bench(args, dict(env, LEWM_BENCH_FAULT="train-step"), tmp_path)
    assert first.returncode != 0, first.stderr
    assert "10 jobs — 2 done, 0 skipped, 1 failed, 4 blocked, 3 not-applicable" in first.stdout, first.stdout
    train = json.loads((root / "jobs" / "train__two-room__lewm__seed0.json").read_text())
    assert train["status"] == "failed" and train["executor"] == "slurm"
    assert f"slurm job {train['cluster_job_id']} ended (FAILED)" in train["error"]
    assert Path(train["log"]).is_file() and f"read {train['log']}" in first.stderr
    assert json.loads((root / "cluster" / "storage.json").read_text())["shared"]  # checked once, by a job
    submissions = pd.read_csv(root / "cluster" / "submissions.csv")
    assert list(submissions.stage) == ["collect", "train", "eval"]  # random's analyses: not applicable, not sent
    assert (submissions.log.map(lambda p: Path(p).is_file())).all()  # every job's stderr, in the run folder
    sbatch = [json.loads(line) for line in (state / "sbatch.log").read_text().splitlines()]
    scripts = "\n".join(s["script"] for s in sbatch)
    assert "#SBATCH --partition=debug" in scripts and "#SBATCH --comment=lewm-bench-test" in scripts
    assert "#SBATCH --gpus-per-node=0" in sbatch[1]["script"]  # collection: CPU only
    assert "#SBATCH --gpus-per-node=1" in sbatch[2]["script"] and "#SBATCH --time=1440" in sbatch[2]["script"]
    # ready together once collection was done, one submission per stage
    collect_done = (root / "jobs" / "collect__two-room.json").stat().st_mtime  # the job's record, written last
    collect_start = json.loads((state / f"{submissions.cluster_job_id[0]}.times").read_text())[0]
    assert submissions.submitted_at[0] < collect_start < collect_done <= submissions.submitted_at[1:].min()

    # 2. the rerun submits only what did not finish, and the training now runs under torchrun with 2 processes
    #    (resources may change between runs: they are not part of a job's identity). The driver is killed while
    #    the training runs (the job carries on on the cluster) ...
    toml = (root / "cluster.toml").read_text()
    (root / "cluster.toml").write_text(toml.replace("[stages.train]\ncpus = 2", "[stages.train]\ncpus = 2\nprocs = 2"))
    (state / "hold").touch()  # the training stays queued until the next driver has re-attached to it
    driver = start_lewm_bench(args, env, tmp_path)
    marker = root / "jobs" / "train__two-room__lewm__seed0.submitted.json"
    deadline = time.time() + 300
    while not marker.exists() and driver.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert marker.exists(), driver.communicate()
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    # ... and the next run re-attaches to it instead of submitting it again
    proc = start_lewm_bench(args, env, tmp_path)
    release = threading.Timer(300, (state / "hold").unlink, kwargs={"missing_ok": True})  # never a hung test
    release.start()
    head = []
    for line in iter(proc.stderr.readline, ""):  # until the driver says it re-attached (or ends)
        head.append(line)
        if line.startswith("re-attached"):
            break
    release.cancel()
    (state / "hold").unlink(missing_ok=True)
    out, err = proc.communicate()
    third = subprocess.CompletedProcess(proc.args, proc.returncode, out, "".join(head) + err)
    assert third.returncode == 0, third.stderr
    assert "re-attached 1 job(s)" in third.stderr and "train/two-room/lewm/seed0" in third.stderr
    assert "10 jobs — 5 done, 2 skipped, 0 failed, 0 blocked, 3 not-applicable" in third.stdout, third.stdout
    submissions = pd.read_csv(root / "cluster" / "submissions.csv")
    assert list(submissions.name[3:]) == ["train/two-room/lewm/seed0", "eval/two-room/lewm/seed0",
                                          "voe/two-room/lewm/seed0", "probe/two-room/lewm/seed0",
                                          "diagnostics/two-room/lewm/seed0"]
    summary = json.loads((root / "train" / "two-room" / "lewm-smoke-seed0" / "summary.json").read_text())
    assert summary["world_size"] == 2  # torchrun inside the allocation
    assert not list((root / "jobs").glob("*.submitted.json"))
    table = pd.read_csv(root / "summary.csv")
    assert set(table.agent) == {"lewm", "random"}
    jobs = pd.read_csv(root / "suite.csv")
    assert set(jobs.executor) == {"slurm"} and jobs[jobs.status != "not-applicable"].cluster_job_id.notna().all()


class _FakeHandle:
    job_id = "42"
    paths = None

    def __init__(self):
        self.cancelled = False

    def cancel(self, check=True):
        self.cancelled = True


@pytest.mark.parametrize("answer, cancelled", [("y", True), ("", False), ("no", False)])
def test_ctrl_c_asks_before_cancelling_the_submitted_jobs(tmp_path, monkeypatch, capsys, answer, cancelled):
    from lewm_bench.executors import _Active, _marker_path, _on_interrupt
    from lewm_bench.suite import Job

    job = Job("train", "two-room", "lewm", 0, "k")
    marker = _marker_path(tmp_path, job.name)
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    handle = _FakeHandle()
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt: answer)
    _on_interrupt([_Active(job, handle, 0.0)], tmp_path)
    assert handle.cancelled is cancelled
    assert marker.exists() is not cancelled  # a job left running keeps its id, for the next run to re-attach
    assert ("cancelled 1 job(s)" if cancelled else "rerun the same command to re-attach") in capsys.readouterr().err


def test_a_reattached_job_that_a_killed_driver_never_listed_is_added_to_the_submissions(tmp_path):
    """The driver writes a job's marker, then ``submissions.csv``; killed in between, the next driver re-attaches to
    the job and lists it (once)."""
    from lewm_bench.executors import _marker_path, _reattach
    from lewm_bench.profiles import PROFILES
    from lewm_bench.suite import Job, JobContext

    job = Job("train", "two-room", "lewm", 0, "k1")
    (tmp_path / "jobs").mkdir()
    (tmp_path / "cluster").mkdir()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # stands for the running job
    try:
        marker = {"key": "k1", "executor": "local", "cluster_job_id": str(alive.pid), "log": "x.err",
                  "submitted_at": 1.0}
        _marker_path(tmp_path, job.name).write_text(json.dumps(marker))
        ctx = JobContext(PROFILES["smoke"], str(tmp_path), executor="local")
        for _ in range(2):
            assert _reattach(job, tmp_path, ctx, None) is not None
        table = pd.read_csv(tmp_path / "cluster" / "submissions.csv")
        assert list(table.name) == [job.name] and str(table.cluster_job_id[0]) == str(alive.pid)
    finally:
        alive.kill()
        alive.wait()


def test_with_a_few_jobs_at_a_time_the_ready_ones_start_stage_by_stage_across_envs():
    from lewm_bench.executors import start_order
    from lewm_bench.profiles import PROFILES
    from lewm_bench.suite import plan_jobs

    jobs = plan_jobs(PROFILES["smoke"], ("two-room", "pusht"), ("lewm", "random"), (0,))

    def started(limit):
        order = start_order(jobs, limit)
        return [j.name for j in sorted(jobs, key=lambda j: order[j.name])]

    assert started(1) == [j.name for j in jobs]  # one at a time: env by env, as planned
    assert [j.env for j in jobs[:6]] == ["two-room"] * 6
    for limit in (2, None):
        names = started(limit)
        assert names[:4] == ["collect/two-room", "collect/pusht", "train/two-room/lewm/seed0",
                             "train/pusht/lewm/seed0"]
        assert names[4:6] == ["eval/two-room/lewm/seed0", "eval/two-room/random/seed0"]
