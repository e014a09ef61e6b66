"""Tests of ``lewm_bench.report`` on synthetic summary.csv and training logs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lewm_bench.errors import LewmBenchError
from lewm_bench.evaluation.protocol import wilson_interval
from lewm_bench.paper import paper_plan_time, paper_success
from lewm_bench.report import (
    REQUIRED_COLUMNS,
    build_report,
    load_training_logs,
    markdown_table,
    results_table,
)

# (env, agent, profile, seed, episodes, success_rate, plan_time_median_s, straightness)
RUNS = [
    ("two-room", "lewm", "smoke", 0, 50, 0.90, 1.0, 0.5),
    ("two-room", "lewm", "smoke", 1, 50, 0.80, 2.0, 0.6),
    ("two-room", "lewm", "smoke", 2, 40, 0.75, 4.0, 0.7),
    ("two-room", "random", "smoke", 0, 50, 0.30, np.nan, np.nan),
    ("two-room", "pldm", "smoke", 0, 50, 0.96, 0.5, 0.2),
    ("cube", "myplug", "smoke", 0, 50, 0.40, 3.0, 0.1),
    ("pusht", "lewm", "smoke", 0, 50, 0.24, 0.7, 0.3),
    ("pusht", "lewm", "cpu", 0, 50, 0.50, 0.8, 0.3),
]


def write_summary(root: Path, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    rows = []
    for env, agent, profile, seed, episodes, rate, plan_time, straight in RUNS:
        low, high = wilson_interval(round(rate * episodes), episodes)
        rows.append({"env": env, "agent": agent, "profile": profile, "seed": seed, "episodes": episodes,
                     "success_rate": rate, "success_ci_low": low, "success_ci_high": high,
                     "plan_time_median_s": plan_time, "plan_time_p90_s": plan_time, "plan_calls": 20,
                     "tokens_per_frame": np.nan if agent == "random" else 1.0, "encoder_tokens_per_frame": 1.0,
                     "straightness": straight, "params_trainable": 0 if agent == "random" else 4_500_000,
                     "params_frozen": 21_000_000 if agent == "myplug" else 0, "train_time_s": 100.0 + seed,
                     "eval_time_s": 10.0, "device": "cpu (2 cores)", "commit": f"abc{seed}",
                     "encoder": "dinov2" if agent == "myplug" else "",
                     "timed_call": "decision" if agent == "random" else "planning call"})
    summary = pd.DataFrame(rows).drop(columns=list(drop))
    root.mkdir(parents=True, exist_ok=True)
    summary.to_csv(root / "summary.csv", index=False)
    return summary


def write_log(root: Path, env: str, agent: str, seed: int, straightness: list[float], name: str | None = None,
              config: bool = True, finished: bool = True) -> None:
    run = root / "train" / env / (name or f"{agent}-smoke-seed{seed}")
    run.mkdir(parents=True)
    n = len(straightness)
    log = pd.DataFrame({"epoch": range(n), "step": [100 * i for i in range(n)], "loss": [np.nan] + [1.0] * (n - 1),
                        "val_pred_loss": 0.1, "emb_std_mean": 1.0, "effective_rank": 10.0,
                        "straightness": straightness})
    if agent == "pldm":
        log["vicreg_cov"] = 0.5  # an agent-specific loss term
    log.to_csv(run / "log.csv", index=False)
    if config:
        (run / "config.json").write_text(json.dumps({"agent": agent, "env": env, "profile": "smoke", "seed": seed}))
    if finished:
        (run / "summary.json").write_text("{}")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    write_summary(root)
    write_log(root, "two-room", "lewm", 0, [-0.3, 0.1, 0.4])
    write_log(root, "two-room", "pldm", 0, [-0.3, 0.0, 0.2])
    write_log(root, "pusht", "lewm", 0, [-0.35, 0.2])
    return build_report(root, profile="smoke")


def row(table: pd.DataFrame, env: str, agent: str) -> pd.Series:
    match = table[(table.env == env) & (table.agent == agent)]
    assert len(match) == 1, match
    return match.iloc[0]


def test_table_aggregates_seeds(report):
    r = row(report.table, "two-room", "lewm")
    assert (r.seeds, r.episodes) == (3, 140)
    assert r.success_rate == pytest.approx(np.mean([0.90, 0.80, 0.75]))
    assert r.success_std == pytest.approx(np.std([0.90, 0.80, 0.75], ddof=1))
    assert (r.success_ci_low, r.success_ci_high) == pytest.approx(wilson_interval(45 + 40 + 30, 140))
    assert r.plan_time_median_s == pytest.approx(2.0)
    assert r.straightness == pytest.approx(0.6)
    assert r.train_time_s == pytest.approx(101.0)
    assert r.commit == "abc0; abc1; abc2"
    assert np.isnan(row(report.table, "two-room", "pldm").success_std)  # one seed


def test_table_rows_order_and_profile_filter(report):
    assert set(report.table.profile) == {"smoke"}
    assert list(zip(report.table.env, report.table.agent)) == [
        ("two-room", "lewm"), ("two-room", "pldm"), ("two-room", "random"), ("pusht", "lewm"), ("cube", "myplug")]
    assert list(report.table.columns[:4]) == ["profile", "env", "agent", "encoder"]


def test_paper_columns_known_agents_only(report):
    assert row(report.table, "two-room", "lewm").paper_success == paper_success("two-room", "lewm") == 0.87
    assert row(report.table, "pusht", "lewm").paper_success == 0.96
    assert row(report.table, "two-room", "random").paper_success == 0.0
    assert row(report.table, "two-room", "lewm").paper_plan_time_s == paper_plan_time("lewm") == 0.98
    assert np.isnan(row(report.table, "two-room", "pldm").paper_plan_time_s)
    plugin = row(report.table, "cube", "myplug")
    assert np.isnan(plugin.paper_success) and np.isnan(plugin.paper_plan_time_s)
    assert plugin.encoder == "dinov2"


def test_results_csv_matches_table(report):
    assert report.files[0] == report.out_dir / "results.csv"
    written = pd.read_csv(report.out_dir / "results.csv")
    assert len(written) == len(report.table) == 5
    assert written.success_ci_low.tolist() == pytest.approx(report.table.success_ci_low.tolist())
    assert written.params_frozen.tolist() == [0, 0, 0, 0, 21_000_000]  # integers, not 21000000.0
    assert ",21000000," in (report.out_dir / "results.csv").read_text()
    assert not list(report.out_dir.glob("*.tmp"))


def test_markdown_tables(report):
    text = (report.out_dir / "results.md").read_text()
    assert "## Profile `smoke`" in text and "`cpu`" not in text
    assert ("| env | LeWM (ours) | LeWM (paper) | PLDM (ours) | PLDM (paper) | myplug (ours) | myplug (paper) "
            "| Random (ours) | Random (paper) |") in text
    lo, hi = wilson_interval(115, 140)
    lewm = f"{100 * 115 / 140:.0f}"  # 82%, the mean over seeds (0.8167) rounds the same way
    assert f"| Two-Room | {lewm}% [{100 * lo:.0f}%, {100 * hi:.0f}%] (3 seeds, sd 7.6) | 87% | 96% [" in text
    assert "| Cube | — | 74% | — | 65% | 40% [" in text  # LeWM and PLDM not run on Cube: ours missing, paper shown
    assert "| LeWM | Two-Room | 2 s | planning call | 0.98 s | 1 | 1 | 4.50 M | 0 | — |" in text
    assert "| PLDM | Two-Room | 0.5 s | planning call | — |" in text
    assert "| Random | Two-Room | — | decision | — |" in text
    assert "| myplug | Cube | 3 s | planning call | — | 1 | 1 | 4.50 M | 21.00 M | dinov2 |" in text
    assert "device(s): cpu (2 cores); commit(s): abc0; abc1; abc2." in text


def test_plots_written(report):
    names = [p.name for p in report.files]
    assert names == ["results.csv", "results.md", "success.png", "planning_time.png", "straightness.png"]
    for path in report.files[2:]:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000, path


def test_training_logs(tmp_path):
    write_log(tmp_path, "two-room", "lewm", 0, [-0.3, 0.4])
    write_log(tmp_path, "two-room", "pldm", 1, [-0.3, 0.0, 0.2])
    write_log(tmp_path, "two-room", "lewm", 0, [0.1], name="lewm-smoke-seed0-lambda0")
    write_log(tmp_path, "pusht", "lewm", 0, [0.0], name="no-config", config=False)
    write_log(tmp_path, "cube", "lewm", 0, [0.0], name="still-training", finished=False)
    with pytest.warns(UserWarning, match="no-config"):
        logs = load_training_logs(tmp_path)
    assert sorted(set(logs.run)) == ["lewm-smoke-seed0", "lewm-smoke-seed0-lambda0", "pldm-smoke-seed1"]
    pldm = logs[logs.run == "pldm-smoke-seed1"]
    assert pldm.step.tolist() == [0, 100, 200] and pldm.straightness.tolist() == [-0.3, 0.0, 0.2]
    assert set(pldm.seed) == {1} and set(pldm.agent) == {"pldm"}


def test_report_without_training_logs(tmp_path):
    write_summary(tmp_path)
    report = build_report(tmp_path, out=tmp_path / "elsewhere")
    assert report.out_dir == tmp_path / "elsewhere"
    assert set(report.table.profile) == {"smoke", "cpu"}
    assert (tmp_path / "elsewhere" / "straightness.png").stat().st_size > 1_000
    assert "## Profile `cpu`" in (tmp_path / "elsewhere" / "results.md").read_text()


def test_missing_summary_says_how_to_create_it(tmp_path):
    with pytest.raises(LewmBenchError, match="summary.csv") as err:
        build_report(tmp_path)
    assert "lewm-bench eval" in str(err.value) and "lewm-bench run --suite" in str(err.value)


def test_missing_columns_are_named(tmp_path):
    write_summary(tmp_path, drop=("success_rate", "commit"))
    with pytest.raises(LewmBenchError, match="lacks the columns success_rate, commit"):
        build_report(tmp_path)


def test_unknown_profile(tmp_path):
    write_summary(tmp_path)
    with pytest.raises(LewmBenchError, match="profiles there: cpu, smoke"):
        build_report(tmp_path, profile="paper")


def test_required_columns_are_written_by_eval():
    from lewm_bench.evaluation.run import SUMMARY_COLUMNS

    assert set(REQUIRED_COLUMNS) <= set(SUMMARY_COLUMNS)


def test_markdown_table_escapes_and_marks_missing():
    df = pd.DataFrame({"a": ["x|y", None], "b": [1.5, np.nan]})
    assert markdown_table(df) == "| a | b |\n|---|---|\n| x\\|y | 1.5 |\n| — | — |"


def test_results_table_single_seed_uses_pooled_interval():
    summary = pd.DataFrame([{c: np.nan for c in REQUIRED_COLUMNS} | {
        "env": "pusht", "agent": "newagent", "profile": "paper", "seed": 0, "episodes": 50, "success_rate": 0.5,
        "device": "gpu", "commit": "x"}])
    table = results_table(summary)
    assert (table.success_ci_low[0], table.success_ci_high[0]) == pytest.approx(wilson_interval(25, 50))
    assert np.isnan(table.paper_success[0]) and "encoder" not in table


def test_policy_columns_sit_beside_the_paper_and_say_they_time_decisions(tmp_path):
    summary = write_summary(tmp_path)
    lewm = summary.iloc[0]
    policies = [dict(lewm, agent=a, success_rate=r, plan_time_median_s=0.002, timed_call="decision",
                     tokens_per_frame=np.nan) for a, r in (("gcbc", 0.6), ("gciql", 0.5), ("gcivl", 0.4))]
    pd.concat([summary, pd.DataFrame(policies)]).to_csv(tmp_path / "summary.csv", index=False)
    report = build_report(tmp_path, profile="smoke")
    text = (report.out_dir / "results.md").read_text()
    assert ("| PLDM (ours) | PLDM (paper) | GCBC (ours) | GCBC (paper) | GCIQL (ours) | GCIQL (paper) | GCIVL (ours) "
            "| GCIVL (paper) | myplug (ours)") in text  # the paper's column order
    assert "| 60% [" in text and "| 100% | 50% [" in text  # ours beside the paper's 100% on Two-Room
    assert "| GCIQL | Two-Room | 0.002 s | decision | — |" in text
    assert set(report.table[report.table.agent.str.startswith("gc")].timed_call) == {"decision"}


def test_settings_with_the_same_words_are_still_two_rows(tmp_path):
    """Two LeWM runs that differ only in a training hyperparameter have the same variant words: their rows are told
    apart by their config id, never pooled as seeds of one."""
    summary = write_summary(tmp_path)
    pusht = summary[(summary.env == "pusht") & (summary.profile == "cpu")].iloc[0]
    rows = [dict(pusht, config_id=c, variant="paper, held_out, 50 episodes", success_rate=r)
            for c, r in (("aaaaaaaa11", 0.5), ("bbbbbbbb22", 0.1))]
    pd.concat([summary, pd.DataFrame(rows)]).to_csv(tmp_path / "summary.csv", index=False)
    table = build_report(tmp_path, profile="cpu").table
    labels = set(table.agent)
    assert {"lewm [paper, held_out, 50 episodes, config aaaaaaaa]",
            "lewm [paper, held_out, 50 episodes, config bbbbbbbb]"} <= labels
    assert sorted(table.success_rate) == [0.1, 0.5, 0.5]


def write_eval(root: Path, agent: str, successes: list[bool], name: str | None = None, train_data: str | None = None,
               tasks: list[tuple[int, int, int]] | None = None) -> None:
    folder = root / "eval" / "pusht" / (name or f"{agent}-cpu-seed0")
    folder.mkdir(parents=True)
    tasks = tasks or [(100 + i, i, i + 25) for i in range(len(successes))]
    pd.DataFrame({"episode": [t[0] for t in tasks], "start": [t[1] for t in tasks], "goal": [t[2] for t in tasks],
                  "success": successes}).to_csv(folder / "episodes.csv", index=False)
    result = {"env": "pusht", "agent": agent, "profile": "cpu", "seed": 0, "variant": "paper", "train_data": train_data,
              "tasks_data": "expert:e1e1e1e1e1e1e1e1", "planner": "cem 300x8 top30 h5" if agent != "random" else None}
    (folder / "result.json").write_text(json.dumps(result))


def test_per_task_sections_oracle_failures_and_training_data(tmp_path):
    write_summary(tmp_path)
    oracle = [True, True, True, False, False, False]
    write_eval(tmp_path, "oracle", oracle)
    write_eval(tmp_path, "lewm", [True, True, False, True, False, False], train_data="expert:e1e1e1e1e1e1e1e1")
    write_eval(tmp_path, "lewm", [True, False, False, False, False, False], name="lewm-random",
               train_data="random:a2a2a2a2a2a2a2a2")
    write_eval(tmp_path, "random", [False, False, True, False, False, True])
    write_eval(tmp_path, "pldm", [True] * 6, tasks=[(7, i, i + 25) for i in range(6)], train_data="expert:e1e1")
    report = build_report(tmp_path, profile="cpu")
    oracle_rows = pd.read_csv(report.out_dir / "oracle_tasks.csv")
    assert list(oracle_rows.agent) == ["lewm", "lewm", "oracle", "random"]  # pldm asked other tasks
    assert set(oracle_rows["oracle fails"]) == {"3 of 6 tasks"}
    assert set(oracle_rows["oracle's planner"]) == {"cem 300x8 top30 h5"}
    lewm = oracle_rows[oracle_rows.agent == "lewm"].iloc[0]
    assert lewm["on tasks the oracle solves"].startswith("2/3 (67%) [")
    assert lewm["on tasks the oracle fails"].startswith("1/3 (33%) [")
    low, high = wilson_interval(2, 3)
    assert lewm["on tasks the oracle solves"] == f"2/3 (67%) [{100 * low:.0f}, {100 * high:.0f}]"
    data = pd.read_csv(report.out_dir / "training_data.csv")
    assert list(data["trained on"]) == ["expert data (e1e1e1e1)", "random data (a2a2a2a2)"]
    assert list(data.success.str[:3]) == ["3/6", "1/6"] and set(data["tasks from"]) == {"expert data"}
    assert set(data["oracle on the same tasks"].str[:3]) == {"3/6"}
    text = (report.out_dir / "results.md").read_text()
    assert "## Tasks the oracle fails" in text and "## Training data" in text
    assert report.out_dir / "oracle_tasks.csv" in report.files


def test_no_per_task_sections_without_evaluation_folders(report):
    text = (report.out_dir / "results.md").read_text()
    assert "## Tasks the oracle fails" not in text and not (report.out_dir / "oracle_tasks.csv").exists()


def test_several_roots_pool_into_the_report_of_one(tmp_path, report):
    """Runs made in separate folders (one group of agents at a time) give the table one folder would."""
    whole = write_summary(tmp_path / "whole")
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    whole[whole.agent == "lewm"].to_csv(tmp_path / "a" / "summary.csv", index=False)
    whole[whole.agent != "lewm"].to_csv(tmp_path / "b" / "summary.csv", index=False)
    write_log(tmp_path / "a", "two-room", "lewm", 0, [-0.3, 0.1, 0.4])
    probe = pd.DataFrame([dict(profile="smoke", env="two-room", agent="pldm", seed=0, quantity="agent_xy",
                               probe="linear", pearson_r=0.91, mse=0.2)])
    (tmp_path / "b" / "analysis").mkdir()
    probe.to_csv(tmp_path / "b" / "analysis" / "probe.csv", index=False)
    pooled = build_report([tmp_path / "a", tmp_path / "b"], out=tmp_path / "pooled", profile="smoke")
    pd.testing.assert_frame_equal(pooled.table, report.table)
    text = (tmp_path / "pooled" / "results.md").read_text()
    assert "## Probing" in text and "r 0.910 / MSE 0.200" in text


def test_several_roots_need_an_output_folder_and_distinct_evaluations(tmp_path):
    write_summary(tmp_path / "a"), write_summary(tmp_path / "b")
    with pytest.raises(LewmBenchError, match="pass --out"):
        build_report([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(LewmBenchError, match=r"lewm on pusht \(profile cpu, seed 0\) is in more than one root: "
                                             + re.escape(f"{tmp_path / 'a'}, {tmp_path / 'b'}")):
        build_report([tmp_path / "a", tmp_path / "b"], out=tmp_path / "pooled")


def test_excluded_variants_leave_the_main_rows_under_their_plain_name(tmp_path):
    summary = write_summary(tmp_path)
    extra = summary[(summary.env == "pusht") & (summary.profile == "cpu")].assign(
        config_id="other", variant="cem 300x8, trained on random data", success_rate=0.0)
    pd.concat([summary.assign(config_id="main", variant="cem 300x8"), extra]).to_csv(tmp_path / "summary.csv",
                                                                                     index=False)
    both = build_report(tmp_path, profile="cpu").table
    assert sorted(both.agent) == ["lewm [cem 300x8, trained on random data]", "lewm [cem 300x8]"]
    main = build_report(tmp_path, profile="cpu", exclude_variants=["trained on"]).table
    assert main.agent.tolist() == ["lewm"] and main.success_rate.tolist() == [0.5]
    with pytest.raises(LewmBenchError, match="no evaluation left .* drop an --exclude-variant"):
        build_report(tmp_path, exclude_variants=["cem"])


def test_excluded_variants_leave_the_per_task_tables_too(tmp_path):
    write_summary(tmp_path)
    write_eval(tmp_path, "oracle", [True, True, False, False])
    write_eval(tmp_path, "lewm", [True, False, False, False])
    lewm = tmp_path / "eval" / "pusht" / "lewm-cpu-seed0" / "result.json"
    lewm.write_text(lewm.read_text().replace('"variant": "paper"', '"variant": "paper, cem 300x30"'))
    kept = pd.read_csv(build_report(tmp_path, profile="cpu").out_dir / "oracle_tasks.csv")
    assert sorted(kept.agent) == ["lewm", "oracle"]
    left = pd.read_csv(build_report(tmp_path, profile="cpu", exclude_variants=["300x30"]).out_dir / "oracle_tasks.csv")
    assert left.agent.tolist() == ["oracle"]
