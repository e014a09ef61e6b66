"""Where a suite's jobs run: ``inline``, ``local`` or ``slurm``.

- ``inline`` (the default): one job after the other in the suite's own process.
- ``local``: each job in its own process on this machine, through submitit's local executor; at most
  ``max_running`` at once (default 1: on one machine, jobs that each use every core only slow each
  other down; several jobs with a share of the cores each, ``--cpus-per-job``, can finish sooner, as
  small jobs use one core better than two, and then the ready jobs start stage by stage:
  :func:`start_order`).
- ``slurm``: each job in its own SLURM allocation through submitit; the jobs that are ready at the same
  time and share a stage are submitted as one job array (``array_parallelism`` tasks at once).

The suite's process is the driver: it submits a job once every job it depends on has finished (so the
graph collect → train → evaluate/analyse is kept without SLURM dependencies, and a failed job blocks
its dependents exactly as inline), shows queued / running / done / failed per stage, and reads each
finished job's record. Every job runs :func:`lewm_bench.suite.run_job` — the code of an inline job —
and writes its own record; the driver writes a record only for a job that died without writing one
(killed, out of memory, out of time), naming the job's log. Submitted jobs are requeued by submitit
when SLURM preempts them or they reach their time limit (up to 3 times), and resume from what they
saved.

Resume is the inline one: rerunning the same command skips finished jobs and submits only the
unfinished or failed ones. A job still queued or running from an earlier driver (killed, or left
running after Ctrl-C) is re-attached, not submitted twice: ``ROOT/jobs/NAME.submitted.json`` keeps its
id until it finishes.

Files: ``ROOT/cluster/JOBID/`` holds each submitted job's stdout, stderr and submitit's pickles;
``ROOT/cluster/submissions.csv`` lists every submission (job, id, when). On SLURM, ``ROOT`` must be
on storage the nodes share: the first ``slurm`` run submits a one-minute job that reads a token file
the driver wrote there, and stops with an error if the job cannot see it.

Resources per stage (:class:`StageResources`) have defaults for a GPU cluster (collection is CPU-only,
training, evaluation and analysis take one GPU) and come from a TOML file (:meth:`ClusterConfig.from_file`)
and command-line flags. A training job with several GPUs (or ``procs``) runs under ``torchrun``, one
process per GPU, inside its allocation.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lewm_bench.errors import LewmBenchError
from lewm_bench.locks import pid_alive

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

if TYPE_CHECKING:
    from lewm_bench.suite import Job, JobContext, JobRecord

ExecutorName = Literal["inline", "local", "slurm"]
EXECUTORS: tuple[str, ...] = ("inline", "local", "slurm")
STAGES: tuple[str, ...] = ("collect", "train", "eval", "voe", "probe", "diagnostics")
_LIVE_SLURM_STATES = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING",
                      "SUSPENDED", "RESIZING", "STAGE_OUT", "SIGNALING"}


@dataclass(frozen=True)
class StageResources:
    """What one job of a stage asks for."""

    gpus: int = 1
    """GPUs per job (SLURM ``--gpus-per-node``)."""
    cpus: int = 8
    """CPUs per job (``--cpus-per-task``); also the job's torch threads and collection worker processes."""
    mem_gb: int = 32
    """Memory per job (``--mem``)."""
    time_min: int = 360
    """Time limit per job (``--time``); a job that reaches it is requeued and resumes from what it saved."""
    procs: int | None = None
    """Processes per training job (None: one per GPU); above 1 the training runs under ``torchrun``."""

    def __post_init__(self) -> None:
        for name in ("cpus", "mem_gb", "time_min"):
            if getattr(self, name) < 1:
                raise LewmBenchError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.procs is not None and self.procs < 1:
            raise LewmBenchError(f"procs must be >= 1 (or left out); got {self.procs}")

    @property
    def processes(self) -> int:
        return self.procs if self.procs is not None else max(1, self.gpus)


