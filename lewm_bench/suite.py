"""``lewm-bench run --suite SUITE``: the grid env x agent x seed, from data to report.

A suite is a list of jobs — collect one env's dataset, train one (env, agent, seed), evaluate one
(env, agent, seed), and for world models the two physical-understanding analyses (``voe``,
``probe``) — run in dependency order, then ``lewm-bench report``. Every job's identity is
a hash of its full resolved configuration (and of the jobs it depends on). Its record
(``ROOT/jobs/NAME.json``: key, status, seconds, error) makes a rerun skip finished jobs; an
interrupted collection or training resumes from what it saved; ``force`` redoes everything. A job
whose record holds another key was made with another configuration: it fails with a message
instead of overwriting, unless ``force``. A failing job is recorded and the others go on (its
dependents are marked blocked); the run then ends with an error listing the failures.
``ROOT/suite.csv`` holds one row per job with its wall time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from lewm_bench import __version__
from lewm_bench.analysis.run import AnalysisSkipped
from lewm_bench.envs import ENVS
from lewm_bench.errors import LewmBenchError
from lewm_bench.io import write_csv, write_json
from lewm_bench.profiles import Profile
from lewm_bench.registry import get_agent

SUITE_FORMAT = 1
"""Version of the layout of a suite folder; a folder written with another one is not touched."""


@dataclass(frozen=True)
class SuiteSpec:
    envs: tuple[str, ...]
    agents: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    profile: str | None = None
    """Profile the suite always uses (None: ``--profile`` or the machine's default)."""


GRID_AGENTS = ("lewm", "pldm", "dinowm", "random")
SUITES: dict[str, SuiteSpec] = {
    "all": SuiteSpec(tuple(ENVS), GRID_AGENTS),
    "smoke": SuiteSpec(tuple(ENVS), GRID_AGENTS, profile="smoke"),
}
SPECIAL_SUITES = ("planning-speed",)


@dataclass(frozen=True)
class Job:
    stage: str
    """``collect``, ``train``, ``eval``, ``voe`` or ``probe``."""
    env: str
    agent: str | None
    seed: int | None
    config: dict[str, Any]
    """The full resolved configuration (JSON-able); hashed into :attr:`key`."""
    depends: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.stage + "/" + self.env + ("" if self.agent is None else f"/{self.agent}/seed{self.seed}")

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.config, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class JobRecord:
    name: str
    stage: str
    key: str
    status: str = "pending"
    """``pending`` (not run yet, or interrupted), ``done``, ``skipped`` (done by an earlier run),
    ``failed``, ``blocked`` (a dependency failed) or ``not-applicable`` (the job does not apply to
    the agent; ``error`` says why)."""
    seconds: float = 0.0
    """Wall time of the run that did the job (for a skipped job: of the earlier run)."""
    error: str | None = None
    finished_at: str | None = None


@dataclass(frozen=True)
class SuiteResult:
    root: Path
    records: list[JobRecord]
    report_dir: Path | None
    seconds: float

    @property
    def failures(self) -> list[JobRecord]:
        return [r for r in self.records if r.status in ("failed", "blocked")]

    def stage_seconds(self) -> dict[str, float]:
        """Wall time spent in this run per stage (jobs skipped as already done count zero)."""
        out: dict[str, float] = {}
        for r in self.records:
            out[r.stage] = out.get(r.stage, 0.0) + (r.seconds if r.status != "skipped" else 0.0)
        return out


def resolve_suite(name: str) -> SuiteSpec:
    if name not in SUITES:
        raise LewmBenchError(f"unknown suite {name!r}; valid suites: {', '.join([*SUITES, *SPECIAL_SUITES])}")
    return SUITES[name]


def plan_jobs(profile: Profile, envs: tuple[str, ...], agents: tuple[str, ...], seeds: tuple[int, ...],
              root: Path) -> list[Job]:
    """The jobs of the grid in dependency order: per env, collect, then the trainings, then the evaluations."""
    from lewm_bench.collect.runner import CollectConfig

    for env in envs:
        if env not in ENVS:
            raise LewmBenchError(f"unknown env {env!r}; valid envs: {', '.join(ENVS)}")
    infos = {a: get_agent(a) for a in agents}  # unknown agents fail here, listing the valid names
    jobs: list[Job] = []
    protocol = _protocol(profile)
    base = {"suite_format": SUITE_FORMAT, "profile": profile.name, "frameskip": profile.frameskip}
    for env in envs:
        cc = CollectConfig.from_profile(env, profile)
        collect_job = Job("collect", env, None, None, dict(base, data=cc.metadata(), path=str(
            cc.default_path(root / "data"))))
        jobs.append(collect_job)
        for agent, info in infos.items():
            for seed in seeds:
                upstream = collect_job
                if info.kind == "world_model":
                    model_cfg = dataclasses.asdict(info.cls.default_config(profile))
                    upstream = Job("train", env, agent, seed, dict(
                        base, agent=agent, seed=seed, model=model_cfg, train=dataclasses.asdict(profile.train),
                        data=collect_job.key), (collect_job.name,))
                    jobs.append(upstream)
                jobs.append(Job("eval", env, agent, seed, dict(
                    base, agent=agent, seed=seed, cem=dataclasses.asdict(profile.cem),
                    protocol=dataclasses.asdict(protocol), context=1, upstream=upstream.key), (upstream.name,)))
                for kind, sizes in (("voe", profile.voe), ("probe", profile.probe)):
                    jobs.append(Job(kind, env, agent, seed, dict(base, agent=agent, seed=seed, sizes=dataclasses.asdict(
                        sizes), upstream=upstream.key), (upstream.name,)))
    # env by env (collect, trains, evals), so that an interrupted suite has finished whole environments
    order = {"collect": 0, "train": 1, "eval": 2, "voe": 3, "probe": 3}
    return sorted(jobs, key=lambda j: (envs.index(j.env), order[j.stage]))


def run_suite(suite: str, profile: Profile, root: str | os.PathLike[str] = "runs", envs: tuple[str, ...] | None = None,
              agents: tuple[str, ...] | None = None, seeds: tuple[int, ...] | None = None, force: bool = False,
              progress: bool = True, workers: int | None = None) -> SuiteResult:
    """Run (or continue) a suite under ``root``; see the module docstring."""
    spec = resolve_suite(suite)
    root = Path(root)
    _check_folder(root)
    jobs = plan_jobs(profile, envs or spec.envs, agents or spec.agents, seeds or spec.seeds, root)
    start = time.perf_counter()
    records: dict[str, JobRecord] = {}
    bar = tqdm(jobs, desc=f"suite {suite} ({profile.name})", unit="job", disable=not progress, position=0)
    try:
        for job in bar:
            bar.set_postfix_str(job.name)
            record = JobRecord(job.name, job.stage, job.key)
            records[job.name] = record
            blocked = [d for d in job.depends if records[d].status in ("failed", "blocked")]
            if blocked:  # not saved: a record on disk always describes what is on disk
                record.status, record.error = "blocked", f"depends on {', '.join(blocked)}, which did not finish"
                continue
            previous = _load(root, job)
            if previous is not None and previous.get("status") == "done" and not force:
                if previous.get("key") == job.key:  # keep when and how long the run that did it took
                    record.status, record.seconds = "skipped", previous.get("seconds", 0.0)
                    record.finished_at = previous.get("finished_at")
                    continue
                record.status = "failed"
                record.error = (f"{job.name} was made with another configuration (key {previous.get('key')}, now "
                                f"{job.key}); pass --force to redo it, or use another --out")
                continue  # not saved: the folder keeps the record of what is on disk
            t0 = time.perf_counter()
            try:
                _run_job(job, profile, root, force, progress, workers)
                record.status = "done"
            except KeyboardInterrupt:
                raise
            except AnalysisSkipped as exc:  # e.g. a policy has no encoder to probe: not a failure
                record.status, record.error = "not-applicable", str(exc)
            except Exception as exc:  # one failing job must not stop or lose the others
                record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
                tqdm.write(f"{job.name} failed: {record.error}")
            record.seconds = time.perf_counter() - t0
            record.finished_at = time.strftime("%Y-%m-%dT%H:%M:%S")
            _save(root, record)
    finally:  # also when interrupted: the table lists what finished and what is still pending
        bar.close()
        pending = [JobRecord(j.name, j.stage, j.key) for j in jobs if j.name not in records]
        write_csv(root / "suite.csv", pd.DataFrame([dataclasses.asdict(r) for r in [*records.values(), *pending]]))
    report_dir = None
    if any(r.stage == "eval" and r.status in ("done", "skipped") for r in records.values()):
        from lewm_bench.report import build_report

        report_dir = build_report(root, profile=profile.name).out_dir
    return SuiteResult(root, list(records.values()), report_dir, time.perf_counter() - start)


def _run_job(job: Job, profile: Profile, root: Path, force: bool, progress: bool, workers: int | None) -> None:
    if job.stage == "collect":
        from lewm_bench.collect.runner import CollectConfig, collect

        collect(CollectConfig.from_profile(job.env, profile), job.config["path"],
                workers=workers or os.cpu_count() or 1, force=force, progress=progress)
    elif job.stage == "train":
        from lewm_bench.training.trainer import default_run_dir, train

        train(job.env, profile, agent=job.agent, seed=job.seed, out=default_run_dir(
            job.env, job.agent, profile, job.seed, root / "train"), resume=True, force=force, progress=progress,
            data_root=root / "data")
    elif job.stage in ("voe", "probe"):
        from lewm_bench.analysis.run import analyze

        analyze(job.stage, job.env, job.agent, profile, root=root, seed=job.seed)
    else:
        from lewm_bench.evaluation.run import evaluate

        evaluate(job.env, job.agent, profile, seed=job.seed, protocol=_protocol(profile), root=root)


def _protocol(profile: Profile):
    """The paper's protocol with the profile's number of evaluation episodes."""
    from lewm_bench.evaluation.protocol import PROTOCOLS

    return dataclasses.replace(PROTOCOLS["paper"], episodes=profile.eval_episodes)


def _record_path(root: Path, name: str) -> Path:
    return root / "jobs" / (name.replace("/", "__") + ".json")


def _load(root: Path, job: Job) -> dict[str, Any] | None:
    path = _record_path(root, job.name)
    return json.loads(path.read_text()) if path.exists() else None


def _save(root: Path, record: JobRecord) -> None:
    write_json(_record_path(root, record.name), dict(dataclasses.asdict(record), suite_format=SUITE_FORMAT,
                                                     lewm_bench_version=__version__))


def _check_folder(root: Path) -> None:
    """Refuse a folder written by an incompatible version; otherwise stamp it."""
    manifest = root / "suite.json"
    if manifest.exists():
        try:
            fmt = json.loads(manifest.read_text()).get("suite_format")
        except json.JSONDecodeError:
            fmt = "unreadable"
        if fmt != SUITE_FORMAT:
            raise LewmBenchError(f"{root} holds runs written with suite format {fmt} (this lewm-bench {__version__} "
                                 f"writes format {SUITE_FORMAT}); nothing was changed — use another --out")
    else:
        write_json(manifest, {"suite_format": SUITE_FORMAT, "lewm_bench_version": __version__,
                              "created": time.strftime("%Y-%m-%dT%H:%M:%S")})

