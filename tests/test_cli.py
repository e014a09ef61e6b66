"""The command line, run in this process (``cli.main``, the entry point's function; the installed script's own
process — one line on stderr, exit status — is tested in ``test_bad_inputs.py``)."""

import json
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from types import SimpleNamespace

import pytest

from lewm_bench import cli

COMMANDS = [[], ["envs"], ["collect"], ["datasets"], ["train"], ["bench"]]


def run(*args, check=True):
    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse: --help, usage errors
            code = exc.code or 0
    proc = SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_on_every_command(cmd):
    out = run(*cmd, "--help").stdout
    assert "usage: lewm-bench" in out
    flat = " ".join(out.split())  # no "None" default (nothing given) and no flag's "False"
    assert "(default: None)" not in flat and "(default: False)" not in flat, out


def test_envs_lists_all():
    out = run("envs").stdout
    for name in ("two-room", "pusht", "cube", "lewm_bench/TwoRoom-v0"):
        assert name in out


def test_collect_and_inspect_smoke_profile(tmp_path):
    proc = run("collect", "--env", "two-room", "--profile", "smoke", "--data-root", str(tmp_path), "--no-progress")
    assert "profile: smoke" in proc.stderr
    files = list(tmp_path.glob("two-room/*.h5"))
    assert len(files) == 1 and "12 episodes" in proc.stdout
    summary = json.loads(run("datasets", "--data-root", str(tmp_path), "--json").stdout)
    assert summary[0]["env"] == "two-room" and summary[0]["episodes"] == 12


@pytest.mark.parametrize("args,message", [
    (["collect", "--env", "mars"], "valid names: two-room, pusht, cube, reacher"),
    (["collect", "--env", "pusht", "--collector", "sb3:nowhere.zip"], "expects a saved stable-baselines3 model"),
    (["collect", "--env", "pusht", "--collector", "oracle"], "valid collectors: random, expert, pusher, sb3:PATH"),
    (["datasets", "missing.h5"], "missing.h5: no such dataset"),
    (["train", "--env", "pusht", "--profile", "smoke", "--data-root", "nowhere"],
     "create it with: lewm-bench collect --env pusht --profile smoke"),
    (["train", "--env", "pusht", "--agent", "dreamer", "--profile", "smoke"],
     "valid agents: dinowm, dinowm-proprio, gcbc, gciql, gcivl, lewm, oracle, pldm, random, sac-her, sb3"),
    (["analyze", "probe", "--env", "pusht", "--agent", "random", "--profile", "smoke"],
     "agent 'random' is a policy without an encoder or predictor: nothing to probe; skipped"),
    (["run", "--suite", "everything"], "unknown suite 'everything'; valid suites: all, smoke, planning-speed"),
    (["collect", "--env", "two-room", "--image-size", "4"], "image_size must be >= 8"),
    (["collect", "--env", "two-room", "--held-out-fraction", "1.5"], "expected a fraction in [0, 1)"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    proc = run(*args, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("lewm-bench: error:")


def test_bench_smoke(tmp_path):
    out = tmp_path / "b.json"
    proc = run("bench", "envs", "--env", "two-room", "--sizes", "16", "--seconds", "0.05", "--json", str(out))
    assert "two-room" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["step_per_s"] > 0 and rows[0]["render_per_s"] > 0


def test_bench_planning_prints_a_table_per_profiled_call(monkeypatch, tmp_path):
    """``--ops``: each profiled mode's operators are printed under a line that says how many calls were profiled (the
    timings themselves are ``bench_planning``'s, replaced here by one smoke model's real profile)."""
    import torch

    from lewm_bench.bench import planning
    from lewm_bench.planning.cem import CEM, CEMConfig

    def fake_bench_planning(profile, batch, calls, context, agent, compile, ops):
        model = planning.random_world_model("lewm", "smoke", 16, torch.device("cpu"))
        cem = CEM(CEMConfig(candidates=8, iterations=1, elites=2, horizon=2, bf16=False))
        top = planning.profile_call(model, cem, 16, 1, torch.device("cpu"), ops, 100.0)
        return [{"architecture": "smoke", "no_graph_median_s": None, "single_median_s": 0.01, "gemm_gflop_per_s": 100.0,
                 "top_ops": top}]

    monkeypatch.setattr(planning, "bench_planning", fake_bench_planning)
    out = tmp_path / "p.json"
    proc = run("bench", "planning", "--profile", "smoke", "--ops", "4", "--json", str(out))
    assert "the 4 longest operators of a eager call, smoke architecture" in proc.stdout
    assert "self time per call over 2 calls" in proc.stdout and "fraction_of_gemm" in proc.stdout
    top = json.loads(out.read_text())["rows"][0]["top_ops"]
    assert top["profiled_calls"] == 2 and len(top["ops"]) == 4