DEFAULT_STAGES: dict[str, StageResources] = {
    # simulation on CPU cores, one worker process per core
    "collect": StageResources(gpus=0, cpus=8, mem_gb=32, time_min=240),
    # paper profile: LeWM trains in a few hours on one GPU; a day's limit leaves room, and requeue resumes
    "train": StageResources(gpus=1, cpus=8, mem_gb=64, time_min=1440),
    "eval": StageResources(gpus=1, cpus=8, mem_gb=32, time_min=360),
    "voe": StageResources(gpus=1, cpus=4, mem_gb=32, time_min=120),
    "probe": StageResources(gpus=1, cpus=4, mem_gb=32, time_min=120),
    "diagnostics": StageResources(gpus=1, cpus=4, mem_gb=32, time_min=120),
}


@dataclass(frozen=True)
class ClusterConfig:
    """Resources and scheduler options of the ``local`` and ``slurm`` executors."""

    partition: str | None = None
    """SLURM partition (``--partition``; None: the cluster's default)."""
    account: str | None = None
    """SLURM account to charge (``--account``)."""
    qos: str | None = None
    """SLURM quality of service (``--qos``)."""
    array_parallelism: int = 64
    """SLURM: tasks of one job array that may run at once."""
    max_running: int | None = None
    """Submitted jobs queued or running at once (None: unlimited on SLURM, 1 for ``local``)."""
    sbatch: Mapping[str, str] = field(default_factory=dict)
    """More sbatch options, ``{"constraint": "a100"}`` becoming ``#SBATCH --constraint=a100``."""
    setup: tuple[str, ...] = ()
    """Shell lines run before each job (e.g. ``module load cuda``, ``source /path/.venv/bin/activate``)."""
    stages: Mapping[str, StageResources] = field(default_factory=lambda: dict(DEFAULT_STAGES))
    """Resources per stage (collect, train, eval, voe, probe, diagnostics)."""
    poll_s: float | None = None
    """Seconds between two looks at the submitted jobs (None: 10 on SLURM, 1 for ``local``)."""

    def __post_init__(self) -> None:
        if self.array_parallelism < 1 or (self.max_running is not None and self.max_running < 1):
            raise LewmBenchError(f"array_parallelism and max_running must be >= 1; got {self.array_parallelism} and "
                                 f"{self.max_running}")
        if self.poll_s is not None and self.poll_s <= 0:
            raise LewmBenchError(f"poll_s must be > 0 seconds; got {self.poll_s}")

    def poll_seconds(self, executor: str) -> float:
        return self.poll_s if self.poll_s is not None else (10.0 if executor == "slurm" else 1.0)

    def resources(self, stage: str) -> StageResources:
        return self.stages[stage]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ClusterConfig:
        """Read a TOML file: top-level fields of this class, ``[sbatch]`` options and ``[stages.STAGE]`` tables
        (fields of :class:`StageResources`); what it leaves out keeps its default. See the README's example."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise LewmBenchError(f"{path}: no such cluster config file; expected a TOML file (see README: "
                                 "Run on a cluster)") from None
        except tomllib.TOMLDecodeError as exc:
            raise LewmBenchError(f"{path}: not valid TOML ({exc}); fix the file (see README: Run on a cluster)") \
                from None
        return cls().updated(data, str(path))

    def updated(self, data: Mapping[str, Any], where: str = "cluster config") -> ClusterConfig:
        """A copy with the fields of ``data`` (same layout as the TOML file) replaced; bad keys or types fail."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for key, value in data.items():
            if key not in fields:
                raise LewmBenchError(f"{where}: unknown setting {key!r}; valid: {', '.join(fields)}")
            if key == "stages":
                changes[key] = _stages(dict(self.stages), value, where)
            elif key == "sbatch":
                if not isinstance(value, Mapping):
                    raise LewmBenchError(f"{where}: [sbatch] must be a table of option = value; got {value!r}")
                changes[key] = {**self.sbatch, **{str(k): str(v) for k, v in value.items()}}
            elif key == "setup":
                if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                    raise LewmBenchError(f"{where}: setup must be a list of shell lines; got {value!r}")
                changes[key] = tuple(value)
            else:
                changes[key] = _typed(key, value, fields[key].type, where)
        try:
            return dataclasses.replace(self, **changes)
        except LewmBenchError as exc:
            raise LewmBenchError(f"{where}: {exc}") from None

    def with_all_stages(self, **resources: Any) -> ClusterConfig:
        """A copy with ``resources`` (fields of :class:`StageResources`) set for every stage; ``gpus`` is set only
        for the stages that use GPUs (all but collect)."""
        stages = {}
        for stage, res in self.stages.items():
            given = {k: v for k, v in resources.items() if v is not None and not (k == "gpus" and res.gpus == 0)}
            stages[stage] = dataclasses.replace(res, **given)
        return dataclasses.replace(self, stages=stages)


