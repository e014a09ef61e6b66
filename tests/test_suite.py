import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from lewm_bench import cli
from lewm_bench.baselines.pldm import PLDM
from lewm_bench.bench.planning_speed import planning_speed
from lewm_bench.errors import LewmBenchError
from lewm_bench.evaluation.run import SUMMARY_COLUMNS
from lewm_bench.profiles import PROFILES
from lewm_bench.suite import plan_jobs, run_suite

SMOKE = PROFILES["smoke"]


def lewm_bench(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lewm_bench.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, MUJOCO_GL="egl"))


@pytest.fixture(scope="module")
def smoke_suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    proc = lewm_bench("run", "--suite", "smoke", "--out", str(root / "runs"), "--no-progress", cwd=root)
    return root / "runs", proc


def test_smoke_suite_end_to_end_through_the_cli(smoke_suite):
    runs, proc = smoke_suite
    assert proc.returncode == 0, proc.stderr
    assert "157 jobs — 97 done, 0 skipped, 0 failed, 0 blocked, 60 not-applicable" in proc.stdout
    summary = pd.read_csv(runs / "summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert len(summary) == 32 and set(summary.agent) == {"lewm", "pldm", "dinowm", "gcbc", "gciql", "gcivl", "random",
                                                         "sac-her", "oracle"}
    assert set(summary[summary.agent == "oracle"].env) == {"two-room", "pusht", "reacher"}  # seconds per solve there
    assert set(summary[summary.agent == "sac-her"].env) == {"two-room"}  # in the grid where its budget is minutes
    assert summary[summary.agent == "sac-her"].variant.str.contains("privileged state \\+ reward").all()
    policies = summary.agent.isin(["gcbc", "gciql", "gcivl", "random", "sac-her", "oracle"])
    assert set(summary[policies].timed_call) == {"decision"} and set(summary[~policies].timed_call) == {"planning call"}
    assert (summary[policies].plan_time_median_s > 0).all() and summary.plan_calls.min() > 0
    trained = summary[summary.agent.isin(["gcbc", "gciql", "gcivl"])]
    assert (trained.train_time_s > 0).all() and (trained.params_trainable > 0).all()
    assert set(trained.encoder) == {"self-pretrained"}
    assert set(summary.env) == {"two-room", "pusht", "cube", "reacher"} and set(summary.profile) == {"smoke"}
    assert set(summary[summary.agent == "dinowm"].encoder) == {"self-pretrained"}
    for name in ("results.csv", "results.md", "success.png", "planning_time.png", "straightness.png"):
        assert (runs / "report" / name).stat().st_size > 0
    jobs = pd.read_csv(runs / "suite.csv")
    assert len(jobs) == 157 and set(jobs.status) == {"done", "not-applicable"} and (jobs.seconds > 0).all()
    assert (jobs.peak_rss_mib > 100).all() and jobs.peak_rss_mib.is_monotonic_increasing  # one process's high-water
    assert f"peak memory of a job this run: {jobs.peak_rss_mib.max() / 1024:.2f} GiB" in proc.stdout
    assert set(jobs[jobs.stage == "train"].name.str.split("/").str[2]) == {"lewm", "pldm", "dinowm", "gcbc", "gciql",
                                                                            "gcivl", "sac-her"}
    na = jobs[jobs.status == "not-applicable"]
    assert set(na.stage) == {"voe", "probe", "diagnostics"}
    assert na.name.str.contains("/random/|/gc|/sac-her/|/oracle/").all()
    assert na.error.str.contains("policy without an encoder").all()
    voe = pd.read_csv(runs / "analysis" / "voe.csv")
    assert len(voe) == 24 and set(voe.variant) == {"teleport", "colour"} and voe.p_value.between(0, 1).all()
    assert set(voe.perturbation) == {"teleport", "colour (object)"}
    probe = pd.read_csv(runs / "analysis" / "probe.csv")
    assert set(probe.agent) == {"lewm", "pldm", "dinowm"} and set(probe.probe) == {"linear", "mlp"}
    diagnostics = pd.read_csv(runs / "analysis" / "diagnostics.csv")
    assert set(diagnostics.agent) == {"lewm", "pldm", "dinowm"}
    assert diagnostics[diagnostics.quantity.str.endswith("relative")].value.notna().all()
    results = (runs / "report" / "results.md").read_text()
    assert "| Two-Room |" in results and "## Model diagnostics" in results


