"""``lewm-bench run --suite SUITE``: the grid env x agent x seed, from data to report.

A suite is a list of jobs — collect one env's dataset, train one (env, agent, seed), evaluate one
(env, agent, seed), and for world models the two physical-understanding analyses (``voe``,
``probe``) and the model diagnostics (``diagnostics``) — run in dependency order, then ``lewm-bench
report``. Every job's identity is a hash of its full resolved configuration (and of the jobs it
depends on). Its record (``ROOT/jobs/NAME.json``: key, status, seconds, error) makes a rerun skip
finished jobs; an interrupted collection or training resumes from what it saved; ``force`` redoes
everything. A job whose record holds another key was made with another configuration: it fails with
a message instead of overwriting, unless ``force``. A failing job is recorded and the others go on
(its dependents are marked blocked); the run then ends with an error listing the failures.
``ROOT/suite.csv`` holds one row per job with its wall time.

Where the jobs run is the executor's business (:mod:`lewm_bench.executors`): ``inline`` runs them one
after the other in this process; ``local`` and ``slurm`` submit each job (through submitit) to its own
process or SLURM allocation once its dependencies are done. Either way a job runs :func:`run_job`,
which does the work and writes the job's record; the records, and so resume, are the same.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from tqdm.auto import tqdm

from lewm_bench import __version__
from lewm_bench.allocator import keep_freed_memory
from lewm_bench.analysis.run import KINDS as ANALYSES
from lewm_bench.analysis.run import AnalysisSkipped
from lewm_bench.envs import env_names, env_spec
from lewm_bench.errors import LewmBenchError
from lewm_bench.executors import ClusterConfig, check_executor
from lewm_bench.faults import fault_point
from lewm_bench.identity import content_hash
from lewm_bench.io import check_output_folder, read_json, remove_stale_temporaries, write_csv, write_json
from lewm_bench.locks import lock_output
from lewm_bench.loggers import check_logger
from lewm_bench.paths import data_root, run_dir
from lewm_bench.profiles import Profile
from lewm_bench.registry import get_agent, grid_agents

SUITE_FORMAT = 2
"""Version of the layout of a suite folder; a folder written with another one is not touched."""


Stage = Literal["collect", "train", "eval", "voe", "probe", "diagnostics"]
JobStatus = Literal["pending", "done", "skipped", "failed", "blocked", "not-applicable"]
STAGE_ORDER: dict[str, int] = {"collect": 0, "train": 1, "eval": 2, "voe": 3, "probe": 3, "diagnostics": 3}


@dataclass(frozen=True)
class SuiteSpec:
    envs: tuple[str, ...] | None = None
    """None: every registered env."""
    agents: tuple[str, ...] | None = None
    """None: every registered agent that says it belongs in the grid (``in_grid``)."""
    seeds: tuple[int, ...] = (0,)
    profile: str | None = None
    """Profile the suite always uses (None: ``--profile`` or the machine's default)."""
    description: str = ""


SUITES: dict[str, SuiteSpec] = {
    "all": SuiteSpec(description="every env x every grid agent at the chosen profile (the paper's Fig. 6 grid)"),
    "smoke": SuiteSpec(profile="smoke", description="the same grid at smoke sizes, in minutes (a check, not a result)"),
}
SPECIAL_SUITES = {"planning-speed": "the paper's planning-time table (Fig. 3): time per planning call per agent"}


@dataclass(frozen=True)
class Job:
    stage: Stage
    env: str
    agent: str | None
    seed: int | None
    key: str
    """The job's content identity: what it makes, from the same records its stage saves (not paths)."""
    depends: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.stage + "/" + self.env + ("" if self.agent is None else f"/{self.agent}/seed{self.seed}")


@dataclass
class JobRecord:
    name: str
    stage: Stage
    key: str
    status: JobStatus = "pending"
    """``pending`` (not run yet, or interrupted), ``done``, ``skipped`` (done by an earlier run),
    ``failed``, ``blocked`` (a dependency failed) or ``not-applicable`` (the job does not apply to
    the agent; ``error`` says why)."""
    seconds: float = 0.0
    """Wall time of the run that did the job (for a skipped job: of the earlier run)."""
    error: str | None = None
    finished_at: str | None = None
    executor: str = "inline"
    """Where the job ran: ``inline``, ``local`` or ``slurm``."""
    cluster_job_id: str | None = None
    """The submitted job's id (SLURM job id, or the local process id) for ``local``/``slurm``."""
    log: str | None = None
    """The submitted job's stderr file (stdout beside it), to read when it failed."""
    peak_rss_mib: float | None = None
    """Peak resident memory (MiB) of the process that ran the job, its finished child processes included, at the
    job's end (:func:`peak_rss_mib`). A submitted job has its own process, so this is the job's peak; an inline job
    runs in the suite's process, whose high-water mark includes the jobs before it."""


@dataclass(frozen=True)
class JobContext:
    """What a job needs besides its identity: the same for every job of a run, and picklable, so that a job runs
    the same in this process or in another (a submitted job)."""

    profile: Profile
    root: str
    force: bool = False
    progress: bool = True
    workers: int | None = None
    """Worker processes of a collection and of the diagnostics' simulators (None: their defaults, by CPU cores)."""
    logger: str = "csv"
    """Experiment logger of trainings and evaluations (:mod:`lewm_bench.loggers`)."""
    threads: int | None = None
    """torch threads of the job (None: torch's default); a submitted job uses its allocation's CPUs."""
    train_procs: int = 1
    """Processes per training job: above 1, the training runs under ``torchrun`` (one process per GPU)."""
    executor: str = "inline"
    """Where the job runs (``inline``, ``local``, ``slurm``)."""


@dataclass(frozen=True)
class SuiteResult:
    root: Path
    records: list[JobRecord]
    report_dir: Path | None
    seconds: float
    ran: frozenset[str] = frozenset()
    """Names of the jobs that ran in this run (not those kept from an earlier one, nor blocked ones)."""

    @property
    def failures(self) -> list[JobRecord]:
        return [r for r in self.records if r.status in ("failed", "blocked")]

    def stage_seconds(self) -> dict[str, float]:
        """Wall time spent in this run per stage (jobs done by an earlier run count zero)."""
        out: dict[str, float] = {}
        for r in self.records:
            out[r.stage] = out.get(r.stage, 0.0) + (r.seconds if r.name in self.ran else 0.0)
        return out

    @property
    def peak_rss_mib(self) -> float | None:
        """The largest peak resident memory (MiB) of the jobs that ran in this run (None when none did)."""
        return max((r.peak_rss_mib for r in self.records if r.name in self.ran and r.peak_rss_mib is not None),
                   default=None)


def resolve_suite(name: str) -> SuiteSpec:
    if name not in SUITES:
        raise LewmBenchError(f"unknown suite {name!r}; valid suites: {', '.join([*SUITES, *SPECIAL_SUITES])}")
    return SUITES[name]


def plan_jobs(profile: Profile, envs: tuple[str, ...], agents: tuple[str, ...], seeds: tuple[int, ...],
              grid: bool = False) -> list[Job]:
    """The jobs of the grid in dependency order: per env, collect, then the trainings, then the evaluations.

    ``grid``: ``agents`` are the default grid's, so each joins only the envs it says it belongs to there
    (``grid_envs``, e.g. ``sac-her`` on Two-Room only); agents named by the user run in every env asked for.
    """
    from lewm_bench.collect.runner import CollectConfig
    from lewm_bench.training.run_config import train_identity

    for env in envs:
        env_spec(env)  # unknown envs fail here, listing the valid names
    infos = {a: get_agent(a) for a in agents}  # unknown agents fail here, listing the valid names
    jobs: list[Job] = []
    protocol = _protocol(profile)
    for env in envs:
        data_id = CollectConfig.from_profile(env, profile).identity()
        collect_job = Job("collect", env, None, None, content_hash({"suite_format": SUITE_FORMAT, "data": data_id}))
        jobs.append(collect_job)
        for agent, info in infos.items():
            if grid and not info.in_grid_for(env):
                continue
            for seed in seeds:
                upstream = collect_job
                if info.trainable:
                    key = train_identity(agent, env, profile.name, seed, profile.frameskip,
                                         info.config_for(profile.name), info.train_config_for(profile), data_id)
                    upstream = Job("train", env, agent, seed, key, (collect_job.name,))
                    jobs.append(upstream)
                base = {"suite_format": SUITE_FORMAT, "upstream": upstream.key, "agent": agent, "seed": seed}
                jobs.append(Job("eval", env, agent, seed, content_hash(dict(
                    base, cem=dataclasses.asdict(profile.cem), protocol=dataclasses.asdict(protocol), context=1)),
                    (upstream.name,)))
                for stage, sizes in (("voe", profile.voe), ("probe", profile.probe),
                                     ("diagnostics", profile.diagnostics)):
                    jobs.append(Job(stage, env, agent, seed, content_hash(dict(base, sizes=dataclasses.asdict(sizes))),
                                    (upstream.name,)))
    # env by env (collect, trains, evals), so that an interrupted suite has finished whole environments
    return sorted(jobs, key=lambda j: (envs.index(j.env), STAGE_ORDER[j.stage]))


def run_suite(suite: str, profile: Profile, root: str | os.PathLike[str] = "runs", envs: tuple[str, ...] | None = None,
              agents: tuple[str, ...] | None = None, seeds: tuple[int, ...] | None = None, force: bool = False,
              progress: bool = True, workers: int | None = None, executor: str = "inline",
              cluster: ClusterConfig | None = None, logger: str = "csv") -> SuiteResult:
    """Run (or continue) a suite under ``root``; see the module docstring.

    ``executor``: ``inline`` (this process), ``local`` or ``slurm`` (:mod:`lewm_bench.executors`), with the
    resources of ``cluster`` (default: :class:`~lewm_bench.executors.ClusterConfig`'s). ``logger``: experiment
    logger of the trainings and evaluations (:mod:`lewm_bench.loggers`).
    """
    spec = resolve_suite(suite)
    check_executor(executor)
    check_logger(logger)
    root = Path(root)
    check_output_folder(root)
    with lock_output(root):  # one suite per folder; its jobs take their own outputs' locks too
        for folder in (root, root / "jobs"):  # left by a killed run (a job still running elsewhere writes in ms)
            remove_stale_temporaries(folder, min_age_s=0 if executor == "inline" else 3600)
        ctx = JobContext(profile, str(root), force, progress, workers, logger, executor=executor)
        return _run_suite(spec, suite, ctx, agents, envs, seeds, cluster or ClusterConfig())


def _run_suite(spec: SuiteSpec, suite: str, ctx: JobContext, agents: tuple[str, ...] | None,
               envs: tuple[str, ...] | None, seeds: tuple[int, ...] | None, cluster: ClusterConfig) -> SuiteResult:
    profile, root = ctx.profile, Path(ctx.root)
    jobs = plan_jobs(profile, envs or spec.envs or env_names(), agents or spec.agents or grid_agents(),
                     seeds or spec.seeds, grid=not (agents or spec.agents))
    _check_folder(root)  # after planning: a bad name leaves no folder stamped
    previous_records = {job.name: load_record(root, job.name) for job in jobs}  # a damaged one fails before any job
    start = time.perf_counter()
    records: dict[str, JobRecord] = {}
    try:
        if ctx.executor == "inline":
            _run_inline(jobs, previous_records, records, ctx, suite)
        else:
            from lewm_bench.executors import run_submitted

            run_submitted(jobs, previous_records, records, ctx, cluster, suite)
    finally:  # also when interrupted: the table lists what finished and what is still pending
        done = [records[j.name] for j in jobs if j.name in records]
        pending = [JobRecord(j.name, j.stage, j.key) for j in jobs if j.name not in records]
        write_csv(root / "suite.csv", pd.DataFrame([dataclasses.asdict(r) for r in [*done, *pending]]))
    records = {j.name: records[j.name] for j in jobs}
    ran = frozenset(name for name, r in records.items() if r.finished_at is not None
                    and r.finished_at != (previous_records[name] or {}).get("finished_at"))
    report_dir = None
    if any(r.stage == "eval" and r.status in ("done", "skipped") for r in records.values()):
        from lewm_bench.report import build_report

        report_dir = build_report(root, profile=profile.name).out_dir
    return SuiteResult(root, list(records.values()), report_dir, time.perf_counter() - start, ran)


def _run_inline(jobs: list[Job], previous_records: dict[str, dict[str, Any] | None], records: dict[str, JobRecord],
                ctx: JobContext, suite: str) -> None:
    """Every job in this process, one after the other, in the planned order."""
    bar = tqdm(jobs, desc=f"suite {suite} ({ctx.profile.name})", unit="job", disable=not ctx.progress, position=0)
    try:
        for job in bar:
            bar.set_postfix_str(job.name)
            record = decide(job, records, previous_records[job.name], ctx.force)
            records[job.name] = record if record is not None else run_job(job, ctx)
    finally:
        bar.close()


def decide(job: Job, records: dict[str, JobRecord], previous: dict[str, Any] | None, force: bool) -> JobRecord | None:
    """The job's record when it must not run (a dependency failed; done before with the same key; done with
    another configuration), else None. Its dependencies must already be in ``records``."""
    record = JobRecord(job.name, job.stage, job.key)
    blocked = [d for d in job.depends if records[d].status in ("failed", "blocked")]
    if blocked:  # not saved: a record on disk always describes what is on disk
        record.status, record.error = "blocked", f"depends on {', '.join(blocked)}, which did not finish"
        return record
    if previous is None or previous.get("status") not in ("done", "not-applicable") or force:
        return None
    if previous.get("key") == job.key:  # keep when, where and how long the run that did it took
        kept = {k: previous[k] for k in ("seconds", "finished_at", "executor", "cluster_job_id", "log", "peak_rss_mib")
                if k in previous}
        if previous["status"] == "not-applicable":  # the same agent still does not apply: not asked again
            return dataclasses.replace(record, status="not-applicable", error=previous.get("error"), **kept)
        return dataclasses.replace(record, status="skipped", **kept)
    record.status = "failed"  # not saved: the folder keeps the record of what is on disk
    record.error = (f"{job.name} was made with another configuration (key {previous.get('key')}, now "
                    f"{job.key}); pass --force to redo it, or use another --out")
    return record


def run_job(job: Job, ctx: JobContext) -> JobRecord:
    """Do one job and save its record (``ROOT/jobs/NAME.json``); a failure is recorded, not raised.

    The same function runs a job in the suite's process (``inline``) and in a submitted one.
    """
    keep_freed_memory()  # in a submitted job's process too (lewm_bench.allocator)
    if ctx.threads:
        import torch

        torch.set_num_threads(ctx.threads)
    record = JobRecord(job.name, job.stage, job.key, executor=ctx.executor)
    if ctx.executor != "inline":
        from lewm_bench.executors import submitted_job_info

        record.cluster_job_id, record.log = submitted_job_info()
    t0 = time.perf_counter()
    try:
        _run_job(job, ctx)
        record.status = "done"
    except KeyboardInterrupt:
        raise
    except AnalysisSkipped as exc:  # e.g. a policy has no encoder to probe: not a failure
        record.status, record.error = "not-applicable", str(exc)
    except Exception as exc:  # one failing job must not stop or lose the others
        record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
        tqdm.write(f"{job.name} failed: {record.error}")
    record.seconds = time.perf_counter() - t0
    record.peak_rss_mib = peak_rss_mib()
    record.finished_at = time.strftime("%Y-%m-%dT%H:%M:%S")
    save_record(Path(ctx.root), record)
    fault_point("suite-job-done")
    return record


def peak_rss_mib() -> float:
    """Peak resident memory (MiB) of this process or of the largest of its finished child processes (collection
    workers, a training under torchrun), whichever is larger: ``getrusage``'s ``ru_maxrss``."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    per_mib = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return round(max(own, children) / per_mib, 1)


def _run_job(job: Job, ctx: JobContext) -> None:
    assert job.agent is not None or job.stage == "collect"
    profile, root = ctx.profile, Path(ctx.root)
    if job.stage == "collect":
        from lewm_bench.collect.runner import CollectConfig, collect

        cfg = CollectConfig.from_profile(job.env, profile)
        collect(cfg, cfg.default_path(data_root(root)), workers=ctx.workers or os.cpu_count() or 1, force=ctx.force,
                progress=ctx.progress)
    elif job.stage == "train":
        out = run_dir("train", job.env, job.agent, profile.name, job.seed, root)
        if ctx.train_procs > 1 and not get_agent(job.agent).learns_online:
            _train_under_torchrun(job, ctx, out)
            return
        from lewm_bench.training.trainer import train

        train(job.env, profile, agent=job.agent, seed=job.seed, out=out, resume=True, force=ctx.force,
              progress=ctx.progress, data_root=data_root(root), logger=ctx.logger)
    elif job.stage in ANALYSES:
        from lewm_bench.analysis.run import analyze

        analyze(job.stage, job.env, job.agent, profile, root=root, seed=job.seed, workers=ctx.workers)
    else:
        from lewm_bench.evaluation.run import evaluate

        evaluate(job.env, job.agent, profile, seed=job.seed, protocol=_protocol(profile), root=root,
                 logger=ctx.logger)


def _train_under_torchrun(job: Job, ctx: JobContext, out: Path) -> None:
    """``torchrun --standalone --nproc_per_node N lewm-bench train ...``: one process per GPU of this allocation
    (DDP; the global batch is split over them), the same run folder and configuration as one process."""
    import subprocess
    import sys

    from lewm_bench.profiles import PROFILES

    if PROFILES.get(ctx.profile.name) != ctx.profile:
        raise LewmBenchError(f"training under torchrun takes a named profile; profile {ctx.profile.name!r} was "
                             "changed in code: run it with train_procs 1")
    assert job.agent is not None and job.seed is not None
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ctx.train_procs),
           "-m", "lewm_bench.cli", "train", "--env", job.env, "--agent", job.agent, "--profile", ctx.profile.name,
           "--seed", str(job.seed), "--out", str(out), "--data-root", str(data_root(Path(ctx.root))),
           "--logger", ctx.logger, "--no-progress", "--force" if ctx.force else "--resume"]
    env = dict(os.environ)
    if ctx.threads:  # the allocation's CPUs shared by the ranks
        env["OMP_NUM_THREADS"] = str(max(1, ctx.threads // ctx.train_procs))
    proc = subprocess.run(cmd, env=env, stdout=sys.stdout, stderr=subprocess.PIPE, text=True)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if any(c.isalnum() for c in ln)]
        cause = next((ln for ln in reversed(lines) if "exitcode" in ln or "Error" in ln), lines[-1] if lines else "")
        raise LewmBenchError(f"torchrun with {ctx.train_procs} processes exited with code {proc.returncode} ({cause}); "
                             "the ranks' output is above in this job's log")


def _protocol(profile: Profile):
    """The paper's protocol with the profile's number of evaluation episodes."""
    from lewm_bench.evaluation.protocol import paper_protocol

    return paper_protocol(profile.eval_episodes)


def record_path(root: Path, name: str) -> Path:
    """``ROOT/jobs/NAME.json``: where job ``name`` keeps its record."""
    return root / "jobs" / (name.replace("/", "__") + ".json")


def load_record(root: Path, name: str) -> dict[str, Any] | None:
    """The saved record of job ``name`` (None when there is none); a damaged one is a clear error."""
    path = record_path(root, name)
    if not path.exists():
        return None
    record = read_json(path, f"delete it to redo {name}, or use another --out")
    if not isinstance(record, dict):
        raise LewmBenchError(f"{path}: not a job record (expected a JSON object); delete it to redo {name}")
    return record


def save_record(root: Path, record: JobRecord) -> None:
    """Write a job's record, atomically (a job writes its own; the suite only those of jobs that died)."""
    write_json(record_path(root, record.name), dict(dataclasses.asdict(record), suite_format=SUITE_FORMAT,
                                                     lewm_bench_version=__version__))


def _check_folder(root: Path) -> None:
    """Refuse a folder written by an incompatible version; otherwise stamp it."""
    manifest = root / "suite.json"
    if manifest.exists():
        try:
            fmt = json.loads(manifest.read_text()).get("suite_format")
        except (ValueError, AttributeError):  # garbage, or JSON that is not an object
            fmt = "unreadable"
        if fmt != SUITE_FORMAT:
            raise LewmBenchError(f"{root} holds runs written with suite format {fmt} (this lewm-bench {__version__} "
                                 f"writes format {SUITE_FORMAT}); nothing was changed — use another --out")
    else:
        write_json(manifest, {"suite_format": SUITE_FORMAT, "lewm_bench_version": __version__,
                              "created": time.strftime("%Y-%m-%dT%H:%M:%S")})