def _stages(current: dict[str, StageResources], value: Any, where: str) -> dict[str, StageResources]:
    if not isinstance(value, Mapping):
        raise LewmBenchError(f"{where}: [stages] must hold tables [stages.STAGE]; got {value!r}")
    names = {f.name: f for f in dataclasses.fields(StageResources)}
    for stage, settings in value.items():
        if stage not in STAGES:
            raise LewmBenchError(f"{where}: unknown stage {stage!r}; valid: {', '.join(STAGES)}")
        if not isinstance(settings, Mapping):
            raise LewmBenchError(f"{where}: [stages.{stage}] must be a table; got {settings!r}")
        for key, v in settings.items():
            if key not in names:
                raise LewmBenchError(f"{where}: [stages.{stage}] unknown setting {key!r}; valid: {', '.join(names)}")
            try:
                current[stage] = dataclasses.replace(current[stage], **{key: _typed(f"stages.{stage}.{key}", v, "int",
                                                                                      where)})
            except LewmBenchError as exc:
                raise LewmBenchError(f"{where}: [stages.{stage}] {exc}") from None
    return current


def _typed(key: str, value: Any, annotation: Any, where: str) -> Any:
    text = str(annotation)
    if "float" in text and isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    if "int" in text and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if "str" in text and isinstance(value, str):
        return value
    raise LewmBenchError(f"{where}: {key} = {value!r} has the wrong type; expected {text.replace(' | None', '')}")


def check_executor(name: str) -> None:
    """Fail before any work when ``name`` is unknown or submitit (``local``, ``slurm``) is missing."""
    if name not in EXECUTORS:
        raise LewmBenchError(f"unknown executor {name!r}; valid executors: {', '.join(EXECUTORS)}")
    if name != "inline":
        import importlib.util

        if importlib.util.find_spec("submitit") is None:
            raise LewmBenchError(f"--executor {name} needs submitit, which is not installed: pip install submitit")


def submitted_job_info() -> tuple[str | None, str | None]:
    """Inside a submitted job: its id and stderr file; elsewhere (None, None)."""
    import submitit

    try:
        env = submitit.JobEnvironment()
    except RuntimeError:  # not inside a submitit job
        return None, None
    return str(env.job_id), str(env.paths.stderr)


class _ResumableJob:
    """:func:`lewm_bench.suite.run_job` as submitit runs it: checkpointable, so that submitit requeues the job when
    SLURM preempts it or its time limit comes (up to 3 times), with the same arguments; the job then resumes from
    what it saved (a training from its last epoch checkpoint, a collection from its saved episodes)."""

    def __call__(self, job: Job, ctx: JobContext) -> JobRecord:
        from lewm_bench.suite import run_job

        return run_job(job, ctx)

    def checkpoint(self, job: Job, ctx: JobContext) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, job, ctx)


# ----------------------------------------------------------------------------------------------------------------
# the driver