TIMING_COLUMNS = {"plan_time_median_s", "plan_time_p90_s", "train_time_s", "eval_time_s", "plan_time_batched_median_s",
                  "commit"}


def test_local_executor_gives_the_inline_summary(smoke_suite, tmp_path):
    """The same jobs, each in its own process through submitit's local executor: the same summary rows."""
    inline, _ = smoke_suite
    out = tmp_path / "local"
    # each job with the torch threads the inline suite had (training sums depend on the thread count)
    proc = lewm_bench("run", "--suite", "smoke", "--envs", "two-room", "--agents", "lewm,gcbc,random", "--executor",
                      "local", "--cpus-per-job", str(torch.get_num_threads()), "--out", str(out), "--no-progress",
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "15 jobs — 9 done, 0 skipped, 0 failed, 0 blocked, 6 not-applicable" in proc.stdout
    jobs = pd.read_csv(out / "suite.csv")
    assert set(jobs.executor) == {"local"}
    run = jobs[jobs.status == "done"]  # one process per job; the analyses of policies need none
    assert run.cluster_job_id.nunique() == len(run) == 9 and jobs[jobs.status != "done"].cluster_job_id.isna().all()
    assert all(Path(log).is_file() for log in run.log)
    assert (run.peak_rss_mib > 100).all()  # each job's own process
    columns = [c for c in SUMMARY_COLUMNS if c not in TIMING_COLUMNS]
    ours = pd.read_csv(out / "summary.csv")[columns].sort_values("agent", ignore_index=True)
    theirs = pd.read_csv(inline / "summary.csv")[columns]
    theirs = theirs[(theirs.env == "two-room") & theirs.agent.isin(["lewm", "gcbc", "random"])]
    pd.testing.assert_frame_equal(ours, theirs.sort_values("agent", ignore_index=True))


def test_rerun_skips_finished_jobs(smoke_suite):
    runs, _ = smoke_suite
    proc = lewm_bench("run", "--suite", "smoke", "--out", str(runs), "--no-progress", cwd=runs.parent)
    assert proc.returncode == 0, proc.stderr
    assert "157 jobs — 0 done, 97 skipped, 0 failed, 0 blocked, 60 not-applicable" in proc.stdout
    jobs = pd.read_csv(runs / "suite.csv")
    assert (jobs.seconds > 0).all() and (jobs.peak_rss_mib > 100).all()  # those of the run that did the work
    assert "peak memory" not in proc.stdout  # no job ran


def test_a_failing_job_is_reported_without_losing_the_others(tmp_path, monkeypatch, capsys):
    def broken(self, frames, actions, generator=None):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(PLDM, "forward", broken)
    code = cli.main(["run", "--suite", "smoke", "--envs", "two-room", "--agents", "lewm,pldm,random",
                     "--out", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "5 of 15 jobs did not finish" in err
    assert "failed: train/two-room/pldm/seed0: RuntimeError: injected failure" in err
    assert "blocked: eval/two-room/pldm/seed0: depends on train/two-room/pldm/seed0" in err
    jobs = pd.read_csv(tmp_path / "suite.csv").set_index("name")
    assert jobs.loc["eval/two-room/lewm/seed0", "status"] == "done"
    assert jobs.loc["eval/two-room/random/seed0", "status"] == "done"
    assert set(pd.read_csv(tmp_path / "summary.csv").agent) == {"lewm", "random"}
    # the fixed job runs on the next invocation; the finished ones are skipped
    monkeypatch.undo()
    result = run_suite("smoke", SMOKE, tmp_path, envs=("two-room",), agents=("lewm", "pldm", "random"),
                       progress=False)
    status = {r.name: r.status for r in result.records}
    assert status["train/two-room/pldm/seed0"] == "done" and status["eval/two-room/lewm/seed0"] == "skipped"
    assert not result.failures


def test_a_job_made_with_another_config_is_not_overwritten(tmp_path):
    run_suite("smoke", SMOKE, tmp_path, envs=("two-room",), agents=("random",), progress=False)
    record = tmp_path / "jobs" / "eval__two-room__random__seed0.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps(dict(data, key="0123456789abcdef")))
    result = run_suite("smoke", SMOKE, tmp_path, envs=("two-room",), agents=("random",), progress=False)
    (failed,) = result.failures
    assert failed.name == "eval/two-room/random/seed0" and "made with another configuration" in failed.error
    assert json.loads(record.read_text())["key"] == "0123456789abcdef"
    forced = run_suite("smoke", SMOKE, tmp_path, envs=("two-room",), agents=("random",), progress=False, force=True)
    assert not forced.failures


def test_bad_input(tmp_path):
    with pytest.raises(LewmBenchError, match="unknown suite 'everything'; valid suites: all, smoke, planning-speed"):
        run_suite("everything", SMOKE, tmp_path)
    with pytest.raises(LewmBenchError, match="unknown environment 'mars'; valid names: two-room, pusht, cube"):
        plan_jobs(SMOKE, ("mars",), ("lewm",), (0,))
    with pytest.raises(LewmBenchError, match="unknown agent 'dreamer'; valid agents: dinowm, dinowm-proprio, "
                                             "gcbc, gciql, gcivl, lewm, oracle, pldm, random, sac-her, sb3"):
        plan_jobs(SMOKE, ("pusht",), ("dreamer",), (0,))
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "suite.json").write_text(json.dumps({"suite_format": 0}))
    with pytest.raises(LewmBenchError, match="suite format 0 .* nothing was changed — use another --out"):
        run_suite("smoke", SMOKE, tmp_path / "old")
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["suite.json"]


def test_job_keys_change_with_the_config():
    a = {j.name: j.key for j in plan_jobs(SMOKE, ("pusht",), ("lewm",), (0, 1))}
    assert len(set(a.values())) == len(a) == 11  # collect, then per seed: train, eval, voe, probe, diagnostics
    cpu = {j.name: j.key for j in plan_jobs(PROFILES["cpu"], ("pusht",), ("lewm",), (0, 1))}
    assert all(a[k] != cpu[k] for k in a)


def test_planning_speed_table_has_ratios(tmp_path):
    table = planning_speed(SMOKE, tmp_path, calls=2, warmup=0)
    assert list(table.agent) == ["lewm", "pldm", "dinowm"]
    assert table.set_index("agent").speedup_vs_dinowm["dinowm"] == pytest.approx(1.0)
    assert (table.speedup_vs_dinowm > 0).all() and table.paper_speedup.iloc[0] == pytest.approx(47 / 0.98)
    assert list(table.tokens_per_frame) == [1, 1, 16]
    for name in ("planning_speed.csv", "planning_speed.md", "planning_speed.json", "planning_speed.png"):
        assert (tmp_path / name).stat().st_size > 0
    estimated = planning_speed(SMOKE, tmp_path / "est", calls=1, warmup=0, full_limit_s=0.0)
    assert estimated.measured.str.startswith("extrapolated").all()


RERUN = """
import dataclasses, sys
from lewm_bench.analysis.run import analyze
from lewm_bench.envs import env_names
from lewm_bench.evaluation.protocol import PROTOCOLS
from lewm_bench.evaluation.run import evaluate
from lewm_bench.profiles import PROFILES

smoke = PROFILES["smoke"]
protocol = dataclasses.replace(PROTOCOLS["paper"], episodes=smoke.eval_episodes)  # as the suite evaluates
for env in env_names():
    for agent in ("random", "lewm"):
        evaluate(env, agent, smoke, root=sys.argv[1], protocol=protocol)
    for kind in ("voe", "probe", "diagnostics"):
        analyze(kind, env, "lewm", smoke, root=sys.argv[1])
"""


def _result_tables(root):
    """Every result table whose bytes must not depend on the process: episodes, VoE, probe and diagnostics tables."""
    names = ("episodes.csv", "voe_surprise.csv", "voe_tests.csv", "probe.csv", "diagnostics_open_loop.csv",
             "diagnostics_plans.csv")
    return {str(p.relative_to(root)): p.read_bytes() for name in names for p in sorted(root.rglob(name))}


def test_same_command_same_numbers_across_fresh_processes_in_every_env(smoke_suite, tmp_path):
    """The smoke suite's evaluations (random and LeWM) and analyses of every env, redone in a fresh process (VoE
    replays re-simulated, not read from the cache), are byte-identical to the suite's (itself a fresh process: the
    fixture runs the command line)."""
    runs, _ = smoke_suite
    envs = sorted(pd.read_csv(runs / "summary.csv").env.unique())  # the suite's envs (tests may register more)
    root = tmp_path / "again"
    shutil.copytree(runs, root)
    for cache in root.glob("analysis/*/voe_replays-*.npz"):
        cache.unlink()
    proc = subprocess.run([sys.executable, "-c", RERUN, str(root)], capture_output=True, text=True,
                          env=dict(os.environ, MUJOCO_GL="egl"))
    assert proc.returncode == 0, proc.stderr
    again, original = _result_tables(root), _result_tables(runs)
    expected = {f"eval/{env}/{agent}-smoke-seed0/episodes.csv" for env in envs for agent in ("random", "lewm")}
    expected |= {f"analysis/{env}/lewm-smoke-seed0/{name}" for env in envs
                 for name in ("voe_surprise.csv", "voe_tests.csv", "probe.csv", "diagnostics_open_loop.csv",
                              "diagnostics_plans.csv")}
    assert expected <= set(again)
    for name in sorted(expected):
        assert again[name] == original[name], f"{name} differs from the suite's"


def test_a_moved_suite_folder_just_works_from_another_directory(smoke_suite, tmp_path, monkeypatch, capsys):
    """Renamed, moved and reached through a relative path from another working directory: every job is skipped as
    done, and eval, analyze and report read it."""
    runs, _ = smoke_suite
    moved = tmp_path / "elsewhere" / "renamed-runs"
    shutil.copytree(runs, moved)  # a moved copy (the fixture's folder stays for the other tests)
    cwd = tmp_path / "somewhere"
    cwd.mkdir()
    proc = lewm_bench("run", "--suite", "smoke", "--out", "../elsewhere/renamed-runs", "--no-progress", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    counts = re.search(r"(\d+) jobs — 0 done, (\d+) skipped, 0 failed, 0 blocked, (\d+) not-applicable", proc.stdout)
    assert counts and int(counts[1]) == int(counts[2]) + int(counts[3]) > 0, proc.stdout  # all skipped as done
    monkeypatch.chdir(cwd)
    rel = "../elsewhere/renamed-runs"
    assert cli.main(["eval", "--env", "two-room", "--agent", "lewm", "--profile", "smoke", "--root", rel,
                     "--out", "ad-hoc", "--timing-calls", "0"]) == 0
    assert cli.main(["analyze", "probe", "--env", "two-room", "--agent", "lewm", "--profile", "smoke",
                     "--root", rel]) == 0
    assert cli.main(["report", "--root", rel]) == 0
    capsys.readouterr()
    assert (cwd / "ad-hoc" / "episodes.csv").read_bytes() == \
        (runs / "eval" / "two-room" / "lewm-smoke-seed0" / "episodes.csv").read_bytes()
    assert not list(tmp_path.rglob("*.lock"))  # every lock was released