@dataclass
class _Active:
    """A submitted job the driver waits for."""

    job: Job
    handle: Any
    """The submitit job (``done()``, ``state``, ``cancel()``, ``paths``)."""
    submitted_at: float
    pid: int | None = None
    """A re-attached local job: its controller's pid (submitit cannot follow a process it did not start)."""

    @property
    def job_id(self) -> str:
        return str(self.handle.job_id)

    @property
    def log(self) -> str:
        return str(self.handle.paths.stderr)

    def done(self) -> bool:
        if self.pid is not None:
            return not pid_alive(self.pid)
        return bool(self.handle.done())

    def state(self) -> str:
        if self.pid is not None:
            return "RUNNING" if pid_alive(self.pid) else "FINISHED"
        try:
            return str(self.handle.state)
        except Exception:  # noqa: BLE001 - sacct unreachable for a moment: ask again at the next poll
            return "UNKNOWN"


def run_submitted(jobs: list[Job], previous_records: dict[str, dict[str, Any] | None], records: dict[str, JobRecord],
                  ctx: JobContext, cluster: ClusterConfig, suite: str) -> None:
    """Run ``jobs`` through submitit (``ctx.executor``: ``local`` or ``slurm``) in dependency order; fills
    ``records`` as jobs finish (see the module docstring)."""

    from lewm_bench.suite import decide

    root = Path(ctx.root)
    folder = root / "cluster"
    folder.mkdir(parents=True, exist_ok=True)
    if ctx.executor == "slurm":
        _check_shared_storage(root, cluster)
    limit = cluster.max_running if cluster.max_running is not None else (1 if ctx.executor == "local" else None)
    order = start_order(jobs, limit)
    poll_s = cluster.poll_seconds(ctx.executor)
    active: dict[str, _Active] = {}
    waiting: list[Job] = []
    for job in sorted(jobs, key=lambda j: order[j.name]):
        attached = _reattach(job, root, ctx, previous_records.get(job.name))
        if attached is not None:
            active[job.name] = attached
        else:
            waiting.append(job)
    if active:
        print(f"re-attached {len(active)} job(s) submitted by an earlier run: "
              + ", ".join(f"{a.job.name} ({a.job_id})" for a in active.values()), file=sys.stderr)
    progress = _Progress(jobs, suite, ctx)
    try:
        while waiting or active:
            ready = []
            for job in list(waiting):
                if any(d not in records for d in job.depends):
                    continue
                waiting.remove(job)
                record = decide(job, records, previous_records.get(job.name), ctx.force)
                if record is None:
                    record = _not_applicable(job, root, ctx)
                if record is not None:
                    records[job.name] = record
                else:
                    ready.append(job)
            free = len(ready) if limit is None else max(0, limit - len(active))
            if ready[free:]:  # no slot yet: back in the queue, in the planned order
                waiting = sorted(waiting + ready[free:], key=lambda j: order[j.name])
            for submitted in _submit(ready[:free], ctx, cluster, folder):
                active[submitted.job.name] = submitted
            for name, entry in list(active.items()):
                if entry.done():
                    records[name] = _finished(entry, root, ctx)
                    del active[name]
                    if records[name].status == "failed":
                        progress.write(f"{name} failed: {records[name].error}")
            progress.update(records, active, waiting)
            if waiting or active:
                time.sleep(poll_s if not ready else 0.1)
    except KeyboardInterrupt:
        progress.close()
        _on_interrupt(list(active.values()), root)
        raise
    progress.close()


def start_order(jobs: list[Job], limit: int | None) -> dict[str, tuple[int, int]]:
    """Each job's rank (lowest first) among the jobs ready at the same time, ``jobs`` in the planned order.

    One at a time (``limit`` 1), the planned order: env by env, so an interrupted suite has finished whole envs.
    With a few at a time, stage by stage across the envs (every collection, then every training, then the
    evaluations and analyses): the long jobs start first and the short ones fill the end, instead of one env's
    last training running alone while the other slots wait for it.
    """
    from lewm_bench.suite import STAGE_ORDER

    return {job.name: (STAGE_ORDER[job.stage] if limit != 1 else 0, i) for i, job in enumerate(jobs)}


def _submit(jobs: list[Job], ctx: JobContext, cluster: ClusterConfig, folder: Path) -> list[_Active]:
    """Submit ``jobs`` (ready now), one job array per stage on SLURM; returns what to wait for."""
    from lewm_bench.io import write_json
    from lewm_bench.suite import record_path

    out: list[_Active] = []
    root = Path(ctx.root)
    for stage in STAGES:
        group = [j for j in jobs if j.stage == stage]
        if not group:
            continue
        res = cluster.resources(stage)
        executor = _executor(ctx.executor, folder, cluster, res, f"lewm-{stage}")
        cpus = res.cpus if ctx.executor == "slurm" else min(res.cpus, os.cpu_count() or 1)
        job_ctx = dataclasses.replace(ctx, threads=cpus, workers=ctx.workers or cpus,
                                      train_procs=res.processes if stage == "train" else 1)
        for job in group:  # the new record will come from this submission
            record_path(root, job.name).unlink(missing_ok=True)
        now = time.time()
        with executor.batch():
            handles = [executor.submit(_ResumableJob(), job, job_ctx) for job in group]
        _tidy(folder)
        rows = []
        for job, handle in zip(group, handles):
            entry = _Active(job, handle, now)
            out.append(entry)
            marker = {"key": job.key, "executor": ctx.executor, "cluster_job_id": entry.job_id, "log": entry.log,
                      "submitted_at": now}
            write_json(_marker_path(root, job.name), marker)
            rows.append(_submission_row(job, ctx.executor, marker))
        _list_submissions(folder, rows)
    return out


def _list_submissions(folder: Path, rows: list[dict[str, Any]]) -> None:
    """Add rows to ``submissions.csv``, leaving out job ids it already lists (a re-attached job written by a driver
    that was killed between the job's marker and this table)."""
    import pandas as pd

    from lewm_bench.io import write_csv

    table = folder / "submissions.csv"
    old = pd.read_csv(table, dtype={"cluster_job_id": str}) if table.exists() else None
    listed = set() if old is None else {(n, i) for n, i in zip(old.name, old.cluster_job_id)}
    new = [r for r in rows if (r["name"], str(r["cluster_job_id"])) not in listed]
    if new:
        write_csv(table, pd.concat([old, pd.DataFrame(new)], ignore_index=True) if old is not None
                  else pd.DataFrame(new))


def _executor(kind: str, folder: Path, cluster: ClusterConfig, res: StageResources, name: str) -> Any:
    import submitit

    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=kind)
    gpus = res.gpus
    if kind == "local":  # this machine's GPUs only, and none where there are none
        import torch

        gpus = min(gpus, torch.cuda.device_count())
    params: dict[str, Any] = dict(name=name, timeout_min=res.time_min, cpus_per_task=res.cpus, mem_gb=res.mem_gb,
                                  gpus_per_node=gpus, tasks_per_node=1, nodes=1)
    if kind == "slurm":
        params.update(slurm_array_parallelism=cluster.array_parallelism,
                      slurm_additional_parameters=dict(cluster.sbatch), slurm_setup=list(cluster.setup))
        for key in ("partition", "account", "qos"):
            if getattr(cluster, key) is not None:
                params["slurm_" + key] = getattr(cluster, key)
    elif cluster.setup:
        params["local_setup"] = list(cluster.setup)
    executor.update_parameters(**params)
    return executor


def _not_applicable(job: Job, root: Path, ctx: JobContext) -> JobRecord | None:
    """An analysis that does not apply to the job's agent (known from its kind): recorded without a submission."""
    from lewm_bench.analysis.run import KINDS, skip_reason

    if job.stage not in KINDS or job.agent is None:
        return None
    from lewm_bench.suite import JobRecord, save_record

    reason = skip_reason(job.stage, job.agent)
    if reason is None:
        return None
    record = JobRecord(job.name, job.stage, job.key, status="not-applicable", error=reason,
                       finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"), executor=ctx.executor)
    save_record(root, record)  # nothing was submitted: the driver is the only writer
    return record


def _finished(entry: _Active, root: Path, ctx: JobContext) -> JobRecord:
    """The record of a submitted job that is no longer running: the one it wrote, or a failure naming its log."""
    from lewm_bench.suite import JobRecord, load_record, save_record

    grace = time.time() + (30.0 if ctx.executor == "slurm" else 2.0)  # a shared file system may show it late
    while True:
        saved = load_record(root, entry.job.name)
        if saved is not None and saved.get("key") == entry.job.key:
            _marker_path(root, entry.job.name).unlink(missing_ok=True)
            fields = {f.name for f in dataclasses.fields(JobRecord)}
            return JobRecord(**{k: v for k, v in saved.items() if k in fields})
        if time.time() > grace:
            break
        time.sleep(1.0)
    state = entry.state()
    record = JobRecord(entry.job.name, entry.job.stage, entry.job.key, status="failed",
                       seconds=time.time() - entry.submitted_at, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
                       executor=ctx.executor, cluster_job_id=entry.job_id, log=entry.log)
    last = _last_line(Path(entry.log))
    record.error = (f"{ctx.executor} job {entry.job_id} ended ({state}) without finishing its work; read {entry.log}"
                    + (f" (last line: {last})" if last else ""))
    save_record(root, record)  # the job is gone: no other writer
    _marker_path(root, entry.job.name).unlink(missing_ok=True)
    return record


def _reattach(job: Job, root: Path, ctx: JobContext, previous: dict[str, Any] | None) -> _Active | None:
    """A job an earlier driver submitted that is still queued or running (same key, same executor), else None."""
    from lewm_bench.io import read_json

    marker = _marker_path(root, job.name)
    if not marker.exists():
        return None
    info = read_json(marker, f"delete it to submit {job.name} again")
    alive = False
    if info.get("key") == job.key and info.get("executor") == ctx.executor and not (
            previous is not None and previous.get("status") == "done" and previous.get("key") == job.key):
        folder = root / "cluster"
        job_id = str(info["cluster_job_id"])
        if ctx.executor == "slurm":
            import submitit

            handle = submitit.SlurmJob(folder=folder / "%j", job_id=job_id)
            try:
                alive = str(handle.state).split()[0] in _LIVE_SLURM_STATES
            except Exception:  # noqa: BLE001 - sacct does not know it (any more): submit again
                alive = False
            if alive:
                _list_submissions(folder, [_submission_row(job, ctx.executor, info)])
                return _Active(job, handle, float(info.get("submitted_at", time.time())))
        else:
            from submitit.local.local import LocalJob

            pid = int(job_id)
            handle = LocalJob(folder=folder / "%j", job_id=job_id)
            if pid_alive(pid) and not handle.paths.result_pickle.exists():
                _list_submissions(folder, [_submission_row(job, ctx.executor, info)])
                return _Active(job, handle, float(info.get("submitted_at", time.time())), pid=pid)
    marker.unlink(missing_ok=True)
    return None


def _submission_row(job: Job, executor: str, marker: dict[str, Any]) -> dict[str, Any]:
    """The ``submissions.csv`` row of a job from its ``.submitted.json`` marker."""
    return {"name": job.name, "stage": job.stage, "executor": executor, "cluster_job_id": marker["cluster_job_id"],
            "submitted_at": marker.get("submitted_at"), "log": marker.get("log")}


def _check_shared_storage(root: Path, cluster: ClusterConfig) -> None:
    """Submit a short job that reads a token file under ``root``: it must see the file the driver wrote."""
    from lewm_bench.io import read_json, write_json

    stamp = root / "cluster" / "storage.json"
    if stamp.exists() and read_json(stamp, "delete it to check the storage again").get("shared"):
        return
    token = uuid.uuid4().hex
    probe = root / "cluster" / "storage-probe.txt"
    probe.write_text(token)
    res = StageResources(gpus=0, cpus=1, mem_gb=1, time_min=10)
    executor = _executor("slurm", root / "cluster", cluster, res, "lewm-storage-check")
    handle = executor.submit(_read_token, str(probe.resolve()), token)
    _tidy(root / "cluster")
    print(f"checking that {root} is on storage the nodes share: slurm job {handle.job_id} ...", file=sys.stderr)
    while not handle.done():
        time.sleep(min(cluster.poll_seconds("slurm"), 5.0))
    try:
        seen, host = handle.result()
    except Exception as exc:  # noqa: BLE001 - it could not even start: its pickle under root was not there
        raise LewmBenchError(f"the storage check job {handle.job_id} failed ({type(exc).__name__}: "
                             f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else 'no message'}); if "
                             f"its log {handle.paths.stderr} is missing too, {root} is not on storage the compute "
                             "nodes share: put --out on a shared file system (home, project or scratch)") from None
    if not seen:
        raise LewmBenchError(f"{root} is not on storage the compute nodes share: a job on {host} could not read "
                             f"{probe} that this machine ({socket.gethostname()}) wrote; put --out on a shared "
                             "file system (home, project or scratch) and rerun")
    write_json(stamp, {"shared": True, "checked_by_host": host, "driver_host": socket.gethostname(),
                       "checked_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
    probe.unlink(missing_ok=True)


def _read_token(path: str, token: str) -> tuple[bool, str]:
    """The storage check, on a compute node: does ``path`` hold ``token``?"""
    try:
        seen = Path(path).read_text() == token
    except OSError:
        seen = False
    return seen, socket.gethostname()


def _on_interrupt(active: list[_Active], root: Path) -> None:
    """Ctrl-C: ask whether to cancel the submitted jobs (default: leave them; a rerun re-attaches)."""
    if not active:
        return
    answer = ""
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            answer = input(f"\n{len(active)} submitted job(s) are queued or running. Cancel them? [y/N] ")
        except (EOFError, KeyboardInterrupt):
            answer = ""
    if answer.strip().lower() in ("y", "yes"):
        for entry in active:
            entry.handle.cancel(check=False)
            _marker_path(root, entry.job.name).unlink(missing_ok=True)
        print(f"cancelled {len(active)} job(s); rerun the same command to submit them again", file=sys.stderr)
    else:
        print(f"left {len(active)} job(s) queued or running; rerun the same command to re-attach to them "
              f"(their ids are in {root / 'jobs'}/*.submitted.json)", file=sys.stderr)


class _Progress:
    """One bar per stage: finished jobs out of the stage's, with how many wait, are queued, run or failed."""

    def __init__(self, jobs: list[Job], suite: str, ctx: JobContext) -> None:
        from tqdm.auto import tqdm

        self.stages = [s for s in STAGES if any(j.stage == s for j in jobs)]
        self.totals = {s: sum(j.stage == s for j in jobs) for s in self.stages}
        self.enabled = ctx.progress
        self.bars = {s: tqdm(total=self.totals[s], desc=f"{suite} {s:7s}", unit="job", position=i,
                             disable=not ctx.progress, leave=True) for i, s in enumerate(self.stages)}
        self._write = tqdm.write

    def write(self, text: str) -> None:
        self._write(text, file=sys.stderr)

    def update(self, records: dict[str, JobRecord], active: dict[str, _Active], waiting: list[Job]) -> None:
        if not self.enabled:
            return
        for stage, bar in self.bars.items():
            finished = [r for r in records.values() if r.stage == stage]
            states = [a.state() for a in active.values() if a.job.stage == stage]
            running = sum(s.startswith(("RUNNING", "COMPLETING")) for s in states)
            failed = sum(r.status in ("failed", "blocked") for r in finished)
            bar.n = len(finished)
            bar.set_postfix_str(f"waiting {sum(j.stage == stage for j in waiting)} · queued {len(states) - running} · "
                                f"running {running} · failed {failed}", refresh=True)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _tidy(folder: Path) -> None:
    """submitit creates the folder pattern itself (``%j``) besides the jobs' folders; remove it while empty."""
    try:
        (folder / "%j").rmdir()
    except OSError:
        pass


def _marker_path(root: Path, name: str) -> Path:
    return root / "jobs" / (name.replace("/", "__") + ".submitted.json")


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""
